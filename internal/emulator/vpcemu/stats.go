package vpcemu

import "sync"

// CallKey identifies calls by action and region ("" when the request had
// none), and by account for calls signed by another account than the
// server's own (Options.Inventory): quotas are per account and region.
type CallKey struct {
	Action, Region string
	Account        string // "": the server's own account
}

// Counter counts calls and how they ended. Every call is exactly one of OK,
// Throttled (any Throttling code), Errors (any other error answer) or Resets.
type Counter struct {
	Calls, OK, Throttled, Errors, Resets int
	ByCode                               map[string]int // every error code answered, throttling included
}

func (c *Counter) add(o Counter) {
	c.Calls += o.Calls
	c.OK += o.OK
	c.Throttled += o.Throttled
	c.Errors += o.Errors
	c.Resets += o.Resets
	for code, n := range o.ByCode {
		if c.ByCode == nil {
			c.ByCode = map[string]int{}
		}
		c.ByCode[code] += n
	}
}

// Stats is a copy of the counters.
type Stats struct {
	ByKey map[CallKey]Counter
}

// Total sums all counters.
func (st Stats) Total() Counter {
	var out Counter
	for _, c := range st.ByKey {
		out.add(c)
	}
	return out
}

// Action sums the counters of one action over all regions.
func (st Stats) Action(name string) Counter {
	var out Counter
	for k, c := range st.ByKey {
		if k.Action == name {
			out.add(c)
		}
	}
	return out
}

type outcome struct {
	ok, reset bool
	err       *apiError
}

// book counts calls by a key: by (action, region) for Stats, by access key
// for StatsByAccessKey.
type book[K comparable] struct {
	mu    sync.Mutex
	byKey map[K]*Counter
}

func (b *book[K]) record(key K, o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey == nil {
		b.byKey = map[K]*Counter{}
	}
	c := b.byKey[key]
	if c == nil {
		c = &Counter{ByCode: map[string]int{}}
		b.byKey[key] = c
	}
	c.Calls++
	switch {
	case o.reset:
		c.Resets++
	case o.err == nil:
		c.OK++
	default:
		c.ByCode[o.err.code]++
		if o.err.isThrottling() {
			c.Throttled++
		} else {
			c.Errors++
		}
	}
}

func (b *book[K]) snapshot() map[K]Counter {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[K]Counter, len(b.byKey))
	for k, c := range b.byKey {
		var cp Counter
		cp.add(*c)
		if cp.ByCode == nil {
			cp.ByCode = map[string]int{}
		}
		out[k] = cp
	}
	return out
}

func (b *book[K]) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byKey = nil
}

// Stats returns a copy of the call counters.
func (s *Server) Stats() Stats { return Stats{ByKey: s.stats.snapshot()} }

// ResetStats zeroes the call counters, those by access key included.
func (s *Server) ResetStats() {
	s.stats.reset()
	s.keys.reset()
}
