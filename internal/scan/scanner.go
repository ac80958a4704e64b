package scan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
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
		if t.Account != "" && !target.ValidAccountID(t.Account) {
			return fmt.Errorf("scan: target %q: invalid account id", t.String())
		}
		if t.Account != "" && t.Account != req.AccountID && req.Members == nil {
			return fmt.Errorf("scan: target %q names another account, and no member credentials are configured", t.String())
		}
	}
	if req.Credentials.AccessKeyID == "" || req.Credentials.AccessKeySecret == "" {
		return errors.New("scan: no credentials")
	}
	return nil
}

// regionTargets is what a scan covers in one region of one account.
type regionTargets struct {
	region   string
	ids      []string // explicit connection ids, without duplicates, in request order
	wildcard bool
}

// accountTargets is what a scan covers in one account.
type accountTargets struct {
	account string // "": the function's own
	regions []regionTargets
}

// groupTargets groups the targets by account, then region, in request order;
// the own account named by its UID is the own account.
func groupTargets(ts []target.Target, own string) []accountTargets {
	var out []accountTargets
	type key struct{ account, region string }
	accIndex := map[string]int{}
	regIndex := map[key]int{}
	seen := map[target.Target]bool{}
	for _, t := range ts {
		if own != "" && t.Account == own {
			t.Account = ""
		}
		a, ok := accIndex[t.Account]
		if !ok {
			a = len(out)
			accIndex[t.Account] = a
			out = append(out, accountTargets{account: t.Account})
		}
		k := key{t.Account, t.Region}
		i, ok := regIndex[k]
		if !ok {
			i = len(out[a].regions)
			regIndex[k] = i
			out[a].regions = append(out[a].regions, regionTargets{region: t.Region})
		}
		if seen[t] {
			continue
		}
		seen[t] = true
		rt := &out[a].regions[i]
		if t.Wildcard() {
			rt.wildcard = true
		} else {
			rt.ids = append(rt.ids, t.ConnectionID)
		}
	}
	return out
}

