package scan

import (
	"context"
	"log/slog"
	"time"

	"vpnauthz/internal/policy"
)

// Options configure a Scanner.
type Options struct {
	Policy      policy.Policy
	NewSource   SourceFactory
	Rate        float64       // VPC API calls per second per region (VPC_API_RATE)
	Concurrency int           // connections read at once per region (SCAN_CONCURRENCY)
	PageSize    int           // default 50, the API's maximum
	CallTimeout time.Duration // per API call; default 10 s
	Retry       Retry
	Logger      *slog.Logger
	Now         func() time.Time
}

// Retry is the backoff for throttling, 5xx, timeouts and resets.
type Retry struct {
	MaxAttempts int           // per call, first attempt included; default 6
	BaseDelay   time.Duration // default 200 ms
	MaxDelay    time.Duration // default 5 s
}

// Scanner runs scans. One Scanner serves many scans at once; its per-region
// rate limiters are shared by all of them.
type Scanner struct {
	opts Options
}

// New returns a Scanner.
func New(opts Options) *Scanner {
	return &Scanner{opts: opts}
}

// Run scans req.Targets and streams the findings to sink (nil: dry run, nothing
// delivered). Unreadable connections become ERROR findings, not errors; Run
// returns an error only for an invalid request.
func (s *Scanner) Run(ctx context.Context, req Request, sink Sink) (Report, error) {
	panic("not implemented")
}
