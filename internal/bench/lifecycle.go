package bench

import (
	"context"
	"errors"
	"fmt"
)

// LifecycleScan is one scan of the lifecycle scenario and the calls the
// emulated cloud answered during it.
type LifecycleScan struct {
	BinaryScan
	Calls EmulatorStats
}

// Lifecycle is the same single-account scan without state and, on another
// fresh cloud, twice with it: a first scan that opens every finding, then a
// steady one that changes nothing.
type Lifecycle struct {
	NoState, First, Steady LifecycleScan
}

// Overhead is the steady scan's wall time over the scan without state, less
// one: what the lifecycle adds to a daily scan.
func (l Lifecycle) Overhead() float64 { return overhead(l.Steady, l.NoState) }

// FirstOverhead is the same for the first scan, which writes every finding.
func (l Lifecycle) FirstOverhead() float64 { return overhead(l.First, l.NoState) }

func overhead(with, without LifecycleScan) float64 {
	if without.Wall <= 0 {
		return 0
	}
	return with.Wall.Seconds()/without.Wall.Seconds() - 1
}

// MeasureLifecycle runs the lifecycle scenario on the inventory in file with
// the built binary, each scan in a process of its own under the emulated FC
// runtime, against emulated clouds in their own processes (`vpnauthz emulate
// --stats`): one without STATE_STORE, one with it for both scans with state,
// counting each scan's calls from snapshots of the cloud's counters.
func MeasureLifecycle(ctx context.Context, binary, file string, f Faults, opts BinaryOptions) (Lifecycle, error) {
	var l Lifecycle
	env := func(state bool) map[string]string {
		e := map[string]string{}
		for k, v := range opts.Env {
			e[k] = v
		}
		if !state {
			e["STATE_STORE"] = "" // unset: no lifecycle
		}
		return e
	}

	// Without state.
	ext, err := StartExternalStats(ctx, binary, file, f)
	if err != nil {
		return l, err
	}
	before, err := ext.Snapshot()
	if err != nil {
		ext.Close()
		return l, err
	}
	o := opts
	o.Env = env(false)
	l.NoState.BinaryScan, err = MeasureBinaryScan(ctx, binary, ext.Cloud, o)
	after, stopErr := ext.Stop()
	if err = errors.Join(err, stopErr); err != nil {
		return l, fmt.Errorf("scan without state: %w", err)
	}
	l.NoState.Calls = after.Sub(before)

	// With state: first, then steady, against the same state table.
	ext, err = StartExternalStats(ctx, binary, file, f)
	if err != nil {
		return l, err
	}
	if ext.Env["STATE_STORE"] == "" {
		ext.Close()
		return l, errors.New("the emulated cloud printed no STATE_STORE")
	}
	o.Env = env(true)
	o.Env["STATE_STORE"] = ext.Env["STATE_STORE"]
	for i, scan := range []*LifecycleScan{&l.First, &l.Steady} {
		before, err := ext.Snapshot()
		if err != nil {
			ext.Close()
			return l, err
		}
		scan.BinaryScan, err = MeasureBinaryScan(ctx, binary, ext.Cloud, o)
		if err != nil {
			ext.Close()
			return l, fmt.Errorf("scan %d with state: %w", i+1, err)
		}
		after, err := ext.Snapshot()
		if err != nil {
			ext.Close()
			return l, err
		}
		scan.Calls = after.Sub(before)
		if scan.StateWarning != "" {
			ext.Close()
			return l, fmt.Errorf("scan %d with state: state_warning %q", i+1, scan.StateWarning)
		}
	}
	if _, err := ext.Stop(); err != nil {
		return l, err
	}
	return l, nil
}
