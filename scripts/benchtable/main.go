// Command benchtable measures vpnauthz's scheduled scan against a naive peer
// and the quota's lower bound on generated inventories, with the emulated
// cloud in another process, and prints one Markdown table and the cold-start
// figures of the function binary.
//
// Everything runs at a time scale: the quota is multiplied and the latency
// and the peer's pause divided by --scale, so that a run takes minutes; the
// ratios do not depend on it, and times are also shown converted back.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vpnauthz/internal/assume"
	"vpnauthz/internal/bench"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/target"
)

// The real quota and latency the scale divides.
const (
	realQuota         = 10.0 // calls a second per region (600 per 60 s)
	realLatency       = 50 * time.Millisecond
	realThrottlePause = time.Second
)

func main() {
	sizesFlag := flag.String("sizes", "100,1000,10000", "inventory `sizes` (connections), comma-separated")
	runs := flag.Int("runs", 3, "runs of vpnauthz per size; the table shows medians")
	peerRuns := flag.Int("peer-runs", 0, "runs of the peer per size (default: --runs, once from --peer-once-from)")
	peerOnceFrom := flag.Int("peer-once-from", 10000, "sizes from which the peer runs once, unless --peer-runs is set")
	scale := flag.Float64("scale", 10, "time `factor`: quota ×, latency and the peer's pause ÷")
	smoke := flag.Bool("smoke", false, "size 100 only, one run (for CI)")
	binary := flag.String("binary", "", "the built function `binary` (emulated cloud and cold starts)")
	coldStarts := flag.Int("cold-starts", 10, "starts of the binary per cold-start measure")
	seed := flag.Uint64("seed", 1, "inventory `seed`")
	// The published quota is 600 calls per 60 s. The emulator holds it as a
	// token bucket refilled at the quota's rate; one real second of calls
	// (10) as its size is stricter than a per-minute window, yet forgives a
	// call that a busy machine sends a few milliseconds early.
	burst := flag.Int("burst", int(realQuota), "size of the emulated quota's token bucket, in `calls`")
	withPeer := flag.Bool("peer", true, "run the naive peer too")
	orgFlag := flag.String("org", "", "an organisation scenario `ACCOUNTSxREGIONSxCONNECTIONS` (like 50x4x100): one timer scan of it by the built binary "+
		"and one in-process; nothing else runs")
	assumeRate := flag.Float64("assume-rate", assume.DefaultRate, "AssumeRole `calls` a second the function paces at (the binary's own pacing, not scaled), for the organisation's bound")
	orgAccounts := flag.String("org-accounts", "list", "ACCOUNTS of the organisation scan: `list` (the own account and every member) or resource-directory")
	orgInProcess := flag.Bool("org-in-process", true, "also run the organisation scan in this process, for its allocations and heap")
	lifecycle := flag.Int("lifecycle", 0, "a lifecycle scenario of `N` connections: the same single-account scan by the built binary without STATE_STORE, "+
		"then with it twice (first, steady); nothing else runs")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of vpnauthz's in-process scans (the emulated cloud is another process) to `file`")
	flag.Parse()
	if *smoke {
		*sizesFlag, *runs, *coldStarts = "100", 1, 3
	}
	if *lifecycle > 0 {
		if *binary == "" {
			fatalf("--binary is required: build the function first (scripts/bench.sh does)")
		}
		if *scale <= 0 || *orgFlag != "" {
			fatalf("bad flags: --lifecycle with scale %v, --org %q", *scale, *orgFlag)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		dir, err := os.MkdirTemp("", "vpnauthz-bench-")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(dir)
		s := setup{binary: *binary, dir: dir, scale: *scale, faults: bench.Faults{
			Quota: realQuota * *scale, Latency: time.Duration(float64(realLatency) / *scale), Burst: *burst,
		}}
		// One run unless --runs is given: the scenario is three scans.
		lr := 1
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "runs" {
				lr = *runs
			}
		})
		if err := s.runLifecycle(ctx, *lifecycle, *seed, max(lr, 1)); err != nil {
			fatalf("lifecycle %d: %v", *lifecycle, err)
		}
		return
	}
	if *orgFlag != "" {
		shape, err := bench.ParseOrgShape(*orgFlag)
		if err != nil || *scale <= 0 || *assumeRate <= 0 {
			fatalf("bad flags: --org %q (%v), scale %v, assume-rate %v", *orgFlag, err, *scale, *assumeRate)
		}
		if *binary == "" {
			fatalf("--binary is required: build the function first (scripts/bench.sh does)")
		}
		if *orgAccounts != "list" && *orgAccounts != "resource-directory" {
			fatalf("bad flags: --org-accounts %q: want list or resource-directory", *orgAccounts)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		dir, err := os.MkdirTemp("", "vpnauthz-bench-")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(dir)
		s := setup{binary: *binary, dir: dir, scale: *scale, faults: bench.Faults{
			Quota: realQuota * *scale, Latency: time.Duration(float64(realLatency) / *scale), Burst: *burst,
		}}
		if err := s.runOrg(ctx, shape, *seed, *assumeRate, *orgAccounts == "list", *orgInProcess); err != nil {
			fatalf("organisation %s: %v", shape, err)
		}
		return
	}
	if *binary == "" {
		fatalf("--binary is required: build the function first (scripts/bench.sh does)")
	}
	sizes, err := parseSizes(*sizesFlag)
	if err != nil || *runs < 1 || *scale <= 0 {
		fatalf("bad flags: sizes %q (%v), runs %d, scale %v", *sizesFlag, err, *runs, *scale)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "vpnauthz-bench-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(dir)

	s := setup{
		binary: *binary,
		dir:    dir,
		faults: bench.Faults{
			Quota:   realQuota * *scale,
			Latency: time.Duration(float64(realLatency) / *scale),
			Burst:   *burst,
		},
		pause: time.Duration(float64(realThrottlePause) / *scale),
		scale: *scale,
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatalf("%v", err)
		}
		s.profile = f
		defer f.Close()
	}
	var rows []row
	for _, n := range sizes {
		pr := *peerRuns
		if pr <= 0 {
			pr = *runs
			if n >= *peerOnceFrom {
				pr = 1
			}
		}
		if !*withPeer {
			pr = 0
		}
		r, err := s.measure(ctx, n, *seed, *runs, pr)
		if err != nil {
			fatalf("size %d: %v", n, err)
		}
		rows = append(rows, r)
	}
	cold, err := s.coldStarts(ctx, *seed, *coldStarts)
	if err != nil {
		fatalf("cold start: %v", err)
	}
	s.print(rows, cold)
}

