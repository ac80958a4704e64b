package scan_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/statestore"
)

// The lifecycle tests scan the same emulated account several times with a
// state store, changing the inventory in between, on a clock that moves an
// hour between scans.

// clock is the scanner's clock, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type lcEnv struct {
	srv   *vpcemu.Server
	s     *scan.Scanner
	clk   *clock
	store lifecycle.Store
	n     int // scans so far
}

// lcInventory: vco-lc00 to vco-lc03, each with one grant to another
// account (untrusted-account FAIL, unexpected-product PASS), and vco-lcnone
// with none.
func newLC(t *testing.T, store lifecycle.Store) *lcEnv {
	t.Helper()
	var conns []vpcemu.Connection
	for i := range 4 {
		c := emuConn(vco("lc", i), 0)
		c.Authorizations = []vpcemu.Authorization{emuAuth(i)}
		conns = append(conns, c)
	}
	conns = append(conns, emuConn("vco-lcnone", 0))
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns})
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	return &lcEnv{srv: srv, clk: clk, store: store, s: newScanner(t, srv, func(o *scan.Options) { o.Now = clk.Now })}
}

// scan runs the next scan, an hour after the last.
func (e *lcEnv) scan(t *testing.T, targets ...string) (scan.Report, *scan.MemSink) {
	t.Helper()
	if e.n > 0 {
		e.clk.Add(time.Hour)
	}
	e.n++
	req := orgRequest(t, nil, targets...)
	req.ScanID = fmt.Sprintf("lc-scan-%d", e.n)
	req.State = e.store
	return runReq(t, e.s, t.Context(), req)
}

// failUID is the finding uid of the untrusted-account FAIL of connection i's grant.
func failUID(i int) string {
	a := emuAuth(i)
	return finding.UID(finding.RuleUntrustedAccount, account, hangzhou, vco("lc", i), fmt.Sprint(a.BindUid), a.BindInstance)
}

func changeList(cs []lifecycle.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %s>%s %s", c.VpnConnectionID, c.Change, c.PreviousLifecycle, c.Lifecycle, c.ResolvedReason))
	}
	slices.Sort(out)
	return out
}

func checkChanges(t *testing.T, step string, rep scan.Report, sink *scan.MemSink, want ...string) {
	t.Helper()
	got := changeList(sink.Changes())
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: changes %q, want %q", step, got, want)
	}
	if rep.Summary.Changes != len(want) || rep.Summary.StateWarning != "" {
		t.Errorf("%s: summary changes %d warning %q, want %d and none", step, rep.Summary.Changes, rep.Summary.StateWarning, len(want))
	}
	for _, c := range sink.Changes() {
		if c.ScanID != rep.ScanID || c.Trigger != finding.TriggerTimer || c.OwnerAccountID != account || c.Region != hangzhou ||
			c.RuleID != finding.RuleUntrustedAccount || c.Severity != "high" || c.FirstSeenAt == "" || c.ObservedAt == "" {
			t.Errorf("%s: change %+v", step, c)
		}
	}
}

// lifecycleOf returns the lifecycle and first_seen_at of a finding by uid.
func lifecycleOf(t *testing.T, fs []finding.Finding, uid string) (lc, firstSeen string) {
	t.Helper()
	for _, f := range fs {
		if f.FindingUID == uid {
			return f.Lifecycle, f.FirstSeenAt
		}
	}
	t.Fatalf("no finding %s", uid)
	return "", ""
}

