package scan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/target"
)

// MaxPageSize is the largest PageSize the API takes.
const MaxPageSize = 50

// Options configure a Scanner.
type Options struct {
	Policy    policy.Policy
	NewSource SourceFactory
	// Rate is the VPC API quota in calls per second per region
	// (VPC_API_RATE); the scanner slows down while the API throttles anyway.
	Rate float64
	// Concurrency is the number of connections read at once per region
	// (SCAN_CONCURRENCY): the quota is per region, so concurrency is too, and
	// regions proceed in parallel.
	Concurrency int
	PageSize    int           // default 50, the API's maximum
	CallTimeout time.Duration // per API call; default cloudapi.DefaultCallTimeout
	// Retry is the backoff for throttling, 5xx, timeouts and resets; zero
	// fields take cloudapi's defaults. Its AttemptTimeout is CallTimeout.
	Retry  retry.Policy
	Logger *slog.Logger
	Now    func() time.Time
	// MaxIdleBuckets is how many pacing buckets the Scanner keeps before it
	// drops idle ones; default 256.
	MaxIdleBuckets int
}

// Scanner runs scans. One Scanner serves many scans at once; its per-region
// rate limiters are shared by all of them.
type Scanner struct {
	opts Options

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	sweepAt int // size of buckets at which idle ones are dropped
}

// bucketKey names one quota: an account (or, without one, an access key) in
// one region.
type bucketKey struct {
	principal string
	region    string
}

// New returns a Scanner.
func New(opts Options) *Scanner {
	if opts.Rate <= 0 {
		opts.Rate = cloudapi.DefaultRate
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = cloudapi.DefaultConcurrency
	}
	if opts.PageSize <= 0 || opts.PageSize > MaxPageSize {
		opts.PageSize = MaxPageSize
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = cloudapi.DefaultCallTimeout
	}
	if opts.Retry.MaxAttempts < 0 {
		opts.Retry.MaxAttempts = 0 // every call of a scan has a cap
	}
	opts.Retry = opts.Retry.Defaults()
	// The call timeout runs from the token on: waiting in the region's
	// queue is not the API's slowness.
	opts.Retry.AttemptTimeout = opts.CallTimeout
	if opts.MaxIdleBuckets <= 0 {
		opts.MaxIdleBuckets = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Scanner{opts: opts, buckets: map[bucketKey]*bucket{}, sweepAt: opts.MaxIdleBuckets}
}

// bucket returns the bucket of a quota, held until release is called. The
// map would otherwise grow with every access key a scan ever used (without
// an account id, the key names the quota): once it reaches sweepAt, the
// buckets that are idle are dropped, so it holds the buckets in use, those
// still recovering from throttling, and at most sweepAt others.
func (s *Scanner) bucket(principal, region string) (b *bucket, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := bucketKey{principal, region}
	b, ok := s.buckets[k]
	if !ok {
		if len(s.buckets) >= s.sweepAt {
			now := time.Now()
			for k, old := range s.buckets {
				if old.idle(now) {
					delete(s.buckets, k)
				}
			}
			s.sweepAt = max(s.opts.MaxIdleBuckets, 2*len(s.buckets))
		}
		b = newBucket(s.opts.Rate)
		s.buckets[k] = b
	}
	b.mu.Lock()
	b.users++
	b.mu.Unlock()
	return b, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.users--
		b.lastUsed = time.Now()
	}
}

// bucketCount is the number of buckets kept, for tests.
func (s *Scanner) bucketCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets)
}

// DeliveryMargin is the part of the time left before a scan's deadline that
// the scan keeps for delivering its findings: 10 % of it, at least 1 s and at
// most 15 s. Calls stop at deadline − margin.
func DeliveryMargin(left time.Duration) time.Duration {
	return min(max(left/10, time.Second), 15*time.Second)
}

// Detail of the ERROR findings of what a scan did not reach.
const (
	detailDeadline  = "Not scanned before the deadline."
	detailCancelled = "Not scanned: the scan was cancelled."
)

