package lifecycle

import (
	"fmt"
	"testing"
	"time"

	"vpnauthz/internal/finding"
)

// TestApply walks every stored lifecycle through every observation, fresh
// and stale, and checks the transition, the annotation and what is stored.
func TestApply(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	first, last, now := t0, t0.Add(24*time.Hour), t0.Add(48*time.Hour)
	staleAfterFirst, staleBeforeFirst := t0.Add(time.Hour), t0.Add(-time.Hour)
	m := scanMeta{accountID: "111", region: "cn-hangzhou", scanID: "scan-2", trigger: "timer"}
	about := subject{connectionID: "vco-1", ruleID: finding.RuleUntrustedAccount, severity: "high",
		bindUID: "222", bindInstance: "cen-1", ownerAccountID: "111"}

	stored := func(lc string) state {
		if lc == "" {
			return state{}
		}
		r := Record{AccountID: "111", Region: "cn-hangzhou", FindingUID: "uid-1", ConnectionID: "vco-1",
			RuleID: finding.RuleUntrustedAccount, Severity: "high", BindUID: "222", BindInstance: "cen-1",
			Status: finding.StatusFail, Lifecycle: lc, FirstSeenAt: first, LastSeenAt: last, LastScanID: "scan-1",
			Revision: 3}
		switch lc {
		case LifecycleSuppressed:
			r.Status = finding.StatusSuppressed
		case LifecycleResolved:
			r.ResolvedAt, r.ResolvedReason = last, ReasonAuthorizationRemoved
		}
		return state{r, true}
	}
	seen := func(status string, at time.Time) observation {
		return observation{uid: "uid-1", at: at, status: status, about: about}
	}
	gone := func(reason string, at time.Time) observation {
		return observation{uid: "uid-1", at: at, reason: reason}
	}
	const (
		fail = finding.StatusFail
		supp = finding.StatusSuppressed
		pass = finding.StatusPass
	)
	f, n := first.Format(time.RFC3339), now.Format(time.RFC3339)

	tests := []struct {
		from string // stored lifecycle; "" = not stored
		obs  observation
		// wantChange is "change previous>lifecycle reason", "" for none.
		wantChange string
		wantAnn    string // "lifecycle@first_seen_at"
		wantStored string // lifecycle stored after; "-" = nothing written
	}{
		{"", seen(fail, now), "opened >new ", "new@" + n, LifecycleNew},
		{"", seen(supp, now), "suppressed >suppressed ", "suppressed@" + n, LifecycleSuppressed},
		{"", seen(pass, now), "", "pass@", "-"},
		{"", gone(ReasonAuthorizationRemoved, now), "", "@", "-"},
		{"", gone(ReasonConnectionDeleted, now), "", "@", "-"},

		{LifecycleNew, seen(fail, now), "", "open@" + f, LifecycleOpen},
		{LifecycleNew, seen(supp, now), "suppressed new>suppressed ", "suppressed@" + f, LifecycleSuppressed},
		{LifecycleNew, seen(pass, now), "resolved new>resolved passed", "resolved@" + f, LifecycleResolved},
		{LifecycleNew, gone(ReasonAuthorizationRemoved, now), "resolved new>resolved authorization_removed", "@", LifecycleResolved},
		{LifecycleNew, gone(ReasonConnectionDeleted, now), "resolved new>resolved connection_deleted", "@", LifecycleResolved},

		{LifecycleOpen, seen(fail, now), "", "open@" + f, LifecycleOpen},
		{LifecycleOpen, seen(supp, now), "suppressed open>suppressed ", "suppressed@" + f, LifecycleSuppressed},
		{LifecycleOpen, seen(pass, now), "resolved open>resolved passed", "resolved@" + f, LifecycleResolved},
		{LifecycleOpen, gone(ReasonAuthorizationRemoved, now), "resolved open>resolved authorization_removed", "@", LifecycleResolved},
		{LifecycleOpen, gone(ReasonConnectionDeleted, now), "resolved open>resolved connection_deleted", "@", LifecycleResolved},

		{LifecycleReopened, seen(fail, now), "", "open@" + f, LifecycleOpen},
		{LifecycleReopened, seen(supp, now), "suppressed reopened>suppressed ", "suppressed@" + f, LifecycleSuppressed},
		{LifecycleReopened, seen(pass, now), "resolved reopened>resolved passed", "resolved@" + f, LifecycleResolved},
		{LifecycleReopened, gone(ReasonAuthorizationRemoved, now), "resolved reopened>resolved authorization_removed", "@", LifecycleResolved},
		{LifecycleReopened, gone(ReasonConnectionDeleted, now), "resolved reopened>resolved connection_deleted", "@", LifecycleResolved},

		{LifecycleSuppressed, seen(fail, now), "unsuppressed suppressed>open ", "open@" + f, LifecycleOpen},
		{LifecycleSuppressed, seen(supp, now), "", "suppressed@" + f, LifecycleSuppressed},
		{LifecycleSuppressed, seen(pass, now), "resolved suppressed>resolved passed", "resolved@" + f, LifecycleResolved},
		{LifecycleSuppressed, gone(ReasonAuthorizationRemoved, now), "resolved suppressed>resolved authorization_removed", "@", LifecycleResolved},
		{LifecycleSuppressed, gone(ReasonConnectionDeleted, now), "resolved suppressed>resolved connection_deleted", "@", LifecycleResolved},

		{LifecycleResolved, seen(fail, now), "reopened resolved>reopened ", "reopened@" + f, LifecycleReopened},
		{LifecycleResolved, seen(supp, now), "suppressed resolved>suppressed ", "suppressed@" + f, LifecycleSuppressed},
		{LifecycleResolved, seen(pass, now), "", "resolved@" + f, "-"},
		{LifecycleResolved, gone(ReasonAuthorizationRemoved, now), "", "@", "-"},
		{LifecycleResolved, gone(ReasonConnectionDeleted, now), "", "@", "-"},

		// Stale: observed after the first sight but before what the record
		// last reflects. Labelled by its own status; nothing moves.
		{LifecycleNew, seen(pass, staleAfterFirst), "", "resolved@" + f, "-"},
		{LifecycleOpen, seen(supp, staleAfterFirst), "", "suppressed@" + f, "-"},
		{LifecycleOpen, gone(ReasonAuthorizationRemoved, staleAfterFirst), "", "@", "-"},
		{LifecycleSuppressed, seen(fail, staleAfterFirst), "", "open@" + f, "-"},
		{LifecycleSuppressed, gone(ReasonConnectionDeleted, staleAfterFirst), "", "@", "-"},
		{LifecycleResolved, seen(fail, staleAfterFirst), "", "open@" + f, "-"},
		{LifecycleResolved, seen(supp, staleAfterFirst), "", "suppressed@" + f, "-"},
		{LifecycleReopened, seen(pass, staleAfterFirst), "", "resolved@" + f, "-"},
		// Stale and before the record's first sight: as if not stored.
		{LifecycleOpen, seen(fail, staleBeforeFirst), "", "new@" + staleBeforeFirst.Format(time.RFC3339), "-"},
		{LifecycleResolved, seen(supp, staleBeforeFirst), "", "suppressed@" + staleBeforeFirst.Format(time.RFC3339), "-"},
		{LifecycleOpen, seen(pass, staleBeforeFirst), "", "pass@", "-"},
		// Observed at the very second the record was last written: not stale.
		{LifecycleOpen, seen(pass, last), "resolved open>resolved passed", "resolved@" + f, LifecycleResolved},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s/%s%s@%s", or(tc.from, "none"), tc.obs.status, tc.obs.reason, tc.obs.at.Format("02T15"))
		t.Run(name, func(t *testing.T) {
			from := stored(tc.from)
			next, c, ann := m.apply(from, tc.obs)

			gotChange := ""
			if c != nil {
				gotChange = fmt.Sprintf("%s %s>%s %s", c.Change, c.PreviousLifecycle, c.Lifecycle, c.ResolvedReason)
			}
			if gotChange != tc.wantChange {
				t.Errorf("change = %q, want %q", gotChange, tc.wantChange)
			}
			if got := ann.Lifecycle + "@" + ann.FirstSeenAt; got != tc.wantAnn {
				t.Errorf("annotation = %q, want %q", got, tc.wantAnn)
			}
			if ann.Lifecycle != "" && ann.FindingUID != "uid-1" {
				t.Errorf("annotation uid = %q, want uid-1", ann.FindingUID)
			}

			wrote := next.exists && !(from.exists && sameRecord(from.rec, next.rec))
			if tc.wantStored == "-" {
				if wrote {
					t.Fatalf("stored %+v, want nothing written", next.rec)
				}
				return
			}
			if !wrote {
				t.Fatalf("nothing written, want lifecycle %s stored", tc.wantStored)
			}
			r := next.rec
			if r.Lifecycle != tc.wantStored {
				t.Errorf("stored lifecycle = %q, want %q", r.Lifecycle, tc.wantStored)
			}
			if !r.LastSeenAt.Equal(tc.obs.at) || r.LastScanID != "scan-2" {
				t.Errorf("last seen = %v by %q, want %v by scan-2", r.LastSeenAt, r.LastScanID, tc.obs.at)
			}
			wantFirst := first
			if !from.exists {
				wantFirst = tc.obs.at
			}
			if !r.FirstSeenAt.Equal(wantFirst) {
				t.Errorf("first seen = %v, want %v (kept across every transition)", r.FirstSeenAt, wantFirst)
			}
			if resolved := r.Lifecycle == LifecycleResolved; resolved != (r.ResolvedReason != "") || resolved != !r.ResolvedAt.IsZero() {
				t.Errorf("resolved fields %q at %v with lifecycle %s", r.ResolvedReason, r.ResolvedAt, r.Lifecycle)
			}
			wantStatus := tc.obs.status
			if wantStatus == "" || wantStatus == pass {
				wantStatus = from.rec.Status // a resolution keeps the last status seen
			}
			if r.Status != wantStatus {
				t.Errorf("status = %q, want %q", r.Status, wantStatus)
			}
			if r.FindingUID != "uid-1" || r.AccountID != "111" || r.Region != "cn-hangzhou" || r.ConnectionID != "vco-1" ||
				r.RuleID != finding.RuleUntrustedAccount || r.BindUID != "222" || r.BindInstance != "cen-1" {
				t.Errorf("record description lost: %+v", r)
			}
			if r.Revision != from.rec.Revision {
				t.Errorf("apply moved the revision to %d: that is the tracker's", r.Revision)
			}
			if c != nil {
				want := Change{Change: c.Change, PreviousLifecycle: c.PreviousLifecycle, Lifecycle: r.Lifecycle,
					ResolvedReason: r.ResolvedReason, FindingUID: "uid-1", RuleID: finding.RuleUntrustedAccount,
					Severity: "high", OwnerAccountID: "111", Region: "cn-hangzhou", VpnConnectionID: "vco-1",
					BindUID: "222", BindInstance: "cen-1", FirstSeenAt: wantFirst.Format(time.RFC3339),
					ObservedAt: tc.obs.at.Format(time.RFC3339), ScanID: "scan-2", Trigger: "timer"}
				if *c != want {
					t.Errorf("change =\n %+v\nwant\n %+v", *c, want)
				}
			}
		})
	}
}

