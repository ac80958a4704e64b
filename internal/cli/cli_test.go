package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/testutil"
	"vpnauthz/internal/version"
)

// runCLI runs the command line as a user would and returns what they see.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// row is one line of the findings table.
type row struct {
	status, severity, rule, account, region, connection, bindUID, bindInstance, detail string
}

// tableRows parses the first findings table: eight one-word columns, then
// the detail.
func tableRows(t *testing.T, out string) []row {
	t.Helper()
	tables := allTables(t, out)
	if len(tables) == 0 {
		t.Fatalf("no findings table in:\n%s", out)
	}
	return tables[0]
}

// allTables parses every findings table of out, in order.
func allTables(t *testing.T, out string) [][]row {
	t.Helper()
	var tables [][]row
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "STATUS") {
			inTable = true
			tables = append(tables, []row{})
			continue
		}
		if !inTable {
			continue
		}
		if strings.TrimSpace(line) == "" {
			inTable = false
			continue
		}
		f := strings.Fields(line)
		if len(f) < 9 {
			t.Fatalf("table line %q has %d columns", line, len(f))
		}
		tables[len(tables)-1] = append(tables[len(tables)-1], row{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], strings.Join(f[8:], " ")})
	}
	return tables
}

// ofAccount keeps the rows of one account.
func ofAccount(rows []row, account string) []row {
	var out []row
	for _, r := range rows {
		if r.account == account {
			out = append(out, r)
		}
	}
	return out
}

// verdicts maps "connection rule" to the statuses of its rows.
func verdicts(rows []row) map[string][]string {
	m := map[string][]string{}
	for _, r := range rows {
		k := r.connection + " " + r.rule
		m[k] = append(m[k], r.status)
	}
	return m
}

// demoNotPass are the demo's verdicts other than PASS; every other finding of
// the demo is a PASS.
var demoNotPass = map[string]string{
	emulator.DemoPartner + " untrusted-account":  "SUPPRESSED",
	emulator.DemoPartner + " untrusted-cen":      "SUPPRESSED",
	emulator.DemoRogue + " untrusted-account":    "FAIL",
	emulator.DemoRogue + " untrusted-cen":        "FAIL",
	emulator.DemoStale + " stale-authorization":  "FAIL",
	emulator.DemoDenied + " read-authorizations": "ERROR",
}