func validate(req Request, newSource SourceFactory) error {
	if newSource == nil {
		return errors.New("scan: no VPC source configured")
	}
	if len(req.Targets) == 0 {
		return errors.New("scan: no targets")
	}
	for _, t := range req.Targets {
		if !target.ValidRegion(t.Region) {
			return fmt.Errorf("scan: target %q: invalid region", t.String())
		}
		if t.ConnectionID != target.All && !target.ValidConnectionID(t.ConnectionID) {
			return fmt.Errorf("scan: target %q: invalid VPN connection id", t.String())
		}
	}
	if req.Credentials.AccessKeyID == "" || req.Credentials.AccessKeySecret == "" {
		return errors.New("scan: no credentials")
	}
	return nil
}

// regionTargets is what a scan covers in one region.
type regionTargets struct {
	region   string
	ids      []string // explicit connection ids, without duplicates, in request order
	wildcard bool
}

func groupByRegion(ts []target.Target) []regionTargets {
	var out []regionTargets
	index := map[string]int{}
	seen := map[target.Target]bool{}
	for _, t := range ts {
		i, ok := index[t.Region]
		if !ok {
			i = len(out)
			index[t.Region] = i
			out = append(out, regionTargets{region: t.Region})
		}
		if seen[t] {
			continue
		}
		seen[t] = true
		if t.Wildcard() {
			out[i].wildcard = true
		} else {
			out[i].ids = append(out[i].ids, t.ConnectionID)
		}
	}
	return out
}

// Run scans req.Targets and streams the findings to sink (nil: dry run, nothing
// delivered; req.DryRun also keeps the sink out). Unreadable connections become
// ERROR findings, not errors; Run returns an error only for an invalid request.
func (s *Scanner) Run(ctx context.Context, req Request, sink Sink) (Report, error) {
	if err := validate(req, s.opts.NewSource); err != nil {
		return Report{}, err
	}
	if req.ScanID == "" {
		req.ScanID = newScanID()
	}
	if req.DryRun {
		sink = nil
	}
	startedAt := s.opts.Now()
	start := time.Now()
	log := s.opts.Logger.With("scan_id", req.ScanID)

	// Calls stop at deadline − margin; delivery keeps the whole time, and is
	// not cut short by the margin's cancellation.
	scanCtx, cancelScan := context.WithCancel(ctx)
	deliverCtx, cancelDeliver := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		margin := DeliveryMargin(time.Until(dl))
		cancelScan()
		scanCtx, cancelScan = context.WithDeadline(ctx, dl.Add(-margin))
		deliverCtx, cancelDeliver = context.WithDeadline(context.WithoutCancel(ctx), dl)
		log.Debug("scan deadline", "deadline", dl, "delivery_margin", margin)
	}
	defer cancelScan()
	defer cancelDeliver()

	principal := req.AccountID
	if principal == "" {
		principal = req.Credentials.AccessKeyID
	}
	r := &run{
		s:         s,
		req:       req,
		principal: principal,
		out:       make(chan finding.Finding, 64),
		log:       log,
	}
	regions := groupByRegion(req.Targets)
	log.Info("scan started", "trigger", req.Trigger, "targets", len(req.Targets), "regions", len(regions),
		"dry_run", sink == nil, "credentials", req.Credentials)

	// One collector hands the findings to the sink as they come, so memory
	// does not grow with them (unless the caller wants them back).
	var (
		counts    finding.Counts
		collected []finding.Finding
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		writeFailed := false
		for f := range r.out {
			f.ScanID, f.Trigger = req.ScanID, req.Trigger
			counts.Add(&f)
			if sink != nil {
				if err := sink.Write(deliverCtx, &f); err != nil && !writeFailed {
					writeFailed = true
					log.Warn("writing findings failed", "err", err)
				}
			}
			if req.CollectFindings {
				collected = append(collected, f)
			}
		}
	}()

	var wg sync.WaitGroup
	for _, rt := range regions {
		wg.Go(func() { r.region(scanCtx, rt) })
	}
	wg.Wait()
	close(r.out)
	<-done

	counts.Connections = int(r.connections.Load())
	counts.Authorizations = int(r.authorizations.Load())
	counts.APICalls = int(r.calls.Load())
	counts.APIRetries = int(r.retries.Load())
	counts.Throttled = int(r.throttled.Load())
	summary := finding.ScanSummary{
		ScanID:     req.ScanID,
		Trigger:    req.Trigger,
		StartedAt:  startedAt.UTC().Format(time.RFC3339),
		DurationMs: time.Since(start).Milliseconds(),
		Complete:   !r.incomplete.Load(),
		Counts:     counts,
	}
	delivery := Delivery{Sink: "none"}
	if sink != nil {
		delivery = sink.Close(deliverCtx, &summary)
	}
	counts.FindingsDelivered = summary.Counts.FindingsDelivered

	rep := Report{
		ScanID:     req.ScanID,
		Trigger:    req.Trigger,
		StartedAt:  summary.StartedAt,
		DurationMs: summary.DurationMs, // the scan's, as the summary log has it
		Complete:   summary.Complete,
		Summary:    counts,
		Delivery:   delivery,
		Findings:   collected,
	}
	log.Info("scan finished", "complete", rep.Complete, "duration_ms", rep.DurationMs,
		"connections", counts.Connections, "authorizations", counts.Authorizations,
		"pass", counts.Pass, "fail", counts.Fail, "error", counts.Error, "suppressed", counts.Suppressed,
		"api_calls", counts.APICalls, "api_retries", counts.APIRetries, "throttled", counts.Throttled,
		"delivered", delivery.Delivered, "findings_delivered", counts.FindingsDelivered)
	if delivery.Error != "" {
		log.Warn("delivery failed", "sink", delivery.Sink, "err", delivery.Error)
	}
	return rep, nil
}

func newScanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// run is the state of one Run shared by its regions.
type run struct {
	s         *Scanner
	req       Request
	principal string
	out       chan finding.Finding
	log       *slog.Logger

	connections, authorizations atomic.Int64
	calls, retries, throttled   atomic.Int64
	incomplete                  atomic.Bool
}

func (r *run) emit(f finding.Finding) { r.out <- f }

// errorFinding emits the ERROR finding of what could not be read; remediation
// replaces the generic advice when the cause calls for other advice.
func (r *run) errorFinding(region, connectionID string, c cause) {
	f := policy.ErrorFinding(region, connectionID, r.req.AccountID, c.detail, r.s.opts.Now())
	if c.remediation != "" {
		f.Remediation = c.remediation
	}
	r.emit(f)
}

// cause is why a read failed: the ERROR finding's detail and, where the
// generic advice does not fit, its remediation.
type cause struct{ detail, remediation string }

// region reads every targeted connection of one region: explicit ids first,
// then those the listing finds, page by page, while up to Concurrency workers
// read the connections already known.
func (r *run) region(ctx context.Context, rt regionTargets) {
	log := r.log.With("region", rt.region)
	src, err := r.s.opts.NewSource(r.req.Credentials, rt.region)
	if err != nil {
		c := cause{detail: fmt.Sprintf("Cannot call the VPC API in %s: %v", rt.region, err)}
		log.Warn("no VPC source", "err", err)
		for _, id := range rt.ids {
			r.connections.Add(1)
			r.errorFinding(rt.region, id, c)
		}
		if rt.wildcard {
			r.errorFinding(rt.region, target.All, c)
		}
		return
	}
	b, release := r.s.bucket(r.principal, rt.region)
	defer release()
	ps := r.s.opts.PageSize

	// The queue holds a page ahead, so the next listing page is read while
	// the workers still have connections to read.
	queue := make(chan string, len(rt.ids)+ps)
	var wg sync.WaitGroup
	for range r.s.opts.Concurrency {
		wg.Go(func() {
			for id := range queue {
				r.connection(ctx, src, b, rt.region, id)
			}
		})
	}
	seen := make(map[string]bool, len(rt.ids))
	for _, id := range rt.ids {
		seen[id] = true
		queue <- id
	}
	if rt.wildcard {
		r.discover(ctx, src, b, rt.region, seen, queue)
	}
	close(queue)
	wg.Wait()
	log.Debug("region done", "connections", len(seen))
}