type setup struct {
	binary string
	dir    string
	faults bench.Faults
	pause  time.Duration
	scale  float64
	// profile, when set, receives a CPU profile of vpnauthz's scans only.
	profile *os.File
}

// row is one inventory size: medians of every measure over the runs.
type row struct {
	n                   int
	runs, peerRuns      int
	authorizations      int
	expected            bench.Expected
	bound               bench.Bound
	ours, peer          bench.Result
	oursCalls, oursThr  []int // every run's, to show the spread
	bin                 bench.BinaryScan
	binCPU              []time.Duration // every run's CPU per call
	incomplete, missing int
}

func (s *setup) measure(ctx context.Context, n int, seed uint64, runs, peerRuns int) (row, error) {
	inv := bench.Generate(seed, n)
	file := filepath.Join(s.dir, fmt.Sprintf("inventory-%d.json", n))
	if err := bench.WriteInventory(file, inv); err != nil {
		return row{}, err
	}
	r := row{n: n, runs: runs, peerRuns: peerRuns, expected: bench.Expect(inv, time.Now()), bound: bench.ComputeBound(inv, s.faults.Quota)}
	for _, conns := range inv.Regions {
		for _, c := range conns {
			r.authorizations += len(c.Authorizations)
		}
	}
	// Only counts are kept: the inventory's memory must not count against
	// the heap the scans are measured with.
	inv = nil

	var ours, peer []bench.Result
	var bins []bench.BinaryScan
	for i := range max(runs, peerRuns) {
		if i < runs {
			res, err := s.once(ctx, file, func(c bench.Cloud) (bench.Result, error) {
				if s.profile != nil {
					if err := pprof.StartCPUProfile(s.profile); err == nil {
						defer pprof.StopCPUProfile()
						s.profile = nil // one profile per file: the first run
					}
				}
				return bench.RunOurs(ctx, c, bench.OursOptions{Rate: s.faults.Quota, MeasureMemory: true})
			})
			if err != nil {
				return row{}, fmt.Errorf("vpnauthz run %d: %w", i+1, err)
			}
			if !res.Complete {
				r.incomplete++
			}
			if res.Findings != r.expected.Findings {
				r.missing++
			}
			ours = append(ours, res)
			r.oursCalls = append(r.oursCalls, res.VPCCalls)
			r.oursThr = append(r.oursThr, res.Throttled)
			progress("size %d vpnauthz run %d: %s, %d calls (%d throttled), %d PutLogs, heap %s, %.0f allocations per call",
				n, i+1, res.Wall.Round(time.Millisecond), res.VPCCalls, res.Throttled, res.PutLogsCalls, mib(res.PeakHeap),
				float64(res.Allocs)/float64(max(res.VPCCalls, 1)))

			// The same scan by the built binary, for its CPU time.
			var bin bench.BinaryScan
			_, err = s.once(ctx, file, func(c bench.Cloud) (bench.Result, error) {
				var err error
				bin, err = bench.MeasureBinaryScan(ctx, s.binary, c, bench.BinaryOptions{Rate: s.faults.Quota, Dir: s.dir})
				return bench.Result{}, err
			})
			if err != nil {
				return row{}, fmt.Errorf("binary run %d: %w", i+1, err)
			}
			if !bin.Complete {
				r.incomplete++
			}
			if bin.Findings != r.expected.Findings {
				r.missing++
			}
			bins = append(bins, bin)
			r.binCPU = append(r.binCPU, bin.CPUPerCall())
			progress("size %d binary run %d: %s, %d calls, CPU %s (%s per call), GC heap %s",
				n, i+1, bin.Wall.Round(time.Millisecond), bin.VPCCalls, bin.CPU, us(bin.CPUPerCall()), mib(bin.GCHeap))
		}
		if i < peerRuns {
			res, err := s.once(ctx, file, func(c bench.Cloud) (bench.Result, error) {
				return bench.RunPeer(ctx, c, bench.PeerOptions{ThrottlePause: s.pause})
			})
			if err != nil {
				return row{}, fmt.Errorf("peer run %d: %w", i+1, err)
			}
			if res.Findings != r.expected.Findings {
				r.missing++
			}
			peer = append(peer, res)
			progress("size %d peer run %d: %s, %d calls (%d throttled), %d PutLogs",
				n, i+1, res.Wall.Round(time.Millisecond), res.VPCCalls, res.Throttled, res.PutLogsCalls)
		}
	}
	r.ours, r.peer = medianResult(ours), medianResult(peer)
	r.bin = medianBinary(bins)
	return r, nil
}

