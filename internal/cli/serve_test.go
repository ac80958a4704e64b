package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"vpnauthz/internal/assume"
	"vpnauthz/internal/resourcedir"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/vpcapi"
)

func TestServeAnswersRealHTTPRequests(t *testing.T) {
	m := startCommand(t, regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`), "serve", "--addr", "127.0.0.1:0", "--log-level", "error")
	base := m[1]
	client := &http.Client{Timeout: time.Minute}

	do := func(t *testing.T, method, path, contentType string, body []byte) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, data
	}

	t.Run("health", func(t *testing.T) {
		status, header, body := do(t, http.MethodGet, "/health", "", nil)
		var got struct{ Status, Version string }
		if status != 200 || json.Unmarshal(body, &got) != nil || got.Status != "ok" || got.Version == "" {
			t.Errorf("GET /health = %d %s", status, body)
		}
		if !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
			t.Errorf("Content-Type %q", header.Get("Content-Type"))
		}
	})

	t.Run("scan everything", func(t *testing.T) {
		status, _, body := do(t, http.MethodPost, "/scans", "", nil)
		if status != 200 {
			t.Fatalf("POST /scans = %d %s", status, body)
		}
		var report scan.Report
		if err := json.Unmarshal(body, &report); err != nil {
			t.Fatalf("body is not a report: %v\n%s", err, body)
		}
		// The demo organisation before the demo's changes: the management
		// account and the hub member, and one ERROR for the member whose
		// role refuses AssumeRole.
		if !report.Delivery.Delivered || len(report.Findings) != 34 || report.Summary.Fail != 5 || report.Summary.Error != 2 {
			t.Errorf("report: delivered %t, %d findings, summary %+v", report.Delivery.Delivered, len(report.Findings), report.Summary)
		}
		var keys map[string]any
		var raw struct{ Findings []map[string]any }
		if err := json.Unmarshal(body, &raw); err != nil || len(raw.Findings) == 0 {
			t.Fatalf("findings: %v", err)
		}
		keys = raw.Findings[0]
		if len(keys) != len(finding.Keys) {
			t.Errorf("a finding has keys %v, want exactly %v", keys, finding.Keys)
		}
	})

	t.Run("scan one connection", func(t *testing.T) {
		status, _, body := do(t, http.MethodPost, "/scans", "application/json",
			[]byte(`{"targets":["cn-shanghai:`+emulator.DemoRogue+`"]}`))
		var report scan.Report
		if status != 200 || json.Unmarshal(body, &report) != nil {
			t.Fatalf("POST /scans = %d %s", status, body)
		}
		fails := 0
		for _, f := range report.Findings {
			if f.VpnConnectionID != emulator.DemoRogue {
				t.Errorf("finding for %s, asked only for %s", f.VpnConnectionID, emulator.DemoRogue)
			}
			if f.Status == "FAIL" {
				fails++
			}
		}
		if fails != 2 {
			t.Errorf("%d FAIL findings for %s, want 2 (untrusted account and CEN)", fails, emulator.DemoRogue)
		}
	})

	errorCases := []struct {
		name, method, path, contentType string
		body                            []byte
		wantStatus                      int
	}{
		{"unknown route", http.MethodGet, "/nothing-here", "", nil, 404},
		{"wrong method", http.MethodGet, "/scans", "", nil, 405},
		{"out of scope", http.MethodPost, "/scans", "application/json", []byte(`{"targets":["eu-central-1:*"]}`), 403},
		{"bad JSON", http.MethodPost, "/scans", "application/json", []byte(`{"targets":`), 400},
		{"binary body", http.MethodPost, "/scans", "application/octet-stream", []byte{0xff, 0xfe, 0x00, 0x80}, 415},
		{"body over 64 KiB", http.MethodPost, "/scans", "application/json", bytes.Repeat([]byte(" "), 2<<20), 413},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, tt.method, tt.path, tt.contentType, tt.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if status != tt.wantStatus || json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
				t.Errorf("%s %s = %d %s, want %d with a JSON error", tt.method, tt.path, status, body, tt.wantStatus)
			}
		})
	}
}

func TestEmulatePrintsWorkingEndpoints(t *testing.T) {
	m := startCommand(t, regexp.MustCompile(`(?m)^(\{.*\})$`), "emulate")
	var env map[string]string
	if err := json.Unmarshal([]byte(m[1]), &env); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, m[1])
	}
	for _, k := range []string{"VPC_ENDPOINT", "SLS_ENDPOINT", "SLS_PROJECT", "SLS_LOGSTORE", "ALIBABA_CLOUD_ACCESS_KEY_ID",
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "FC_ACCOUNT_ID", "FC_REGION",
		"STS_ENDPOINT", "RESOURCEMANAGER_ENDPOINT", "TABLESTORE_ENDPOINT", "STATE_STORE", "ACCOUNTS", "MEMBER_ROLE_EXTERNAL_ID",
		"vpcEndpoint", "slsEndpoint", "stsEndpoint", "resourceManagerEndpoint", "tablestoreEndpoint", "stateStore",
		"project", "logstore", "accountId"} {
		if env[k] == "" {
			t.Errorf("%s missing from %v", k, env)
		}
	}
	if env["ACCOUNTS"] != "resource-directory" || env["MEMBER_ROLE_EXTERNAL_ID"] != emulator.DemoMemberRoleExternalID {
		t.Errorf("organisation settings %q %q, want the demo's", env["ACCOUNTS"], env["MEMBER_ROLE_EXTERNAL_ID"])
	}
	creds := scan.Credentials{AccessKeyID: env["ALIBABA_CLOUD_ACCESS_KEY_ID"], AccessKeySecret: env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
		SecurityToken: env["ALIBABA_CLOUD_SECURITY_TOKEN"]}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// STS and ResourceManager answer with the demo organisation.
	id, err := assume.CallerIdentity(ctx, endpoint.MustParse(env["stsEndpoint"]), env["region"], creds, nil)
	if err != nil || id.AccountID != emulator.DemoAccountID {
		t.Errorf("STS at %s: %+v, %v", env["stsEndpoint"], id, err)
	}
	dir, err := resourcedir.List(ctx, resourcedir.Options{Endpoint: endpoint.MustParse(env["resourceManagerEndpoint"]), Credentials: creds})
	if err != nil || len(dir.Accounts) != 4 {
		t.Errorf("ResourceManager at %s: %+v, %v; want the demo account and 3 members", env["resourceManagerEndpoint"], dir, err)
	}

	src, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(env["vpcEndpoint"])})(creds, "cn-hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	page, err := src.ListConnections(ctx, "cn-hangzhou", 1, 50)
	if err != nil || !slices.Equal(page.IDs, []string{emulator.DemoTrusted, emulator.DemoPartner, emulator.DemoNoAuth}) {
		t.Errorf("VPC API at %s: %v, %v", env["vpcEndpoint"], page.IDs, err)
	}

	sink, err := slssink.New(slssink.Options{Endpoint: endpoint.MustParse(env["slsEndpoint"]), Project: env["project"], Logstore: env["logstore"],
		Credentials: creds, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	f := finding.Finding{ScanID: "s", RuleID: finding.RuleUntrustedAccount, Status: finding.StatusPass, VpnConnectionID: emulator.DemoTrusted}
	if err := sink.Write(ctx, &f); err != nil {
		t.Fatal(err)
	}
	if d := sink.Close(ctx, &finding.ScanSummary{ScanID: "s", Complete: true}); !d.Delivered {
		t.Errorf("Log Service at %s: %+v", env["slsEndpoint"], d)
	}
}

func TestEmulateServesAnInventoryFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "inventory.json")
	if err := os.WriteFile(good, []byte(`{"AccountId":"1111222233334444","Regions":{"cn-beijing":[
		{"VpnConnectionId":"vco-bj0only0000001","Authorizations":[{"AliUid":1111222233334444,"BindUid":1999000011112222,
		 "BindProduct":"CEN","BindInstance":"cen-x0000000001","CreationTime":1767225600000}]}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startCommand(t, regexp.MustCompile(`(?m)^(\{.*\})$`), "emulate", "--inventory", good)
	var env map[string]string
	if err := json.Unmarshal([]byte(m[1]), &env); err != nil {
		t.Fatal(err)
	}
	if env["accountId"] != "1111222233334444" || env["FC_REGION"] != "cn-beijing" {
		t.Errorf("account %q region %q, want the file's", env["accountId"], env["FC_REGION"])
	}
	if _, ok := env["ACCOUNTS"]; ok {
		t.Errorf("an inventory file has no organisation, but ACCOUNTS=%s", env["ACCOUNTS"])
	}
	creds := scan.Credentials{AccessKeyID: env["ALIBABA_CLOUD_ACCESS_KEY_ID"], AccessKeySecret: env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
		SecurityToken: env["ALIBABA_CLOUD_SECURITY_TOKEN"]}
	src, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(env["VPC_ENDPOINT"])})(creds, "cn-beijing")
	if err != nil {
		t.Fatal(err)
	}
	page, err := src.ListAuthorizations(context.Background(), "cn-beijing", "vco-bj0only0000001", 1, 50)
	if err != nil || len(page.Authorizations) != 1 || page.Authorizations[0].BindUID != 1999000011112222 {
		t.Errorf("authorizations %+v, %v", page.Authorizations, err)
	}

	t.Run("bad file", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(`{"AccountId":"1","Regions":{"cn-beijing":[{"VpnConnectionId":"vpn-1"}]}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI(t, "emulate", "--inventory", bad)
		if code != 2 || !strings.Contains(errOut, "VpnConnectionId") {
			t.Errorf("exit %d, stderr %q; want 2 naming the bad field", code, errOut)
		}
	})
}

func TestSetupSLS(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		code, out, errOut := runCLI(t, "setup-sls")
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		for _, want := range []string{"vpnauthz-demo/findings", "ready", "vpn_connection_id", "findings_delivered"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("live, twice", func(t *testing.T) {
		c, err := emulator.Start(emulator.Options{Project: "audit", Logstore: "unused"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		for k, v := range c.Env() {
			t.Setenv(k, v)
		}
		t.Setenv("SLS_LOGSTORE", "vpn-findings") // not there yet: setup-sls creates it
		for i := range 2 {
			code, out, errOut := runCLI(t, "setup-sls", "--live")
			if code != 0 || !strings.Contains(out, "audit/vpn-findings") {
				t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, code, out, errOut)
			}
			idx, ok := c.SLS.Index("audit", "vpn-findings")
			if !ok || !strings.Contains(string(idx), "bind_instance") {
				t.Fatalf("run %d: index %s", i+1, idx)
			}
		}
	})

	t.Run("alert action policy", func(t *testing.T) {
		c, err := emulator.Start(emulator.Options{Project: "audit", Logstore: "vpn-findings"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		for k, v := range c.Env() {
			t.Setenv(k, v)
		}
		t.Setenv("SLS_ALERT_ACTION_POLICY_ID", "from-env")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"setup-sls", "--live"}, "from-env"},
			{[]string{"setup-sls", "--live", "--alert-action-policy", "from-flag"}, "from-flag"},
		} {
			code, out, errOut := runCLI(t, tc.args...)
			if code != 0 || !strings.Contains(out, "alert audit/vpn-findings-high-open: ready (action policy "+tc.want+")") ||
				!strings.Contains(out, "dashboard audit/vpn-findings-posture: ready") {
				t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, out, errOut)
			}
			alert, ok := c.SLS.Alert("audit", "vpn-findings-high-open")
			if !ok || !strings.Contains(string(alert), `"actionPolicyId":"`+tc.want+`"`) {
				t.Errorf("%v: stored alert %s", tc.args, alert)
			}
		}
	})
}