// TestLifecycleTransitions follows findings through scans with changes in
// between: opened, open, resolved (authorization_removed), reopened,
// resolved (connection_deleted) by a complete listing, nothing resolved by a
// failed listing or a narrower scope, and a deleted connection reached by
// name resolved.
func TestLifecycleTransitions(t *testing.T) {
	store := lifecycle.NewMemStore()
	e := newLC(t, store)
	t0 := e.clk.Now().Format(time.RFC3339)
	all := hangzhou + ":*"

	// 1. First sight: every FAIL is opened; findings new or pass.
	rep, sink := e.scan(t, all)
	checkChanges(t, "first scan", rep, sink, "vco-lc0000 opened >new ", "vco-lc0001 opened >new ", "vco-lc0002 opened >new ", "vco-lc0003 opened >new ")
	for _, f := range rep.Findings {
		want := lifecycle.LifecyclePass
		if f.Status == finding.StatusFail {
			want = lifecycle.LifecycleNew
		}
		if f.Lifecycle != want || (f.Status == finding.StatusFail) != (f.FirstSeenAt == t0) {
			t.Errorf("first scan: %s %s: lifecycle %q first seen %q", f.VpnConnectionID, f.Status, f.Lifecycle, f.FirstSeenAt)
		}
	}
	if rep.Summary.ConnectionsInScope != 5 || !rep.Complete {
		t.Errorf("first scan: %+v", rep.Summary)
	}

	// 2. Nothing changed: open, no transition, first seen kept.
	rep, sink = e.scan(t, all)
	checkChanges(t, "unchanged", rep, sink)
	if lc, first := lifecycleOf(t, rep.Findings, failUID(0)); lc != lifecycle.LifecycleOpen || first != t0 {
		t.Errorf("unchanged: lifecycle %q first seen %q, want open since %s", lc, first, t0)
	}

	// 3. vco-lc0000's grant revoked: resolved, authorization_removed.
	if err := e.srv.Revoke(hangzhou, vco("lc", 0), emuAuth(0).BindUid, ""); err != nil {
		t.Fatal(err)
	}
	rep, sink = e.scan(t, all)
	checkChanges(t, "revoked", rep, sink, "vco-lc0000 resolved open>resolved authorization_removed")

	// 4. Granted again: reopened, first seen kept.
	if err := e.srv.Grant(hangzhou, vco("lc", 0), emuAuth(0)); err != nil {
		t.Fatal(err)
	}
	rep, sink = e.scan(t, all)
	checkChanges(t, "granted again", rep, sink, "vco-lc0000 reopened resolved>reopened ")
	if lc, first := lifecycleOf(t, rep.Findings, failUID(0)); lc != lifecycle.LifecycleReopened || first != t0 {
		t.Errorf("granted again: lifecycle %q first seen %q, want reopened, first seen %s", lc, first, t0)
	}

	// 5. vco-lc0001 deleted, the listing complete: resolved, connection_deleted.
	e.srv.DeleteConnection(hangzhou, vco("lc", 1))
	rep, sink = e.scan(t, all)
	checkChanges(t, "deleted, listed", rep, sink, "vco-lc0001 resolved open>resolved connection_deleted")
	if rep.Summary.ConnectionsInScope != 4 {
		t.Errorf("deleted, listed: %d connections in scope, want 4", rep.Summary.ConnectionsInScope)
	}

	// 6. vco-lc0002 deleted, but the listing fails: nothing is resolved.
	e.srv.DeleteConnection(hangzhou, vco("lc", 2))
	e.srv.AnswerNext(actList, hangzhou, 1, vpcemu.Answer{Code: "Forbidden.RAM"})
	rep, sink = e.scan(t, all)
	checkChanges(t, "deleted, listing failed", rep, sink)
	if rep.Summary.Error != 1 || len(rep.Findings) != 1 {
		t.Errorf("deleted, listing failed: findings %+v, want the listing's ERROR only", rep.Findings)
	}
	if f := rep.Findings[0]; f.Lifecycle != "" || f.FirstSeenAt != "" {
		t.Errorf("an ERROR has lifecycle %q first seen %q, want both empty", f.Lifecycle, f.FirstSeenAt)
	}

	// 7. A scan of vco-lc0000 alone: vco-lc0002, gone but not read, stays open.
	rep, sink = e.scan(t, hangzhou+":"+vco("lc", 0))
	checkChanges(t, "narrow scope", rep, sink)
	recs, err := store.Load(t.Context(), account, hangzhou)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ConnectionID == vco("lc", 2) && r.Lifecycle != lifecycle.LifecycleOpen {
			t.Errorf("vco-lc0002 not read since its deletion, yet stored as %s (%s)", r.Lifecycle, r.ResolvedReason)
		}
	}

	// 8. vco-lc0002 named, it no longer exists: PASS, and resolved.
	rep, sink = e.scan(t, hangzhou+":"+vco("lc", 2))
	checkChanges(t, "deleted, named", rep, sink, "vco-lc0002 resolved open>resolved connection_deleted")
	if len(rep.Findings) != 2 || rep.Summary.Pass != 2 {
		t.Fatalf("deleted, named: %+v", rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.StatusDetail != "VPN connection vco-lc0002 no longer exists: nothing can attach it." || f.Lifecycle != lifecycle.LifecyclePass {
			t.Errorf("deleted, named: %s %q lifecycle %q", f.Status, f.StatusDetail, f.Lifecycle)
		}
	}

	// 9. The same scan again: nothing left to resolve.
	rep, sink = e.scan(t, all)
	checkChanges(t, "settled", rep, sink)
}