// once runs one scan against a fresh emulated cloud, so that every run starts
// with full quota buckets and an empty logstore.
func (s *setup) once(ctx context.Context, file string, scan func(bench.Cloud) (bench.Result, error)) (bench.Result, error) {
	ext, err := bench.StartExternal(ctx, s.binary, file, s.faults)
	if err != nil {
		return bench.Result{}, err
	}
	defer ext.Close()
	return scan(ext.Cloud)
}

type coldResult struct {
	binarySize    int64
	health, scans []time.Duration
}

func (s *setup) coldStarts(ctx context.Context, seed uint64, n int) (coldResult, error) {
	var out coldResult
	st, err := os.Stat(s.binary)
	if err != nil {
		return out, err
	}
	out.binarySize = st.Size()
	inv := bench.Generate(seed, 8)
	file := filepath.Join(s.dir, "inventory-cold.json")
	if err := bench.WriteInventory(file, inv); err != nil {
		return out, err
	}
	first := bench.Regions[0]
	target := first + ":" + inv.Regions[first][0].VpnConnectionId
	// The cloud answers at once here: the measure is the start of the function.
	ext, err := bench.StartExternal(ctx, s.binary, file, bench.Faults{})
	if err != nil {
		return out, err
	}
	defer ext.Close()
	for range n {
		for _, kind := range []bench.ColdStartKind{bench.FirstHealth, bench.FirstScan} {
			c, err := bench.MeasureColdStart(ctx, s.binary, ext.Cloud, kind, target)
			if err != nil {
				return out, err
			}
			if kind == bench.FirstHealth {
				out.health = append(out.health, c.FirstResponse)
			} else {
				out.scans = append(out.scans, c.FirstResponse)
			}
		}
	}
	return out, nil
}

