package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"vpnauthz/internal/finding"
)

// maxWriteAttempts bounds how often the writes that lost to another
// invocation are recomputed against the newer state and tried again.
const maxWriteAttempts = 3

// Listing is what a scan learnt from listing the connections of its account
// and region. The zero Listing is "no listing" (explicit targets, an event or
// an HTTP scan of named connections, or a listing that failed): it resolves
// nothing.
type Listing struct {
	// Complete: the listing was read to its end, so a connection it does not
	// name no longer exists.
	Complete      bool
	ConnectionIDs []string
}

// Stats counts the state calls of one tracker.
type Stats struct {
	Loads       int // range reads (one at Open, one per conflict round)
	WriteCalls  int // Store.Write calls (a store batches each as its API allows)
	RowsWritten int // writes that succeeded
	Conflicts   int // writes another invocation won first
}

// Tracker follows the findings of one scan in one account and region: it
// annotates them as they are made and, at Finish, writes what changed and
// returns the transitions this scan made.
//
// Connection and ConnectionDeleted may be called from many goroutines; Finish
// once, after them.
type Tracker struct {
	store Store
	meta  scanMeta
	now   time.Time
	off   bool // no state: stateless, or the state could not be read

	mu       sync.Mutex
	base     map[string]state // as loaded: what the writes are conditional on
	work     map[string]state // base with this scan's observations applied
	obs      map[string][]observation
	byConn   map[string]map[string]bool // connection → its findings in work
	read     map[string]bool            // connections read without error
	deleted  map[string]bool            // connections found deleted
	finished bool
	stats    Stats
}

// Open reads the stored state of one account and region (one range read)
// and returns the tracker of one scan there. now is the scan's time: the
// observation time of deletions and of findings without a valid observed_at.
//
// The tracker is always usable. With a nil store it is stateless: findings
// get empty lifecycle fields and nothing is written. When the state cannot be
// read, Open returns the error beside a tracker that behaves as stateless
// (degraded): the scan still delivers its findings and reports the error.
func Open(ctx context.Context, store Store, accountID, region, scanID, trigger string, now time.Time) (*Tracker, error) {
	if now.IsZero() {
		now = time.Now()
	}
	t := &Tracker{
		store: store,
		meta:  scanMeta{accountID: accountID, region: region, scanID: scanID, trigger: trigger},
		now:   now.UTC().Truncate(time.Second),
		off:   true,
	}
	if store == nil {
		return t, nil
	}
	switch {
	case accountID == "":
		return t, fmt.Errorf("lifecycle: no account id for the state of region %q", region)
	case region == "":
		return t, fmt.Errorf("lifecycle: no region for the state of account %s", accountID)
	}
	recs, err := store.Load(ctx, accountID, region)
	t.stats.Loads++
	if err != nil {
		return t, fmt.Errorf("lifecycle: read the state of %s in %s: %w", accountID, region, err)
	}
	t.off = false
	t.base = index(recs)
	t.work = make(map[string]state, len(t.base))
	t.byConn = make(map[string]map[string]bool)
	for uid, s := range t.base {
		t.work[uid] = s
		t.link(s.rec)
	}
	t.obs = make(map[string][]observation)
	t.read = make(map[string]bool)
	t.deleted = make(map[string]bool)
	return t, nil
}

func index(recs []Record) map[string]state {
	m := make(map[string]state, len(recs))
	for _, r := range recs {
		if r.FindingUID != "" {
			m[r.FindingUID] = state{r, true}
		}
	}
	return m
}

func (t *Tracker) link(r Record) {
	uids := t.byConn[r.ConnectionID]
	if uids == nil {
		uids = make(map[string]bool)
		t.byConn[r.ConnectionID] = uids
	}
	uids[r.FindingUID] = true
}

