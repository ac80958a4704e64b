package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/vpcemu"
)

// TestConcurrentCredentials runs invocations at once with different
// credentials: each scan signs with its own invocation's key, and an
// invocation whose key the VPC API does not know gets ERROR findings while
// the others stay clean.
func TestConcurrentCredentials(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())
	c.VPC.SetLatency(100 * time.Millisecond) // keeps the scans in flight together

	a, b := c.addKey(), c.addKey()
	unknown := newSTSCredential()
	c.SLS.Credentials().Add(unknown) // Log Service takes its findings; the VPC API does not know it

	// Every demo connection the API can read, named one by one.
	var targets []string
	for _, conn := range emulator.DemoConnectionIDs() {
		if conn != emulator.DemoDenied {
			targets = append(targets, demoRegion[conn]+":"+conn)
		}
	}
	payload, _ := json.Marshal(map[string]any{"triggerTime": "2026-05-01T02:00:00Z", "triggerName": "daily-scan",
		"payload": mustJSON(t, map[string]any{"targets": targets})})

	keys := []cred.Credential{a, b, unknown}
	reports := make([]report, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			res, err := f.tryInvoke(call{payload: payload, key: &k})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Error != nil {
				t.Errorf("invocation with %s failed: %s: %s", k.AccessKeyID, res.Error.ErrorType, res.Error.ErrorMessage)
				return
			}
			_ = json.Unmarshal(res.Response, &reports[i])
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	byKey := c.VPC.StatsByAccessKey()
	wantV := expectedVerdicts(targetConns(targets)...)
	for i, k := range keys {
		r := reports[i]
		got := byKey[k.AccessKeyID]
		if got.Calls == 0 || got.Calls != r.Summary.APICalls {
			t.Errorf("key %s signed %d VPC calls, its scan made %d", k.AccessKeyID, got.Calls, r.Summary.APICalls)
		}
		stored := checkStoredMatchesReport(t, c, r)
		if k == unknown {
			if r.Summary.Error != len(targets) || r.Summary.findings() != len(targets) {
				t.Errorf("unknown key: summary %+v, want one ERROR per connection (%d)", r.Summary, len(targets))
			}
			for _, f := range stored {
				if f["status"] != errored || !strings.Contains(f["status_detail"], "InvalidAccessKeyId.NotFound") {
					t.Errorf("unknown key: finding %s %s %s %q, want ERROR naming InvalidAccessKeyId.NotFound",
						f["vpn_connection_id"], f["rule_id"], f["status"], f["status_detail"])
				}
			}
			if got.ByCode["InvalidAccessKeyId.NotFound"] != got.Calls {
				t.Errorf("unknown key: answers %v, want only InvalidAccessKeyId.NotFound", got.ByCode)
			}
			continue
		}
		if got.Errors != 0 || got.OK != got.Calls {
			t.Errorf("key %s: %d errors %v", k.AccessKeyID, got.Errors, got.ByCode)
		}
		if v := verdictsOf(t, stored); !maps.Equal(v, wantV) {
			t.Errorf("key %s: judgements\n got %v\nwant %v", k.AccessKeyID, v, wantV)
		}
	}
	if len(byKey) != len(keys) {
		t.Errorf("VPC calls were signed with %d keys, want %d: %v", len(byKey), len(keys), slicesOfKeys(byKey))
	}
}

