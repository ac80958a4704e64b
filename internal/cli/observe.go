package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"text/tabwriter"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
)

// scanWatch sees what the scans of one command deliver: the transitions, to
// print them, and the findings, for the progress line.
type scanWatch struct {
	progress *progress // nil: none shown

	mu      sync.Mutex
	changes []lifecycle.Change
}

// wrap is function.Options.WrapSink.
func (w *scanWatch) wrap(s scan.Sink) scan.Sink { return &observedSink{Sink: s, w: w} }

// takeChanges returns the transitions seen since the last call.
func (w *scanWatch) takeChanges() []lifecycle.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.changes
	w.changes = nil
	return out
}

// observedSink shows every finding and transition to its watch before the
// sink takes it, so that what the scan produced is seen even when Log
// Service refuses it.
type observedSink struct {
	scan.Sink
	w *scanWatch
}

func (s *observedSink) Write(ctx context.Context, f *finding.Finding) error {
	s.w.progress.finding(f)
	return s.Sink.Write(ctx, f)
}

func (s *observedSink) WriteChange(ctx context.Context, c *lifecycle.Change) error {
	s.w.mu.Lock()
	s.w.changes = append(s.w.changes, *c)
	s.w.mu.Unlock()
	return s.Sink.WriteChange(ctx, c)
}

// changeOrder ranks the transitions in the table: what needs attention
// first.
var changeOrder = map[string]int{"opened": 0, "reopened": 1, "unsuppressed": 2, "suppressed": 3, "resolved": 4}

// printChanges prints the transitions of a scan as a table.
func printChanges(w io.Writer, changes []lifecycle.Change) {
	cs := slices.Clone(changes)
	slices.SortStableFunc(cs, func(a, b lifecycle.Change) int {
		ra, oka := changeOrder[a.Change]
		rb, okb := changeOrder[b.Change]
		if !oka {
			ra = len(changeOrder)
		}
		if !okb {
			rb = len(changeOrder)
		}
		return cmp.Or(cmp.Compare(ra, rb),
			cmp.Compare(a.OwnerAccountID, b.OwnerAccountID),
			cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.VpnConnectionID, b.VpnConnectionID),
			cmp.Compare(a.RuleID, b.RuleID),
			cmp.Compare(a.BindUID, b.BindUID))
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tPREV→LIFECYCLE\tRULE\tACCOUNT\tREGION\tCONNECTION\tBIND UID")
	for _, c := range cs {
		change := c.Change
		if c.ResolvedReason != "" {
			change += "/" + c.ResolvedReason
		}
		fmt.Fprintf(tw, "%s\t%s→%s\t%s\t%s\t%s\t%s\t%s\n", cell(change), cell(c.PreviousLifecycle), cell(c.Lifecycle),
			cell(c.RuleID), cell(c.OwnerAccountID), cell(c.Region), cell(c.VpnConnectionID), cell(c.BindUID))
	}
	_ = tw.Flush()
}
