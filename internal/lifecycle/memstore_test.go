package lifecycle

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func rec(account, region, uid string, rev int64) Record {
	return Record{AccountID: account, Region: region, FindingUID: uid, Lifecycle: LifecycleNew, Revision: rev}
}

func TestMemStoreConditions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		write   Write
		wantErr string // "" ok, "conflict", or the message
	}{
		{"create a new row", Write{rec("1", "r", "new", 1), 0}, ""},
		{"create over an existing row", Write{rec("1", "r", "u", 1), 0}, "conflict"},
		{"update at the stored revision", Write{rec("1", "r", "u", 3), 2}, ""},
		{"update from an older revision", Write{rec("1", "r", "u", 2), 1}, "conflict"},
		{"update from a newer revision", Write{rec("1", "r", "u", 4), 3}, "conflict"},
		{"update a row that is not there", Write{rec("1", "r", "ghost", 2), 1}, "conflict"},
		{"same uid in another region is another row", Write{rec("1", "r2", "u", 1), 0}, ""},
		{"same uid in another account is another row", Write{rec("2", "r", "u", 1), 0}, ""},
		{"revision not one past the expected", Write{rec("1", "r", "u", 5), 2}, "record u: revision 5 does not follow the expected 2"},
		{"no finding uid", Write{rec("1", "r", "", 1), 0}, `record key incomplete: account "1", region "r", finding ""`},
		{"no account", Write{rec("", "r", "u", 1), 0}, `record key incomplete: account "", region "r", finding "u"`},
		{"no region", Write{rec("1", "", "u", 1), 0}, `record key incomplete: account "1", region "", finding "u"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			if errs, err := s.Write(ctx, []Write{{rec("1", "r", "u", 1), 0}, {rec("1", "r", "u", 2), 1}}); err != nil || errs[0] != nil || errs[1] != nil {
				t.Fatalf("seed: %v %v", errs, err)
			}
			before, _ := s.Load(ctx, tc.write.Record.AccountID, tc.write.Record.Region)
			errs, err := s.Write(ctx, []Write{tc.write})
			if err != nil || len(errs) != 1 {
				t.Fatalf("Write = %v, %v", errs, err)
			}
			got := errs[0]
			switch tc.wantErr {
			case "":
				if got != nil {
					t.Fatalf("error %v, want none", got)
				}
				after, _ := s.Load(ctx, tc.write.Record.AccountID, tc.write.Record.Region)
				found := false
				for _, r := range after {
					if r.FindingUID == tc.write.Record.FindingUID {
						found = r == tc.write.Record
					}
				}
				if !found {
					t.Errorf("row not stored as written: %+v", after)
				}
			case "conflict":
				if !errors.Is(got, ErrConflict) {
					t.Fatalf("error %v, want ErrConflict", got)
				}
			default:
				if got == nil || got.Error() != tc.wantErr || errors.Is(got, ErrConflict) {
					t.Fatalf("error %v, want %q", got, tc.wantErr)
				}
			}
			if tc.wantErr != "" {
				after, _ := s.Load(ctx, tc.write.Record.AccountID, tc.write.Record.Region)
				if len(after) != len(before) || len(after) > 0 && after[0] != before[0] {
					t.Errorf("a refused write changed the store: %+v → %+v", before, after)
				}
			}
		})
	}
}

// Each row of a batch is judged on its own, in order: a later write of the
// same batch sees an earlier one.
func TestMemStoreBatch(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	errs, err := s.Write(ctx, []Write{
		{rec("1", "r", "a", 1), 0},
		{rec("1", "r", "a", 1), 0}, // the same create again
		{rec("1", "r", "b", 1), 0},
		{rec("1", "r", "a", 2), 1}, // follows the first
	})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrConflict) || errs[2] != nil || errs[3] != nil {
		t.Errorf("results %v", errs)
	}
	recs, _ := s.Load(ctx, "1", "r")
	if len(recs) != 2 || recs[0].FindingUID != "a" || recs[0].Revision != 2 || recs[1].FindingUID != "b" {
		t.Errorf("Load = %+v, want a@2 and b@1 in uid order", recs)
	}
	if other, _ := s.Load(ctx, "1", "elsewhere"); len(other) != 0 {
		t.Errorf("another region holds %+v", other)
	}
}

func TestMemStoreCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := NewMemStore()
	if _, err := s.Load(ctx, "1", "r"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load error %v", err)
	}
	if _, err := s.Write(ctx, []Write{{rec("1", "r", "a", 1), 0}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write error %v", err)
	}
	if recs, _ := s.Load(context.Background(), "1", "r"); len(recs) != 0 {
		t.Errorf("a canceled write stored %+v", recs)
	}
}

// Of many writers racing for one transition, exactly one wins.
func TestMemStoreRace(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	const writers = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins = map[int64]int{}
	)
	for rev := int64(1); rev <= 3; rev++ {
		for range writers {
			wg.Go(func() {
				errs, err := s.Write(ctx, []Write{{rec("1", "r", "u", rev), rev - 1}})
				if err != nil {
					t.Error(err)
					return
				}
				if errs[0] == nil {
					mu.Lock()
					wins[rev]++
					mu.Unlock()
				} else if !errors.Is(errs[0], ErrConflict) {
					t.Error(errs[0])
				}
			})
		}
		wg.Wait()
	}
	for rev := int64(1); rev <= 3; rev++ {
		if wins[rev] != 1 {
			t.Errorf("revision %d written by %d writers, want 1", rev, wins[rev])
		}
	}
}
