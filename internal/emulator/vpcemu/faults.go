package vpcemu

import (
	"context"
	"math/rand"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FaultKind is an injected failure of one call.
type FaultKind int

const (
	ServiceUnavailable FaultKind = iota + 1 // HTTP 503 ServiceUnavailable
	InternalError                           // HTTP 500 InternalError
	Throttled                               // HTTP 400 Throttling.User
	Reset                                   // the connection is reset before any answer
)

func (k FaultKind) String() string {
	switch k {
	case ServiceUnavailable:
		return "ServiceUnavailable"
	case InternalError:
		return "InternalError"
	case Throttled:
		return "Throttled"
	case Reset:
		return "Reset"
	}
	return "FaultKind(?)"
}

// RandomFaults are per-call probabilities (summing to at most 1) of each
// fault; the sequence of draws is fixed by Seed.
type RandomFaults struct {
	Throttle, ServiceUnavailable, InternalError, Reset float64
	Seed                                               int64
}

type failRule struct {
	action, region string
	left           int
	kind           FaultKind
}

// faults holds the fault knobs; all are changeable while serving.
type faults struct {
	mu          sync.Mutex
	latency     time.Duration
	latencyFunc func(action, region string) time.Duration
	rules       []*failRule
	random      RandomFaults
	rng         *rand.Rand
	arrival     func(CallKey)

	quotaMu   sync.Mutex
	perSecond float64
	burst     int
	limiters  map[CallKey]*rate.Limiter
}

// SetLatency sets the delay added to every call.
func (s *Server) SetLatency(d time.Duration) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.latency = d
}

// SetLatencyFunc sets a per-call delay; when non-nil it overrides SetLatency.
func (s *Server) SetLatencyFunc(f func(action, region string) time.Duration) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.latencyFunc = f
}

// SetArrivalHook sets a function called as each call arrives, before its
// latency and before it is read further, so that a test can act at the moment
// a call is in flight instead of guessing it with a sleep. nil removes it.
func (s *Server) SetArrivalHook(f func(CallKey)) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.arrival = f
}

// SetQuota sets a token bucket per (region, action): perSecond tokens a
// second, up to burst. Calls beyond it get 400 Throttling.User and take no
// token. perSecond <= 0 turns the quota off. Buckets start full, and refill
// by the server's clock (Options.Now), so a test can step the quota's time.
func (s *Server) SetQuota(perSecond float64, burst int) {
	s.faults.quotaMu.Lock()
	defer s.faults.quotaMu.Unlock()
	if burst < 1 {
		burst = 1
	}
	s.faults.perSecond, s.faults.burst = perSecond, burst
	s.faults.limiters = map[CallKey]*rate.Limiter{}
}

// SetRandomFaults sets per-call fault probabilities and restarts the draws from f.Seed.
func (s *Server) SetRandomFaults(f RandomFaults) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.random = f
	s.faults.rng = rand.New(rand.NewSource(f.Seed))
}

// FailNext makes the next n calls of action in region get kind. Region ""
// matches any region and action "" any action. Rules are used in the order given.
func (s *Server) FailNext(action, region string, n int, kind FaultKind) {
	if n <= 0 {
		return
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.rules = append(s.faults.rules, &failRule{action: action, region: region, left: n, kind: kind})
}

func (f *faults) arrived(key CallKey) {
	f.mu.Lock()
	hook := f.arrival
	f.mu.Unlock()
	if hook != nil {
		hook(key)
	}
}

func (f *faults) latencyFor(key CallKey) time.Duration {
	f.mu.Lock()
	fn, d := f.latencyFunc, f.latency
	f.mu.Unlock()
	if fn != nil {
		return fn(key.Action, key.Region)
	}
	return d
}

// injected returns the fault for this call, if any: FailNext rules first,
// then the random draw.
func (f *faults) injected(key CallKey) (FaultKind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, rule := range f.rules {
		if (rule.action == "" || rule.action == key.Action) && (rule.region == "" || rule.region == key.Region) {
			rule.left--
			if rule.left == 0 {
				f.rules = append(f.rules[:i:i], f.rules[i+1:]...)
			}
			return rule.kind, true
		}
	}
	rf := f.random
	if f.rng == nil || rf.Throttle+rf.ServiceUnavailable+rf.InternalError+rf.Reset <= 0 {
		return 0, false
	}
	u := f.rng.Float64()
	for _, c := range []struct {
		p    float64
		kind FaultKind
	}{{rf.Throttle, Throttled}, {rf.ServiceUnavailable, ServiceUnavailable}, {rf.InternalError, InternalError}, {rf.Reset, Reset}} {
		if u < c.p {
			return c.kind, true
		}
		u -= c.p
	}
	return 0, false
}

// allow takes a token of the call's bucket at now, if the quota is on.
func (f *faults) allow(key CallKey, now time.Time) bool {
	f.quotaMu.Lock()
	defer f.quotaMu.Unlock()
	if f.perSecond <= 0 {
		return true
	}
	lim, ok := f.limiters[key]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(f.perSecond), f.burst)
		f.limiters[key] = lim
	}
	return lim.AllowN(now, 1)
}

func faultAPIError(kind FaultKind) *apiError {
	switch kind {
	case ServiceUnavailable:
		return newAPIError("ServiceUnavailable")
	case InternalError:
		return newAPIError("InternalError")
	default:
		return newAPIError("Throttling.User")
	}
}

// resetConnection drops the client's connection with an RST (SO_LINGER 0),
// so the client sees ECONNRESET or EOF and no HTTP answer.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// sleep waits d, or less when the request or the server ends.
func sleep(ctx context.Context, done <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-done:
	}
}
