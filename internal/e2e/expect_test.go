package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
)

// findingKeys are the keys of a finding, as the contract lists them.
var findingKeys = []string{
	"finding_uid", "scan_id", "trigger", "rule_id", "title", "severity", "status",
	"status_detail", "region", "owner_account_id", "vpn_connection_id", "bind_uid",
	"bind_product", "bind_instance", "authorization_created_at", "authorization_age_days",
	"remediation", "exception_reason", "exception_expires", "observed_at",
	"first_seen_at", "lifecycle",
}

// summaryKeys are the keys of the scan summary log, as the contract lists them.
var summaryKeys = []string{
	"scan_id", "trigger", "started_at", "duration_ms", "complete", "connections",
	"connections_in_scope", "authorizations", "pass", "fail", "error", "suppressed",
	"api_calls", "api_retries", "throttled", "findings_delivered", "changes",
	"state_warning", "role", "accounts", "parent_scan_id", "batch", "batches",
}

// The rules and statuses, as the contract names them.
const (
	ruleAccount = "untrusted-account"
	ruleProduct = "unexpected-product"
	ruleCEN     = "untrusted-cen"
	ruleStale   = "stale-authorization"
	ruleRead    = "read-authorizations"

	pass       = "PASS"
	fail       = "FAIL"
	errored    = "ERROR"
	suppressed = "SUPPRESSED"
)

// demoVerdicts is what the demo's policy (trusted account and CEN, 365 days,
// the partner's exception for both trust rules) makes of each demo
// connection: rule -> status.
var demoVerdicts = map[string]map[string]string{
	emulator.DemoTrusted: {ruleAccount: pass, ruleProduct: pass, ruleCEN: pass, ruleStale: pass},
	emulator.DemoPartner: {ruleAccount: suppressed, ruleProduct: pass, ruleCEN: suppressed, ruleStale: pass},
	emulator.DemoNoAuth:  {ruleAccount: pass, ruleProduct: pass, ruleCEN: pass, ruleStale: pass},
	emulator.DemoStale:   {ruleAccount: pass, ruleProduct: pass, ruleCEN: pass, ruleStale: fail},
	emulator.DemoRogue:   {ruleAccount: fail, ruleProduct: pass, ruleCEN: fail, ruleStale: pass},
	emulator.DemoDenied:  {ruleRead: errored},
	emulator.DemoOwner:   {ruleAccount: pass, ruleProduct: pass, ruleCEN: pass, ruleStale: pass},
}

// verdictKey is one judgement: a connection and a rule.
type verdictKey struct{ conn, rule string }

// expectedVerdicts lists the demo's judgements of the given connections.
func expectedVerdicts(conns ...string) map[verdictKey]string {
	out := map[verdictKey]string{}
	for _, c := range conns {
		for rule, status := range demoVerdicts[c] {
			out[verdictKey{c, rule}] = status
		}
	}
	return out
}

// expectedCounts sums the statuses of a set of judgements.
func expectedCounts(v map[verdictKey]string) summary {
	var s summary
	for _, status := range v {
		switch status {
		case pass:
			s.Pass++
		case fail:
			s.Fail++
		case errored:
			s.Error++
		case suppressed:
			s.Suppressed++
		}
	}
	return s
}

// verdictsOf gives the judgements of stored findings, failing on a
// judgement given twice.
func verdictsOf(t *testing.T, fs []map[string]string) map[verdictKey]string {
	t.Helper()
	out := map[verdictKey]string{}
	for _, f := range fs {
		k := verdictKey{f["vpn_connection_id"], f["rule_id"]}
		if prev, dup := out[k]; dup {
			t.Errorf("%s %s judged twice in one scan (%s, %s)", k.conn, k.rule, prev, f["status"])
		}
		out[k] = f["status"]
	}
	return out
}

// demoRegion is the region of each demo connection.
var demoRegion = func() map[string]string {
	out := map[string]string{}
	for region, conns := range emulator.Demo(time.Now()).Regions {
		for _, c := range conns {
			out[c.VpnConnectionId] = region
		}
	}
	return out
}()

