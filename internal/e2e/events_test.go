package e2e

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/finding"
)

const (
	actAuthz = "DescribeVpnCrossAccountAuthorizations"
	actConns = "DescribeVpnConnections"
)

// TestSampleEvents drives the binary with every sample event of the
// repository and checks the answer, the calls made and what Log Service holds.
func TestSampleEvents(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())

	type want struct {
		answer   string   // "report", "http-report", "health", "ignored"
		trigger  string   // of a report
		conns    []string // connections scanned
		listed   []string // regions listed with DescribeVpnConnections
		reasonIn string   // text the ignore reason must hold
		// event makes the event to send instead of the sample as it is.
		event func(t *testing.T) []byte
	}
	all := emulator.DemoConnectionIDs()
	cases := map[string]want{
		"timer.json":                         {answer: "report", trigger: "timer", conns: all, listed: []string{"cn-hangzhou", "cn-shanghai"}},
		"timer-payload.json":                 {answer: "report", trigger: "timer", conns: []string{emulator.DemoPartner}},
		"http-post-scans.json":               {answer: "http-report", trigger: "http", conns: []string{emulator.DemoPartner}},
		"http-get-health.json":               {answer: "health"},
		"eventbridge-grant.json":             {answer: "report", trigger: "event", conns: []string{emulator.DemoPartner}},
		"eventbridge-revoke.json":            {answer: "report", trigger: "event", conns: []string{emulator.DemoRogue}},
		"eventbridge-modify-connection.json": {answer: "report", trigger: "event", conns: []string{emulator.DemoTrusted}},
		"eventbridge-create-without-id.json": {answer: "report", trigger: "event",
			conns: demoInRegion("cn-shanghai"), listed: []string{"cn-shanghai"}},
		"eventbridge-failed-call.json": {answer: "ignored", reasonIn: "Forbidden.RAM"},
		"eventbridge-unrelated.json":   {answer: "ignored", reasonIn: "CreateVpc"},
		// The trail logstore the sample names holds a grant on the partner
		// connection, a failed call and an unrelated one.
		"sls-trail.json": {answer: "report", trigger: "sls", conns: []string{emulator.DemoPartner},
			event: func(t *testing.T) []byte {
				failed := grant(emulator.DemoAccountID, "cn-hangzhou", emulator.DemoRogue)
				failed.errorCode = "Forbidden.RAM"
				return appendTrail(t, c, []trailRecord{
					grant(emulator.DemoAccountID, "cn-hangzhou", emulator.DemoPartner), failed,
					{event: "CreateVpc", account: emulator.DemoAccountID, region: "cn-hangzhou"},
				})
			}},
	}
	files, err := filepath.Glob(filepath.Join(moduleRoot, "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		w, ok := cases[name]
		if !ok {
			t.Errorf("sample event %s has no expectation in this test", name)
			continue
		}
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			c.VPC.ResetStats()
			putLogsBefore := c.SLS.Stats().PutLogsCalls
			start := time.Now()
			payload := readEvent(t, name)
			if w.event != nil {
				payload = w.event(t)
			}
			res := f.invoke(t, call{payload: payload})

			switch w.answer {
			case "health":
				h := asHTTP(t, res)
				checkHealth(t, h)
			case "ignored":
				checkIgnored(t, res, w.reasonIn)
			case "report", "http-report":
				var r report
				var body []byte
				if w.answer == "http-report" {
					h := asHTTP(t, res)
					if h.StatusCode != 200 {
						t.Fatalf("statusCode = %d, want 200: %s", h.StatusCode, h.Body)
					}
					body = []byte(h.Body)
					if err := json.Unmarshal(body, &r); err != nil {
						t.Fatalf("body is not a report: %v\n%s", err, h.Body)
					}
				} else {
					r = asReport(t, res)
					body = res.Response
					var keys map[string]json.RawMessage
					_ = json.Unmarshal(body, &keys)
					if _, has := keys["findings"]; has {
						t.Errorf("the %s report carries a findings list; the contract leaves it out", w.trigger)
					}
				}
				if r.Trigger != w.trigger || !r.Complete || !r.Delivery.Delivered || r.Delivery.Error != "" {
					t.Errorf("report trigger=%q complete=%v delivered=%v error=%q, want %s, complete, delivered",
						r.Trigger, r.Complete, r.Delivery.Delivered, r.Delivery.Error, w.trigger)
				}
				if r.Delivery.Sink != "sls" || r.Delivery.Project != c.Project || r.Delivery.Logstore != c.Logstore {
					t.Errorf("delivery = %+v, want sls %s/%s", r.Delivery, c.Project, c.Logstore)
				}
				if _, err := time.Parse(time.RFC3339, r.StartedAt); err != nil {
					t.Errorf("startedAt %q is not RFC 3339", r.StartedAt)
				}
				if r.Summary.Connections != len(w.conns) {
					t.Errorf("summary.connections = %d, want %d", r.Summary.Connections, len(w.conns))
				}
				stored := checkStoredMatchesReport(t, c, r)
				wantV := expectedVerdicts(w.conns...)
				if got := verdictsOf(t, stored); !maps.Equal(got, wantV) {
					t.Errorf("stored judgements:\n got %v\nwant %v", got, wantV)
				}
				if e := expectedCounts(wantV); r.Summary.Pass != e.Pass || r.Summary.Fail != e.Fail ||
					r.Summary.Error != e.Error || r.Summary.Suppressed != e.Suppressed {
					t.Errorf("summary %+v, want pass/fail/error/suppressed %d/%d/%d/%d", r.Summary, e.Pass, e.Fail, e.Error, e.Suppressed)
				}
				checkCalls(t, c, w.conns, w.listed, r)
				if w.answer == "http-report" {
					checkHTTPFindings(t, body, stored)
				}
				if name == "timer.json" {
					checkKnownFindings(t, c, stored, start)
				}
			}
			if w.answer == "health" || w.answer == "ignored" {
				if n := c.vpcCalls(); n != 0 {
					t.Errorf("%d VPC calls, want none", n)
				}
				if n := c.SLS.Stats().PutLogsCalls - putLogsBefore; n != 0 {
					t.Errorf("%d PutLogs calls, want none", n)
				}
			}
		})
	}
	if p := panics(append(f.stdout.Bytes(), f.stderr.Bytes()...)); len(p) > 0 {
		t.Errorf("the function's output shows a panic: %q", p)
	}
}

