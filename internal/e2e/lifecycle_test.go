package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/statestore"
)

// The lifecycle tests run the built binary with STATE_STORE on the emulated
// Tablestore, scan the same account several times with changes to the
// emulated inventory in between, and check what a user sees in Log Service:
// the findings' lifecycle and first_seen_at, the vpnauthz-change logs and
// the summary's changes and state_warning. The test reads the table back
// through the real Tablestore SDK to check what a scan left untouched.

const (
	lcRegion = "cn-hangzhou"
	lcTable  = "vpnauthz_state"
)

// stateCloud is the emulated cloud with Tablestore, the state table set up.
type stateCloud struct {
	*cloud
	ots   *otsemu.Server
	store *statestore.Store // the test's own reader of the table
}

func startStateCloud(t *testing.T, inv *vpcemu.Inventory) *stateCloud {
	t.Helper()
	c := startCloud(t, inv)
	ots, err := otsemu.New(otsemu.Options{Credentials: []cred.Credential{c.Credentials}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ots.Close)
	store, err := statestore.New(statestore.Options{
		Location: statestore.Location{Instance: ots.Instance(), Table: lcTable},
		Endpoint: ots.Endpoint(),
		Credentials: statestore.Credentials{AccessKeyID: c.Credentials.AccessKeyID,
			AccessKeySecret: c.Credentials.AccessKeySecret, SecurityToken: c.Credentials.SecurityToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Setup(t.Context()); err != nil {
		t.Fatalf("set up the state table: %v", err)
	}
	return &stateCloud{cloud: c, ots: ots, store: store}
}

// env is the function's environment for the lifecycle tests: every
// connection of lcRegion, the demo's trusted account, the two rules that are
// always on (untrusted-account, unexpected-product), the state table, and
// the policy file given ("": none).
func (s *stateCloud) env(policy string) map[string]string {
	env := s.functionEnv()
	delete(env, "TRUSTED_CEN_IDS")
	delete(env, "MAX_AUTHORIZATION_AGE_DAYS")
	delete(env, "POLICY_FILE")
	if policy != "" {
		env["POLICY_FILE"] = policy
	}
	env["SCAN_TARGETS"] = lcRegion + ":*"
	env["STATE_STORE"] = "tablestore://" + s.ots.Instance() + "/" + lcTable
	env["TABLESTORE_ENDPOINT"] = s.ots.Endpoint()
	return env
}

// records is the state stored for the demo account in lcRegion, by finding uid.
func (s *stateCloud) records(t *testing.T) map[string]lifecycle.Record {
	t.Helper()
	recs, err := s.store.Load(t.Context(), emulator.DemoAccountID, lcRegion)
	if err != nil {
		t.Fatalf("read the state table: %v", err)
	}
	out := map[string]lifecycle.Record{}
	for _, r := range recs {
		out[r.FindingUID] = r
	}
	return out
}

// changes are the vpnauthz-change logs of the given scans, in arrival order.
func (c *cloud) changes(scanIDs ...string) []map[string]string {
	var out []map[string]string
	for _, l := range c.SLS.LogsByTopic(c.Project, c.Logstore, lifecycle.TopicChange) {
		if slices.Contains(scanIDs, l.Contents["scan_id"]) {
			out = append(out, l.Contents)
		}
	}
	return out
}

// changeLine is a change as the tables of these tests write it:
// "CONNECTION CHANGE PREVIOUS>LIFECYCLE REASON".
func changeLine(c map[string]string) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s>%s %s", c["vpn_connection_id"], c["change"],
		c["previous_lifecycle"], c["lifecycle"], c["resolved_reason"]))
}

func changeLines(cs []map[string]string) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, changeLine(c))
	}
	slices.Sort(out)
	return out
}

// stateSummary is what the lifecycle adds to a report's summary.
type stateSummary struct {
	ConnectionsInScope int    `json:"connections_in_scope"`
	Changes            int    `json:"changes"`
	StateWarning       string `json:"state_warning"`
}

func stateSummaryOf(t *testing.T, answer []byte) stateSummary {
	t.Helper()
	var r struct {
		Summary stateSummary `json:"summary"`
	}
	if err := json.Unmarshal(answer, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, answer)
	}
	return r.Summary
}