// discover lists the region's connections and queues those not queued yet.
// A connection queued by a pass that turned out unsteady stays queued: it was
// listed, and reading it tells whether it still exists.
func (r *run) discover(ctx context.Context, src Source, b *bucket, region string, seen map[string]bool, queue chan<- string) {
	var listed map[string]bool // by this pass
	err := readList(func(page int) (int, int, int, error) {
		var p ConnectionPage
		err := r.call(ctx, b, func(ctx context.Context) error {
			var err error
			p, err = src.ListConnections(ctx, region, page, r.s.opts.PageSize)
			return err
		})
		added := 0
		for _, id := range p.IDs {
			if listed[id] {
				continue
			}
			listed[id] = true
			added++
			if !seen[id] {
				seen[id] = true
				queue <- id
			}
		}
		return len(p.IDs), added, p.TotalCount, err
	}, func() { listed = map[string]bool{} })
	if err != nil {
		c := r.failure(ctx, "DescribeVpnConnections", "", err)
		if c.remediation == "" {
			c.remediation = fmt.Sprintf("Check that the function's role is allowed vpc:DescribeVpnConnections in %s; "+
				"the connections of the region were not listed, and the next scan retries.", region)
		}
		r.log.Warn("listing connections failed", "region", region, "err", err)
		r.errorFinding(region, target.All, c)
	}
}

// maxPasses bounds how often a list that changes while it is paged is read
// again from its first page.
const maxPasses = 3

// errListChanging: no pass over a list saw it hold still.
var errListChanging = fmt.Errorf("the list changed while it was read, %d times in a row", maxPasses)

// readList reads a paged list whole; fetch returns how many items a page
// served and how many of those the pass had not seen yet. Pages are addressed by number, so an
// item removed from a page already read shifts a later one onto it, and an
// item added before the current page shifts one onto the next page twice:
// when a page's TotalCount differs from the first page's, the pass is
// abandoned and the list read again from page 1 (newPass resets what the
// caller keeps per pass), up to maxPasses times. An unchanged list costs
// exactly max(1, ceil(total/pageSize)) calls.
//
// A pass ends on an empty page, when it has as many items as TotalCount
// (a short page alone does not end it: a server may serve smaller pages), or
// after a cap of pages, so that a server whose TotalCount overstates what it
// serves cannot keep the read going.
func readList(fetch func(page int) (served, added, total int, err error), newPass func()) error {
	for range maxPasses {
		newPass()
		steady, err := readPass(fetch)
		if err != nil || steady {
			return err
		}
	}
	return errListChanging
}

func readPass(fetch func(page int) (served, added, total int, err error)) (steady bool, err error) {
	first, got, per := 0, 0, 1
	for page := 1; ; page++ {
		served, added, total, err := fetch(page)
		if err != nil {
			return false, err
		}
		if page == 1 {
			// The pages the server actually serves, which may be smaller
			// than the PageSize asked for, set how many pages the list needs.
			first, per = total, max(served, 1)
		} else if total != first {
			return false, nil
		}
		// Only items not seen before count: a server that serves the same
		// page again must not pass for one that served the whole list.
		got += added
		if served == 0 || got >= total {
			return true, nil
		}
		if page >= (first+per-1)/per+2 {
			return false, fmt.Errorf("%w: %d items after %d pages, %d announced", errPagesExceeded, got, page, first)
		}
	}
}

// errPagesExceeded: a list kept serving pages past what its TotalCount needs.
var errPagesExceeded = errors.New("the list did not end where its TotalCount said")

type authKey struct {
	bindUID      int64
	bindInstance string
}