func checkHealth(t *testing.T, h httpResponse) {
	t.Helper()
	if h.StatusCode != 200 {
		t.Fatalf("statusCode = %d, want 200: %s", h.StatusCode, h.Body)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(h.Body), &body); err != nil {
		t.Fatalf("health body is not JSON: %v: %s", err, h.Body)
	}
	checkKeys(t, "health body", slices.Collect(maps.Keys(body)), []string{"status", "version"})
	if body["status"] != "ok" {
		t.Errorf("status = %v, want ok", body["status"])
	}
	if v, _ := body["version"].(string); v == "" {
		t.Errorf("version = %v, want a non-empty string", body["version"])
	}
}

func checkIgnored(t *testing.T, res fcResult, reasonIn string) {
	t.Helper()
	if res.Error != nil {
		t.Fatalf("invocation failed: %s: %s", res.Error.ErrorType, res.Error.ErrorMessage)
	}
	var body map[string]any
	if err := json.Unmarshal(res.Response, &body); err != nil {
		t.Fatalf("answer is not JSON: %s", res.Response)
	}
	checkKeys(t, "ignored result", slices.Collect(maps.Keys(body)), []string{"ignored", "reason"})
	reason, _ := body["reason"].(string)
	if body["ignored"] != true || !strings.Contains(reason, reasonIn) {
		t.Errorf("answer %s, want ignored with a reason naming %s", res.Response, reasonIn)
	}
}

