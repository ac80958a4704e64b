package lifecycle

import (
	"context"
	"fmt"
	"testing"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
)

// BenchmarkSteadyScan10k: the lifecycle's own cost of a scan of 10,000
// connections, one grant each, every other one untrusted, against the state
// the previous scan left (every FAIL updated, nothing new).
func BenchmarkSteadyScan10k(b *testing.B) {
	const n = 10000
	pol := basePolicy()
	conns := make([]string, n)
	fs := make([][]finding.Finding, n)
	for i := range n {
		conns[i] = fmt.Sprintf("vco-%05d", i)
		bind := int64(333)
		if i%2 == 0 {
			bind = 222
		}
		fs[i] = pol.Evaluate(policy.Connection{Region: region, ID: conns[i], AccountID: acct,
			Authorizations: []policy.Authorization{grant(conns[i], bind)}}, day(1))
	}
	store := NewMemStore()
	scan := func(at int) ([]Change, Stats) {
		tr, err := Open(context.Background(), store, acct, region, "s", "timer", day(at))
		if err != nil {
			b.Fatal(err)
		}
		for i, c := range conns {
			for j := range fs[i] {
				fs[i][j].ObservedAt = stamp(day(at))
			}
			tr.Connection(c, fs[i])
		}
		cs, err := tr.Finish(context.Background(), Listing{Complete: true, ConnectionIDs: conns})
		if err != nil {
			b.Fatal(err)
		}
		return cs, tr.Stats()
	}
	if cs, _ := scan(1); len(cs) != n/2 {
		b.Fatalf("first scan: %d changes, want %d", len(cs), n/2)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cs, st := scan(2 + i)
		if len(cs) != 0 || st.RowsWritten != n/2 || st.Loads != 1 || st.WriteCalls != 1 {
			b.Fatalf("steady scan: %d changes, %+v", len(cs), st)
		}
	}
}
