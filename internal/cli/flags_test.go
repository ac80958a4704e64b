package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/finding"
)

// jsonlFindings decodes invoke --format jsonl, checking that every line has
// exactly the Log Service keys, in schema order, every value a string.
func jsonlFindings(t *testing.T, out string) []map[string]string {
	t.Helper()
	var all []map[string]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		if _, err := dec.Token(); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		var keys []string
		m := map[string]string{}
		for dec.More() {
			k, _ := dec.Token()
			var v string
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("line %q: value of %v is not a string: %v", line, k, err)
			}
			keys = append(keys, k.(string))
			m[k.(string)] = v
		}
		if !slices.Equal(keys, finding.Keys) {
			t.Fatalf("keys %v, want exactly %v", keys, finding.Keys)
		}
		all = append(all, m)
	}
	return all
}

// demoSecondScanFindings is the number of findings of the demo's second
// scan (the one the machine-readable formats print): the management account
// and the hub member after emulator.ChangeDemo, and one ERROR for the member
// whose role refuses AssumeRole.
const demoSecondScanFindings = 34

func TestInvokeFormats(t *testing.T) {
	t.Run("jsonl", func(t *testing.T) {
		code, out, errOut := runCLI(t, "invoke", "--format", "jsonl")
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		// The demo's second scan: the organisation after the changes.
		fs := jsonlFindings(t, out)
		if len(fs) != demoSecondScanFindings {
			t.Errorf("%d findings, want %d", len(fs), demoSecondScanFindings)
		}
		if fs[0]["status"] != finding.StatusFail {
			t.Errorf("first finding %v, want a FAIL first", fs[0])
		}
	})
	t.Run("csv", func(t *testing.T) {
		code, out, errOut := runCLI(t, "invoke", "--format", "csv")
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != demoSecondScanFindings+1 || !slices.Equal(records[0], finding.Keys) {
			t.Fatalf("%d records, header %v", len(records), records[0])
		}
		for _, r := range records[1:] {
			if len(r) != len(finding.Keys) || r[slices.Index(finding.Keys, "trigger")] != "cli" {
				t.Errorf("row %v", r)
			}
		}
	})
	t.Run("ocsf", func(t *testing.T) {
		code, out, errOut := runCLI(t, "invoke", "--format", "ocsf")
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		type ocsf struct {
			ClassUID    int    `json:"class_uid"`
			CategoryUID int    `json:"category_uid"`
			ActivityID  int    `json:"activity_id"`
			TypeUID     int    `json:"type_uid"`
			SeverityID  int    `json:"severity_id"`
			StatusID    int    `json:"status_id"`
			StatusCode  string `json:"status_code"`
			Time        int64  `json:"time"`
			FindingInfo struct {
				UID   string   `json:"uid"`
				Types []string `json:"types"`
			} `json:"finding_info"`
			Compliance struct {
				StatusID int    `json:"status_id"`
				Status   string `json:"status"`
				Control  string `json:"control"`
			} `json:"compliance"`
			Resources []struct {
				UID    string `json:"uid"`
				Region string `json:"region"`
			} `json:"resources"`
			Unmapped map[string]string `json:"unmapped"`
		}
		// compliance status_id, then the status_ids the finding may have:
		// a PASS of a resolved finding is Resolved (4).
		want := map[string][]int{"PASS": {1, 1, 4}, "FAIL": {3, 1}, "SUPPRESSED": {3, 3}, "ERROR": {2, 1}}
		n := 0
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			n++
			var e ocsf
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			w, ok := want[e.StatusCode]
			if e.ClassUID != 2003 || e.CategoryUID != 2 || e.ActivityID < 1 || e.ActivityID > 3 || e.TypeUID != 200300+e.ActivityID || !ok ||
				e.Compliance.StatusID != w[0] || !slices.Contains(w[1:], e.StatusID) || e.SeverityID < 2 || e.Time == 0 ||
				len(e.FindingInfo.UID) != 32 || len(e.Resources) != 1 ||
				!strings.HasPrefix(e.Resources[0].UID, "vco-") && !(e.StatusCode == "ERROR" && e.Resources[0].UID == "*") ||
				e.Compliance.Control == "" || e.Unmapped["scan_id"] == "" {
				t.Errorf("OCSF finding %s", sc.Text())
			}
		}
		if n != demoSecondScanFindings {
			t.Errorf("%d OCSF findings, want %d", n, demoSecondScanFindings)
		}
	})
	t.Run("no findings to print", func(t *testing.T) {
		code, out, errOut := runCLI(t, "invoke", "--format", "jsonl", "--event", filepath.Join(eventsDir(t), "eventbridge-unrelated.json"))
		if code != 0 || out != "" || !strings.Contains(errOut, "holds no findings") || !strings.Contains(errOut, `"ignored":true`) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}

func TestInvokeRecordsTheEventsTrigger(t *testing.T) {
	for file, want := range map[string]string{
		"":                       "cli",
		"timer.json":             "timer",
		"http-post-scans.json":   "http",
		"eventbridge-grant.json": "event",
	} {
		args := []string{"invoke", "--format", "jsonl", "--dry-run"}
		if file != "" {
			args = append(args, "--event", filepath.Join(eventsDir(t), file))
		}
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d, stderr:\n%s", file, code, errOut)
		}
		for _, f := range jsonlFindings(t, out) {
			if f["trigger"] != want {
				t.Errorf("%s: trigger %q, want %q", file, f["trigger"], want)
			}
		}
	}
}