// TestLifecycleWithoutState: without a state store the two fields are
// there, empty, and nothing is written.
func TestLifecycleWithoutState(t *testing.T) {
	e := newLC(t, nil)
	rep, sink := e.scan(t, hangzhou+":*")
	if len(rep.Findings) != 10 || len(sink.Changes()) != 0 || rep.Summary.Changes != 0 {
		t.Fatalf("%d findings, %d changes", len(rep.Findings), len(sink.Changes()))
	}
	for _, f := range rep.Findings {
		if f.Lifecycle != "" || f.FirstSeenAt != "" {
			t.Errorf("stateless finding with lifecycle %q first seen %q", f.Lifecycle, f.FirstSeenAt)
		}
	}
}

// TestLifecycleDryRun: a dry run reads the state to annotate its findings,
// and writes nothing: transitions that are never delivered would be lost.
func TestLifecycleDryRun(t *testing.T) {
	store := lifecycle.NewMemStore()
	e := newLC(t, store)
	e.scan(t, hangzhou+":*")
	before, _ := store.Load(t.Context(), account, hangzhou)

	if err := e.srv.Revoke(hangzhou, vco("lc", 3), emuAuth(3).BindUid, ""); err != nil {
		t.Fatal(err)
	}
	req := orgRequest(t, nil, hangzhou+":*")
	req.State, req.DryRun = store, true
	e.clk.Add(time.Hour)
	rep, sink := runReq(t, e.s, t.Context(), req)
	if lc, _ := lifecycleOf(t, rep.Findings, failUID(0)); lc != lifecycle.LifecycleOpen {
		t.Errorf("dry run: lifecycle %q, want open", lc)
	}
	after, _ := store.Load(t.Context(), account, hangzhou)
	if fmt.Sprint(before) != fmt.Sprint(after) || len(sink.Changes()) != 0 || rep.Summary.Changes != 0 {
		t.Errorf("a dry run changed the state or made %d transitions", len(sink.Changes()))
	}
}

// brokenStore is a state store whose reads or writes fail.
type brokenStore struct {
	*lifecycle.MemStore
	loadErr, writeErr error
}

func (s *brokenStore) Load(ctx context.Context, account, region string) ([]lifecycle.Record, error) {
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	return s.MemStore.Load(ctx, account, region)
}

func (s *brokenStore) Write(ctx context.Context, ws []lifecycle.Write) ([]error, error) {
	if s.writeErr != nil {
		return nil, s.writeErr
	}
	return s.MemStore.Write(ctx, ws)
}

// TestLifecycleStoreFailures: a state store that cannot be read or written
// costs the lifecycle, never the findings: they are delivered, the summary
// carries a warning, and the scan is complete.
func TestLifecycleStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		name          string
		store         *brokenStore
		wantLifecycle string // of the FAIL findings
		wantMore      bool   // both regions fail: cn-shanghai has nothing to write
	}{
		{"read fails", &brokenStore{MemStore: lifecycle.NewMemStore(), loadErr: errors.New("OTSServerUnavailable: the server is unavailable")}, "", true},
		{"write fails", &brokenStore{MemStore: lifecycle.NewMemStore(), writeErr: errors.New("OTSServerUnavailable: the server is unavailable")}, lifecycle.LifecycleNew, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLC(t, tc.store)
			rep, sink := e.scan(t, hangzhou+":*", "cn-shanghai:*")
			if len(sink.Findings()) != 10 || rep.Summary.FindingsDelivered != 10 || !rep.Complete || rep.Summary.Error != 0 {
				t.Errorf("summary %+v complete %v, want the 10 findings delivered", rep.Summary, rep.Complete)
			}
			for _, f := range rep.Findings {
				if f.Status == finding.StatusFail && f.Lifecycle != tc.wantLifecycle {
					t.Errorf("FAIL finding lifecycle %q, want %q", f.Lifecycle, tc.wantLifecycle)
				}
			}
			w := rep.Summary.StateWarning
			if !strings.Contains(w, "OTSServerUnavailable") || strings.Contains(w, "and 1 more") != tc.wantMore {
				t.Errorf("state warning %q, want the store's error (and another region's: %v)", w, tc.wantMore)
			}
			if sum, _ := sink.Summary(); sum.Counts.StateWarning != w {
				t.Errorf("summary log warning %q, report %q", sum.Counts.StateWarning, w)
			}
			if len(sink.Changes()) != 0 || rep.Summary.Changes != 0 {
				t.Errorf("%d changes written with the store failing", len(sink.Changes()))
			}
		})
	}
}