// A finding stored under an old severity takes the severity it is seen with.
func TestApplyKeepsDescriptionCurrent(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	m := scanMeta{accountID: "111", region: "r", scanID: "s"}
	s := state{Record{AccountID: "111", Region: "r", FindingUID: "u", ConnectionID: "vco-1", RuleID: "stale-authorization",
		Severity: "low", Status: finding.StatusFail, Lifecycle: LifecycleOpen, FirstSeenAt: t0, LastSeenAt: t0, Revision: 1}, true}
	next, _, _ := m.apply(s, observation{uid: "u", at: t0.Add(time.Hour), status: finding.StatusFail,
		about: subject{connectionID: "vco-1", ruleID: "stale-authorization", severity: "medium"}})
	if next.rec.Severity != "medium" {
		t.Errorf("severity = %q, want medium", next.rec.Severity)
	}
}

// A record whose lifecycle this version does not know is treated as open.
func TestApplyUnknownStoredLifecycle(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	m := scanMeta{accountID: "111", region: "r", scanID: "s"}
	s := state{Record{AccountID: "111", Region: "r", FindingUID: "u", Status: finding.StatusFail,
		Lifecycle: "archived", FirstSeenAt: t0, LastSeenAt: t0, Revision: 1}, true}
	for status, want := range map[string]string{
		finding.StatusFail:       "/open",
		finding.StatusSuppressed: "suppressed/suppressed",
		finding.StatusPass:       "resolved/resolved",
	} {
		_, c, ann := m.apply(s, observation{uid: "u", at: t0.Add(time.Hour), status: status})
		got := "/" + ann.Lifecycle
		if c != nil {
			got = c.Change + got
		}
		if got != want {
			t.Errorf("%s on archived: %q, want %q", status, got, want)
		}
	}
}

func TestSameRecord(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	a := Record{FindingUID: "u", FirstSeenAt: t0, LastSeenAt: t0, Revision: 1}
	b := a
	b.Revision = 7
	b.LastSeenAt = t0.In(time.FixedZone("CST", 8*3600))
	if !sameRecord(a, b) {
		t.Error("records differing only in revision and time zone differ")
	}
	b.LastSeenAt = t0.Add(time.Second)
	if sameRecord(a, b) {
		t.Error("records with different last_seen_at are the same")
	}
	b = a
	b.LastScanID = "other"
	if sameRecord(a, b) {
		t.Error("records with different last_scan_id are the same")
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
