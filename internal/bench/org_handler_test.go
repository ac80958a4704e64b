package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/function"
	"vpnauthz/internal/scan"
)

// BenchmarkOrgHandler runs the function's timer scan of an organisation in
// this process, wired as the binary wires it, against the built binary's
// emulated cloud (BENCH_ORG_BINARY, required; BENCH_ORG=AxRxC): the heap
// snapshots of BENCH_HEAPPROF show what the binary holds.
func BenchmarkOrgHandler(b *testing.B) {
	bin := os.Getenv("BENCH_ORG_BINARY")
	if bin == "" {
		b.Skip("BENCH_ORG_BINARY not set")
	}
	shape := OrgShape{Accounts: 20, Regions: 4, Connections: 50}
	if s := os.Getenv("BENCH_ORG"); s != "" {
		var err error
		if shape, err = ParseOrgShape(s); err != nil {
			b.Fatal(err)
		}
	}
	org := GenerateOrg(1, shape)
	file := filepath.Join(b.TempDir(), "org.json")
	if err := WriteOrg(file, org); err != nil {
		b.Fatal(err)
	}
	ext, err := StartExternalOrg(context.Background(), bin, file, Faults{Latency: 5 * time.Millisecond, Quota: 100, Burst: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer ext.Close()
	env := map[string]string{}
	for k, v := range ext.Env {
		env[k] = v
	}
	env["ACCOUNTS"] = strings.Join(append([]string{org.Own.AccountID}, org.MemberIDs()...), ",")
	env["MEMBER_ROLE_NAME"], env["MEMBER_ROLE_EXTERNAL_ID"] = org.RoleName, org.ExternalID
	env["SCAN_TARGETS"] = strings.Join(org.Targets(), " ")
	env["VPC_API_RATE"] = "100"
	if os.Getenv("BENCH_STATELESS") != "" {
		delete(env, "STATE_STORE") // to tell the lifecycle state's memory apart
	}
	cfg, cfgErr := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if cfgErr != nil {
		b.Fatal(cfgErr)
	}
	h := function.NewHandler(cfg, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)), function.Options{Fallback: io.Discard})
	for b.Loop() {
		stop := heapSnapshots(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		_, err := h.Handle(ctx, handler.Invocation{
			RequestID: "bench-org", Region: ext.Region, AccountID: ext.AccountID,
			Credentials: scan.Credentials{AccessKeyID: ext.Credentials.AccessKeyID, AccessKeySecret: ext.Credentials.AccessKeySecret,
				SecurityToken: ext.Credentials.SecurityToken},
		}, timerEvent)
		cancel()
		stop()
		if err != nil {
			b.Fatal(err)
		}
	}
}
