package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
)

var errDown = errors.New("state store unavailable")

// seeded returns a store where vco-1 (grant to 222) and vco-2 (grant to
// 555) were opened on day 1.
func seeded(t *testing.T) *MemStore {
	t.Helper()
	store := NewMemStore()
	res := runScan(t, store, scanSpec{at: day(1), inv: inventory{
		"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 555)}}})
	if len(res.changes) != 2 || res.err != nil {
		t.Fatalf("seed: %v, %v", changeLines(res.changes), res.err)
	}
	return store
}

// day2 revokes vco-1's grant and adds one to vco-2.
var day2 = inventory{"vco-1": nil, "vco-2": {grant("vco-2", 555), grant("vco-2", 444)}}

var day2Changes = []string{
	"opened vco-2/untrusted-account/444 >new",
	"resolved vco-1/untrusted-account/222 new>resolved authorization_removed",
}

// TestStoreFailures: whatever the store does, the scan's findings are
// annotated or left plain, the error says what failed, and no transition is
// returned that the store does not hold.
func TestStoreFailures(t *testing.T) {
	tests := []struct {
		name        string
		fs          *faultStore
		wantOpenErr string
		wantErr     string
		wantAnns    map[string]string
		wantChanges []string
		// wantStored: the untrusted-account lifecycles stored after.
		wantStored map[string]string
		wantStats  Stats // checked when set
	}{{
		name:        "load fails: degraded, findings plain, nothing written",
		fs:          &faultStore{loadErr: func(int) error { return errDown }},
		wantOpenErr: "lifecycle: read the state of 111 in cn-hangzhou: state store unavailable",
		wantAnns: map[string]string{
			label("vco-1", ua, ""): "@", label("vco-2", ua, "555"): "@", label("vco-2", ua, "444"): "@",
		},
		wantStored: map[string]string{label("vco-1", ua, "222"): "new", label("vco-2", ua, "555"): "new"},
	}, {
		name:     "write fails: error, no transition",
		fs:       &faultStore{writeErr: func(int) error { return errDown }},
		wantErr:  "lifecycle: write 3 state records of 111 in cn-hangzhou: state store unavailable",
		wantAnns: day2Anns,
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "new", label("vco-2", ua, "555"): "new",
		},
	}, {
		name: "one row fails: the others' transitions stand",
		fs: &faultStore{rowErr: func(w Write) error {
			if w.Record.BindUID == "444" {
				return errDown
			}
			return nil
		}},
		wantErr:     "lifecycle: write the state of finding " + finding.UID(ua, acct, region, "vco-2", "444", "cen-1") + ": state store unavailable",
		wantAnns:    day2Anns,
		wantChanges: day2Changes[1:],
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "resolved", label("vco-2", ua, "555"): "open",
		},
	}, {
		name:        "the store answers too few results",
		fs:          &faultStore{results: func(_ int, errs []error) []error { return errs[1:] }},
		wantErr:     "lifecycle: write 3 state records of 111 in cn-hangzhou: the store answered 2 results for 3 writes",
		wantAnns:    day2Anns,
		wantChanges: nil,
		// The rows were written, but a store that cannot say which is
		// not believed: a later scan settles the state.
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "resolved", label("vco-2", ua, "555"): "open", label("vco-2", ua, "444"): "new",
		},
	}, {
		name:        "conflicts every time: bounded, reported",
		fs:          &faultStore{rowErr: func(w Write) error { return fmt.Errorf("row %s: %w", w.Record.FindingUID, ErrConflict) }},
		wantErr:     "lifecycle: 3 state records of 111 in cn-hangzhou were still being changed by another invocation after 3 attempts; the next scan settles them",
		wantAnns:    day2Anns,
		wantChanges: nil,
		wantStored:  map[string]string{label("vco-1", ua, "222"): "new", label("vco-2", ua, "555"): "new"},
		wantStats:   Stats{Loads: 3, WriteCalls: 3, Conflicts: 9},
	}, {
		name: "reload after a conflict fails",
		fs: &faultStore{
			loadErr: func(n int) error {
				if n > 1 {
					return errDown
				}
				return nil
			},
			rowErr: func(w Write) error {
				if w.Record.ConnectionID == "vco-1" {
					return ErrConflict
				}
				return nil
			},
		},
		wantErr:     "lifecycle: read the state of 111 in cn-hangzhou again after a conflict: state store unavailable",
		wantAnns:    day2Anns,
		wantChanges: day2Changes[:1],
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "new", label("vco-2", ua, "555"): "open", label("vco-2", ua, "444"): "new",
		},
		wantStats: Stats{Loads: 2, WriteCalls: 1, RowsWritten: 2, Conflicts: 1},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := seeded(t)
			tc.fs.Store = mem
			tr, err := Open(context.Background(), tc.fs, acct, region, "scan-2", finding.TriggerTimer, day(2))
			if got := errString(err); got != tc.wantOpenErr {
				t.Errorf("Open error = %q, want %q", got, tc.wantOpenErr)
			}
			if tr == nil {
				t.Fatal("Open returned no tracker")
			}
			res := playScan(tr, scanSpec{at: day(2), inv: day2})
			changes, err := tr.Finish(context.Background(), Listing{Complete: true, ConnectionIDs: []string{"vco-1", "vco-2"}})
			if got := errString(err); got != tc.wantErr {
				t.Errorf("Finish error =\n %q\nwant\n %q", got, tc.wantErr)
			}
			diffMap(t, "annotations", res.anns, tc.wantAnns)
			diffLines(t, "changes", changeLines(changes), tc.wantChanges)
			got := map[string]string{}
			for l, r := range stored(t, mem) {
				got[l] = r.Lifecycle
			}
			diffMap(t, "stored", got, tc.wantStored)
			if st := tr.Stats(); tc.wantStats != (Stats{}) && st != tc.wantStats {
				t.Errorf("stats %+v, want %+v", st, tc.wantStats)
			}
		})
	}
}

