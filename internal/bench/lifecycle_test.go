package bench

import (
	"math"
	"testing"
	"time"
)

func TestEmulatorStatsSub(t *testing.T) {
	a := EmulatorStats{VPCCalls: 10, TablestoreCalls: 7, TablestoreGetRange: 4, TablestoreBatchWriteRow: 3, TablestoreRowsWritten: 500}
	b := EmulatorStats{VPCCalls: 3, TablestoreCalls: 2, TablestoreGetRange: 0, TablestoreBatchWriteRow: 1, TablestoreRowsWritten: 100}
	got := a.Sub(b)
	want := EmulatorStats{VPCCalls: 7, TablestoreCalls: 5, TablestoreGetRange: 4, TablestoreBatchWriteRow: 2, TablestoreRowsWritten: 400}
	if got != want {
		t.Errorf("Sub = %+v; want %+v", got, want)
	}
}

func TestLifecycleOverhead(t *testing.T) {
	scan := func(d time.Duration) LifecycleScan { return LifecycleScan{BinaryScan: BinaryScan{Wall: d}} }
	l := Lifecycle{NoState: scan(10 * time.Second), First: scan(12 * time.Second), Steady: scan(10500 * time.Millisecond)}
	if o := l.Overhead(); math.Abs(o-0.05) > 1e-9 {
		t.Errorf("Overhead = %v; want 0.05", o)
	}
	if o := l.FirstOverhead(); math.Abs(o-0.2) > 1e-9 {
		t.Errorf("FirstOverhead = %v; want 0.2", o)
	}
	if o := (Lifecycle{}).Overhead(); o != 0 {
		t.Errorf("Overhead without a scan = %v; want 0", o)
	}
}
