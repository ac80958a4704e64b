// Package slssink delivers findings and scan summaries to Log Service in as
// few PutLogs calls as the limits allow, streaming, with retries, and falls
// back to JSON lines on standard output when Log Service refuses them.
package slssink

import (
	"context"
	"io"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
)

// Options configure one scan's delivery.
type Options struct {
	Endpoint    string // SLS_ENDPOINT: URL or host; loopback endpoints are dialled directly over HTTP
	Project     string
	Logstore    string
	Credentials scan.Credentials
	Source      string    // the log source; default "vpnauthz"
	Stdout      io.Writer // where findings go as JSON lines when delivery fails
}

// Sink is a scan.Sink writing to one logstore.
type Sink struct {
	opts Options
}

var _ scan.Sink = (*Sink)(nil)

// New returns a Sink for one scan.
func New(opts Options) (*Sink, error) {
	panic("not implemented")
}

// Write adds one finding, sending a batch when it is full.
func (s *Sink) Write(ctx context.Context, f *finding.Finding) error {
	panic("not implemented")
}

// Close sends what is buffered, then the summary.
func (s *Sink) Close(ctx context.Context, summary *finding.ScanSummary) scan.Delivery {
	panic("not implemented")
}

// Setup creates the logstore and a field index for every finding and summary
// field, idempotently (vpnauthz setup-sls).
func Setup(ctx context.Context, opts Options) error {
	panic("not implemented")
}
