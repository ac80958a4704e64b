package cli

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/vpcapi"
)

func TestEmulateLatencyAndQuota(t *testing.T) {
	const latency = 40 * time.Millisecond
	m := startCommand(t, regexp.MustCompile(`(?m)^(\{.*\})$`), "emulate", "--latency", latency.String(), "--quota", "0.05", "--burst", "2")
	var env map[string]string
	if err := json.Unmarshal([]byte(m[1]), &env); err != nil {
		t.Fatal(err)
	}
	creds := scan.Credentials{AccessKeyID: env["ALIBABA_CLOUD_ACCESS_KEY_ID"], AccessKeySecret: env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
		SecurityToken: env["ALIBABA_CLOUD_SECURITY_TOKEN"]}
	src, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(env["vpcEndpoint"])})(creds, "cn-hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A bucket of 2 refilled every 20 s: two calls pass, the third is
	// throttled however slowly a loaded machine makes them; every one waits
	// out the latency.
	for i := range 3 {
		start := time.Now()
		_, err := src.ListConnections(ctx, "cn-hangzhou", 1, 50)
		if took := time.Since(start); took < latency {
			t.Errorf("call %d answered in %s, under --latency %s", i+1, took, latency)
		}
		var ae *cloudapi.APIError
		switch {
		case i < 2 && err != nil:
			t.Errorf("call %d within the burst: %v", i+1, err)
		case i == 2 && (!errors.As(err, &ae) || ae.Code != "Throttling.User"):
			t.Errorf("call %d beyond the quota: %v, want Throttling.User", i+1, err)
		}
	}
	// The quota is per region: another region still has its own bucket.
	other, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(env["vpcEndpoint"])})(creds, "cn-shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ListConnections(ctx, "cn-shanghai", 1, 50); err != nil {
		t.Errorf("first call in another region: %v", err)
	}
}

func TestEmulateRefusesBadFaultFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--latency", "-1ms"},
		{"--quota", "-3"},
		{"--quota", "10", "--burst", "0"},
		{"--latency", "fast"},
	} {
		code, _, errOut := runCLI(t, append([]string{"emulate"}, args...)...)
		if code != exitUsage || !strings.Contains(errOut, args[len(args)-2]) {
			t.Errorf("emulate %v: exit %d, stderr %q; want %d naming the flag", args, code, errOut, exitUsage)
		}
	}
}
