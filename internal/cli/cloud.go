package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aliyun/credentials-go/credentials"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/scan"
)

// cloud is where a local command runs: the emulated demo cloud, or with
// --live the account the environment and the credential chain point at.
type cloud struct {
	cfg       *config.Config
	cfgErr    error
	region    string // the function's region, as FC would pass it
	accountID string
	demo      *emulator.Cloud // nil when live
	creds     func() (scan.Credentials, error)
	cleanup   func()
}

// openDemo starts the emulated cloud with the demo inventory and configures
// vpnauthz with the demo's settings alone, so that the demo gives the same
// verdicts on every machine whatever its environment.
func openDemo() (*cloud, error) {
	now := time.Now()
	c, err := emulator.Start(emulator.Options{})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vpnauthz-demo-")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("create a directory for the demo policy: %w", err)
	}
	cleanup := func() {
		c.Close()
		_ = os.RemoveAll(dir)
	}
	policyPath, err := emulator.WriteDemoPolicy(dir, now)
	if err != nil {
		cleanup()
		return nil, err
	}
	env := c.Env()
	for k, v := range emulator.DemoEnv(policyPath) {
		env[k] = v
	}
	cfg, cfgErr := config.Load(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}, os.ReadFile)
	creds := scan.Credentials{
		AccessKeyID:     c.Credentials.AccessKeyID,
		AccessKeySecret: c.Credentials.AccessKeySecret,
		SecurityToken:   c.Credentials.SecurityToken,
	}
	return &cloud{
		cfg: cfg, cfgErr: cfgErr,
		region: c.Region, accountID: c.AccountID,
		demo:    c,
		creds:   func() (scan.Credentials, error) { return creds, nil },
		cleanup: cleanup,
	}, nil
}

// openLive reads the configuration from the environment and takes the
// credentials from the standard Alibaba Cloud credential chain (environment,
// profile, RAM role), asked again for each invocation so that expiring STS
// tokens are renewed. A configuration error is not returned: the handler
// reports it, as it would in FC.
func openLive() (*cloud, error) {
	region := firstEnv("FC_REGION", "ALIBABA_CLOUD_REGION_ID")
	if region == "" && os.Getenv("SLS_ENDPOINT") == "" {
		return nil, errors.New("set FC_REGION or ALIBABA_CLOUD_REGION_ID to the function's region " +
			"(where findings go unless SLS_ENDPOINT says otherwise)")
	}
	cfg, cfgErr := config.FromEnviron()
	chain, err := credentials.NewCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("credential chain: %w", err)
	}
	return &cloud{
		cfg: cfg, cfgErr: cfgErr,
		region:    region,
		accountID: os.Getenv("FC_ACCOUNT_ID"),
		creds: func() (scan.Credentials, error) {
			m, err := chain.GetCredential()
			if err != nil {
				return scan.Credentials{}, fmt.Errorf("get credentials from the Alibaba Cloud credential chain "+
					"(ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN, profile or RAM role): %w", err)
			}
			return scan.Credentials{
				AccessKeyID:     deref(m.AccessKeyId),
				AccessKeySecret: deref(m.AccessKeySecret),
				SecurityToken:   deref(m.SecurityToken),
			}, nil
		},
		cleanup: func() {},
	}, nil
}

func openCloud(live bool) (*cloud, error) {
	if live {
		return openLive()
	}
	return openDemo()
}

// openScanCloud is openCloud for the commands that scan. A live scan needs
// the account id: it is the owner of connections without authorizations and
// of ERROR findings, and so part of their finding_uid, which must come out as
// the function's does for the same judgement.
func openScanCloud(live bool) (*cloud, error) {
	c, err := openCloud(live)
	if err == nil && c.accountID == "" {
		c.close()
		return nil, errors.New("set FC_ACCOUNT_ID to the scanned account's UID: it is the owner (and part of the " +
			"finding_uid) of findings about connections without authorizations and of ERROR findings")
	}
	return c, err
}

func (c *cloud) close() { c.cleanup() }

// describe says in one line where the commands run.
func (c *cloud) describe() string {
	if c.demo == nil {
		return fmt.Sprintf("live cloud, region %q", c.region)
	}
	return fmt.Sprintf("emulated demo cloud: VPC API %s, Log Service %s (%s/%s), account %s",
		c.demo.VPC.URL(), c.demo.SLS.Endpoint(), c.demo.Project, c.demo.Logstore, c.demo.AccountID)
}

// invocation returns the context of one invocation as FC would pass it: a
// request id, the credentials, region and account, and the deadline.
func (c *cloud) invocation(parent context.Context, requestID string, timeout time.Duration) (context.Context, context.CancelFunc, error) {
	creds, err := c.creds()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	ctx = fccontext.NewContext(ctx, &fccontext.FcContext{
		RequestID: requestID,
		Credentials: fccontext.Credentials{
			AccessKeyId:     creds.AccessKeyID,
			AccessKeySecret: creds.AccessKeySecret,
			SecurityToken:   creds.SecurityToken,
		},
		Function:  fccontext.Function{Name: "vpnauthz", Handler: "main", Timeout: int(timeout / time.Second)},
		Region:    c.region,
		AccountId: c.accountID,
	})
	return ctx, cancel, nil
}

// newRequestID makes an id shaped like FC's: 1-<seconds in hex>-<random>.
func newRequestID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return fmt.Sprintf("1-%08x-%s", now.Unix(), hex.EncodeToString(b[:]))
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