func (s *setup) print(rows []row, cold coldResult) {
	fmt.Printf("\n### Scheduled scan at the quota (time scale 1/%s)\n\n", trimFloat(s.scale))
	fmt.Printf("Emulated cloud in a separate process: VPC quota %s calls/s per region and action in a bucket of %d calls (real: %s/s, 600 per 60 s), "+
		"VPC latency %s (real: %s); the peer sleeps %s on a throttled answer (real: %s). vpnauthz runs with VPC_API_RATE=%s "+
		"and the default concurrency. Times are measured; in brackets, converted to the real scale (×%s). "+
		"4 regions, 4 rules enabled (one finding per rule and authorization).\n\n",
		trimFloat(s.faults.Quota), s.faults.Burst, trimFloat(realQuota), s.faults.Latency, realLatency,
		s.pause, realThrottlePause, trimFloat(s.faults.Quota), trimFloat(s.scale))
	fmt.Println("| connections (authorizations, findings) | runs ours / peer | wall ours | wall peer | bound | ours / bound | peer / ours | VPC calls ours / min (peer) | throttled ours / peer | PutLogs ours / min (peer) | PutLogs bytes wire ours / peer (raw ours) | CPU per VPC call (binary) | allocations per VPC call | peak heap ours (binary at GC) | allocations ours |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		peerWall, peerRatio, peerCalls, peerPut, peerWire := "—", "—", "—", "—", "—"
		if r.peerRuns > 0 {
			peerWall, peerRatio = s.dur(r.peer.Wall), fmt.Sprintf("%.1f×", r.peer.Wall.Seconds()/r.ours.Wall.Seconds())
			peerCalls, peerPut, peerWire = thousands(r.peer.VPCCalls), thousands(r.peer.PutLogsCalls), mib(uint64(r.peer.WireBytes))
		}
		fmt.Printf("| %s (%s, %s) | %d / %d | %s | %s | %s | %.2f× | %s | %s / %s (%s) | %d / %d | %d / %d (%s) | %s / %s (%s) | %s | %.0f | %s (%s) | %s objects, %s |\n",
			thousands(r.n), thousands(r.authorizations), thousands(r.expected.Findings),
			r.runs, r.peerRuns,
			s.dur(r.ours.Wall), peerWall, s.dur(r.bound.Time),
			r.ours.Wall.Seconds()/r.bound.Time.Seconds(), peerRatio,
			thousands(r.ours.VPCCalls), thousands(r.bound.Calls), peerCalls,
			r.ours.Throttled, r.peer.Throttled,
			r.ours.PutLogsCalls, r.expected.MinPutLogs, peerPut,
			mib(uint64(r.ours.WireBytes)), peerWire, mib(uint64(r.ours.RawBytes)),
			us(r.bin.CPUPerCall()), float64(r.ours.Allocs)/float64(max(r.ours.VPCCalls, 1)),
			mib(r.ours.PeakHeap), mib(r.bin.GCHeap), thousands(int(r.ours.Allocs)), mib(r.ours.AllocBytes))
	}
	fmt.Println()
	for _, r := range rows {
		note := ""
		if r.incomplete > 0 || r.missing > 0 {
			note = fmt.Sprintf(" — WARNING: %d incomplete scans, %d runs delivered other than the %d findings expected", r.incomplete, r.missing, r.expected.Findings)
		}
		cpu := make([]string, len(r.binCPU))
		for i, c := range r.binCPU {
			cpu[i] = us(c)
		}
		fmt.Printf("- %s connections: vpnauthz calls per run %v, throttled per run %v, CPU per call per run [%s]%s\n",
			thousands(r.n), r.oursCalls, r.oursThr, strings.Join(cpu, " "), note)
	}
	fmt.Println("\nMedians of each column over the runs. Bound: per region ceil(connections/50) listing pages + Σ max(1, ceil(authorizations/50)), " +
		"at the quota, regions in parallel. Minimum PutLogs: the findings' raw log sizes packed into requests of at most 4096 logs and " +
		"2.9 MB, plus the summary. CPU per VPC call: user + system time of the built binary's process (/proc/PID/stat, 10 ms ticks) over one timer scan " +
		"under the emulated FC runtime (SDK calls, judgement, logs and Log Service delivery), divided by its VPC calls; the process's start is not counted. " +
		"Peak heap: heap objects above the baseline, sampled every 2 ms during the scan run in the benchmark's own process; in brackets, the binary's largest heap " +
		"at the start of a garbage collection (gctrace, whole MiB). Allocations: the in-process scan's heap allocations, also per VPC call.")

	fmt.Println("\n### Cold start")
	fmt.Println()
	fmt.Printf("- Binary (stripped, linux/amd64 as scripts/build.sh builds it): %s (target ≤ 15 MiB)\n", mib(uint64(cold.binarySize)))
	fmt.Printf("- Exec to the first response, GET /health over the HTTP trigger: median %s (min %s, max %s, %d starts; target ≤ 100 ms)\n",
		ms(median(cold.health)), ms(slices.Min(cold.health)), ms(slices.Max(cold.health)), len(cold.health))
	fmt.Printf("- Exec to the first response, timer scan of 1 connection (1 VPC call, 2 PutLogs, no latency): median %s (min %s, max %s, %d starts)\n",
		ms(median(cold.scans)), ms(slices.Min(cold.scans)), ms(slices.Max(cold.scans)), len(cold.scans))
}

