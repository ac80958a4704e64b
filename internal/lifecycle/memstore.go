package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// MemStore is a Store in memory, safe for concurrent use, with the same
// conditional writes as a durable store: for tests, and for a process that
// keeps its state only as long as it runs.
type MemStore struct {
	mu   sync.Mutex
	rows map[memKey]Record
}

type memKey struct{ account, region, uid string }

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rows: make(map[memKey]Record)} }

// Load returns the records of one account and region, by finding uid.
func (s *MemStore) Load(ctx context.Context, accountID, region string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for k, r := range s.rows {
		if k.account == accountID && k.region == region {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.FindingUID, b.FindingUID) })
	return out, nil
}

// Write applies each write whose condition holds, one by one, as a batch
// of single-row conditional writes does.
func (s *MemStore) Write(ctx context.Context, writes []Write) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(writes))
	for i, w := range writes {
		r := w.Record
		if r.AccountID == "" || r.Region == "" || r.FindingUID == "" {
			errs[i] = fmt.Errorf("record key incomplete: account %q, region %q, finding %q", r.AccountID, r.Region, r.FindingUID)
			continue
		}
		if r.Revision != w.ExpectRevision+1 {
			errs[i] = fmt.Errorf("record %s: revision %d does not follow the expected %d", r.FindingUID, r.Revision, w.ExpectRevision)
			continue
		}
		k := memKey{r.AccountID, r.Region, r.FindingUID}
		cur, ok := s.rows[k]
		switch {
		case w.ExpectRevision == 0 && ok,
			w.ExpectRevision != 0 && (!ok || cur.Revision != w.ExpectRevision):
			errs[i] = fmt.Errorf("record %s: %w", r.FindingUID, ErrConflict)
			continue
		}
		s.rows[k] = r
	}
	return errs, nil
}