func TestFailOn(t *testing.T) {
	partner := filepath.Join(eventsDir(t), "timer-payload.json") // SUPPRESSED high findings only
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--fail-on", "high"}, 3},   // the rogue connection's untrusted account
		{[]string{"--fail-on", "medium"}, 3}, // and its CEN
		{[]string{"--fail-on", "low", "--event", partner}, 0},
		{nil, 0},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, append([]string{"invoke", "--dry-run"}, tt.args...)...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d; stderr:\n%s", tt.args, code, tt.code, errOut)
		}
		if tableRows(t, out) == nil {
			t.Errorf("%v: no findings printed", tt.args)
		}
		if tt.code == 3 && !strings.Contains(errOut, "--fail-on") {
			t.Errorf("%v: stderr does not say why: %s", tt.args, errOut)
		}
	}
	if !anyFailAtOrAbove([]finding.Finding{{Status: "FAIL", Severity: "low"}}, severityRank["low"]) ||
		anyFailAtOrAbove([]finding.Finding{{Status: "FAIL", Severity: "low"}}, severityRank["medium"]) ||
		anyFailAtOrAbove([]finding.Finding{{Status: "SUPPRESSED", Severity: "high"}, {Status: "ERROR", Severity: "high"}}, severityRank["low"]) {
		t.Error("anyFailAtOrAbove counts the wrong findings")
	}
}

func TestBadFlagValues(t *testing.T) {
	tests := []struct {
		args    []string
		mention []string
	}{
		{[]string{"invoke", "--format", "xml"}, []string{"-format", `"xml"`, "table, json, jsonl, csv or ocsf"}},
		{[]string{"invoke", "--fail-on", "critical"}, []string{"-fail-on", `"critical"`, "low, medium or high"}},
		{[]string{"invoke", "--fail-on", "HIGH"}, []string{"-fail-on", `"HIGH"`}},
		{[]string{"invoke", "--json", "--format", "csv"}, []string{"--json", "--format csv"}},
		{[]string{"invoke", "--dry-run=maybe"}, []string{"-dry-run"}},
		{[]string{"serve", "--dry-run=2"}, []string{"-dry-run"}},
		{[]string{"emulate", "--format", "yaml"}, []string{"-format", `"yaml"`, "json or env"}},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, tt.args...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want 2 and nothing on stdout", tt.args, code, out)
		}
		for _, m := range tt.mention {
			if !strings.Contains(errOut, m) {
				t.Errorf("%v: stderr does not mention %s:\n%s", tt.args, m, errOut)
			}
		}
	}
}