// runLifecycle measures the lifecycle scenario runs times on a generated
// inventory of n connections and prints one row per run.
func (s *setup) runLifecycle(ctx context.Context, n int, seed uint64, runs int) error {
	inv := bench.Generate(seed, n)
	file := filepath.Join(s.dir, fmt.Sprintf("inventory-%d.json", n))
	if err := bench.WriteInventory(file, inv); err != nil {
		return err
	}
	expected := bench.Expect(inv, time.Now())
	inv = nil
	var ls []bench.Lifecycle
	for i := range runs {
		l, err := bench.MeasureLifecycle(ctx, s.binary, file, s.faults, bench.BinaryOptions{Rate: s.faults.Quota, Dir: s.dir})
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		for _, sc := range []struct {
			name string
			scan bench.LifecycleScan
		}{{"without state", l.NoState}, {"first", l.First}, {"steady", l.Steady}} {
			progress("lifecycle %d run %d %s: %s, %d connections, %d VPC calls (%d throttled), %d findings, %d changes, Tablestore %d calls (%d GetRange, %d BatchWriteRow, %d rows read, %d written)",
				n, i+1, sc.name, sc.scan.Wall.Round(time.Millisecond), sc.scan.Connections, sc.scan.Calls.VPCCalls, sc.scan.Calls.VPCThrottled,
				sc.scan.Findings, sc.scan.Changes, sc.scan.Calls.TablestoreCalls, sc.scan.Calls.TablestoreGetRange,
				sc.scan.Calls.TablestoreBatchWriteRow, sc.scan.Calls.TablestoreRowsRead, sc.scan.Calls.TablestoreRowsWritten)
		}
		ls = append(ls, l)
	}
	s.printLifecycle(n, expected, ls)
	return nil
}