// demoInRegion lists the demo connections of a region.
func demoInRegion(region string) []string {
	var out []string
	for c, r := range demoRegion {
		if r == region {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// findingUID is the stable id the contract defines.
func findingUID(rule, owner, region, conn, bindUID, bindInstance string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{rule, owner, region, conn, bindUID, bindInstance}, "|")))
	return hex.EncodeToString(sum[:])[:32]
}

// checkKeys reports a log or object whose keys are not exactly want.
func checkKeys(t *testing.T, what string, got []string, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s has keys %v, want exactly %v", what, g, w)
	}
}

// checkStoredMatchesReport checks that Log Service holds exactly the
// findings the report counts, and a summary log that matches it.
func checkStoredMatchesReport(t *testing.T, c *cloud, r report) []map[string]string {
	t.Helper()
	stored := c.stored(r.ScanID)
	got := countStatuses(stored)
	want := r.Summary
	if got.Pass != want.Pass || got.Fail != want.Fail || got.Error != want.Error || got.Suppressed != want.Suppressed {
		t.Errorf("stored findings pass/fail/error/suppressed = %d/%d/%d/%d, report says %d/%d/%d/%d",
			got.Pass, got.Fail, got.Error, got.Suppressed, want.Pass, want.Fail, want.Error, want.Suppressed)
	}
	if len(stored) != want.findings() {
		t.Errorf("%d findings stored, report counts %d", len(stored), want.findings())
	}
	if r.Delivery.Delivered && want.FindingsDelivered != want.findings() {
		t.Errorf("delivered, but findings_delivered = %d of %d", want.FindingsDelivered, want.findings())
	}
	uids := map[string]bool{}
	for _, f := range stored {
		checkKeys(t, "stored finding "+f["finding_uid"], slices.Collect(maps.Keys(f)), findingKeys)
		if f["trigger"] != r.Trigger {
			t.Errorf("finding %s has trigger %q, the report %q", f["finding_uid"], f["trigger"], r.Trigger)
		}
		if uids[f["finding_uid"]] {
			t.Errorf("finding_uid %s stored twice in scan %s", f["finding_uid"], r.ScanID)
		}
		uids[f["finding_uid"]] = true
	}

	logs := c.storedSummary(r.ScanID)
	if len(logs) != 1 {
		t.Errorf("%d scan summary logs stored for scan %s, want 1", len(logs), r.ScanID)
		return stored
	}
	s := logs[0].Contents
	checkKeys(t, "scan summary log", slices.Collect(maps.Keys(s)), summaryKeys)
	for key, want := range map[string]string{
		"trigger":            r.Trigger,
		"started_at":         r.StartedAt,
		"complete":           strconv.FormatBool(r.Complete),
		"connections":        strconv.Itoa(r.Summary.Connections),
		"authorizations":     strconv.Itoa(r.Summary.Authorizations),
		"pass":               strconv.Itoa(r.Summary.Pass),
		"fail":               strconv.Itoa(r.Summary.Fail),
		"error":              strconv.Itoa(r.Summary.Error),
		"suppressed":         strconv.Itoa(r.Summary.Suppressed),
		"api_calls":          strconv.Itoa(r.Summary.APICalls),
		"api_retries":        strconv.Itoa(r.Summary.APIRetries),
		"throttled":          strconv.Itoa(r.Summary.Throttled),
		"findings_delivered": strconv.Itoa(r.Summary.FindingsDelivered),
	} {
		if s[key] != want {
			t.Errorf("scan summary log %s = %q, report says %q", key, s[key], want)
		}
	}
	// The summary is written before the scan ends, so it cannot count its own
	// delivery: it may be shorter than the report, never longer.
	if d, err := strconv.ParseInt(s["duration_ms"], 10, 64); err != nil || d < 0 || d > r.DurationMs {
		t.Errorf("scan summary log duration_ms = %q, report durationMs %d", s["duration_ms"], r.DurationMs)
	}
	return stored
}

// demoInventoryIDs lists every connection of an inventory.
func inventoryIDs(inv *vpcemu.Inventory) []string {
	var out []string
	for _, conns := range inv.Regions {
		for _, c := range conns {
			out = append(out, c.VpnConnectionId)
		}
	}
	sort.Strings(out)
	return out
}
