package lifecycle

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
)

const ua = finding.RuleUntrustedAccount

// TestLifecycleStory runs scans one after another on one store, with the
// cloud changing in between, and checks each scan's transitions and
// annotations: every case of the lifecycle in the order a team meets them.
func TestLifecycleStory(t *testing.T) {
	d := func(n int) string { return stamp(day(n)) }
	exceptVco3 := &policy.Policy{TrustedAccountIDs: []string{"333"}, Exceptions: []policy.Exception{{
		VpnConnectionID: "vco-3", BindUID: "444", Reason: "migration", Expires: day(3).Truncate(24 * time.Hour),
	}}}
	trust444 := &policy.Policy{TrustedAccountIDs: []string{"333", "444"}}
	afterDeletion := inventory{"vco-1": nil, "vco-2": {grant("vco-2", 333)}, "vco-3": {grant("vco-3", 444)}}

	steps := []struct {
		name        string
		scan        scanSpec
		wantChanges []string
		wantAnns    map[string]string
	}{{
		name: "first scan: untrusted grants are opened",
		scan: scanSpec{at: day(1), listing: "complete", inv: inventory{
			"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 333)}, "vco-3": {grant("vco-3", 444)}}},
		wantChanges: []string{
			"opened vco-1/untrusted-account/222 >new",
			"opened vco-3/untrusted-account/444 >new",
		},
		wantAnns: map[string]string{
			label("vco-1", ua, "222"): "new@" + d(1),
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "new@" + d(1),
		},
	}, {
		name: "unchanged: open, no transition",
		scan: scanSpec{at: day(2), listing: "complete", inv: inventory{
			"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 333)}, "vco-3": {grant("vco-3", 444)}}},
		wantChanges: nil,
		wantAnns: map[string]string{
			label("vco-1", ua, "222"): "open@" + d(1),
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "open@" + d(1),
		},
	}, {
		name: "revoked, excepted, and a new connection",
		scan: scanSpec{at: day(3), listing: "complete", pol: exceptVco3, inv: inventory{
			"vco-1": nil, "vco-2": {grant("vco-2", 333)}, "vco-3": {grant("vco-3", 444)}, "vco-4": {grant("vco-4", 555)}}},
		wantChanges: []string{
			"opened vco-4/untrusted-account/555 >new",
			"resolved vco-1/untrusted-account/222 open>resolved authorization_removed",
			"suppressed vco-3/untrusted-account/444 open>suppressed",
		},
		wantAnns: map[string]string{
			label("vco-1", ua, ""):    "pass@",
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "suppressed@" + d(1),
			label("vco-4", ua, "555"): "new@" + d(3),
		},
	}, {
		name: "re-granted, and the exception expired",
		scan: scanSpec{at: day(4), listing: "complete", pol: exceptVco3, inv: inventory{
			"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 333)}, "vco-3": {grant("vco-3", 444)}, "vco-4": {grant("vco-4", 555)}}},
		wantChanges: []string{
			"reopened vco-1/untrusted-account/222 resolved>reopened",
			"unsuppressed vco-3/untrusted-account/444 suppressed>open",
		},
		wantAnns: map[string]string{
			label("vco-1", ua, "222"): "reopened@" + d(1), // first seen kept across the reopening
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "open@" + d(1),
			label("vco-4", ua, "555"): "open@" + d(3),
		},
	}, {
		name: "deleted while the listing fails, revoked while the read fails: nothing resolved",
		scan: scanSpec{at: day(5), listing: "failed", inv: afterDeletion, failed: []string{"vco-1"}},
		wantAnns: map[string]string{
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "open@" + d(1),
		},
	}, {
		name:     "a scan of one connection leaves the others untouched",
		scan:     scanSpec{at: day(6), inv: afterDeletion, read: []string{"vco-2"}},
		wantAnns: map[string]string{label("vco-2", ua, "333"): "pass@"},
	}, {
		name: "complete listing and a successful read resolve what they cover",
		scan: scanSpec{at: day(7), listing: "complete", inv: afterDeletion},
		wantChanges: []string{
			"resolved vco-1/untrusted-account/222 reopened>resolved authorization_removed",
			"resolved vco-4/untrusted-account/555 open>resolved connection_deleted",
		},
		wantAnns: map[string]string{
			label("vco-1", ua, ""):    "pass@",
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "open@" + d(1),
		},
	}, {
		name: "trusted now: passed; and one more connection opened",
		scan: scanSpec{at: day(8), listing: "complete", pol: trust444, inv: inventory{
			"vco-1": nil, "vco-2": {grant("vco-2", 333)}, "vco-3": {grant("vco-3", 444)}, "vco-5": {grant("vco-5", 222)}}},
		wantChanges: []string{
			"opened vco-5/untrusted-account/222 >new",
			"resolved vco-3/untrusted-account/444 open>resolved passed",
		},
		wantAnns: map[string]string{
			label("vco-1", ua, ""):    "pass@",
			label("vco-2", ua, "333"): "pass@",
			label("vco-3", ua, "444"): "resolved@" + d(1),
			label("vco-5", ua, "222"): "new@" + d(8),
		},
	}, {
		name:        "an event reaches a deleted connection",
		scan:        scanSpec{at: day(9), inv: afterDeletion, read: []string{"vco-5"}},
		wantChanges: []string{"resolved vco-5/untrusted-account/222 new>resolved connection_deleted"},
		wantAnns:    map[string]string{},
	}, {
		name:     "the same event delivered again: nothing twice",
		scan:     scanSpec{at: day(9).Add(time.Minute), inv: afterDeletion, read: []string{"vco-5"}},
		wantAnns: map[string]string{},
	}}

	store := NewMemStore()
	for _, st := range steps {
		res := runScan(t, store, st.scan)
		if res.err != nil {
			t.Fatalf("%s: Finish: %v", st.name, res.err)
		}
		t.Run(st.name, func(t *testing.T) {
			diffLines(t, "changes", changeLines(res.changes), st.wantChanges)
			diffMap(t, "annotations", res.anns, st.wantAnns)
			if res.stats.Loads != 1 || res.stats.WriteCalls > 1 || res.stats.Conflicts != 0 {
				t.Errorf("state calls %+v, want one load and at most one write call", res.stats)
			}
		})
	}

	// What the store holds at the end.
	want := map[string]string{
		label("vco-1", ua, "222"): "resolved authorization_removed FAIL first " + d(1) + " last " + d(7),
		label("vco-3", ua, "444"): "resolved passed FAIL first " + d(1) + " last " + d(8),
		label("vco-4", ua, "555"): "resolved connection_deleted FAIL first " + d(3) + " last " + d(7),
		label("vco-5", ua, "222"): "resolved connection_deleted FAIL first " + d(8) + " last " + d(9),
	}
	got := map[string]string{}
	for l, r := range stored(t, store) {
		got[l] = r.Lifecycle + " " + r.ResolvedReason + " " + r.Status + " first " + stamp(r.FirstSeenAt) + " last " + stamp(r.LastSeenAt)
		if !r.ResolvedAt.Equal(r.LastSeenAt) {
			t.Errorf("%s resolved at %v, last seen %v", l, r.ResolvedAt, r.LastSeenAt)
		}
	}
	diffMap(t, "stored", got, want)
}

// TestScopeResolvesOnlyWhatWasRead: each scan starts from the same stored
// state (vco-1 and vco-2 open, vco-1's grant revoked and vco-2 deleted in
// the cloud) and covers a different part of it.
func TestScopeResolvesOnlyWhatWasRead(t *testing.T) {
	cloud := inventory{"vco-1": nil, "vco-3": {grant("vco-3", 333)}}
	tests := []struct {
		name string
		scan scanSpec
		want []string
	}{
		{"everything read, listing complete", scanSpec{listing: "complete", inv: cloud}, []string{
			"resolved vco-1/untrusted-account/222 new>resolved authorization_removed",
			"resolved vco-2/untrusted-account/222 new>resolved connection_deleted",
		}},
		{"listing failed", scanSpec{listing: "failed", inv: cloud}, []string{
			"resolved vco-1/untrusted-account/222 new>resolved authorization_removed",
		}},
		{"read of vco-1 failed, listing complete", scanSpec{listing: "complete", inv: cloud, failed: []string{"vco-1"}}, []string{
			"resolved vco-2/untrusted-account/222 new>resolved connection_deleted",
		}},
		{"every read failed, listing complete", scanSpec{listing: "complete", inv: cloud, failed: []string{"vco-1", "vco-3"}}, []string{
			"resolved vco-2/untrusted-account/222 new>resolved connection_deleted",
		}},
		{"narrow scope: vco-3 only", scanSpec{inv: cloud, read: []string{"vco-3"}}, nil},
		{"narrow scope: vco-1 only", scanSpec{inv: cloud, read: []string{"vco-1"}}, []string{
			"resolved vco-1/untrusted-account/222 new>resolved authorization_removed",
		}},
		{"nothing read (assume role failed)", scanSpec{inv: cloud, read: []string{}}, nil},
		{"deadline: nothing read, listing complete", scanSpec{listing: "complete", inv: cloud, read: []string{}}, []string{
			"resolved vco-2/untrusted-account/222 new>resolved connection_deleted",
		}},
		{"event on vco-2: deleted", scanSpec{inv: cloud, read: []string{"vco-2"}}, []string{
			"resolved vco-2/untrusted-account/222 new>resolved connection_deleted",
		}},
		{"deleted by event but read in the same scan: the read wins", scanSpec{inv: inventory{"vco-2": {grant("vco-2", 222)}},
			read: []string{"vco-2"}, deleted: []string{"vco-2"}}, nil},
		{"listing complete but naming vco-2", scanSpec{listing: "complete", read: []string{},
			inv: inventory{"vco-1": nil, "vco-2": nil}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemStore()
			if res := runScan(t, store, scanSpec{at: day(1), listing: "complete", inv: inventory{
				"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 222)}}}); len(res.changes) != 2 || res.err != nil {
				t.Fatalf("seed scan: %v, %v", changeLines(res.changes), res.err)
			}
			tc.scan.at = day(2)
			res := runScan(t, store, tc.scan)
			if res.err != nil {
				t.Fatal(res.err)
			}
			diffLines(t, "changes", changeLines(res.changes), tc.want)
			// What was not resolved is still open; what was not read is untouched.
			read := tc.scan.read
			if read == nil {
				read = slices.Sorted(maps.Keys(tc.scan.inv))
			}
			for l, r := range stored(t, store) {
				resolved := slices.ContainsFunc(tc.want, func(s string) bool { return strings.Contains(s, " "+l+" ") })
				if resolved != (r.Lifecycle == LifecycleResolved) {
					t.Errorf("%s stored %s; resolved by this scan: %v", l, r.Lifecycle, resolved)
				}
				_, exists := tc.scan.inv[r.ConnectionID]
				wasRead := exists && slices.Contains(read, r.ConnectionID) && !slices.Contains(tc.scan.failed, r.ConnectionID)
				if !resolved && !wasRead && (r.LastScanID != "scan-0302" || !r.LastSeenAt.Equal(day(1)) || r.Revision != 1) {
					t.Errorf("%s changed by a scan that did not read it: %+v", l, r)
				}
			}
		})
	}
}

// An ERROR among a connection's findings makes the read a failed one, even
// if the caller passes it in: nothing absent is resolved.
func TestConnectionWithErrorResolvesNothing(t *testing.T) {
	store := NewMemStore()
	runScan(t, store, scanSpec{at: day(1), inv: inventory{"vco-1": {grant("vco-1", 222), grant("vco-1", 555)}}})

	tr, err := Open(context.Background(), store, acct, region, "s2", finding.TriggerTimer, day(2))
	if err != nil {
		t.Fatal(err)
	}
	fs := append(findingsOf(basePolicy(), "vco-1", []policy.Authorization{grant("vco-1", 222)}, day(2)), errorFinding("vco-1", day(2)))
	anns := tr.Connection("vco-1", fs)
	if got := anns[len(anns)-1]; got.Lifecycle != "" || got.FirstSeenAt != "" || got.FindingUID != fs[len(fs)-1].FindingUID {
		t.Errorf("ERROR annotated %+v, want only its uid", got)
	}
	if anns[0].Lifecycle != LifecycleOpen {
		t.Errorf("FAIL read alongside annotated %q, want open", anns[0].Lifecycle)
	}
	changes, err := tr.Finish(context.Background(), Listing{})
	if err != nil || len(changes) != 0 {
		t.Errorf("Finish = %v, %v; want nothing resolved", changeLines(changes), err)
	}
	if r := stored(t, store)[label("vco-1", ua, "555")]; r.Lifecycle != LifecycleNew {
		t.Errorf("vco-1/555 stored %s, want still new", r.Lifecycle)
	}
}

// A rule disabled between scans leaves its findings behind while their
// authorizations remain: they resolve as passed, not as revoked.
func TestRuleDisabledResolvesAsPassed(t *testing.T) {
	store := NewMemStore()
	strict := &policy.Policy{TrustedAccountIDs: []string{"333"}, TrustedCENIDs: []string{"cen-9"}}
	inv := inventory{"vco-1": {grant("vco-1", 333)}}
	res := runScan(t, store, scanSpec{at: day(1), inv: inv, pol: strict})
	diffLines(t, "seed", changeLines(res.changes), []string{"opened vco-1/untrusted-cen/333 >new"})

	res = runScan(t, store, scanSpec{at: day(2), inv: inv})
	diffLines(t, "changes", changeLines(res.changes), []string{"resolved vco-1/untrusted-cen/333 new>resolved passed"})

	res = runScan(t, store, scanSpec{at: day(3), inv: inv, pol: strict})
	diffLines(t, "re-enabled", changeLines(res.changes), []string{"reopened vco-1/untrusted-cen/333 resolved>reopened"})
}

// TestOlderObservation: a scan whose observations are older than what the
// store reflects moves nothing, neither last_seen_at nor a lifecycle.
func TestOlderObservation(t *testing.T) {
	tests := []struct {
		name string
		inv  inventory
		list string
	}{
		{"still failing", inventory{"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 222)}}, ""},
		{"revoked", inventory{"vco-1": nil, "vco-2": nil}, ""},
		{"deleted", inventory{}, "complete"},
		{"excepted", inventory{"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 222)}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemStore()
			seed := inventory{"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 222)}}
			runScan(t, store, scanSpec{at: day(1), inv: seed})
			runScan(t, store, scanSpec{at: day(5), inv: seed})
			before := stored(t, store)

			pol := basePolicy()
			if tc.name == "excepted" {
				pol.Exceptions = []policy.Exception{{VpnConnectionID: "*", Expires: day(30)}}
			}
			read := []string{"vco-1", "vco-2"}
			res := runScan(t, store, scanSpec{at: day(3), inv: tc.inv, pol: pol, read: read, listing: tc.list})
			if res.err != nil || len(res.changes) != 0 {
				t.Errorf("older scan: changes %v, err %v; want none", changeLines(res.changes), res.err)
			}
			if res.stats.RowsWritten != 0 {
				t.Errorf("older scan wrote %d rows", res.stats.RowsWritten)
			}
			after := stored(t, store)
			for l, r := range after {
				if r != before[l] {
					t.Errorf("%s changed by an older scan:\n %+v\n→%+v", l, before[l], r)
				}
			}
		})
	}
}

// TestSameScanTwiceConcurrently: two invocations of the same scan (an FC
// retry racing the original, or a timer and an event on the same
// connections) read the same state, observe the same cloud and write
// together: every transition is made exactly once, whatever the interleaving.
func TestSameScanTwiceConcurrently(t *testing.T) {
	seed := inventory{"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 222)}, "vco-3": {grant("vco-3", 222)}}
	next := inventory{"vco-1": nil, "vco-3": {grant("vco-3", 222), grant("vco-3", 555)}, "vco-4": {grant("vco-4", 444)}}
	want := []string{
		"opened vco-3/untrusted-account/555 >new",
		"opened vco-4/untrusted-account/444 >new",
		"resolved vco-1/untrusted-account/222 new>resolved authorization_removed",
		"resolved vco-2/untrusted-account/222 new>resolved connection_deleted",
	}
	for _, offset := range []time.Duration{0, time.Second, -time.Second} {
		for range 20 {
			store := NewMemStore()
			runScan(t, store, scanSpec{at: day(1), inv: seed})
			spec := scanSpec{at: day(2), scanID: "scan-2", inv: next, listing: "complete"}
			twin := spec
			twin.at = spec.at.Add(offset)
			a, errA := Open(context.Background(), store, acct, region, "scan-2", "timer", spec.at)
			b, errB := Open(context.Background(), store, acct, region, "scan-2", "timer", twin.at)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			type out struct {
				changes []Change
				err     error
			}
			done := make(chan out, 2)
			for _, run := range []struct {
				tr *Tracker
				s  scanSpec
			}{{a, spec}, {b, twin}} {
				go func() {
					playScan(run.tr, run.s)
					cs, err := run.tr.Finish(context.Background(), listingOf(run.s))
					done <- out{cs, err}
				}()
			}
			var all []Change
			for range 2 {
				o := <-done
				if o.err != nil {
					t.Fatalf("Finish: %v", o.err)
				}
				all = append(all, o.changes...)
			}
			if got := changeLines(all); !slices.Equal(got, want) {
				t.Fatalf("offset %v: transitions of both invocations:\n got  %s\n want %s", offset,
					strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			// last_seen_at holds the newer of the two observations.
			latest := maxTime(spec.at, twin.at)
			if r := stored(t, store)[label("vco-3", ua, "222")]; !r.LastSeenAt.Equal(latest) {
				t.Errorf("offset %v: vco-3/222 last seen %v, want %v", offset, r.LastSeenAt, latest)
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
