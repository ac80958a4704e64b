package lifecycle

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
)

const (
	acct   = "111"
	region = "cn-hangzhou"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// day is the scan time of the n-th day of a test's story.
func day(n int) time.Time { return t0.AddDate(0, 0, n) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// grant is an authorization of the test inventory to the CEN instance cen-1.
func grant(conn string, bindUID int64) policy.Authorization {
	return policy.Authorization{VpnConnectionID: conn, AliUID: 111, BindUID: bindUID, BindProduct: "CEN",
		BindInstance: "cen-1", CreationTime: t0.AddDate(0, -1, 0).UnixMilli()}
}

// basePolicy trusts account 333; 222, 444 and 555 are untrusted.
func basePolicy() *policy.Policy { return &policy.Policy{TrustedAccountIDs: []string{"333"}} }

// inventory is the cloud at one time: connections and their authorizations.
type inventory map[string][]policy.Authorization

// findingsOf judges one connection as the scanner does.
func findingsOf(pol *policy.Policy, conn string, auths []policy.Authorization, at time.Time) []finding.Finding {
	return pol.Evaluate(policy.Connection{Region: region, ID: conn, AccountID: acct, Authorizations: auths}, at)
}

// errorFinding is the finding of a connection that could not be read.
func errorFinding(conn string, at time.Time) finding.Finding {
	return policy.ErrorFinding(region, conn, acct, "read failed", at)
}

// label names a finding or change for the test tables: connection/rule/bind uid.
func label(conn, rule, bind string) string { return conn + "/" + rule + "/" + bind }

// changeLine is a change as the test tables spell it.
func changeLine(c Change) string {
	s := fmt.Sprintf("%s %s %s>%s", c.Change, label(c.VpnConnectionID, c.RuleID, c.BindUID), c.PreviousLifecycle, c.Lifecycle)
	if c.ResolvedReason != "" {
		s += " " + c.ResolvedReason
	}
	return s
}

func changeLines(cs []Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, changeLine(c))
	}
	slices.Sort(out)
	return out
}

// scanSpec is one scan of one account and region.
type scanSpec struct {
	at      time.Time
	scanID  string
	inv     inventory      // the cloud at scan time
	pol     *policy.Policy // nil: basePolicy
	read    []string       // connections this scan reaches; nil: every connection of inv
	failed  []string       // of those, the ones whose read fails
	listing string         // "complete" (names inv), "failed" or "" (no listing)
	deleted []string       // connections an event found deleted
}

// scanResult is what one scan produced.
type scanResult struct {
	anns    map[string]string // untrusted-account findings: label → lifecycle@first_seen_at
	changes []Change
	err     error
	stats   Stats
}

// runScan plays one scan through a tracker the way the scanner does.
func runScan(t *testing.T, store Store, s scanSpec) scanResult {
	t.Helper()
	tr, err := Open(context.Background(), store, acct, region, or(s.scanID, "scan-"+s.at.Format("0102")), finding.TriggerTimer, s.at)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	res := playScan(tr, s)
	res.changes, res.err = tr.Finish(context.Background(), listingOf(s))
	res.stats = tr.Stats()
	return res
}

// playScan reads the connections of s into tr, concurrently as the
// scanner's workers do, and returns the annotations.
func playScan(tr *Tracker, s scanSpec) scanResult {
	pol := s.pol
	if pol == nil {
		pol = basePolicy()
	}
	read := s.read
	if read == nil {
		read = slices.Sorted(maps.Keys(s.inv))
	}
	res := scanResult{anns: map[string]string{}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, conn := range read {
		wg.Go(func() {
			if slices.Contains(s.failed, conn) {
				return // a failed read is not passed in: its ERROR goes straight to the sink
			}
			auths, ok := s.inv[conn]
			if !ok {
				tr.ConnectionDeleted(conn) // an event reached a connection that is gone
				return
			}
			fs := findingsOf(pol, conn, auths, s.at)
			anns := tr.Connection(conn, fs)
			mu.Lock()
			defer mu.Unlock()
			for i, f := range fs {
				if anns[i].FindingUID != f.FindingUID {
					res.anns["uid mismatch "+f.FindingUID] = anns[i].FindingUID
				}
				if f.RuleID == finding.RuleUntrustedAccount {
					res.anns[label(conn, f.RuleID, f.BindUID)] = anns[i].Lifecycle + "@" + anns[i].FirstSeenAt
				}
			}
		})
	}
	wg.Wait()
	for _, conn := range s.deleted {
		tr.ConnectionDeleted(conn)
	}
	return res
}

func listingOf(s scanSpec) Listing {
	switch s.listing {
	case "complete":
		return Listing{Complete: true, ConnectionIDs: slices.Sorted(maps.Keys(s.inv))}
	case "failed":
		return Listing{}
	}
	return Listing{}
}

// stored returns the store's records of the test account and region, by label.
func stored(t *testing.T, store Store) map[string]Record {
	t.Helper()
	recs, err := store.Load(context.Background(), acct, region)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	out := make(map[string]Record, len(recs))
	for _, r := range recs {
		out[label(r.ConnectionID, r.RuleID, r.BindUID)] = r
	}
	return out
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func diffMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// faultStore is a Store with faults and hooks around another Store.
type faultStore struct {
	Store
	mu          sync.Mutex
	loads       int
	writes      int
	loadErr     func(n int) error                 // n-th Load, from 1
	writeErr    func(n int) error                 // n-th Write call, from 1
	rowErr      func(w Write) error               // per row, before the row is written
	beforeWrite func(n int)                       // runs before the n-th Write call
	results     func(n int, errs []error) []error // rewrites the answer of the n-th Write
}

func (f *faultStore) Load(ctx context.Context, accountID, region string) ([]Record, error) {
	f.mu.Lock()
	f.loads++
	n := f.loads
	f.mu.Unlock()
	if f.loadErr != nil {
		if err := f.loadErr(n); err != nil {
			return nil, err
		}
	}
	return f.Store.Load(ctx, accountID, region)
}

func (f *faultStore) Write(ctx context.Context, writes []Write) ([]error, error) {
	f.mu.Lock()
	f.writes++
	n := f.writes
	f.mu.Unlock()
	if f.beforeWrite != nil {
		f.beforeWrite(n)
	}
	if f.writeErr != nil {
		if err := f.writeErr(n); err != nil {
			return nil, err
		}
	}
	var (
		pass    []Write
		idx     []int
		rowErrs = make([]error, len(writes))
	)
	for i, w := range writes {
		if f.rowErr != nil {
			if err := f.rowErr(w); err != nil {
				rowErrs[i] = err
				continue
			}
		}
		pass = append(pass, w)
		idx = append(idx, i)
	}
	errs, err := f.Store.Write(ctx, pass)
	if err != nil {
		return nil, err
	}
	for j, e := range errs {
		rowErrs[idx[j]] = e
	}
	if f.results != nil {
		rowErrs = f.results(n, rowErrs)
	}
	return rowErrs, nil
}
