// Package slssink delivers findings and scan summaries to Log Service in as
// few PutLogs calls as the limits allow, streaming, with retries, and falls
// back to JSON lines on standard output when Log Service refuses them.
package slssink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
)

// Limits of one PutLogs request and the defaults of the retry loop.
const (
	// MaxBatchLogs is the most logs Log Service takes in one PutLogs request.
	MaxBatchLogs = 4096
	// DefaultMaxBatchBytes is the raw protobuf size a batch stays under. The
	// service takes up to 3 MB (the documentation does not say whether 10^6
	// or 2^20); batch sizes are tracked exactly, so a margin of 100 kB below
	// the smaller reading is enough.
	DefaultMaxBatchBytes = 2_900_000

	DefaultRetryBase      = cloudapi.DefaultBaseDelay
	DefaultRetryCap       = cloudapi.DefaultMaxDelay
	DefaultRetryBudget    = cloudapi.DefaultDeliveryBudget
	DefaultAttemptTimeout = cloudapi.DefaultDeliveryAttemptTimeout
)

// Options configure one scan's delivery.
type Options struct {
	Endpoint    endpoint.Endpoint // loopback endpoints are dialled directly, whatever the project
	Project     string
	Logstore    string
	Credentials scan.Credentials
	Source      string    // the log source; default "vpnauthz"
	Stdout      io.Writer // where findings go as JSON lines when delivery fails; default os.Stdout

	// Tuning; zero values mean the defaults above.
	MaxBatchLogs   int           // logs per PutLogs request, at most MaxBatchLogs
	MaxBatchBytes  int           // raw protobuf bytes per PutLogs request
	RetryBase      time.Duration // ceiling of the first backoff pause
	RetryCap       time.Duration // ceiling of every backoff pause
	RetryBudget    time.Duration // time one request may take, retries included; never past the context's deadline
	AttemptTimeout time.Duration // one HTTP attempt
}