var day2Anns = map[string]string{
	label("vco-1", ua, ""):    "pass@",
	label("vco-2", ua, "555"): "open@" + stamp(day(1)),
	label("vco-2", ua, "444"): "new@" + stamp(day(2)),
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A write that failed leaves the state as it was: the next scan makes the
// transitions the failed one could not.
func TestFailedWriteIsMadeUpNextScan(t *testing.T) {
	mem := seeded(t)
	fs := &faultStore{Store: mem, writeErr: func(int) error { return errDown }}
	if res := runScan(t, fs, scanSpec{at: day(2), inv: day2}); res.err == nil || len(res.changes) != 0 {
		t.Fatalf("failing write: %v, %v", changeLines(res.changes), res.err)
	}
	res := runScan(t, mem, scanSpec{at: day(3), inv: day2})
	if res.err != nil {
		t.Fatal(res.err)
	}
	diffLines(t, "next scan", changeLines(res.changes), day2Changes)
}

// TestConflictRecomputed: invocation B writes between A's read and A's
// write. A's writes on those rows fail their condition; A reads again and
// recomputes: a transition B made is not made again, and where A saw
// something newer than B, A's view is what is stored.
func TestConflictRecomputed(t *testing.T) {
	tests := []struct {
		name         string
		aAt, bAt     time.Time
		aInv, bInv   inventory
		wantA, wantB []string
		wantStored   map[string]string
	}{{
		name: "both saw the revocation: resolved once",
		aAt:  day(2).Add(time.Second), bAt: day(2),
		aInv: day2, bInv: day2,
		wantB: day2Changes,
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "resolved " + stamp(day(2)),
			label("vco-2", ua, "555"): "open " + stamp(day(2).Add(time.Second)),
			label("vco-2", ua, "444"): "open " + stamp(day(2).Add(time.Second)),
		},
	}, {
		name: "B older saw the revocation, A newer saw a re-grant: reopened by A",
		aAt:  day(2).Add(time.Minute), bAt: day(2),
		aInv: inventory{"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 555)}}, bInv: day2,
		wantA: []string{"reopened vco-1/untrusted-account/222 resolved>reopened"},
		wantB: day2Changes,
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "reopened " + stamp(day(2).Add(time.Minute)),
			label("vco-2", ua, "555"): "open " + stamp(day(2).Add(time.Minute)),
			label("vco-2", ua, "444"): "new " + stamp(day(2)),
		},
	}, {
		name: "A older than B: A's stale rows are dropped",
		aAt:  day(2), bAt: day(2).Add(time.Minute),
		aInv: day2, bInv: inventory{"vco-1": {grant("vco-1", 222)}, "vco-2": {grant("vco-2", 555)}},
		wantA: []string{"opened vco-2/untrusted-account/444 >new"}, // B never saw 444: no conflict there
		wantStored: map[string]string{
			label("vco-1", ua, "222"): "open " + stamp(day(2).Add(time.Minute)),
			label("vco-2", ua, "555"): "open " + stamp(day(2).Add(time.Minute)),
			label("vco-2", ua, "444"): "new " + stamp(day(2)),
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := seeded(t)
			b, err := Open(context.Background(), mem, acct, region, "scan-b", finding.TriggerEvent, tc.bAt)
			if err != nil {
				t.Fatal(err)
			}
			var bChanges []Change
			fs := &faultStore{Store: mem, beforeWrite: func(n int) {
				if n == 1 { // B writes between A's read and A's first write
					playScan(b, scanSpec{at: tc.bAt, inv: tc.bInv})
					var err error
					if bChanges, err = b.Finish(context.Background(), Listing{}); err != nil {
						t.Errorf("B: %v", err)
					}
				}
			}}
			a, err := Open(context.Background(), fs, acct, region, "scan-a", finding.TriggerTimer, tc.aAt)
			if err != nil {
				t.Fatal(err)
			}
			playScan(a, scanSpec{at: tc.aAt, inv: tc.aInv})
			aChanges, err := a.Finish(context.Background(), Listing{})
			if err != nil {
				t.Fatalf("A: %v", err)
			}
			diffLines(t, "A's changes", changeLines(aChanges), tc.wantA)
			diffLines(t, "B's changes", changeLines(bChanges), tc.wantB)
			if st := a.Stats(); st.Conflicts == 0 || st.Loads != 2 || st.WriteCalls < 1 || st.WriteCalls > 2 {
				t.Errorf("A's state calls %+v, want conflicts, one reload and at most two write calls", st)
			}
			got := map[string]string{}
			for l, r := range stored(t, mem) {
				got[l] = r.Lifecycle + " " + stamp(r.LastSeenAt)
			}
			diffMap(t, "stored", got, tc.wantStored)
		})
	}
}

