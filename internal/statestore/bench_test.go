package statestore

import (
	"context"
	"fmt"
	"testing"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/lifecycle"
)

// BenchmarkWrite writes 10,000 new records (one scan's worth at 10,000
// findings) — the timed part — then reads them back with one Load, untimed;
// it reports the state calls of both.
func BenchmarkWrite(b *testing.B) {
	const n = 10000
	srv, err := otsemu.New(otsemu.Options{Credentials: []cred.Credential{testCred}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		s, err := New(Options{Location: Location{Instance: srv.Instance(), Table: fmt.Sprintf("bench_%d", i)}, Endpoint: srv.Endpoint(),
			Credentials: Credentials{AccessKeyID: testCred.AccessKeyID, AccessKeySecret: testCred.AccessKeySecret, SecurityToken: testCred.SecurityToken}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Setup(context.Background()); err != nil {
			b.Fatal(err)
		}
		writes := make([]lifecycle.Write, n)
		for j := range writes {
			writes[j] = lifecycle.Write{Record: record("1234567890123456", "cn-hangzhou", j)}
		}
		srv.ResetStats()
		b.StartTimer()
		errs, err := s.Write(context.Background(), writes)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
		b.StopTimer()
		recs, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
		if err != nil || len(recs) != n {
			b.Fatalf("loaded %d, %v", len(recs), err)
		}
		st := srv.Stats()
		b.ReportMetric(float64(st.Calls[otsemu.OpBatchWriteRow]), "BatchWriteRow/op")
		b.ReportMetric(float64(st.Calls[otsemu.OpGetRange]), "GetRange/op")
		b.StartTimer()
	}
}