// checkCalls checks that the scan read exactly the given connections and
// listed exactly the given regions.
func checkCalls(t *testing.T, c *cloud, conns, listed []string, r report) {
	t.Helper()
	st := c.VPC.Stats()
	wantRegions := map[string]bool{}
	for _, conn := range conns {
		wantRegions[demoRegion[conn]] = true
	}
	wantListed := map[string]bool{}
	for _, region := range listed {
		wantListed[region] = true
	}
	total := 0
	for k, n := range st.ByKey {
		total += n.Calls
		switch k.Action {
		case actAuthz:
			if !wantRegions[k.Region] {
				t.Errorf("%d %s calls in %s, a region the scan does not cover", n.Calls, k.Action, k.Region)
			}
		case actConns:
			if !wantListed[k.Region] {
				t.Errorf("%d %s calls in %s; the scan should not list that region", n.Calls, k.Action, k.Region)
			}
		default:
			t.Errorf("unexpected call %s in %s", k.Action, k.Region)
		}
	}
	if got := st.Action(actAuthz).Calls; got != len(conns) {
		t.Errorf("%d %s calls, want one per connection scanned (%d)", got, actAuthz, len(conns))
	}
	if total != r.Summary.APICalls {
		t.Errorf("the VPC API received %d calls, the report counts %d", total, r.Summary.APICalls)
	}
}

// checkHTTPFindings checks that the findings of a POST /scans body have
// exactly the keys of the finding log and equal the stored ones.
func checkHTTPFindings(t *testing.T, body []byte, stored []map[string]string) {
	t.Helper()
	var b struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("body: %v", err)
	}
	if len(b.Findings) != len(stored) {
		t.Errorf("body has %d findings, Log Service %d", len(b.Findings), len(stored))
	}
	byUID := map[string]map[string]string{}
	for _, s := range stored {
		byUID[s["finding_uid"]] = s
	}
	for _, f := range b.Findings {
		checkKeys(t, "body finding", slices.Collect(maps.Keys(f)), findingKeys)
		uid, _ := f["finding_uid"].(string)
		s, ok := byUID[uid]
		if !ok {
			t.Errorf("body finding %s is not stored", uid)
			continue
		}
		for k, v := range f {
			if sv, isString := v.(string); !isString || sv != s[k] {
				t.Errorf("finding %s: body %s = %#v, stored %q", uid, k, v, s[k])
			}
		}
	}
}