// lcInvoke runs one invocation of f with the cloud's credential, account and
// region; inv's other fields (request id, retry count, payload) are kept.
func lcInvoke(t *testing.T, f *function, inv fcemu.Invocation) fcemu.Result {
	t.Helper()
	c := f.cloud
	inv.AccessKeyID, inv.AccessKeySecret, inv.SecurityToken = c.Credentials.AccessKeyID, c.Credentials.AccessKeySecret, c.Credentials.SecurityToken
	inv.Region, inv.AccountID = c.Region, c.AccountID
	if inv.Timeout == 0 {
		inv.Timeout = time.Minute
	}
	if inv.Payload == nil {
		inv.Payload = readEvent(t, "timer.json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), inv.Timeout+15*time.Second)
	defer cancel()
	res, err := f.rt.Invoke(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// scanStep is one scan of the lifecycle walk and what Log Service holds of it.
type scanStep struct {
	name     string
	report   report
	state    stateSummary
	findings []map[string]string // stored, topic vpnauthz-finding
	changes  []map[string]string // stored, topic vpnauthz-change
}

// check compares the scan's change logs with want (changeLine form) and
// checks what every change log and the summary log must say.
func (s *scanStep) check(t *testing.T, c *cloud, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := changeLines(s.changes); !slices.Equal(got, want) {
		t.Errorf("%s: change logs %q, want %q", s.name, got, want)
	}
	if s.state.Changes != len(want) || s.state.StateWarning != "" {
		t.Errorf("%s: report summary changes %d state_warning %q, want %d and none", s.name, s.state.Changes, s.state.StateWarning, len(want))
	}
	if logs := c.storedSummary(s.report.ScanID); len(logs) == 1 {
		if sum := logs[0].Contents; sum["changes"] != strconv.Itoa(len(want)) || sum["state_warning"] != "" {
			t.Errorf("%s: summary log changes %q state_warning %q, want %d and none", s.name, sum["changes"], sum["state_warning"], len(want))
		}
	}
	for _, ch := range s.changes {
		checkKeys(t, s.name+": change log", slices.Collect(maps.Keys(ch)), lifecycle.ChangeKeys)
		uid := findingUID(ch["rule_id"], ch["owner_account_id"], ch["region"], ch["vpn_connection_id"], ch["bind_uid"], ch["bind_instance"])
		if ch["trigger"] != s.report.Trigger || ch["owner_account_id"] != emulator.DemoAccountID || ch["region"] != lcRegion ||
			ch["rule_id"] != ruleAccount || ch["severity"] != "high" || ch["finding_uid"] != uid ||
			!isTime(ch["first_seen_at"]) || !isTime(ch["observed_at"]) {
			t.Errorf("%s: change log %v", s.name, ch)
		}
		if (ch["change"] == lifecycle.ChangeResolved) != (ch["resolved_reason"] != "") {
			t.Errorf("%s: change %s with resolved_reason %q", s.name, ch["change"], ch["resolved_reason"])
		}
	}
	for _, f := range s.findings {
		switch f["status"] {
		case errored:
			if f["lifecycle"] != "" || f["first_seen_at"] != "" {
				t.Errorf("%s: ERROR finding %s with lifecycle %q first_seen_at %q", s.name, f["vpn_connection_id"], f["lifecycle"], f["first_seen_at"])
			}
		case pass:
			if f["lifecycle"] != lifecycle.LifecyclePass && f["lifecycle"] != lifecycle.LifecycleResolved {
				t.Errorf("%s: PASS finding %s %s with lifecycle %q", s.name, f["vpn_connection_id"], f["rule_id"], f["lifecycle"])
			}
		default:
			if f["lifecycle"] == "" || !isTime(f["first_seen_at"]) {
				t.Errorf("%s: %s finding %s with lifecycle %q first_seen_at %q", s.name, f["status"], f["vpn_connection_id"], f["lifecycle"], f["first_seen_at"])
			}
		}
	}
}

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// finding returns the scan's stored finding with the uid; ok is false when
// there is none.
func (s *scanStep) finding(uid string) (map[string]string, bool) {
	for _, f := range s.findings {
		if f["finding_uid"] == uid {
			return f, true
		}
	}
	return nil, false
}

// observed says, for the transition table, what the scan did to one
// connection's untrusted-account finding: its change logs and the stored
// finding's status and lifecycle.
func (s *scanStep) observed(conn, uid string) string {
	var cs []string
	for _, c := range s.changes {
		if c["vpn_connection_id"] == conn {
			cs = append(cs, strings.TrimPrefix(changeLine(c), conn+" "))
		}
	}
	slices.Sort(cs)
	out := "no change log"
	if len(cs) > 0 {
		out = strings.Join(cs, ", ")
	}
	if f, ok := s.finding(uid); ok {
		out += fmt.Sprintf("; finding %s lifecycle %q", f["status"], f["lifecycle"])
	} else {
		out += "; no such finding"
	}
	return out
}

// stepOf reads back what Log Service holds of the scan that answered res.
func stepOf(t *testing.T, c *cloud, name string, res fcemu.Result) *scanStep {
	t.Helper()
	s := &scanStep{name: name, report: asReport(t, res), state: stateSummaryOf(t, res.Response)}
	s.findings = checkStoredMatchesReport(t, c, s.report)
	s.changes = c.changes(s.report.ScanID)
	return s
}

// The walk's inventory: one connection per case, in lcRegion of the demo
// account. Each untrusted grant is one untrusted-account FAIL (and one
// unexpected-product PASS: it is a CEN grant).
const (
	lcGrant   = "vco-e2elc0grant001" // trusted only; an untrusted grant is added
	lcSteady  = "vco-e2elc0steady01" // untrusted, never changes until the duplicate-delivery step revokes it
	lcRevoke  = "vco-e2elc0revoke01" // untrusted; revoked, then granted again
	lcDelete  = "vco-e2elc0delete01" // untrusted; deleted, the listing complete
	lcDelFail = "vco-e2elc0delete02" // untrusted; deleted while the listing fails
	lcExcept  = "vco-e2elc0except01" // untrusted (the partner); an exception added, then expired
	lcLate    = "vco-e2elc0late0001" // created with an untrusted grant in the duplicate-delivery step
)

func lcAuth(bindUID, cen string, now time.Time) vpcemu.Authorization {
	uid, _ := strconv.ParseInt(bindUID, 10, 64)
	owner, _ := strconv.ParseInt(emulator.DemoAccountID, 10, 64)
	return vpcemu.Authorization{AliUid: owner, BindUid: uid, BindProduct: "CEN", BindInstance: cen,
		CreationTime: now.Add(-10 * 24 * time.Hour).UnixMilli()}
}

func rogueAuth(now time.Time) vpcemu.Authorization {
	return lcAuth(emulator.DemoRogueAccount, emulator.DemoUnknownCEN, now)
}

// failUID is the uid of a connection's untrusted-account finding on an
// authorization.
func failUID(conn string, a vpcemu.Authorization) string {
	return findingUID(ruleAccount, emulator.DemoAccountID, lcRegion, conn, strconv.FormatInt(a.BindUid, 10), a.BindInstance)
}

func lcInventory(now time.Time) *vpcemu.Inventory {
	conn := func(id string, auths ...vpcemu.Authorization) vpcemu.Connection {
		return vpcemu.Connection{VpnConnectionId: id, Authorizations: append([]vpcemu.Authorization{}, auths...)}
	}
	return &vpcemu.Inventory{AccountID: emulator.DemoAccountID, Regions: map[string][]vpcemu.Connection{lcRegion: {
		conn(lcGrant, lcAuth(emulator.DemoTrustedAccount, emulator.DemoTrustedCEN, now)),
		conn(lcSteady, rogueAuth(now)),
		conn(lcRevoke, rogueAuth(now)),
		conn(lcDelete, rogueAuth(now)),
		conn(lcDelFail, rogueAuth(now)),
		conn(lcExcept, lcAuth(emulator.DemoPartnerAccount, emulator.DemoPartnerCEN, now)),
	}}}
}

// writeExceptionPolicy writes a policy file whose one exception covers the
// partner grant of lcExcept until expires.
func writeExceptionPolicy(t *testing.T, expires time.Time) string {
	t.Helper()
	yaml := fmt.Sprintf(`exceptions:
  - vpn_connection_id: %s
    bind_uid: %q
    bind_instance: %s
    rules: [untrusted-account]
    reason: "partner migration, ticket NET-456"
    expires: %s
`, lcExcept, emulator.DemoPartnerAccount, emulator.DemoPartnerCEN, expires.UTC().Format(time.DateOnly))
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// transition is one row of the table the lead asked for.
type transition struct{ name, expected, observed string }

// TestLifecycleThroughScans walks findings through scans of the built
// binary with changes to the inventory in between, and checks each case
// of the finding lifecycle as Log Service shows it. The table of cases,
// expected and observed, is logged at the end.
func TestLifecycleThroughScans(t *testing.T) {
	now := time.Now()
	s := startStateCloud(t, lcInventory(now))
	var table []transition
	t.Cleanup(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "transition table (%d cases):\n", len(table))
		for _, r := range table {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r.name, r.expected, r.observed)
		}
		t.Log(b.String())
	})
	row := func(name, expected, observed string) {
		table = append(table, transition{name, expected, observed})
	}
	rogue := rogueAuth(now)
	partner := lcAuth(emulator.DemoPartnerAccount, emulator.DemoPartnerCEN, now)
	uidOf := map[string]string{
		lcGrant: failUID(lcGrant, rogue), lcSteady: failUID(lcSteady, rogue), lcRevoke: failUID(lcRevoke, rogue),
		lcDelete: failUID(lcDelete, rogue), lcDelFail: failUID(lcDelFail, rogue), lcExcept: failUID(lcExcept, partner),
		lcLate: failUID(lcLate, rogue),
	}

	// One instance without a policy file, one with a live exception for
	// lcExcept, one with the exception expired: the function reads its
	// policy when it starts, as a new deployment of the policy would.
	plain := startFunction(t, s.cloud, s.env(""))
	timer := func(f *function, name string) *scanStep {
		t.Helper()
		return stepOf(t, s.cloud, name, lcInvoke(t, f, fcemu.Invocation{}))
	}

	// Scan 1: every untrusted grant is seen for the first time.
	s1 := timer(plain, "scan 1")
	s1.check(t, s.cloud, lcSteady+" opened >new", lcRevoke+" opened >new", lcDelete+" opened >new",
		lcDelFail+" opened >new", lcExcept+" opened >new")
	if !s1.report.Complete || s1.state.ConnectionsInScope != 6 {
		t.Errorf("scan 1: complete %v, %d connections in scope, want complete and 6", s1.report.Complete, s1.state.ConnectionsInScope)
	}
	// Each finding's own first sight: the connections of one scan are read
	// at different moments, which may fall in different seconds.
	firstSeen, _ := s1.finding(uidOf[lcSteady])
	revokeFirstSeen, _ := s1.finding(uidOf[lcRevoke])
	row("first sight of untrusted grants (5 connections, scan 1)", "5 × opened >new; FAIL lifecycle \"new\"",
		fmt.Sprintf("%d × %q", len(s1.changes), changeLines(s1.changes)))

	// Scan 2: an untrusted grant added to lcGrant, lcRevoke's revoked.
	if err := s.VPC.Grant(lcRegion, lcGrant, rogue); err != nil {
		t.Fatal(err)
	}
	if err := s.VPC.Revoke(lcRegion, lcRevoke, rogue.BindUid, rogue.BindInstance); err != nil {
		t.Fatal(err)
	}
	s2 := timer(plain, "scan 2")
	s2.check(t, s.cloud, lcGrant+" opened >new", lcRevoke+" resolved new>resolved authorization_removed")
	if f, ok := s2.finding(uidOf[lcGrant]); !ok || f["status"] != fail || f["lifecycle"] != lifecycle.LifecycleNew {
		t.Errorf("scan 2: the new grant's finding %v, want FAIL, lifecycle new", f)
	}
	if f, ok := s2.finding(uidOf[lcSteady]); !ok || f["lifecycle"] != lifecycle.LifecycleOpen || f["first_seen_at"] != firstSeen["first_seen_at"] {
		t.Errorf("scan 2: the unchanged finding %v, want lifecycle open, first seen %s", f, firstSeen["first_seen_at"])
	}
	if _, ok := s2.finding(uidOf[lcRevoke]); ok {
		t.Errorf("scan 2: the revoked grant still has a finding")
	}
	row("new untrusted grant (scan 2)", "opened >new; FAIL lifecycle \"new\"", s2.observed(lcGrant, uidOf[lcGrant]))
	row("unchanged untrusted grant (scan 2)", "no change log; FAIL lifecycle \"open\", first_seen_at of scan 1", s2.observed(lcSteady, uidOf[lcSteady]))
	row("grant revoked (scan 2)", "resolved new>resolved authorization_removed", s2.observed(lcRevoke, uidOf[lcRevoke]))

	// Scan 3: lcRevoke granted again; lcDelete deleted, the listing complete.
	if err := s.VPC.Grant(lcRegion, lcRevoke, rogue); err != nil {
		t.Fatal(err)
	}
	if !s.VPC.DeleteConnection(lcRegion, lcDelete) {
		t.Fatal("no connection to delete")
	}
	s3 := timer(plain, "scan 3")
	s3.check(t, s.cloud, lcRevoke+" reopened resolved>reopened", lcDelete+" resolved open>resolved connection_deleted")
	if f, ok := s3.finding(uidOf[lcRevoke]); !ok || f["lifecycle"] != lifecycle.LifecycleReopened || f["first_seen_at"] != revokeFirstSeen["first_seen_at"] {
		t.Errorf("scan 3: the re-granted finding %v, want lifecycle reopened, first seen %s", f, revokeFirstSeen["first_seen_at"])
	}
	if s3.state.ConnectionsInScope != 5 {
		t.Errorf("scan 3: %d connections in scope, want 5", s3.state.ConnectionsInScope)
	}
	row("grant re-granted (scan 3)", "reopened resolved>reopened; FAIL lifecycle \"reopened\", first_seen_at of scan 1", s3.observed(lcRevoke, uidOf[lcRevoke]))
	row("connection deleted, listing complete (scan 3)", "resolved open>resolved connection_deleted", s3.observed(lcDelete, uidOf[lcDelete]))

	// Scan 4: lcDelFail deleted, and the listing of the region refused.
	if !s.VPC.DeleteConnection(lcRegion, lcDelFail) {
		t.Fatal("no connection to delete")
	}
	s.VPC.AnswerNext("DescribeVpnConnections", lcRegion, 1, vpcemu.Answer{Code: "Forbidden.RAM"})
	s4 := timer(plain, "scan 4")
	s4.check(t, s.cloud)
	if len(s4.findings) != 1 || s4.findings[0]["vpn_connection_id"] != "*" || s4.findings[0]["status"] != errored {
		t.Errorf("scan 4: findings %v, want the listing's one ERROR", statuses(s4.findings))
	}
	recs := s.records(t)
	if r := recs[uidOf[lcDelFail]]; r.Lifecycle != lifecycle.LifecycleOpen || r.LastScanID != s3.report.ScanID {
		t.Errorf("scan 4: %s stored as %s (%s) last scanned by %s, want open since scan 3", lcDelFail, r.Lifecycle, r.ResolvedReason, r.LastScanID)
	}
	row("connection deleted, listing fails (scan 4)", "no change log; only the listing's * ERROR; stored record still open",
		fmt.Sprintf("%d change logs; findings %v; stored %q", len(s4.changes), statuses(s4.findings), recs[uidOf[lcDelFail]].Lifecycle))

	// Scan 5: POST /scans of lcSteady alone. lcDelFail, deleted and not
	// read, and every other record stay as they are.
	before := s.records(t)
	ev := httpEvent(t, withRequest("POST", "/scans", mustJSON(t, map[string]any{"targets": []string{lcRegion + ":" + lcSteady}}),
		map[string]any{"Content-Type": "application/json"}))
	res := lcInvoke(t, plain, fcemu.Invocation{Payload: ev})
	h := asHTTP(t, res)
	if h.StatusCode != 200 {
		t.Fatalf("POST /scans: %d %s", h.StatusCode, h.Body)
	}
	s5 := stepOf(t, s.cloud, "scan 5 (HTTP, one connection)", fcemu.Result{Response: json.RawMessage(h.Body)})
	s5.check(t, s.cloud)
	after := s.records(t)
	untouched := 0
	for uid, b := range before {
		a := after[uid]
		switch {
		case uid == uidOf[lcSteady]:
			if a.LastScanID != s5.report.ScanID || a.Lifecycle != lifecycle.LifecycleOpen || a.Revision != b.Revision+1 {
				t.Errorf("scan 5: the scanned finding stored as %+v, want open, last scanned by the HTTP scan", a)
			}
		case a != b:
			t.Errorf("scan 5: %s (%s) changed by a scan of %s alone:\n before %+v\n after  %+v", uid, b.ConnectionID, lcSteady, b, a)
		default:
			untouched++
		}
	}
	if len(after) != len(before) {
		t.Errorf("scan 5: %d records before, %d after", len(before), len(after))
	}
	row("HTTP scan of one connection (scan 5)", fmt.Sprintf("no change log; the other %d records untouched", len(before)-1),
		fmt.Sprintf("%d change logs; %d of %d other records untouched; %s", len(s5.changes), untouched, len(before)-1, s5.observed(lcSteady, uidOf[lcSteady])))

	// Scan 6: a new instance with an exception for lcExcept's grant. The
	// listing is complete again: lcDelFail is resolved now.
	excepted := startFunction(t, s.cloud, s.env(writeExceptionPolicy(t, now.AddDate(0, 0, 90))))
	s6 := timer(excepted, "scan 6")
	s6.check(t, s.cloud, lcExcept+" suppressed open>suppressed", lcDelFail+" resolved open>resolved connection_deleted")
	if f, ok := s6.finding(uidOf[lcExcept]); !ok || f["status"] != suppressed || f["lifecycle"] != lifecycle.LifecycleSuppressed {
		t.Errorf("scan 6: the excepted finding %v, want SUPPRESSED, lifecycle suppressed", f)
	}
	row("exception added (scan 6)", "suppressed open>suppressed; SUPPRESSED lifecycle \"suppressed\"", s6.observed(lcExcept, uidOf[lcExcept]))
	row("deleted connection, listing complete again (scan 6)", "resolved open>resolved connection_deleted", s6.observed(lcDelFail, uidOf[lcDelFail]))

	// Scan 7: a new instance whose exception has expired.
	expired := startFunction(t, s.cloud, s.env(writeExceptionPolicy(t, now.AddDate(0, 0, -2))))
	s7 := timer(expired, "scan 7")
	s7.check(t, s.cloud, lcExcept+" unsuppressed suppressed>open")
	if f, ok := s7.finding(uidOf[lcExcept]); !ok || f["status"] != fail || f["lifecycle"] != lifecycle.LifecycleOpen ||
		!strings.Contains(f["status_detail"], "expired") {
		t.Errorf("scan 7: the finding whose exception expired %v, want FAIL, lifecycle open, its detail saying the exception expired", f)
	}
	row("exception expired (scan 7)", "unsuppressed suppressed>open; FAIL lifecycle \"open\"", s7.observed(lcExcept, uidOf[lcExcept]))

	// Scans 8a and 8b: the same timer event delivered to two instances at
	// once, after lcSteady's grant is revoked and lcLate is created. Both
	// read the state before either writes (their listings wait for each
	// other), so both compute the same two transitions; the conditional
	// writes let one of them make each.
	if err := s.VPC.Revoke(lcRegion, lcSteady, rogue.BindUid, rogue.BindInstance); err != nil {
		t.Fatal(err)
	}
	s.VPC.PutConnection(lcRegion, vpcemu.Connection{VpnConnectionId: lcLate, Authorizations: []vpcemu.Authorization{rogue}})
	var listings atomic.Int32
	both := make(chan struct{})
	s.VPC.SetArrivalHook(func(k vpcemu.CallKey) {
		if k.Action != "DescribeVpnConnections" {
			return
		}
		switch listings.Add(1) {
		case 1:
			// The bound only keeps a lost second invocation from hanging the test.
			select {
			case <-both:
			case <-time.After(30 * time.Second):
			}
		case 2:
			close(both)
		}
	})
	conflictsBefore := s.ots.Stats().ErrorsByCode["OTSConditionCheckFail"]
	second := startFunction(t, s.cloud, s.env(writeExceptionPolicy(t, now.AddDate(0, 0, -2))))
	var (
		wg    sync.WaitGroup
		pair  [2]fcemu.Result
		insts = [2]*function{expired, second}
		ids   = [2]string{"1-e2e-lifecycle-dup-a", "1-e2e-lifecycle-dup-b"}
	)
	for i := range pair {
		wg.Go(func() { pair[i] = lcInvoke(t, insts[i], fcemu.Invocation{RequestID: ids[i]}) })
	}
	wg.Wait()
	s.VPC.SetArrivalHook(nil)
	if n := listings.Load(); n != 2 {
		t.Fatalf("%d listings during the concurrent pair, want 2", n)
	}
	s8a, s8b := stepOf(t, s.cloud, "scan 8a", pair[0]), stepOf(t, s.cloud, "scan 8b", pair[1])
	conflicts := s.ots.Stats().ErrorsByCode["OTSConditionCheckFail"] - conflictsBefore
	if conflicts == 0 {
		t.Errorf("no conditional write failed: the two invocations did not race for the same rows")
	}
	both8 := s.changes(s8a.report.ScanID, s8b.report.ScanID)
	perKey := map[string]int{}
	for _, c := range both8 {
		perKey[c["finding_uid"]+" "+c["change"]]++
	}
	wantOnce := map[string]string{
		uidOf[lcSteady] + " " + lifecycle.ChangeResolved: lcSteady + " resolved",
		uidOf[lcLate] + " " + lifecycle.ChangeOpened:     lcLate + " opened",
	}
	for key, what := range wantOnce {
		if perKey[key] != 1 {
			t.Errorf("concurrent delivery: %s written %d times, want once", what, perKey[key])
		}
	}
	if len(both8) != len(wantOnce) || s8a.state.Changes+s8b.state.Changes != len(wantOnce) {
		t.Errorf("concurrent delivery: change logs %q (summaries %d + %d), want each of %v once",
			changeLines(both8), s8a.state.Changes, s8b.state.Changes, slices.Sorted(maps.Values(wantOnce)))
	}
	row("same timer event to two instances at once (scans 8a, 8b)",
		"resolved (authorization_removed) once and opened once in total; the loser's conditional write fails",
		fmt.Sprintf("%q; %d OTSConditionCheckFail", changeLines(both8), conflicts))

	// Scan 8c: FC delivers the first event again (same request id, retry 1).
	s8c := stepOf(t, s.cloud, "scan 8c (redelivery)", lcInvoke(t, second, fcemu.Invocation{RequestID: ids[0], RetryCount: 1}))
	s8c.check(t, s.cloud)
	row("the same event delivered again (scan 8c)", "no change log", fmt.Sprintf("%d change logs", len(s8c.changes)))

	// In all, every transition of the walk was written once: no finding
	// makes the same change from the same lifecycle twice in this walk.
	var walk []string
	for _, st := range []*scanStep{s1, s2, s3, s4, s5, s6, s7, s8a, s8b, s8c} {
		walk = append(walk, st.report.ScanID)
	}
	seen := map[string]int{}
	all := s.changes(walk...)
	for _, c := range all {
		seen[c["finding_uid"]+" "+c["previous_lifecycle"]+">"+c["change"]]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("transition %s written %d times", k, n)
		}
	}
	if len(all) != 14 {
		t.Errorf("%d change logs in the walk, want 14: %q", len(all), changeLines(all))
	}
	if p := panics(append(plain.stdout.Bytes(), plain.stderr.Bytes()...)); len(p) > 0 {
		t.Errorf("the function's output shows a panic: %q", p)
	}
}