// Connection records the findings of one connection that was read without
// error and returns each finding's annotation, in order. A stored finding of
// the connection now PASS is resolved (passed); one that is not among them is
// resolved too: authorization_removed when none of the findings names its
// authorization any more, passed when they do (its rule was disabled).
//
// A connection whose read failed is not passed in: nothing of it is
// resolved. Should findings hold an ERROR all the same, the connection is
// taken as not read: its findings are annotated, its absent ones stay open.
func (t *Tracker) Connection(connectionID string, findings []finding.Finding) []Annotation {
	anns := make([]Annotation, len(findings))
	for i := range findings {
		anns[i].FindingUID = findings[i].FindingUID
	}
	if t.off {
		return anns
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished {
		return anns
	}
	seen := make(map[string]bool, len(findings))
	granted := make(map[[2]string]bool) // authorizations the read found
	failed := false
	var latest time.Time
	for i := range findings {
		f := &findings[i]
		if f.Status == finding.StatusError {
			failed = true
			continue
		}
		if f.FindingUID == "" {
			continue
		}
		at := t.observedAt(f.ObservedAt)
		if at.After(latest) {
			latest = at
		}
		seen[f.FindingUID] = true
		if f.BindUID != "" || f.BindInstance != "" {
			granted[[2]string{f.BindUID, f.BindInstance}] = true
		}
		anns[i] = t.observe(observation{
			uid:    f.FindingUID,
			at:     at,
			status: f.Status,
			about: subject{
				connectionID:   connectionID,
				ruleID:         f.RuleID,
				severity:       f.Severity,
				bindUID:        f.BindUID,
				bindInstance:   f.BindInstance,
				ownerAccountID: f.OwnerAccountID,
			},
		})
	}
	if failed {
		return anns
	}
	t.read[connectionID] = true
	if latest.IsZero() {
		latest = t.now
	}
	for _, uid := range sortedKeys(t.byConn[connectionID]) {
		if seen[uid] {
			continue
		}
		// A finding gone while its authorization is still there is one
		// whose rule was disabled: nobody revoked anything.
		r := t.work[uid].rec
		reason := ReasonAuthorizationRemoved
		if granted[[2]string{r.BindUID, r.BindInstance}] {
			reason = ReasonPassed
		}
		t.observe(observation{uid: uid, at: latest, reason: reason})
	}
	return anns
}

// ConnectionDeleted records that the scan found connectionID deleted (an
// event reached a connection that no longer exists): at Finish, its open
// findings are resolved (connection_deleted), unless the same scan read it.
func (t *Tracker) ConnectionDeleted(connectionID string) {
	if t.off {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.finished {
		t.deleted[connectionID] = true
	}
}

// observedAt is a finding's observation time to the second (the precision
// of its observed_at), or the scan's time when it has none.
func (t *Tracker) observedAt(s string) time.Time {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t.now
	}
	return at.UTC().Truncate(time.Second)
}

func (t *Tracker) observe(o observation) Annotation {
	next, _, ann := t.meta.apply(t.work[o.uid], o)
	if next.exists {
		t.work[o.uid] = next
		t.link(next.rec)
	}
	t.obs[o.uid] = append(t.obs[o.uid], o)
	return ann
}

// Finish resolves the connections the listing shows deleted, writes what
// changed (conditional on the state read) and returns the transitions this
// scan made, those whose write won. A write another invocation beat is
// recomputed against the newer state and tried again (a bounded number of
// times): if the other one made the transition already, it is not made
// twice. A write that fails is reported in the error and its transitions
// are not returned: the state does not hold them, so a later scan makes
// them. Use a context that the scan's own deadline does not cut short.
//
// A stateless or degraded tracker returns nothing (the read error was
// Open's).
func (t *Tracker) Finish(ctx context.Context, listing Listing) ([]Change, error) {
	if t.off {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished {
		return nil, errors.New("lifecycle: Finish called twice")
	}
	t.finished = true

	listed := make(map[string]bool, len(listing.ConnectionIDs))
	for _, id := range listing.ConnectionIDs {
		listed[id] = true
	}
	for _, conn := range sortedKeys(t.byConn) {
		if t.read[conn] || !(t.deleted[conn] || listing.Complete && !listed[conn]) {
			continue
		}
		for _, uid := range sortedKeys(t.byConn[conn]) {
			t.observe(observation{uid: uid, at: t.now, reason: ReasonConnectionDeleted})
		}
	}

	var (
		won  []Change
		errs []error
		todo = sortedKeys(t.obs)
		base = t.base
	)
	for attempt := 1; ; attempt++ {
		var (
			writes  []Write
			changes [][]Change
		)
		for _, uid := range todo {
			if w, chs, ok := t.plan(base[uid], t.obs[uid]); ok {
				writes = append(writes, w)
				changes = append(changes, chs)
			}
		}
		if len(writes) == 0 {
			break
		}
		results, err := t.store.Write(ctx, writes)
		t.stats.WriteCalls++
		if err == nil && len(results) != len(writes) {
			err = fmt.Errorf("the store answered %d results for %d writes", len(results), len(writes))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lifecycle: write %d state records of %s in %s: %w",
				len(writes), t.meta.accountID, t.meta.region, err))
			break
		}
		todo = todo[:0]
		for i, werr := range results {
			uid := writes[i].Record.FindingUID
			switch {
			case werr == nil:
				t.stats.RowsWritten++
				won = append(won, changes[i]...)
			case errors.Is(werr, ErrConflict):
				t.stats.Conflicts++
				todo = append(todo, uid)
			default:
				errs = append(errs, fmt.Errorf("lifecycle: write the state of finding %s: %w", uid, werr))
			}
		}
		if len(todo) == 0 {
			break
		}
		if attempt == maxWriteAttempts {
			errs = append(errs, fmt.Errorf("lifecycle: %d state records of %s in %s were still being changed by another invocation after %d attempts; the next scan settles them",
				len(todo), t.meta.accountID, t.meta.region, attempt))
			break
		}
		recs, err := t.store.Load(ctx, t.meta.accountID, t.meta.region)
		t.stats.Loads++
		if err != nil {
			errs = append(errs, fmt.Errorf("lifecycle: read the state of %s in %s again after a conflict: %w",
				t.meta.accountID, t.meta.region, err))
			break
		}
		base = index(recs)
	}
	slices.SortStableFunc(won, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.VpnConnectionID, b.VpnConnectionID), cmp.Compare(a.FindingUID, b.FindingUID))
	})
	return won, errors.Join(errs...)
}

// plan replays one finding's observations on its state and gives the write
// that stores the result, with the transitions it makes; ok is false when
// nothing stored would change.
func (t *Tracker) plan(base state, obs []observation) (w Write, changes []Change, ok bool) {
	s := base
	for _, o := range obs {
		var c *Change
		s, c, _ = t.meta.apply(s, o)
		if c != nil {
			changes = append(changes, *c)
		}
	}
	if !s.exists || base.exists && sameRecord(base.rec, s.rec) {
		return Write{}, nil, false
	}
	w.Record = s.rec
	if base.exists {
		w.ExpectRevision = base.rec.Revision
	}
	w.Record.Revision = w.ExpectRevision + 1
	return w, changes, true
}

// Stats returns the state calls made so far.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
