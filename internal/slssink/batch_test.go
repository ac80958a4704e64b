package slssink

import (
	"slices"
	"testing"
	"time"

	"vpnauthz/internal/finding"
)

// TestLogGroupOfManyFindings holds the batch-wide slices of logGroup to one
// log per finding, each with that finding's values and time only.
func TestLogGroupOfManyFindings(t *testing.T) {
	b := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
	var want []finding.Finding
	for i := range 5 {
		f := testFinding(i)
		f.ObservedAt = time.Unix(int64(1_700_000_000+i), 0).UTC().Format(time.RFC3339)
		want = append(want, f)
		b.add(&f, time.Now())
	}
	bt := b.take()
	lg := bt.logGroup("vpnauthz")
	if len(lg.Logs) != len(want) {
		t.Fatalf("%d logs for %d findings", len(lg.Logs), len(want))
	}
	for i, log := range lg.Logs {
		if got := log.GetTime(); got != uint32(1_700_000_000+i) {
			t.Errorf("log %d: time %d", i, got)
		}
		var keys, values []string
		for _, c := range log.Contents {
			keys, values = append(keys, c.GetKey()), append(values, c.GetValue())
		}
		if !slices.Equal(keys, finding.Keys) || !slices.Equal(values, want[i].Values()) {
			t.Errorf("log %d: keys %v values %v, want %v", i, keys, values, want[i].Values())
		}
	}
}

// BenchmarkBatch measures the Log Service encoding of 1,000 findings: the
// batch, its LogGroup and the protobuf, before compression.
func BenchmarkBatch(b *testing.B) {
	fs := make([]finding.Finding, 1000)
	for i := range fs {
		fs[i] = testFinding(i)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		bt := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
		for i := range fs {
			bt.add(&fs[i], now)
		}
		batch := bt.take()
		if _, err := batch.logGroup("vpnauthz").Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