func (s *setup) printLifecycle(n int, expected bench.Expected, ls []bench.Lifecycle) {
	fmt.Printf("\n### Finding lifecycle, %s connections (time scale 1/%s)\n\n", thousands(n), trimFloat(s.scale))
	fmt.Printf("The built binary's timer scan of one account (4 regions, REGION:* targets) under the emulated FC runtime, each scan in a process of its own, "+
		"against an emulated cloud in a separate process: VPC quota %s calls/s per region and action in a bucket of %d (real: %s/s), latency %s (real: %s), "+
		"VPC_API_RATE=%s; the emulated Tablestore answers without added latency. Once without STATE_STORE on a fresh cloud; then, on another fresh cloud, "+
		"twice with STATE_STORE: a first scan that opens every finding, then a steady one with nothing changed. Times measured; in brackets, ×%s.\n\n",
		trimFloat(s.faults.Quota), s.faults.Burst, trimFloat(realQuota), s.faults.Latency, realLatency, trimFloat(s.faults.Quota), trimFloat(s.scale))
	fmt.Println("| run | connections | findings delivered (expected) | wall without state | wall with state: first | wall with state: steady | overhead first / steady | state calls first: GetRange, BatchWriteRow (rows written) | state calls steady: GetRange, BatchWriteRow (rows written) | change logs delivered first / steady | VPC calls without / first / steady |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for i, l := range ls {
		fmt.Printf("| %d | %s | %s (%s) | %s | %s | %s | %+.1f %% / %+.1f %% | %d, %d (%s) | %d, %d (%s) | %s / %s | %s / %s / %s |\n",
			i+1, thousands(l.NoState.Connections), thousands(l.Steady.Findings), thousands(expected.Findings),
			s.dur(l.NoState.Wall), s.dur(l.First.Wall), s.dur(l.Steady.Wall),
			100*l.FirstOverhead(), 100*l.Overhead(),
			l.First.Calls.TablestoreGetRange, l.First.Calls.TablestoreBatchWriteRow, thousands(l.First.Calls.TablestoreRowsWritten),
			l.Steady.Calls.TablestoreGetRange, l.Steady.Calls.TablestoreBatchWriteRow, thousands(l.Steady.Calls.TablestoreRowsWritten),
			thousands(l.First.Changes), thousands(l.Steady.Changes),
			thousands(l.NoState.Calls.VPCCalls), thousands(l.First.Calls.VPCCalls), thousands(l.Steady.Calls.VPCCalls))
	}
	fmt.Println("\nOverhead: wall with state / wall without − 1 (target ≤ 10 % at 10,000 connections; the steady scan is the daily one). " +
		"State calls: counted by the emulated Tablestore between snapshots of its counters (emulate --stats, SIGUSR1) taken before and after each scan; " +
		"the table's creation at the cloud's start is not in them. Change logs: the transitions in the scan's summary (changes), delivered with its findings. " +
		"VPC calls: counted by the emulated VPC API. One run per scan on a shared machine: differences of a few per cent in wall time are within its noise.")
}

// orgRun is what the organisation scenario measured.
type orgRun struct {
	bin   bench.BinaryScan
	stats bench.EmulatorStats
	ours  *bench.Result // the in-process scan, when run
}