// Run scans req.Targets and streams the findings to sink (nil: dry run, nothing
// delivered; req.DryRun also keeps the sink out). Unreadable connections become
// ERROR findings, not errors; Run returns an error only for an invalid request.
//
// With req.State, the findings carry their lifecycle and the transitions go
// to the sink as change logs; without a sink (a dry run), the state is read
// to annotate the findings but nothing is written to it, since transitions
// that are never delivered would be lost to the alerts.
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

	pol := s.opts.Policy
	if len(req.TrustedAccounts) > 0 {
		extra := make([]string, len(req.TrustedAccounts))
		for i, a := range req.TrustedAccounts {
			extra[i] = strconv.FormatInt(a, 10)
		}
		pol = pol.WithTrusted(extra...)
	}
	r := &run{
		s:          s,
		req:        req,
		policy:     pol,
		out:        make(chan finding.Finding, 64),
		changes:    make(chan lifecycle.Change, 64),
		evalSlots:  make(chan struct{}, evalSlots),
		log:        log,
		deliverCtx: deliverCtx,
		writeState: sink != nil,
	}
	accounts := groupTargets(req.Targets, req.AccountID)
	log.Info("scan started", "trigger", req.Trigger, "targets", len(req.Targets), "accounts", len(accounts),
		"dry_run", sink == nil, "stateful", req.State != nil, "credentials", req.Credentials)

	// One collector hands the findings and the transitions to the sink as
	// they come, so memory does not grow with them (unless the caller wants
	// the findings back), and the sink is written from one goroutine.
	var (
		counts    finding.Counts
		collected []finding.Finding
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		writeFailed, changeFailed := false, false
		out, changes := r.out, r.changes
		// One variable each, reused: what the sink is handed by pointer
		// would otherwise be a heap copy per finding. Sinks copy what they
		// keep (Sink).
		var f finding.Finding
		var c lifecycle.Change
		for out != nil || changes != nil {
			select {
			case next, ok := <-out:
				if !ok {
					out = nil
					continue
				}
				f = next
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
			case next, ok := <-changes:
				if !ok {
					changes = nil
					continue
				}
				c = next
				counts.Changes++
				if sink != nil {
					if err := sink.WriteChange(deliverCtx, &c); err != nil && !changeFailed {
						changeFailed = true
						log.Warn("writing lifecycle changes failed", "err", err)
					}
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for _, at := range accounts {
		wg.Go(func() { r.account(scanCtx, at) })
	}
	wg.Wait()
	close(r.out)
	close(r.changes)
	<-done

	counts.Connections = int(r.connections.Load())
	counts.ConnectionsInScope = int(r.inScope.Load())
	counts.Authorizations = int(r.authorizations.Load())
	counts.APICalls = int(r.calls.Load())
	counts.APIRetries = int(r.retries.Load())
	counts.Throttled = int(r.throttled.Load())
	counts.StateWarning = r.stateWarning()
	summary := finding.ScanSummary{
		ScanID:     req.ScanID,
		Trigger:    req.Trigger,
		StartedAt:  startedAt.UTC().Format(time.RFC3339),
		DurationMs: time.Since(start).Milliseconds(),
		Complete:   !r.incomplete.Load(),
		Counts:     counts,
		Accounts:   len(accounts),
	}
	if b := req.Batch; b != nil {
		summary.Role = finding.RoleWorker
		summary.ParentScanID, summary.Batch, summary.Batches = b.ParentScanID, b.Batch, b.Batches
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
	log.Info("scan finished", "complete", rep.Complete, "duration_ms", rep.DurationMs, "accounts", len(accounts),
		"connections", counts.Connections, "connections_in_scope", counts.ConnectionsInScope,
		"authorizations", counts.Authorizations,
		"pass", counts.Pass, "fail", counts.Fail, "error", counts.Error, "suppressed", counts.Suppressed,
		"api_calls", counts.APICalls, "api_retries", counts.APIRetries, "throttled", counts.Throttled,
		"changes", counts.Changes, "delivered", delivery.Delivered, "findings_delivered", counts.FindingsDelivered)
	if counts.StateWarning != "" {
		log.Warn("lifecycle state degraded", "warning", counts.StateWarning)
	}
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

// evalSlots is how many connections of a scan may have their findings made
// or waiting for the collector at once: enough to keep every core
// evaluating, few enough that the findings held while the sink is behind
// stay a small multiple of the collector's channel.
const evalSlots = 32

// run is the state of one Run shared by its accounts and regions.
type run struct {
	s       *Scanner
	req     Request
	policy  policy.Policy // the scanner's, with the scan's extra trusted accounts
	out     chan finding.Finding
	changes chan lifecycle.Change
	// evalSlots bounds the connections whose findings are being made or
	// waiting for the collector, across every account and region.
	evalSlots chan struct{}
	log       *slog.Logger
	// deliverCtx bounds the state writes, which the scan's margin must not
	// cut short; writeState is false when nothing is delivered (dry run).
	deliverCtx context.Context
	writeState bool

	connections, inScope, authorizations atomic.Int64
	calls, retries, throttled            atomic.Int64
	incomplete                           atomic.Bool

	stateMu     sync.Mutex
	stateErrs   int
	firstStateE error
}

func (r *run) emit(f finding.Finding) { r.out <- f }

// errorFinding emits the ERROR finding of what could not be read; remediation
// replaces the generic advice when the cause calls for other advice.
func (r *run) errorFinding(region, connectionID, owner string, c cause) {
	f := policy.ErrorFinding(region, connectionID, owner, c.detail, r.s.opts.Now())
	if c.remediation != "" {
		f.Remediation = c.remediation
	}
	r.emit(f)
}

// stateFailed notes a failure of the state store; the scan goes on.
func (r *run) stateFailed(err error) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	r.stateErrs++
	if r.firstStateE == nil {
		r.firstStateE = err
	}
	r.log.Warn("lifecycle state", "err", err)
}

// stateWarning is the summary's state_warning: the first failure, and how
// many more there were.
func (r *run) stateWarning() string {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	switch r.stateErrs {
	case 0:
		return ""
	case 1:
		return r.firstStateE.Error()
	}
	return fmt.Sprintf("%v (and %d more state store failures)", r.firstStateE, r.stateErrs-1)
}

// cause is why a read failed: the ERROR finding's detail and, where the
// generic advice does not fit, its remediation. late: the scan's time ran
// out before the read (the connection was not read); deleted: the
// connection no longer exists.
type cause struct {
	detail, remediation string
	late, deleted       bool
}

// memberRoleAdvice is the remediation of an account that could not be entered.
const memberRoleAdvice = "Deploy the member role in account %s: the RAM role named by MEMBER_ROLE_NAME (default vpnauthz-auditor) " +
	"with a policy allowing only vpc:DescribeVpnConnections and vpc:DescribeVpnCrossAccountAuthorizations, " +
	"and a trust policy that admits the scanning account's function role with the ExternalId condition " +
	"(sts:ExternalId = MEMBER_ROLE_EXTERNAL_ID); the scripts directory has the template and its roll-out. The next scan retries."

// account scans the targets of one account: its credentials first (a
// member's from Members, which a member's Sources ask again at each call),
// then its regions in parallel.
func (r *run) account(ctx context.Context, at accountTargets) {
	uid, creds, newSource := r.req.AccountID, r.req.Credentials, r.s.opts.NewSource
	if at.account != "" {
		uid = at.account
		c, err := r.req.Members.Credentials(ctx, at.account)
		if err != nil {
			r.accountFailed(ctx, at, err)
			return
		}
		creds, newSource = c, r.memberSources(at.account)
	}
	var wg sync.WaitGroup
	for _, rt := range at.regions {
		wg.Go(func() { r.region(ctx, uid, creds, newSource, rt) })
	}
	wg.Wait()
}

// accountFailed reports an account whose credentials could not be had: one
// ERROR for the account, which does not make the scan incomplete; or, when
// the scan's time ran out while they were asked for, what the deadline left
// unread, as anywhere else.
func (r *run) accountFailed(ctx context.Context, at accountTargets, err error) {
	log := r.log.With("account", at.account)
	if ctx.Err() != nil {
		r.incomplete.Store(true)
		c := cause{detail: detailDeadline, remediation: "Raise the function's timeout or narrow the accounts or targets; the next scan reads this account again.", late: true}
		if errors.Is(ctx.Err(), context.Canceled) {
			c = cause{detail: detailCancelled, remediation: "The scan was stopped before this account was read; run it again.", late: true}
		}
		log.Warn("account not entered before the deadline", "err", err)
		for _, rt := range at.regions {
			r.inScope.Add(int64(len(rt.ids)))
			for _, id := range rt.ids {
				r.errorFinding(rt.region, id, at.account, c)
			}
			if rt.wildcard {
				r.errorFinding(rt.region, target.All, at.account, c)
			}
		}
		return
	}
	log.Warn("cannot enter account", "err", err)
	r.errorFinding(target.All, target.All, at.account, cause{
		detail:      fmt.Sprintf("Cannot read account %s: its credentials could not be had: %v.", at.account, err),
		remediation: fmt.Sprintf(memberRoleAdvice, at.account),
	})
}

// region reads every targeted connection of one region of one account
// (owner is its UID): the listing first, to its end, so that every
// connection in scope is named before the time runs out; then up to
// Concurrency workers read the named connections.
func (r *run) region(ctx context.Context, owner string, creds Credentials, newSource SourceFactory, rt regionTargets) {
	log := r.log.With("region", rt.region)
	if owner != r.req.AccountID {
		log = log.With("account", owner)
	}
	src, err := newSource(creds, rt.region)
	if err != nil {
		c := cause{detail: fmt.Sprintf("Cannot call the VPC API in %s: %v", rt.region, err)}
		log.Warn("no VPC source", "err", err)
		r.inScope.Add(int64(len(rt.ids)))
		for _, id := range rt.ids {
			r.connections.Add(1)
			r.errorFinding(rt.region, id, owner, c)
		}
		if rt.wildcard {
			r.errorFinding(rt.region, target.All, owner, c)
		}
		return
	}
	// The quota is the account's in the region; without an account id, the
	// access key stands for it.
	principal := owner
	if principal == "" {
		principal = creds.AccessKeyID
	}
	b, release := r.s.bucket(principal, rt.region)
	defer release()

	// The lifecycle of this (account, region): opened after the
	// credentials, so that an account that cannot be entered reads no state.
	var tr *lifecycle.Tracker
	trLive := false
	if r.req.State != nil {
		var err error
		tr, err = lifecycle.Open(ctx, r.req.State, owner, rt.region, r.req.ScanID, r.req.Trigger, r.s.opts.Now())
		if err != nil {
			r.stateFailed(err)
		}
		trLive = err == nil
	}

	ids := append([]string(nil), rt.ids...)
	var listing lifecycle.Listing
	if rt.wildcard {
		named := make(map[string]bool, len(ids))
		for _, id := range ids {
			named[id] = true
		}
		listed, err := r.list(ctx, src, b, rt.region)
		for _, id := range listed {
			if !named[id] {
				named[id] = true
				ids = append(ids, id)
			}
		}
		if err != nil {
			c := r.failure(ctx, "DescribeVpnConnections", "", err)
			if c.remediation == "" {
				c.remediation = fmt.Sprintf("Check that the function's role is allowed vpc:DescribeVpnConnections in %s; "+
					"the connections of the region were not listed, and the next scan retries.", rt.region)
			}
			log.Warn("listing connections failed", "err", err, "listed", len(listed))
			r.errorFinding(rt.region, target.All, owner, c)
		} else {
			listing = lifecycle.Listing{Complete: true, ConnectionIDs: ids}
		}
	}
	r.inScope.Add(int64(len(ids)))

	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range min(r.s.opts.Concurrency, len(ids)) {
		wg.Go(func() {
			// Each call makes contexts (its retry window, each attempt's
			// timeout) whose parent keeps them in a map under its lock; on
			// the scan's context, the thousands of workers of an
			// organisation contend for that one lock. A context of the
			// worker's own takes them instead: one child of the scan's.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				r.connection(ctx, src, b, tr, trLive, owner, rt.region, ids[i])
			}
		})
	}
	wg.Wait()

	if tr != nil && r.writeState {
		changes, err := tr.Finish(r.deliverCtx, listing)
		if err != nil {
			r.stateFailed(err)
		}
		for _, c := range changes {
			r.changes <- c
		}
		st := tr.Stats()
		log.Debug("lifecycle state written", "changes", len(changes), "loads", st.Loads,
			"write_calls", st.WriteCalls, "rows_written", st.RowsWritten, "conflicts", st.Conflicts)
	}
	log.Debug("region done", "connections", len(ids))
}

// list reads the region's connection listing to its end. It returns every
// connection any pass named, in the order first seen, even when the
// listing failed: a connection a pass named was listed, and reading it tells
// whether it still exists.
func (r *run) list(ctx context.Context, src Source, b *bucket, region string) ([]string, error) {
	var (
		order  []string
		seen   = map[string]bool{}
		listed map[string]bool // by this pass
	)
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
				order = append(order, id)
			}
		}
		return len(p.IDs), added, p.TotalCount, err
	}, func() { listed = map[string]bool{} })
	return order, err
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
// connection at least one finding. tr (nil: stateless) annotates the
// findings of a connection read without error; live tells whether it
// could read the state.
func (r *run) connection(ctx context.Context, src Source, b *bucket, tr *lifecycle.Tracker, live bool, owner, region, id string) {
	auths, err := r.readAuthorizations(ctx, src, b, region, id)
	if err != nil {
		c := r.failure(ctx, "DescribeVpnCrossAccountAuthorizations", id, err)
		if c.deleted {
			r.deleted(tr, live, owner, region, id, c)
			return
		}
		if !c.late {
			r.connections.Add(1)
		}
		r.log.Warn("reading authorizations failed", "region", region, "vpn_connection_id", id, "err", err)
		r.errorFinding(region, id, owner, c)
		return
	}
	r.connections.Add(1)
	r.authorizations.Add(int64(len(auths)))
	// The findings are made only once a slot is free: a worker waiting for
	// the collector holds its connection's findings (a few kilobytes), and
	// an organisation runs thousands of workers (Concurrency per region of
	// every account), so without the slots the findings waiting behind a
	// slower sink grew with the accounts. Waiting here holds the
	// authorizations alone, and the worker calls no API meanwhile, as it
	// would not while waiting to emit.
	r.evalSlots <- struct{}{}
	defer func() { <-r.evalSlots }()
	c := policy.Connection{Region: region, ID: id, AccountID: owner, Authorizations: auths}
	fs := r.policy.Evaluate(c, r.s.opts.Now())
	if tr != nil {
		for i, a := range tr.Connection(id, fs) {
			fs[i].FirstSeenAt, fs[i].Lifecycle = a.FirstSeenAt, a.Lifecycle
		}
	}
	for _, f := range fs {
		r.emit(f)
	}
}

