package function

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/scan"
)

// TestConcurrentInvocationsShareNothing runs 20 HTTP scans at once through the
// handler exactly as FC wires it (real scanner, VPC and Log Service clients),
// each invocation with credentials of its own and a target of its own, under
// the race detector: the runtime runs every invocation in a goroutine of one
// process, so nothing of one may reach another.
func TestConcurrentInvocationsShareNothing(t *testing.T) {
	c := startEmulator(t)
	policy, err := emulator.WriteDemoPolicy(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env := c.Env()
	for k, v := range emulator.DemoAccountEnv(policy) {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	h := Invoke(NewHandler(cfg, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{}))

	targets := map[string]string{ // connection → region, every demo connection
		emulator.DemoTrusted: "cn-hangzhou", emulator.DemoPartner: "cn-hangzhou", emulator.DemoNoAuth: "cn-hangzhou",
		emulator.DemoStale: "cn-shanghai", emulator.DemoRogue: "cn-shanghai",
		emulator.DemoDenied: "ap-southeast-1", emulator.DemoOwner: "ap-southeast-1",
	}
	ids := emulator.DemoConnectionIDs()
	const n = 20
	type result struct {
		key, target string
		status      int
		report      scan.Report
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		key := fmt.Sprintf("STS.concurrent%02d", i)
		creds := cred.Credential{AccessKeyID: key, AccessKeySecret: fmt.Sprintf("secret-%02d", i), SecurityToken: fmt.Sprintf("token-%02d", i)}
		c.AddCredential(creds)
		id := ids[i%len(ids)]
		results[i] = result{key: key, target: targets[id] + ":" + id}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ctx = fccontext.NewContext(ctx, &fccontext.FcContext{
				RequestID: fmt.Sprintf("1-concurrent-%02d", i),
				Credentials: fccontext.Credentials{
					AccessKeyId: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken,
				},
				Region: c.Region, AccountId: c.AccountID,
			})
			res, err := h(ctx, httpScanEvent(t, results[i].target))
			if err != nil {
				t.Errorf("invocation %d: %v", i, err)
				return
			}
			resp, ok := res.(*handler.HTTPResult)
			if !ok {
				t.Errorf("invocation %d answered %T", i, res)
				return
			}
			results[i].status = resp.StatusCode
			if err := json.Unmarshal([]byte(resp.Body), &results[i].report); err != nil {
				t.Errorf("invocation %d: body %q: %v", i, resp.Body, err)
			}
		})
	}
	wg.Wait()

	byKey := c.VPC.StatsByAccessKey()
	scanIDs := map[string]bool{}
	for i, r := range results {
		rep := r.report
		if r.status != 200 || !rep.Delivery.Delivered {
			t.Errorf("invocation %d (%s): status %d, delivery %+v", i, r.target, r.status, rep.Delivery)
			continue
		}
		if scanIDs[rep.ScanID] {
			t.Errorf("scan id %s answered twice", rep.ScanID)
		}
		scanIDs[rep.ScanID] = true
		for _, f := range rep.Findings {
			if f.Region+":"+f.VpnConnectionID != r.target || f.ScanID != rep.ScanID {
				t.Errorf("invocation %d asked for %s and got a finding of %s:%s in scan %s",
					i, r.target, f.Region, f.VpnConnectionID, f.ScanID)
			}
		}
		if len(rep.Findings) == 0 {
			t.Errorf("invocation %d (%s): no findings", i, r.target)
		}
		// Every call this invocation made was signed with its own key.
		if got := byKey[r.key].Calls; got != rep.Summary.APICalls || got == 0 {
			t.Errorf("invocation %d: the VPC API saw %d calls signed with %s, the report counts %d",
				i, got, r.key, rep.Summary.APICalls)
		}
	}
	if got := byKey[c.Credentials.AccessKeyID].Calls; got != 0 {
		t.Errorf("%d calls signed with the emulator's own key, which no invocation was given", got)
	}
}

func httpScanEvent(t *testing.T, target string) []byte {
	t.Helper()
	body, _ := json.Marshal(map[string][]string{"targets": {target}})
	ev, err := json.Marshal(map[string]any{
		"version": "v1", "rawPath": "/scans", "body": string(body), "isBase64Encoded": false,
		"headers": map[string]string{"Content-Type": "application/json"},
		"requestContext": map[string]any{
			"requestId": "req", "http": map[string]string{"method": "POST", "path": "/scans"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