// connection reads and judges one connection; whatever happens, it gives the
// connection at least one finding.
func (r *run) connection(ctx context.Context, src Source, b *bucket, region, id string) {
	r.connections.Add(1)
	auths, err := r.readAuthorizations(ctx, src, b, region, id)
	if err != nil {
		c := r.failure(ctx, "DescribeVpnCrossAccountAuthorizations", id, err)
		r.log.Warn("reading authorizations failed", "region", region, "vpn_connection_id", id, "err", err)
		r.errorFinding(region, id, c)
		return
	}
	r.authorizations.Add(int64(len(auths)))
	c := policy.Connection{Region: region, ID: id, AccountID: r.req.AccountID, Authorizations: auths}
	for _, f := range r.s.opts.Policy.Evaluate(c, r.s.opts.Now()) {
		r.emit(f)
	}
}

// readAuthorizations reads a connection's authorizations as one steady pass
// saw them, so that none is missed or judged twice while grants change.
func (r *run) readAuthorizations(ctx context.Context, src Source, b *bucket, region, id string) ([]policy.Authorization, error) {
	if ctx.Err() != nil {
		return nil, retry.ErrNoTime
	}
	var (
		auths []policy.Authorization
		seen  map[authKey]bool
	)
	err := readList(func(page int) (int, int, int, error) {
		var p AuthorizationPage
		err := r.call(ctx, b, func(ctx context.Context) error {
			var err error
			p, err = src.ListAuthorizations(ctx, region, id, page, r.s.opts.PageSize)
			return err
		})
		added := 0
		for _, a := range p.Authorizations {
			if k := (authKey{a.BindUID, a.BindInstance}); !seen[k] {
				seen[k] = true
				auths = append(auths, a)
				added++
			}
		}
		return len(p.Authorizations), added, p.TotalCount, err
	}, func() { auths, seen = nil, map[authKey]bool{} })
	return auths, err
}

// failure is why a read failed. A call the scan's time cut short makes the
// scan incomplete, whatever the last answer was, unless that answer was final
// (forbidden, not found): then the answer is the cause.
func (r *run) failure(ctx context.Context, action, connectionID string, err error) cause {
	var ae *cloudapi.APIError
	isAnswer := errors.As(err, &ae)
	final := cloudapi.Classify(err) == cloudapi.Final && !errors.Is(err, retry.ErrNoTime)
	if !final && (errors.Is(err, retry.ErrNoTime) || ctx.Err() != nil) {
		r.incomplete.Store(true)
		if errors.Is(ctx.Err(), context.Canceled) {
			return cause{detailCancelled, "The scan was stopped before this connection was read; run it again."}
		}
		detail := detailDeadline
		if isAnswer {
			detail = fmt.Sprintf("Not scanned before the deadline (the last answer was %v).", ae)
		}
		return cause{detail, "Raise the function's timeout or narrow SCAN_TARGETS; the next scan reads this connection again."}
	}
	if isAnswer && ae.HTTPStatus == 404 && connectionID != "" && notFoundConnection(ae.Code) {
		return cause{
			fmt.Sprintf("VPN connection %s does not exist: %s failed: %v.", connectionID, action, ae),
			"If the connection was deleted, nothing can attach it any more; remove it from SCAN_TARGETS if it is listed there.",
		}
	}
	return cause{detail: fmt.Sprintf("%s failed: %v.", action, err)}
}

func notFoundConnection(code string) bool {
	switch code {
	case "InvalidVpnConnectionInstanceId.NotFound", "InvalidVpnConnectionId.NotFound", "InvalidInstanceId.NotFound":
		return true
	}
	return false
}

// call makes one API call with the region's pacing and the retry loop;
// every attempt waits for a token of the region's bucket, and every
// throttled answer slows the bucket down.
func (r *run) call(ctx context.Context, b *bucket, fn func(context.Context) error) error {
	return retry.Do(ctx, r.s.opts.Retry, retry.Hooks{
		Pace:    b.take,
		Attempt: func() { r.calls.Add(1) },
		Answer: func(err error, class cloudapi.Class) {
			switch {
			case err == nil:
				b.succeeded()
			case class == cloudapi.Throttled:
				r.throttled.Add(1)
				b.throttled(time.Now())
			}
		},
		Retry: func() { r.retries.Add(1) },
	}, fn)
}