func TestTrackerUse(t *testing.T) {
	ctx := context.Background()
	fs := findingsOf(basePolicy(), "vco-1", []policy.Authorization{grant("vco-1", 222)}, day(1))

	t.Run("no store: stateless", func(t *testing.T) {
		tr, err := Open(ctx, nil, acct, region, "s", "timer", day(1))
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range tr.Connection("vco-1", fs) {
			if a != (Annotation{FindingUID: fs[i].FindingUID}) {
				t.Errorf("stateless annotation %+v", a)
			}
		}
		tr.ConnectionDeleted("vco-2")
		if cs, err := tr.Finish(ctx, Listing{Complete: true}); cs != nil || err != nil {
			t.Errorf("Finish = %v, %v", cs, err)
		}
		if st := tr.Stats(); st != (Stats{}) {
			t.Errorf("stateless tracker made state calls: %+v", st)
		}
	})

	for _, tc := range []struct{ account, region, want string }{
		{"", region, `lifecycle: no account id for the state of region "cn-hangzhou"`},
		{acct, "", "lifecycle: no region for the state of account 111"},
	} {
		t.Run("missing key: "+tc.want, func(t *testing.T) {
			mem := NewMemStore()
			tr, err := Open(ctx, mem, tc.account, tc.region, "s", "timer", day(1))
			if errString(err) != tc.want {
				t.Errorf("Open error = %q, want %q", errString(err), tc.want)
			}
			if a := tr.Connection("vco-1", fs); a[0].Lifecycle != "" {
				t.Errorf("degraded annotation %+v", a[0])
			}
			if cs, err := tr.Finish(ctx, Listing{}); cs != nil || err != nil {
				t.Errorf("Finish = %v, %v", cs, err)
			}
		})
	}

	t.Run("Finish twice; Connection after Finish", func(t *testing.T) {
		mem := NewMemStore()
		tr, err := Open(ctx, mem, acct, region, "s", "timer", day(1))
		if err != nil {
			t.Fatal(err)
		}
		if cs, err := tr.Finish(ctx, Listing{}); len(cs) != 0 || err != nil {
			t.Fatalf("first Finish = %v, %v", cs, err)
		}
		if _, err := tr.Finish(ctx, Listing{}); errString(err) != "lifecycle: Finish called twice" {
			t.Errorf("second Finish error = %v", err)
		}
		anns := tr.Connection("vco-1", fs)
		if anns[0] != (Annotation{FindingUID: fs[0].FindingUID}) {
			t.Errorf("annotation after Finish %+v", anns[0])
		}
		tr.ConnectionDeleted("vco-1")
		if recs, _ := mem.Load(ctx, acct, region); len(recs) != 0 {
			t.Errorf("Connection after Finish stored %d records", len(recs))
		}
	})

	t.Run("observed_at missing or malformed: the scan's time", func(t *testing.T) {
		mem := NewMemStore()
		tr, err := Open(ctx, mem, acct, region, "s", "timer", day(4).Add(1500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]finding.Finding(nil), fs...)
		bad[0].ObservedAt = "yesterday"
		anns := tr.Connection("vco-1", bad)
		want := stamp(day(4).Add(time.Second)) // to the second, as observed_at is
		if anns[0].Lifecycle != LifecycleNew || anns[0].FirstSeenAt != want {
			t.Errorf("annotation %+v, want new at %s", anns[0], want)
		}
		cs, err := tr.Finish(ctx, Listing{})
		if err != nil || len(cs) != 1 || cs[0].ObservedAt != want || cs[0].FirstSeenAt != want {
			t.Errorf("Finish = %+v, %v", cs, err)
		}
	})

	t.Run("PASS findings and an unchanged resolved record cost no write", func(t *testing.T) {
		mem := NewMemStore()
		fs := &faultStore{Store: mem}
		res := runScan(t, fs, scanSpec{at: day(1), inv: inventory{"vco-1": nil, "vco-2": {grant("vco-2", 333)}}})
		if res.stats != (Stats{Loads: 1}) || len(res.changes) != 0 {
			t.Errorf("all-PASS scan: %+v, %v", res.stats, changeLines(res.changes))
		}
		runScan(t, fs, scanSpec{at: day(2), inv: inventory{"vco-1": {grant("vco-1", 222)}}})
		runScan(t, fs, scanSpec{at: day(3), inv: inventory{"vco-1": nil}})
		res = runScan(t, fs, scanSpec{at: day(4), inv: inventory{"vco-1": nil}})
		if res.stats != (Stats{Loads: 1}) {
			t.Errorf("scan over a resolved record: %+v, want one load and no write", res.stats)
		}
	})
}

// ChangeKeys, Values and the JSON keys agree: each value sits under its key.
func TestChangeKeys(t *testing.T) {
	var c Change
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		v.Field(i).SetString("value of " + v.Type().Field(i).Tag.Get("json"))
	}
	vals := c.Values()
	if len(vals) != len(ChangeKeys) || len(vals) != 16 {
		t.Fatalf("%d values, %d keys, want 16 of each", len(vals), len(ChangeKeys))
	}
	for i, k := range ChangeKeys {
		if vals[i] != "value of "+k {
			t.Errorf("value %d under key %s is %q", i, k, vals[i])
		}
	}
}