// runOrg scans a generated organisation once with the built binary under the
// emulated FC runtime (CPU, GC heap, calls counted by the emulated cloud) and
// once in this process (allocations, heap), each against a fresh emulated
// cloud in its own process, and prints the table.
func (s *setup) runOrg(ctx context.Context, shape bench.OrgShape, seed uint64, assumeRate float64, list, inProcess bool) error {
	org := bench.GenerateOrg(seed, shape)
	file := filepath.Join(s.dir, "org.json")
	if err := bench.WriteOrg(file, org); err != nil {
		return err
	}
	// The binary paces AssumeRole at its own rate, which the time scale
	// does not change: the bound takes it as it is.
	b := bench.ComputeOrgBound(org, s.faults.Quota, assumeRate)
	expected, auths := 0, 0
	now := time.Now()
	for _, inv := range append([]*vpcemu.Inventory{org.Own}, slices.Collect(maps.Values(org.Members))...) {
		expected += bench.Expect(inv, now).Findings
		for _, conns := range inv.Regions {
			for _, c := range conns {
				auths += len(c.Authorizations)
			}
		}
	}
	members := org.MemberIDs()
	env := map[string]string{"MEMBER_ROLE_NAME": org.RoleName, "MEMBER_ROLE_EXTERNAL_ID": org.ExternalID, "ACCOUNTS": "resource-directory"}
	if list {
		env["ACCOUNTS"] = strings.Join(append([]string{org.Own.AccountID}, members...), ",")
	}
	org = nil // its memory must not count against the in-process heap

	var run orgRun
	ext, err := bench.StartExternalOrg(ctx, s.binary, file, s.faults)
	if err != nil {
		return err
	}
	run.bin, err = bench.MeasureBinaryScan(ctx, s.binary, ext.Cloud, bench.BinaryOptions{
		Rate: s.faults.Quota, Dir: s.dir, Targets: orgTargets(shape), Env: env,
	})
	stats, stopErr := ext.Stop()
	if err != nil {
		return fmt.Errorf("binary run: %w", err)
	}
	if stopErr != nil {
		return stopErr
	}
	run.stats = stats
	progress("organisation %s binary: %s, %d accounts, %d connections, %d VPC calls (%d throttled), %d AssumeRole, CPU %s (%s per call), GC heap %s",
		shape, run.bin.Wall.Round(time.Millisecond), run.bin.Accounts, run.bin.Connections, stats.VPCCalls, stats.VPCThrottled,
		stats.AssumeRole, run.bin.CPU, us(run.bin.CPUPerCall()), mib(run.bin.GCHeap))

	if inProcess {
		ext, err := bench.StartExternalOrg(ctx, s.binary, file, s.faults)
		if err != nil {
			return err
		}
		var ts []target.Target
		for _, t := range orgTargets(shape) {
			tt, err := target.Parse(t)
			if err != nil {
				ext.Close()
				return err
			}
			ts = append(ts, tt)
		}
		res, err := bench.RunOurs(ctx, ext.Cloud, bench.OursOptions{Rate: s.faults.Quota, MeasureMemory: true, Org: &bench.OrgScan{
			Targets: ts, Members: members, RoleName: env["MEMBER_ROLE_NAME"], ExternalID: env["MEMBER_ROLE_EXTERNAL_ID"],
		}})
		ext.Close()
		if err != nil {
			return fmt.Errorf("in-process run: %w", err)
		}
		run.ours = &res
		progress("organisation %s in-process: %s, %d VPC calls (%d throttled), %d AssumeRole, heap %s, %.0f allocations per call",
			shape, res.Wall.Round(time.Millisecond), res.VPCCalls, res.Throttled, res.AssumeRoleCalls, mib(res.PeakHeap),
			float64(res.Allocs)/float64(max(res.VPCCalls, 1)))
	}
	s.printOrg(shape, b, run, auths, expected, assumeRate)
	return nil
}

// orgTargets is the scheduled scan of every region of every account.
func orgTargets(shape bench.OrgShape) []string {
	return bench.GenerateOrgTargets(shape)
}

