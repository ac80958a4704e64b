package scan

import (
	"context"
	"sync"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
)

// MemSink is an in-memory Sink for the tests of this package and its
// integration tests. It fails the test run (through Overlap) if Write is ever
// called from two goroutines at once.
type MemSink struct {
	mu       sync.Mutex
	writing  sync.Mutex
	findings []finding.Finding
	changes  []lifecycle.Change
	summary  *finding.ScanSummary
	closed   int
	overlap  bool
}

func (s *MemSink) Write(_ context.Context, f *finding.Finding) error {
	if !s.writing.TryLock() {
		s.mu.Lock()
		s.overlap = true
		s.mu.Unlock()
		s.writing.Lock()
	}
	defer s.writing.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.findings = append(s.findings, *f)
	return nil
}

func (s *MemSink) WriteChange(_ context.Context, c *lifecycle.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = append(s.changes, *c)
	return nil
}

// Changes returns the lifecycle transitions written so far.
func (s *MemSink) Changes() []lifecycle.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]lifecycle.Change(nil), s.changes...)
}

func (s *MemSink) Close(_ context.Context, summary *finding.ScanSummary) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	summary.Counts.FindingsDelivered = len(s.findings)
	cp := *summary
	s.summary = &cp
	return Delivery{Sink: "memory", Delivered: true}
}

// Findings returns the findings written so far.
func (s *MemSink) Findings() []finding.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]finding.Finding(nil), s.findings...)
}

// Summary returns the summary given to Close, and how often Close was called.
func (s *MemSink) Summary() (*finding.ScanSummary, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary, s.closed
}

// Overlap reports whether two Writes ever ran at once.
func (s *MemSink) Overlap() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlap
}

// ByConnection groups findings by "region/connection id".
func ByConnection(fs []finding.Finding) map[string][]finding.Finding {
	m := map[string][]finding.Finding{}
	for _, f := range fs {
		k := f.Region + "/" + f.VpnConnectionID
		m[k] = append(m[k], f)
	}
	return m
}