// TestLifecycleOnTablestore: the same through the Tablestore state store
// (the real SDK against the emulated Tablestore): opened, resolved, one
// range read per (account, region) and batched writes; with Tablestore down
// the findings are delivered, their lifecycle empty, with a warning.
func TestLifecycleOnTablestore(t *testing.T) {
	otsCred := cred.Credential{AccessKeyID: "STS.StateScanKey01", AccessKeySecret: "state-scan-secret-01", SecurityToken: "CAISstatescantoken01"}
	ots, err := otsemu.New(otsemu.Options{Credentials: []cred.Credential{otsCred}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ots.Close)
	store, err := statestore.New(statestore.Options{
		Location:    statestore.Location{Instance: otsemu.DefaultInstance, Table: "vpnauthz_state"},
		Endpoint:    ots.Endpoint(),
		Credentials: statestore.Credentials{AccessKeyID: otsCred.AccessKeyID, AccessKeySecret: otsCred.AccessKeySecret, SecurityToken: otsCred.SecurityToken},
		Retry:       retry.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := newLC(t, store)
	all := hangzhou + ":*"

	before := store.Stats()
	rep, sink := e.scan(t, all)
	checkChanges(t, "first scan", rep, sink, "vco-lc0000 opened >new ", "vco-lc0001 opened >new ", "vco-lc0002 opened >new ", "vco-lc0003 opened >new ")
	st := store.Stats()
	if st.GetRange-before.GetRange != 1 || st.BatchWriteRow-before.BatchWriteRow != 1 {
		t.Errorf("first scan: %d range reads, %d batch writes; want 1 and 1", st.GetRange-before.GetRange, st.BatchWriteRow-before.BatchWriteRow)
	}

	if err := e.srv.Revoke(hangzhou, vco("lc", 3), emuAuth(3).BindUid, ""); err != nil {
		t.Fatal(err)
	}
	rep, sink = e.scan(t, all)
	checkChanges(t, "revoked", rep, sink, "vco-lc0003 resolved new>resolved authorization_removed")
	if lc, _ := lifecycleOf(t, rep.Findings, failUID(1)); lc != lifecycle.LifecycleOpen {
		t.Errorf("revoked: vco-lc0001 lifecycle %q, want open", lc)
	}
	rep, sink = e.scan(t, all)
	checkChanges(t, "unchanged", rep, sink)

	ots.SetDown(true)
	rep, sink = e.scan(t, all)
	if rep.Summary.FindingsDelivered != len(rep.Findings) || len(rep.Findings) != 10 || !rep.Complete {
		t.Errorf("store down: %+v", rep.Summary)
	}
	for _, f := range rep.Findings {
		if f.Lifecycle != "" || f.FirstSeenAt != "" {
			t.Errorf("store down: lifecycle %q first seen %q, want empty", f.Lifecycle, f.FirstSeenAt)
		}
	}
	if rep.Summary.StateWarning == "" || len(sink.Changes()) != 0 {
		t.Errorf("store down: warning %q, %d changes", rep.Summary.StateWarning, len(sink.Changes()))
	}
	t.Logf("store down: state_warning %q", rep.Summary.StateWarning)

	ots.SetDown(false)
	rep, sink = e.scan(t, all)
	checkChanges(t, "store back", rep, sink)
	if lc, _ := lifecycleOf(t, rep.Findings, failUID(1)); lc != lifecycle.LifecycleOpen {
		t.Errorf("store back: vco-lc0001 lifecycle %q, want open", lc)
	}
}
