package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"vpnauthz/internal/assume"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/target"
	"vpnauthz/internal/vpcapi"
)

// Result is what one scan of the benchmark did, whichever side ran it.
type Result struct {
	Wall         time.Duration
	VPCCalls     int // attempts, throttled ones included
	Throttled    int
	Retries      int
	Findings     int // delivered to Log Service
	PutLogsCalls int
	RawBytes     int64 // uncompressed protobuf of every PutLogs request
	WireBytes    int64 // compressed bodies on the wire
	Complete     bool
	// AssumeRoleCalls are those of an organisation scan.
	AssumeRoleCalls int

	// Measured when asked, on our side only.
	PeakHeap   uint64 // most heap in live and not yet collected objects, above the baseline
	Allocs     uint64 // heap objects allocated during the scan
	AllocBytes uint64
}

// OursOptions configure a run of vpnauthz's scan.
type OursOptions struct {
	Rate        float64 // VPC_API_RATE; 0: the scanner's default
	Concurrency int     // SCAN_CONCURRENCY; 0: the scanner's default
	// MeasureMemory samples the heap during the scan. The run then starts
	// with a garbage collection, so that the baseline is what stays live.
	MeasureMemory bool
	// Org, when set, scans an organisation: the function's own account and
	// the members, entered through STS as the function enters them.
	Org *OrgScan
}

// OrgScan is the organisation a scan covers.
type OrgScan struct {
	Targets              []target.Target // the scope, like REGION:* (every scanned account)
	Members              []string        // member account ids
	RoleName, ExternalID string
}

// memberCredentials gives the scanner the members' tokens from an AssumeRole
// cache, as the function does.
type memberCredentials struct{ c *assume.Cache }

func (m memberCredentials) Credentials(ctx context.Context, account string) (scan.Credentials, error) {
	t, err := m.c.Credentials(ctx, account)
	if err != nil {
		return scan.Credentials{}, err
	}
	return t.Credentials, nil
}

// RunOurs runs one scheduled scan of every connection in cloud with the
// scanner, VPC source and Log Service sink wired as the function wires them:
// a scan of the timer trigger, whose findings are streamed, not collected.
func RunOurs(ctx context.Context, cloud Cloud, opts OursOptions) (Result, error) {
	// The function logs JSON at level info; the lines go nowhere here, but
	// they are built as they would be.
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	req := scan.Request{
		Trigger:     finding.TriggerTimer,
		Targets:     Targets(),
		Credentials: cloud.Credentials,
		AccountID:   cloud.AccountID,
	}

	var mem *heapSampler
	if opts.MeasureMemory {
		mem = startHeapSampler()
	}
	start := time.Now()
	var assumed *assume.Cache
	if o := opts.Org; o != nil {
		sts, err := endpoint.Parse(cloud.Env["STS_ENDPOINT"])
		if err != nil {
			return Result{}, fmt.Errorf("the cloud's STS_ENDPOINT: %w", err)
		}
		assumed, err = assume.New(assume.Options{Endpoint: sts, Region: cloud.Region, Base: cloud.Credentials,
			RoleName: o.RoleName, ExternalID: o.ExternalID, ScanID: "bench-org"})
		if err != nil {
			return Result{}, err
		}
		req.Targets = target.ForAccounts(o.Targets, append([]string{""}, o.Members...))
		req.Members = memberCredentials{assumed}
	}
	scanner := scan.New(scan.Options{
		Policy:      Policy(),
		NewSource:   vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(cloud.VPCEndpoint)}),
		Rate:        opts.Rate,
		Concurrency: opts.Concurrency,
		Logger:      logger,
	})
	sink, err := slssink.New(slssink.Options{
		Endpoint:    endpoint.MustParse(cloud.SLSEndpoint),
		Project:     cloud.Project,
		Logstore:    cloud.Logstore,
		Credentials: cloud.Credentials,
		Stdout:      io.Discard,
	})
	if err != nil {
		return Result{}, err
	}
	rep, err := scanner.Run(ctx, req, sink)
	wall := time.Since(start)
	var r Result
	if mem != nil {
		r.PeakHeap, r.Allocs, r.AllocBytes = mem.stop()
	}
	if err != nil {
		return Result{}, err
	}
	if !rep.Delivery.Delivered {
		return Result{}, fmt.Errorf("scan %s: findings not delivered: %s", rep.ScanID, rep.Delivery.Error)
	}
	st := sink.Stats()
	r.Wall = wall
	r.VPCCalls = rep.Summary.APICalls
	r.Throttled = rep.Summary.Throttled
	r.Retries = rep.Summary.APIRetries
	r.Findings = rep.Summary.FindingsDelivered
	r.PutLogsCalls = st.PutLogsCalls
	r.RawBytes = st.RawBytes
	r.WireBytes = st.WireBytes
	r.Complete = rep.Complete
	if assumed != nil {
		r.AssumeRoleCalls = assumed.Calls()
	}
	return r, nil
}

// heapSampler follows the heap while a scan runs: runtime/metrics reads are
// cheap and do not stop the world, so it can look every couple of
// milliseconds without slowing the scan down.
type heapSampler struct {
	base       uint64
	mallocs    uint64
	totalAlloc uint64
	stopc      chan struct{}
	done       sync.WaitGroup
	peak       uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func startHeapSampler() *heapSampler {
	// Two collections: the first may leave finalizer-held objects behind.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &heapSampler{mallocs: ms.Mallocs, totalAlloc: ms.TotalAlloc, stopc: make(chan struct{})}
	sample := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(sample)
	s.base = sample[0].Value.Uint64()
	s.peak = s.base
	s.done.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			select {
			case <-t.C:
			case <-s.stopc:
				return
			}
		}
	})
	return s
}

// stop returns the peak heap above the baseline and what was allocated.
func (s *heapSampler) stop() (peak, allocs, allocBytes uint64) {
	close(s.stopc)
	s.done.Wait()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return s.peak - s.base, ms.Mallocs - s.mallocs, ms.TotalAlloc - s.totalAlloc
}