// TestConcurrentScans runs 20 HTTP scans at once, each with its own
// credentials and its own target: every answer carries its own scan id and
// only its own target's findings, and Log Service holds each scan's findings
// under its scan id.
func TestConcurrentScans(t *testing.T) {
	const n = 20
	now := time.Now()
	inv := &vpcemu.Inventory{AccountID: emulator.DemoAccountID, Regions: map[string][]vpcemu.Connection{}}
	type job struct {
		region, conn, bindUID, cen string
		key                        cred.Credential
	}
	jobs := make([]job, n)
	for i := range jobs {
		region := []string{"cn-hangzhou", "cn-shanghai"}[i%2]
		j := job{region: region, conn: fmt.Sprintf("vco-e2econc%08d", i),
			bindUID: fmt.Sprintf("17000000000%05d", i), cen: fmt.Sprintf("cen-e2econc%05d", i)}
		var uid int64
		fmt.Sscan(j.bindUID, &uid)
		inv.Regions[region] = append(inv.Regions[region], vpcemu.Connection{VpnConnectionId: j.conn,
			Authorizations: []vpcemu.Authorization{{BindUid: uid, BindProduct: "CEN", BindInstance: j.cen,
				CreationTime: now.Add(-time.Duration(i+1) * 24 * time.Hour).UnixMilli()}}})
		jobs[i] = j
	}
	c := startCloud(t, inv)
	env := c.functionEnv()
	env["SCAN_TARGETS"] = "cn-hangzhou:* cn-shanghai:*"
	env["VPC_API_RATE"] = "100"
	f := startFunction(t, c, env)
	c.VPC.SetLatency(50 * time.Millisecond)
	for i := range jobs {
		jobs[i].key = c.addKey()
	}

	type answer struct {
		r        report
		findings []map[string]string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			ev := httpEvent(t, withRequest("POST", "/scans", mustJSON(t, map[string]any{"targets": []string{j.region + ":" + j.conn}}),
				map[string]any{"Content-Type": "application/json"}))
			res, err := f.tryInvoke(call{payload: ev, key: &j.key})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Error != nil {
				t.Errorf("scan %d failed: %s: %s", i, res.Error.ErrorType, res.Error.ErrorMessage)
				return
			}
			var h httpResponse
			if json.Unmarshal(res.Response, &h) != nil || h.StatusCode != 200 {
				t.Errorf("scan %d: %s", i, res.Response)
				return
			}
			var body struct {
				report
				Findings []map[string]string `json:"findings"`
			}
			if err := json.Unmarshal([]byte(h.Body), &body); err != nil {
				t.Errorf("scan %d body: %v", i, err)
				return
			}
			answers[i] = answer{r: body.report, findings: body.Findings}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	ids := map[string]int{}
	byKey := c.VPC.StatsByAccessKey()
	for i, a := range answers {
		j := jobs[i]
		if prev, dup := ids[a.r.ScanID]; dup {
			t.Errorf("scans %d and %d share the scan id %s", prev, i, a.r.ScanID)
		}
		ids[a.r.ScanID] = i
		if !a.r.Complete || !a.r.Delivery.Delivered || a.r.Summary.Connections != 1 || a.r.Summary.findings() != 4 {
			t.Errorf("scan %d: complete=%v delivered=%v summary %+v, want one connection judged by 4 rules",
				i, a.r.Complete, a.r.Delivery.Delivered, a.r.Summary)
		}
		for _, fd := range a.findings {
			if fd["scan_id"] != a.r.ScanID || fd["vpn_connection_id"] != j.conn || fd["region"] != j.region ||
				fd["bind_uid"] != j.bindUID || fd["bind_instance"] != j.cen {
				t.Errorf("scan %d (%s %s, bound to %s %s) answered a finding of scan %s: %s %s bound to %s %s",
					i, j.region, j.conn, j.bindUID, j.cen, fd["scan_id"], fd["region"], fd["vpn_connection_id"], fd["bind_uid"], fd["bind_instance"])
			}
		}
		v := verdictsOf(t, a.findings)
		want := map[verdictKey]string{{j.conn, ruleAccount}: fail, {j.conn, ruleProduct}: pass, {j.conn, ruleCEN}: fail, {j.conn, ruleStale}: pass}
		if !maps.Equal(v, want) {
			t.Errorf("scan %d judgements %v, want %v", i, v, want)
		}
		stored := checkStoredMatchesReport(t, c, a.r)
		if !sameFindings(stored, a.findings) {
			t.Errorf("scan %d: Log Service holds other findings under its scan id than it answered", i)
		}
		k := byKey[j.key.AccessKeyID]
		if k.Calls != a.r.Summary.APICalls || k.Errors != 0 {
			t.Errorf("scan %d: its key signed %d calls (%d errors), its report counts %d", i, k.Calls, k.Errors, a.r.Summary.APICalls)
		}
	}
	if len(byKey) != n {
		t.Errorf("VPC calls were signed with %d keys, want %d", len(byKey), n)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func targetConns(targets []string) []string {
	out := make([]string, len(targets))
	for i, tg := range targets {
		_, out[i], _ = strings.Cut(tg, ":")
	}
	return out
}

func slicesOfKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sameFindings reports whether two lists hold the same findings, in any order.
func sameFindings(a, b []map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	index := map[string]map[string]string{}
	for _, f := range a {
		index[f["finding_uid"]] = f
	}
	for _, f := range b {
		if g, ok := index[f["finding_uid"]]; !ok || !maps.Equal(f, g) {
			return false
		}
	}
	return true
}