func TestDryRunNeedsNoLogService(t *testing.T) {
	c, err := emulator.Start(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for k, v := range c.Env() {
		t.Setenv(k, v)
	}
	setDemoTrust(t)
	t.Setenv("SCAN_TARGETS", "cn-shanghai:*")
	t.Setenv("SLS_PROJECT", "")
	t.Setenv("SLS_LOGSTORE", "")

	code, out, errOut := runCLI(t, "invoke", "--live", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	checkVerdicts(t, tableRows(t, out), []string{emulator.DemoStale, emulator.DemoRogue})
	if !strings.Contains(out, "delivery:  none") {
		t.Errorf("report does not say nothing was delivered:\n%s", out)
	}
	if n := len(c.SLS.LogsByTopic(c.Project, c.Logstore, finding.TopicFinding)); n != 0 {
		t.Errorf("%d findings delivered by a dry run", n)
	}
	code, _, errOut = runCLI(t, "invoke", "--live")
	if code != 1 || !strings.Contains(errOut, "SLS_PROJECT") {
		t.Errorf("without --dry-run: exit %d, stderr %q; want 1 naming SLS_PROJECT", code, errOut)
	}
}

func TestServeDryRunAndHead(t *testing.T) {
	m := startCommand(t, regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`), "serve", "--addr", "127.0.0.1:0", "--dry-run", "--log-level", "error")
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post(m[1]+"/scans", "application/json", strings.NewReader(`{"targets":["cn-shanghai:`+emulator.DemoRogue+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rep struct {
		Delivery struct {
			Sink      string
			Delivered bool
		}
		Findings []finding.Finding
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &rep) != nil || rep.Delivery.Sink != "none" || len(rep.Findings) != 4 {
		t.Errorf("POST /scans under --dry-run = %d %s", resp.StatusCode, body)
	}

	req, _ := http.NewRequest(http.MethodHead, m[1]+"/health", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("HEAD /health = %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestEmulateFormatEnv(t *testing.T) {
	m := startCommand(t, regexp.MustCompile(`(?s)^((?:export [A-Z_]+=[^\n]*\n){10,})`), "emulate", "--format", "env")
	lines := m[1]
	// A shell reads the lines back to the same values.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no POSIX shell: %v", err)
	}
	out, err := exec.Command(sh, "-c", lines+`printf '%s\n' "$SCAN_TARGETS" "$VPC_ENDPOINT" "$ALIBABA_CLOUD_SECURITY_TOKEN" "$FC_ACCOUNT_ID"`).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, lines)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != 4 || got[0] != "ap-southeast-1:* cn-hangzhou:* cn-shanghai:*" || !strings.HasPrefix(got[1], "http://127.0.0.1:") ||
		got[2] == "" || got[3] == "" {
		t.Fatalf("shell read %q from:\n%s", got, lines)
	}
	for _, k := range []string{"VPC_ENDPOINT", "SLS_ENDPOINT", "SLS_PROJECT", "SLS_LOGSTORE", "ALIBABA_CLOUD_ACCESS_KEY_ID",
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "FC_ACCOUNT_ID", "FC_REGION", "SCAN_TARGETS",
		"STS_ENDPOINT", "RESOURCEMANAGER_ENDPOINT", "TABLESTORE_ENDPOINT", "STATE_STORE", "ACCOUNTS", "MEMBER_ROLE_EXTERNAL_ID"} {
		if !strings.Contains(lines, "export "+k+"=") {
			t.Errorf("no export of %s:\n%s", k, lines)
		}
	}
	// And vpnauthz pointed at it scans the whole demo inventory.
	for _, line := range strings.Split(strings.TrimSpace(lines), "\n") {
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if strings.HasPrefix(v, "'") {
			v = strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'")
		}
		t.Setenv(k, v)
	}
	setDemoTrust(t)
	code, stdout, errOut := runCLI(t, "invoke", "--live", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	checkVerdicts(t, tableRows(t, stdout), emulator.DemoConnectionIDs())
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"cn-hangzhou":        "cn-hangzhou",
		"http://127.0.0.1:1": "http://127.0.0.1:1",
		"a b":                "'a b'",
		"it's":               `'it'\''s'`,
		"":                   "''",
		"$HOME":              "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// setDemoTrust sets the demo's trust settings and policy, not its targets.
func setDemoTrust(t *testing.T) {
	t.Helper()
	policy, err := emulator.WriteDemoPolicy(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range emulator.DemoEnv(policy) {
		if k != "SCAN_TARGETS" {
			t.Setenv(k, v)
		}
	}
}