func (s *setup) printOrg(shape bench.OrgShape, b bench.OrgBound, run orgRun, auths, expected int, assumeRate float64) {
	fmt.Printf("\n### Organisation %s (time scale 1/%s)\n\n", shape, trimFloat(s.scale))
	fmt.Printf("Emulated cloud in a separate process: VPC quota %s calls/s per (account, region) and action in a bucket of %d (real: %s/s), latency %s (real: %s); "+
		"the binary runs with VPC_API_RATE=%s and paces AssumeRole at its own %s calls/s, which the time scale does not change. "+
		"Times measured; in brackets, ×%s.\n\n",
		trimFloat(s.faults.Quota), s.faults.Burst, trimFloat(realQuota), s.faults.Latency, realLatency, trimFloat(s.faults.Quota), trimFloat(assumeRate), trimFloat(s.scale))
	fmt.Println("| accounts scanned | connections read / total (authorizations) | findings delivered / expected | wall | bound | wall / bound | VPC calls / min | calls/min (real scale) | throttled | AssumeRole calls | CPU per VPC call | allocations per VPC call (in-process) | peak heap: binary at GC (in-process) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	bin := run.bin
	allocs, heap := "—", "—"
	if o := run.ours; o != nil {
		allocs = fmt.Sprintf("%.0f", float64(o.Allocs)/float64(max(o.VPCCalls, 1)))
		heap = mib(o.PeakHeap)
	}
	perMinute := float64(run.stats.VPCCalls) / (bin.Wall.Seconds() * s.scale) * 60
	fmt.Printf("| %d / %d | %s / %s (%s) | %s / %s | %s | %s | %.2f× | %s / %s | %s | %d | %d | %s | %s | %s (%s) |\n",
		bin.Accounts, shape.Accounts, thousands(bin.Connections), thousands(shape.Total()), thousands(auths),
		thousands(bin.Findings), thousands(expected), s.dur(bin.Wall), s.dur(b.Time), bin.Wall.Seconds()/b.Time.Seconds(),
		thousands(run.stats.VPCCalls), thousands(b.Calls), thousands(int(perMinute)), run.stats.VPCThrottled, run.stats.AssumeRole,
		us(bin.CPUPerCall()), allocs, mib(bin.GCHeap), heap)
	fmt.Printf("\nBound: the slowest (account, region), %s %s, at its quota plus the AssumeRole pacing before its account (%s), members entered busiest first; "+
		"the own account needs no AssumeRole; in brackets the wait is scaled like the rest, though the binary's AssumeRole pacing is not. VPC calls and throttled: counted by the emulated VPC API (the binary reports %d calls, %d throttled); "+
		"AssumeRole: counted by the emulated STS. CPU per VPC call: the binary's user + system time over the scan / its VPC calls. "+
		"Allocations and heap in brackets: the same scan in the benchmark's process (run separately, on a fresh cloud).\n",
		b.SlowestAccount, b.SlowestRegion, s.dur(b.Wait), bin.VPCCalls, bin.Throttled)
	if o := run.ours; o != nil {
		fmt.Printf("\nIn-process scan: %s, %s VPC calls (%d throttled), %d AssumeRole, %s findings delivered.\n",
			s.dur(o.Wall), thousands(o.VPCCalls), o.Throttled, o.AssumeRoleCalls, thousands(o.Findings))
	}
}

// dur shows a measured time and, in brackets, the same at the real scale.
func (s *setup) dur(d time.Duration) string {
	real := time.Duration(float64(d) * s.scale)
	return fmt.Sprintf("%s (%s)", short(d), short(real))
}

func short(d time.Duration) string {
	switch {
	case d >= 100*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func median[T int | int64 | uint64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianBinary takes the median of every measure of the binary's runs.
func medianBinary(bs []bench.BinaryScan) bench.BinaryScan {
	var cpu, wall []time.Duration
	var calls, findings []int
	var heap []uint64
	for _, b := range bs {
		cpu, wall, calls, findings, heap = append(cpu, b.CPU), append(wall, b.Wall), append(calls, b.VPCCalls), append(findings, b.Findings), append(heap, b.GCHeap)
	}
	return bench.BinaryScan{Wall: median(wall), CPU: median(cpu), VPCCalls: median(calls), Findings: median(findings), GCHeap: median(heap), Complete: true}
}

// medianResult takes the median of every measure on its own.
func medianResult(rs []bench.Result) bench.Result {
	pick := func(f func(bench.Result) int64) int64 {
		xs := make([]int64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	return bench.Result{
		Wall:         time.Duration(pick(func(r bench.Result) int64 { return int64(r.Wall) })),
		VPCCalls:     int(pick(func(r bench.Result) int64 { return int64(r.VPCCalls) })),
		Throttled:    int(pick(func(r bench.Result) int64 { return int64(r.Throttled) })),
		Retries:      int(pick(func(r bench.Result) int64 { return int64(r.Retries) })),
		Findings:     int(pick(func(r bench.Result) int64 { return int64(r.Findings) })),
		PutLogsCalls: int(pick(func(r bench.Result) int64 { return int64(r.PutLogsCalls) })),
		RawBytes:     pick(func(r bench.Result) int64 { return r.RawBytes }),
		WireBytes:    pick(func(r bench.Result) int64 { return r.WireBytes }),
		PeakHeap:     uint64(pick(func(r bench.Result) int64 { return int64(r.PeakHeap) })),
		Allocs:       uint64(pick(func(r bench.Result) int64 { return int64(r.Allocs) })),
		AllocBytes:   uint64(pick(func(r bench.Result) int64 { return int64(r.AllocBytes) })),
		Complete:     true,
	}
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a number of connections", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchtable: "+format+"\n", args...)
	os.Exit(1)
}