// checkVerdicts checks every row of the demo account against the demo's
// verdicts and that the connections listed are exactly want; the rows of
// the organisation's members are checked by the tests about them.
func checkVerdicts(t *testing.T, rows []row, want []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range ofAccount(rows, emulator.DemoAccountID) {
		seen[r.connection] = true
		wantStatus, ok := demoNotPass[r.connection+" "+r.rule]
		if !ok {
			wantStatus = "PASS"
		}
		if r.status != wantStatus {
			t.Errorf("%s %s: status %s, want %s (detail %q)", r.connection, r.rule, r.status, wantStatus, r.detail)
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Errorf("no finding for %s", id)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("findings for %d connections %v, want %v", len(seen), seen, want)
	}
}

func TestInvokeDemoPrintsTheFindings(t *testing.T) {
	code, out, errOut := runCLI(t, "invoke")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	// The first scan's table: the demo account's findings as they were
	// before the demo had an organisation and a lifecycle.
	all := tableRows(t, out)
	rows := ofAccount(all, emulator.DemoAccountID)
	checkVerdicts(t, rows, emulator.DemoConnectionIDs())
	if len(rows) != 25 {
		t.Errorf("%d findings, want 25 (6 connections x 4 rules + 1 ERROR)", len(rows))
	}
	v := verdicts(rows)
	for key := range demoNotPass {
		if len(v[key]) != 1 {
			t.Errorf("%s: %d findings, want 1", key, len(v[key]))
		}
	}
	// What needs attention comes first.
	order := map[string]int{"FAIL": 0, "ERROR": 1, "SUPPRESSED": 2, "PASS": 3}
	for i := 1; i < len(rows); i++ {
		if order[rows[i-1].status] > order[rows[i].status] {
			t.Errorf("row %d (%s) after row %d (%s): FAIL and ERROR must come first", i, rows[i].status, i-1, rows[i-1].status)
		}
	}
	for _, r := range rows {
		switch {
		case r.connection == emulator.DemoDenied && !strings.Contains(r.detail, "Forbidden.RAM"):
			t.Errorf("ERROR detail %q does not name Forbidden.RAM", r.detail)
		case r.connection == emulator.DemoRogue && (r.bindUID != emulator.DemoRogueAccount || r.bindInstance != emulator.DemoUnknownCEN):
			t.Errorf("rogue row binds %s %s", r.bindUID, r.bindInstance)
		case r.status == "SUPPRESSED" && !strings.Contains(r.detail, emulator.DemoExceptionReason):
			t.Errorf("SUPPRESSED detail %q does not give the exception's reason", r.detail)
		}
	}
	// The first report counts what the first table shows.
	n := map[string]int{}
	for _, r := range all {
		n[r.status]++
	}
	first, _, _ := strings.Cut(out, "Between the scans")
	wantSummary := fmt.Sprintf("%d fail, %d error, %d suppressed, %d pass", n["FAIL"], n["ERROR"], n["SUPPRESSED"], n["PASS"])
	for _, want := range []string{"First scan:", "delivered: true", wantSummary, "complete:  true"} {
		if !strings.Contains(first, want) {
			t.Errorf("first scan's report lacks %q:\n%s", want, first)
		}
	}
	if !strings.Contains(errOut, "emulated demo cloud") {
		t.Errorf("stderr does not say where it ran:\n%s", errOut)
	}
}

func TestInvokeJSONPrintsTheRawResponse(t *testing.T) {
	// The demo's machine-readable output is its second scan's: its findings
	// (jsonl) and its report (json) agree.
	code, out, errOut := runCLI(t, "invoke", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("jsonl: exit %d, stderr:\n%s", code, errOut)
	}
	n := map[string]int{}
	conns := map[string]bool{}
	for _, f := range jsonlFindings(t, out) {
		n[f["status"]]++
		if f["vpn_connection_id"] != "*" {
			conns[f["owner_account_id"]+"/"+f["region"]+"/"+f["vpn_connection_id"]] = true
		}
	}
	if !strings.Contains(errOut, "the output is the second scan's") || !strings.Contains(errOut, "Between the scans") {
		t.Errorf("stderr does not say the output is the second scan's:\n%s", errOut)
	}

	code, out, errOut = runCLI(t, "invoke", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var report struct {
		ScanID   string `json:"scanId"`
		Complete bool   `json:"complete"`
		Summary  struct {
			Connections, Fail, Error, Suppressed, Pass int
		} `json:"summary"`
		Delivery struct {
			Delivered bool   `json:"delivered"`
			Project   string `json:"project"`
			Logstore  string `json:"logstore"`
		} `json:"delivery"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	if report.ScanID == "" || !report.Complete || !report.Delivery.Delivered ||
		report.Delivery.Project != emulator.DefaultProject || report.Delivery.Logstore != emulator.DefaultLogstore {
		t.Errorf("report = %+v", report)
	}
	// The second scan: the exception has expired (no SUPPRESSED), the new
	// grant fails, the revoked one is gone.
	if s := report.Summary; s.Connections != len(conns) || s.Fail != n["FAIL"] || s.Error != n["ERROR"] || s.Suppressed != 0 || n["SUPPRESSED"] != 0 ||
		s.Pass != n["PASS"] || s.Fail < 5 {
		t.Errorf("summary = %+v, want the jsonl findings' counts %v on %d connections, at least 5 FAIL and no SUPPRESSED", s, n, len(conns))
	}
}

// eventsDir holds the repository's sample events.
func eventsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "events"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInvokeEachKindOfEvent(t *testing.T) {
	tests := []struct {
		file        string
		wantCode    int
		connections []string // the findings table lists exactly these
		wantOut     []string
	}{
		{file: "timer.json", connections: emulator.DemoConnectionIDs(), wantOut: []string{"delivered: true"}},
		{file: "timer-payload.json", connections: []string{emulator.DemoPartner}, wantOut: []string{"delivered: true"}},
		{file: "http-post-scans.json", connections: []string{emulator.DemoPartner}, wantOut: []string{"HTTP 200", "delivered: true"}},
		{file: "http-get-health.json", wantOut: []string{"HTTP 200", `"status": "ok"`}},
		{file: "eventbridge-grant.json", connections: []string{emulator.DemoPartner}},
		{file: "eventbridge-modify-connection.json", connections: []string{emulator.DemoTrusted}},
		{file: "eventbridge-revoke.json", connections: []string{emulator.DemoRogue}},
		{file: "eventbridge-create-without-id.json", connections: []string{emulator.DemoStale, emulator.DemoRogue}},
		{file: "eventbridge-failed-call.json", wantOut: []string{`"ignored": true`}},
		{file: "eventbridge-unrelated.json", wantOut: []string{`"ignored": true`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			code, out, errOut := runCLI(t, "invoke", "--event", filepath.Join(eventsDir(t), tt.file))
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nstdout:\n%s", code, tt.wantCode, errOut, out)
			}
			if tt.connections != nil {
				checkVerdicts(t, tableRows(t, out), tt.connections)
			} else if strings.Contains(out, "STATUS") {
				t.Errorf("a findings table for an event that scans nothing:\n%s", out)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestInvokeRejectsBadEvents(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		wantCode   int
		wantErr    string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), 2, "nope.json"},
		{"not JSON", write("text.json", "triggerTime: now"), 2, "not a JSON document"},
		{"unknown event", write("unknown.json", `{"hello":"world"}`), 1, "InvalidEvent"},
		{"bad timer payload", write("payload.json", `{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"x","payload":"{\"targetz\":[]}"}`), 1, "InvalidPayload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "invoke", "--event", tt.path)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d naming %q", code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestInvokeLiveUsesTheEnvironment(t *testing.T) {
	// A "live" account that happens to be the emulator: the configuration
	// comes from the environment and the credentials from the standard chain.
	c, err := emulator.Start(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	policy, err := emulator.WriteDemoPolicy(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Env() {
		t.Setenv(k, v)
	}
	for k, v := range emulator.DemoEnv(policy) {
		t.Setenv(k, v)
	}
	t.Setenv("SCAN_TARGETS", "cn-shanghai:*")

	code, out, errOut := runCLI(t, "invoke", "--live")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	checkVerdicts(t, tableRows(t, out), []string{emulator.DemoStale, emulator.DemoRogue})
	if got := len(c.SLS.LogsByTopic(c.Project, c.Logstore, "vpnauthz-finding")); got != 8 {
		t.Errorf("%d findings delivered to Log Service, want 8", got)
	}

	t.Run("invalid configuration", func(t *testing.T) {
		t.Setenv("SCAN_TARGETS", "cn-shanghai")
		code, _, errOut := runCLI(t, "invoke", "--live")
		if code != 1 || !strings.Contains(errOut, "SCAN_TARGETS") {
			t.Errorf("exit %d, stderr %q; want 1 naming SCAN_TARGETS", code, errOut)
		}
	})
}

func TestHelpDescribesEachCommand(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"invoke", []string{"Usage: vpnauthz invoke", "--event", "--live", "--json", "demo", "Exit status", "second scan", "GetCallerIdentity"}},
		{"serve", []string{"Usage: vpnauthz serve", "--addr", "HTTP trigger", "SIGTERM"}},
		{"emulate", []string{"Usage: vpnauthz emulate", "--inventory", "VpnConnectionId", "JSON"}},
		{"setup-sls", []string{"Usage: vpnauthz setup-sls", "--live", "field index", "logstore"}},
		{"setup-state", []string{"Usage: vpnauthz setup-state", "--live", "STATE_STORE", "TABLESTORE_ENDPOINT", "400 days"}},
		{"version", []string{"Usage: vpnauthz version", "version"}},
	}
	for _, tt := range tests {
		for _, flag := range []string{"--help", "-h"} {
			t.Run(tt.cmd+flag, func(t *testing.T) {
				code, out, errOut := runCLI(t, tt.cmd, flag)
				if code != 0 {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("help lacks %q:\n%s", w, out)
					}
				}
			})
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no command", nil, "Commands:"},
		{"unknown command", []string{"scan"}, `unknown command "scan"`},
		{"unknown flag", []string{"invoke", "--bogus"}, "flag provided but not defined: -bogus"},
		{"stray argument", []string{"invoke", "now"}, `unexpected argument "now"`},
		{"bad timeout", []string{"invoke", "--timeout", "-1s"}, "--timeout"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, "want debug, info, warn or error"},
		{"emulate off loopback", []string{"emulate", "--addr", "0.0.0.0:0"}, "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing on a usage error", out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !regexp.MustCompile(`^vpnauthz \S+\n$`).MatchString(out) {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	old := version.Release
	version.Release = "v1.2.3"
	t.Cleanup(func() { version.Release = old })
	if _, out, _ := runCLI(t, "version"); out != "vpnauthz v1.2.3\n" {
		t.Errorf("stdout %q, want the version set at build time", out)
	}
}

// startCommand runs a long-running command until the test ends, and returns
// the first stdout line matching re once it appears.
func startCommand(t *testing.T, re *regexp.Regexp, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testutil.Buffer{}, &testutil.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%v ended with exit %d; stderr:\n%s", args, code, stderr)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("%v did not stop on cancel", args)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m
		}
		select {
		case code := <-done:
			t.Fatalf("%v ended early with exit %d; stderr:\n%s", args, code, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%v printed no line matching %s; stdout:\n%s\nstderr:\n%s", args, re, stdout, stderr)
	return nil
}

func TestNonPositiveTimeoutIsAUsageError(t *testing.T) {
	for _, cmd := range []string{"invoke", "serve"} {
		code, _, errOut := runCLI(t, cmd, "--timeout", "0s")
		if code != 2 || !strings.Contains(errOut, "vpnauthz "+cmd+": --timeout 0s: want a positive duration") {
			t.Errorf("%s --timeout 0s: exit %d, stderr %q", cmd, code, errOut)
		}
	}
}

func TestLiveNeedsARegion(t *testing.T) {
	t.Setenv("FC_REGION", "")
	t.Setenv("ALIBABA_CLOUD_REGION_ID", "")
	t.Setenv("SLS_ENDPOINT", "")
	code, _, errOut := runCLI(t, "invoke", "--live")
	if code != 1 || !strings.Contains(errOut, "FC_REGION") {
		t.Errorf("exit %d, stderr %q; want 1 asking for FC_REGION", code, errOut)
	}
}
