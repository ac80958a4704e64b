// Command slslogstore creates, idempotently, the logstore of the function's
// own log (FC's logConfig) without any index of ours: FC's log keeps the
// index FC or its console gives it, and only the findings logstore gets the
// finding index (vpnauthz setup-sls). deploy.sh runs it:
//
//	go run ./scripts/slslogstore -endpoint https://REGION.log.aliyuncs.com -project P -logstore L
//
// Credentials come from the Alibaba Cloud credential chain; they need
// log:CreateLogStore on that logstore (scripts/ram-policy.sh -setup).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"vpnauthz/internal/endpoint"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/aliyun/credentials-go/credentials"

	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
)

// Settings of a logstore made here: FC's function log is for debugging, a
// month is plenty; the findings logstore keeps a year (setup-sls).
const (
	ttlDays        = 30
	shards         = 2
	maxSplitShards = 16
)

func main() {
	endpoint := flag.String("endpoint", "", "Log Service endpoint (https://REGION.log.aliyuncs.com)")
	project := flag.String("project", "", "the project (must exist)")
	logstore := flag.String("logstore", "", "the logstore to create")
	flag.Parse()
	if *endpoint == "" || *project == "" || *logstore == "" {
		fmt.Fprintln(os.Stderr, "slslogstore: -endpoint, -project and -logstore are required")
		os.Exit(2)
	}
	chain, err := credentials.NewCredential(nil)
	if err != nil {
		fail(fmt.Errorf("credential chain: %w", err))
	}
	m, err := chain.GetCredential()
	if err != nil {
		fail(fmt.Errorf("get credentials from the Alibaba Cloud credential chain: %w", err))
	}
	creds := scan.Credentials{AccessKeyID: deref(m.AccessKeyId), AccessKeySecret: deref(m.AccessKeySecret), SecurityToken: deref(m.SecurityToken)}
	created, err := ensure(*endpoint, *project, *logstore, creds)
	if err != nil {
		fail(err)
	}
	state := "exists"
	if created {
		state = "created"
	}
	fmt.Printf("logstore %s/%s: %s (no index of ours: the function's log keeps FC's)\n", *project, *logstore, state)
}

// ensure creates the logstore unless it exists; it reports whether it did.
func ensure(raw, project, logstore string, creds scan.Credentials) (bool, error) {
	ep, err := endpoint.Parse(raw)
	if err != nil {
		return false, err
	}
	client, err := slssink.NewClient(ep, creds)
	if err != nil {
		return false, err
	}
	err = client.CreateLogStore(project, logstore, ttlDays, shards, true, maxSplitShards)
	var se *sls.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &se) && se.Code == "LogStoreAlreadyExist":
		return false, nil
	default:
		return false, fmt.Errorf("create logstore %s/%s: %w", project, logstore, err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "slslogstore: %v\n", err)
	os.Exit(1)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