func (o *Options) setDefaults() {
	if o.Source == "" {
		o.Source = "vpnauthz"
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.MaxBatchLogs <= 0 || o.MaxBatchLogs > MaxBatchLogs {
		o.MaxBatchLogs = MaxBatchLogs
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryCap <= 0 {
		o.RetryCap = DefaultRetryCap
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = DefaultRetryBudget
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
}

// Stats count what a Sink did.
type Stats struct {
	PutLogsCalls int   // HTTP PutLogs requests, retries and the summary included
	Retries      int   // requests repeated after a transient failure
	RawBytes     int64 // uncompressed protobuf bytes sent
	WireBytes    int64 // lz4-compressed bytes sent
	Delivered    int   // findings acknowledged by Log Service
	ToStdout     int   // findings written to standard output instead
	// ChangesDelivered and ChangesToStdout count the lifecycle change logs
	// likewise.
	ChangesDelivered int
	ChangesToStdout  int
}

// Sink is a scan.Sink writing to one logstore.
//
// Findings are buffered into a batch; a full batch is handed to one sending
// goroutine, so the scan goes on while the batch is sent and retried. The
// hand-over is unbuffered: a second full batch waits for the first to be
// done, which bounds memory to two batches however many findings come.
type Sink struct {
	opts Options
	// Clients are made per attempt and never kept: a Sink travels as a
	// scan.Sink interface, and a type in an interface makes the linker keep
	// every method of its fields' types — hundreds, for the Log Service
	// client.
	calls *caller
	op    string

	// The sender's own context: Close cancels it when its own context ends
	// before the sender is done. Each batch carries the deadline of the
	// Write that completed it, as a value.
	senderCtx    context.Context
	cancelSender context.CancelFunc

	// Owned by the goroutine calling Write, WriteChange and Close.
	batcher  batcher
	changes  batcher
	started  bool
	closed   bool
	delivery scan.Delivery
	handoff  chan job
	done     chan struct{}

	// Owned by the sender while it runs, by Close after it stopped.
	cause     error // first failure for good; later batches skip Log Service
	stdoutErr error

	delivered, changesDelivered atomic.Int64
	toStdout, changesToStdout   atomic.Int64
}

type job struct {
	deadline time.Time // zero: none
	b        batch
}

var _ scan.Sink = (*Sink)(nil)

// New returns a Sink for one scan.
func New(opts Options) (*Sink, error) {
	if opts.Project == "" || opts.Logstore == "" {
		return nil, errors.New("SLS sink: project and logstore are required")
	}
	opts.setDefaults()
	calls, err := newCaller(&opts)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		opts:  opts,
		calls: calls,
		op:    fmt.Sprintf("PutLogs to %s/%s", opts.Project, opts.Logstore),
		batcher: batcher{
			maxLogs:  opts.MaxBatchLogs,
			maxBytes: opts.MaxBatchBytes - groupOverhead(finding.TopicFinding, opts.Source),
		},
		changes: batcher{
			maxLogs:  opts.MaxBatchLogs,
			maxBytes: opts.MaxBatchBytes - groupOverhead(lifecycle.TopicChange, opts.Source),
		},
	}
	return s, nil
}

// Write adds one finding, sending a batch when it is full. It fails only
// after Close: delivery problems are reported by Close, and findings that
// Log Service refuses go to standard output.
//
// The batch a Write completes is sent in the background; ctx's deadline
// bounds its retries, and ctx itself is not kept past the call.
func (s *Sink) Write(ctx context.Context, f *finding.Finding) error {
	if s.closed {
		return errors.New("SLS sink: write after close")
	}
	if full, ok := s.batcher.add(f, time.Now()); ok {
		s.handOver(ctx, full)
	}
	return nil
}

// handOver gives the current batch to the sender, starting it if needed, and
// waits while the sender is busy with the previous one.
func (s *Sink) handOver(ctx context.Context, b batch) {
	if !s.started {
		s.started = true
		s.handoff = make(chan job)
		s.done = make(chan struct{})
		s.senderCtx, s.cancelSender = context.WithCancel(context.Background())
		go func() {
			defer close(s.done)
			for j := range s.handoff {
				ctx, cancel := s.senderCtx, context.CancelFunc(func() {})
				if !j.deadline.IsZero() {
					ctx, cancel = context.WithDeadline(ctx, j.deadline)
				}
				s.deliver(ctx, &j.b)
				cancel()
			}
		}()
	}
	deadline, _ := ctx.Deadline()
	s.handoff <- job{deadline: deadline, b: b}
}

// deliver sends one batch or, when that fails for good or Log Service has
// already failed in this invocation, writes it to standard output.
func (s *Sink) deliver(ctx context.Context, b *batch) {
	if s.cause == nil {
		raw := b.marshal(s.opts.Source)
		err := s.calls.do(ctx, s.op, func(c *sls.Client) error {
			// PutLogs' request, the LogGroup encoded here (lz4, as PutLogs
			// sends it).
			return c.PutRawLogWithCompressType(s.opts.Project, s.opts.Logstore, raw, sls.Compress_LZ4)
		})
		if err == nil {
			s.delivered.Add(int64(len(b.findings)))
			s.changesDelivered.Add(int64(len(b.changes)))
			return
		}
		s.cause = err
	}
	if err := writeJSONLines(s.opts.Stdout, b); err != nil {
		if s.stdoutErr == nil {
			s.stdoutErr = err
		}
		return
	}
	s.toStdout.Add(int64(len(b.findings)))
	s.changesToStdout.Add(int64(len(b.changes)))
}

// Close sends what is buffered, then the summary, whose FindingsDelivered it
// sets. Delivered is true only when Log Service acknowledged every finding,
// every change and the summary; Error is then the first failure. Calling
// Close again returns the same Delivery.
//
// A Sink that was given no findings sends the summary alone: this is how a
// coordinator of a fanned-out scan writes its summary (Role coordinator,
// Accounts and Batches dispatched).
func (s *Sink) Close(ctx context.Context, summary *finding.ScanSummary) scan.Delivery {
	if s.closed {
		return s.delivery
	}
	s.closed = true
	if s.started {
		close(s.handoff)
		select {
		case <-s.done:
		case <-ctx.Done():
			// The sender gives up its batch (to standard output) at once.
			s.cancelSender()
			<-s.done
		}
		s.cancelSender()
	}
	if last := s.batcher.take(); last.len() > 0 {
		s.deliver(ctx, &last)
	}
	if last := s.changes.take(); last.len() > 0 {
		s.deliver(ctx, &last)
	}
	if summary != nil {
		summary.Counts.FindingsDelivered = int(s.delivered.Load())
		s.sendSummary(ctx, summary)
	}

	d := scan.Delivery{
		Sink:      "sls",
		Project:   s.opts.Project,
		Logstore:  s.opts.Logstore,
		Delivered: s.cause == nil,
	}
	switch {
	case s.cause != nil && s.stdoutErr != nil:
		d.Error = fmt.Sprintf("%v; writing to standard output: %v", s.cause, s.stdoutErr)
	case s.cause != nil:
		d.Error = s.cause.Error()
	}
	s.delivery = d
	return d
}

func (s *Sink) sendSummary(ctx context.Context, summary *finding.ScanSummary) {
	if s.cause == nil {
		t := uint32(time.Now().Unix())
		topic := finding.TopicScan
		lg := &sls.LogGroup{
			Topic:  &topic,
			Source: &s.opts.Source,
			Logs:   []*sls.Log{newLog(t, summaryKeys, summaryValues(summary))},
		}
		err := s.calls.do(ctx, s.op, func(c *sls.Client) error {
			return c.PutLogs(s.opts.Project, s.opts.Logstore, lg)
		})
		if err == nil {
			return
		}
		s.cause = err
	}
	if err := writeSummaryLine(s.opts.Stdout, summary); err != nil && s.stdoutErr == nil {
		s.stdoutErr = err
	}
}

// Stats returns the counters so far; it may be called at any time.
func (s *Sink) Stats() Stats {
	return Stats{
		PutLogsCalls: int(s.calls.clients.wire.calls.Load()),
		Retries:      int(s.calls.retries.Load()),
		RawBytes:     s.calls.clients.wire.rawBytes.Load(),
		WireBytes:    s.calls.clients.wire.wireBytes.Load(),
		Delivered:    int(s.delivered.Load()),
		ToStdout:     int(s.toStdout.Load()),

		ChangesDelivered: int(s.changesDelivered.Load()),
		ChangesToStdout:  int(s.changesToStdout.Load()),
	}
}

// WriteChange adds one lifecycle transition: a change log, topic
// vpnauthz-change, in log groups of their own (a log group has one topic),
// batched and delivered like the findings, and written to standard output
// like them when Log Service refuses them. It fails only after Close.
func (s *Sink) WriteChange(ctx context.Context, c *lifecycle.Change) error {
	if s.closed {
		return errors.New("SLS sink: change after close")
	}
	if full, ok := s.changes.addChange(c, time.Now()); ok {
		s.handOver(ctx, full)
	}
	return nil
}