// checkKnownFindings checks some findings of a full demo scan field by field.
func checkKnownFindings(t *testing.T, c *cloud, stored []map[string]string, start time.Time) {
	t.Helper()
	find := func(conn, rule string) map[string]string {
		for _, f := range stored {
			if f["vpn_connection_id"] == conn && f["rule_id"] == rule {
				return f
			}
		}
		t.Fatalf("no stored finding for %s %s", conn, rule)
		return nil
	}
	owner := emulator.DemoAccountID
	expires := c.Now.UTC().AddDate(0, 0, 90).Format(time.DateOnly)
	cases := []struct {
		conn, rule string
		want       map[string]string
		ageDays    int // of the authorization; -1: none
		detailHas  []string
		remedy     bool
	}{
		{emulator.DemoPartner, ruleAccount, map[string]string{
			"status": suppressed, "severity": "high", "region": "cn-hangzhou", "owner_account_id": owner,
			"bind_uid": emulator.DemoPartnerAccount, "bind_product": "CEN", "bind_instance": emulator.DemoPartnerCEN,
			"exception_reason": emulator.DemoExceptionReason, "exception_expires": expires, "authorization_age_days": "30",
		}, 30, []string{emulator.DemoPartnerAccount, emulator.DemoExceptionReason}, true},
		{emulator.DemoRogue, ruleAccount, map[string]string{
			"status": fail, "severity": "high", "region": "cn-shanghai", "owner_account_id": owner,
			"bind_uid": emulator.DemoRogueAccount, "bind_product": "CEN", "bind_instance": emulator.DemoUnknownCEN,
			"exception_reason": "", "exception_expires": "", "authorization_age_days": "12",
		}, 12, []string{emulator.DemoRogueAccount}, true},
		{emulator.DemoRogue, ruleCEN, map[string]string{
			"status": fail, "severity": "medium", "bind_instance": emulator.DemoUnknownCEN,
		}, 12, []string{emulator.DemoUnknownCEN}, true},
		{emulator.DemoDenied, ruleRead, map[string]string{
			"status": errored, "region": "ap-southeast-1", "owner_account_id": owner,
			"bind_uid": "", "bind_product": "", "bind_instance": "", "authorization_created_at": "",
			"authorization_age_days": "", "exception_reason": "",
		}, -1, []string{"Forbidden.RAM"}, false},
		{emulator.DemoStale, ruleStale, map[string]string{
			"status": fail, "severity": "low", "region": "cn-shanghai", "owner_account_id": owner,
			"bind_uid": emulator.DemoTrustedAccount, "bind_instance": emulator.DemoTrustedCEN, "authorization_age_days": "900",
		}, 900, []string{"900", "365"}, true},
	}
	for _, tc := range cases {
		f := find(tc.conn, tc.rule)
		for k, v := range tc.want {
			if f[k] != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.conn, tc.rule, k, f[k], v)
			}
		}
		if f["title"] == "" {
			t.Errorf("%s %s: empty title", tc.conn, tc.rule)
		}
		if f["trigger"] != finding.TriggerTimer {
			t.Errorf("%s %s: trigger %q", tc.conn, tc.rule, f["trigger"])
		}
		for _, s := range tc.detailHas {
			if !strings.Contains(f["status_detail"], s) {
				t.Errorf("%s %s: status_detail %q does not mention %s", tc.conn, tc.rule, f["status_detail"], s)
			}
		}
		if uid := findingUID(tc.rule, f["owner_account_id"], f["region"], tc.conn, f["bind_uid"], f["bind_instance"]); f["finding_uid"] != uid {
			t.Errorf("%s %s: finding_uid %s, want %s (SHA-256 of rule|owner|region|connection|bind uid|bind instance)", tc.conn, tc.rule, f["finding_uid"], uid)
		}
		observed, err := time.Parse(time.RFC3339, f["observed_at"])
		if err != nil || observed.Before(start.Add(-time.Second)) || observed.After(time.Now().Add(time.Second)) {
			t.Errorf("%s %s: observed_at %q is not the scan's time (RFC 3339)", tc.conn, tc.rule, f["observed_at"])
		}
		if tc.ageDays >= 0 {
			created, err := time.Parse(time.RFC3339, f["authorization_created_at"])
			wantCreated := c.Now.Add(-time.Duration(tc.ageDays) * 24 * time.Hour)
			if err != nil || !strings.HasSuffix(f["authorization_created_at"], "Z") || created.Sub(wantCreated).Abs() > 2*time.Second {
				t.Errorf("%s %s: authorization_created_at %q, want %s in UTC", tc.conn, tc.rule, f["authorization_created_at"], wantCreated.UTC().Format(time.RFC3339))
			}
		}
		if tc.remedy {
			// The API wants the CEN's owner: the account the connection is bound to.
			for _, s := range []string{"RevokeInstanceFromTransitRouter", f["bind_instance"], f["bind_uid"], tc.conn, "VPN", f["region"]} {
				if !strings.Contains(f["remediation"], s) {
					t.Errorf("%s %s: remediation %q does not name %s", tc.conn, tc.rule, f["remediation"], s)
				}
			}
		}
		if _, err := strconv.Atoi(f["authorization_age_days"]); tc.ageDays >= 0 && err != nil {
			t.Errorf("%s %s: authorization_age_days %q is not a number", tc.conn, tc.rule, f["authorization_age_days"])
		}
	}
}
