package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/target"
)

// BenchmarkOrgScan scans an organisation in this process, against emulators
// without latency or quota, entering every member through STS: for memory
// and blocking profiles of an organisation scan (BENCH_ORG=AxRxC, default
// 20x4x50).
func BenchmarkOrgScan(b *testing.B) {
	shape := OrgShape{Accounts: 20, Regions: 4, Connections: 50}
	if s := os.Getenv("BENCH_ORG"); s != "" {
		var err error
		if shape, err = ParseOrgShape(s); err != nil {
			b.Fatal(err)
		}
	}
	b.Run(shape.String(), func(b *testing.B) {
		org := GenerateOrg(1, shape)
		eo := &emulator.Organization{RoleName: org.RoleName, ExternalID: org.ExternalID}
		for _, uid := range org.MemberIDs() {
			eo.Members = append(eo.Members, emulator.Member{AccountID: uid, Inventory: org.Members[uid]})
		}
		var cloud Cloud
		if bin := os.Getenv("BENCH_ORG_BINARY"); bin != "" {
			// The emulated cloud of the built binary, in its own process,
			// with bench.sh's faults at its default scale (quota 100/s,
			// latency 5ms).
			file := filepath.Join(b.TempDir(), "org.json")
			if err := WriteOrg(file, org); err != nil {
				b.Fatal(err)
			}
			ext, err := StartExternalOrg(context.Background(), bin, file, Faults{Latency: 5 * time.Millisecond, Quota: 100, Burst: 10})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ext.Close()
				if ps := ext.cmd.ProcessState; ps != nil {
					b.Logf("emulated cloud CPU: %v", ps.UserTime()+ps.SystemTime())
				}
			})
			cloud = ext.Cloud
		} else {
			c, err := emulator.Start(emulator.Options{Inventory: org.Own, Organization: eo, NoStateTable: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			cloud = InProcess(c)
		}
		rate := 1e6
		if cloud.Env != nil && os.Getenv("BENCH_ORG_BINARY") != "" {
			rate = 100
		}
		var ts []target.Target
		for _, s := range org.Targets() {
			t, err := target.Parse(s)
			if err != nil {
				b.Fatal(err)
			}
			ts = append(ts, t)
		}
		scope := &OrgScan{Targets: ts, Members: org.MemberIDs(), RoleName: org.RoleName, ExternalID: org.ExternalID}
		ctx := context.Background()
		var calls, findings int
		var peak uint64
		b.ReportAllocs()
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		defer func() {
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			b.Logf("this process's CPU over the scans: %v (%v per call)", cpu, cpu/time.Duration(max(calls, 1)))
		}()
		for b.Loop() {
			stop := heapSnapshots(b)
			r, err := RunOurs(ctx, cloud, OursOptions{Rate: rate, MeasureMemory: os.Getenv("BENCH_HEAP") != "", Org: scope})
			if err != nil {
				b.Fatal(err)
			}
			stop()
			if r.VPCCalls == 0 || !r.Complete {
				b.Fatalf("scan: %+v", r)
			}
			calls += r.VPCCalls
			findings += r.Findings
			peak = max(peak, r.PeakHeap)
		}
		b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
		b.ReportMetric(float64(findings)/float64(b.N), "findings/op")
		if peak > 0 {
			b.ReportMetric(float64(peak)/(1<<20), "peakMiB")
		}
	})
}

// heapSnapshots writes a heap profile (after a collection, so in-use is
// exact) every BENCH_HEAPPROF_EVERY (default 1s) into BENCH_HEAPPROF while
// a scan runs: the end-of-run profile shows nothing of the scan's peak.
func heapSnapshots(b *testing.B) (stop func()) {
	dir := os.Getenv("BENCH_HEAPPROF")
	if dir == "" {
		return func() {}
	}
	every := time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_HEAPPROF_EVERY")); err == nil {
		every = d
	}
	done := make(chan struct{})
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			runtime.GC()
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap%02d.prof", i)))
			if err != nil {
				b.Error(err)
				return
			}
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}()
	return func() { close(done); <-fin }
}