// deleted gives a connection that no longer exists its PASS findings: it
// holds no authorization, so nothing can attach it. Its stored findings are
// resolved (connection_deleted).
func (r *run) deleted(tr *lifecycle.Tracker, live bool, owner, region, id string, c cause) {
	r.connections.Add(1)
	r.log.Info("VPN connection no longer exists", "region", region, "vpn_connection_id", id, "detail", c.detail)
	fs := r.policy.Deleted(region, id, owner, r.s.opts.Now())
	if tr != nil {
		tr.ConnectionDeleted(id)
	}
	for _, f := range fs {
		if live {
			// Findings without a bind are PASS whatever happens: never stored.
			f.Lifecycle = lifecycle.LifecyclePass
		}
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
			return cause{detail: detailCancelled, remediation: "The scan was stopped before this connection was read; run it again.", late: true}
		}
		detail := detailDeadline
		if isAnswer {
			detail = fmt.Sprintf("Not scanned before the deadline (the last answer was %v).", ae)
		}
		return cause{detail: detail, remediation: "Raise the function's timeout or narrow SCAN_TARGETS; the next scan reads this connection again.", late: true}
	}
	if isAnswer && ae.HTTPStatus == 404 && connectionID != "" && notFoundConnection(ae.Code) {
		return cause{
			detail:      fmt.Sprintf("VPN connection %s does not exist: %s failed: %v.", connectionID, action, ae),
			remediation: "If the connection was deleted, nothing can attach it any more; remove it from SCAN_TARGETS if it is listed there.",
			deleted:     true,
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
