package scan

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttled reports whether err is the API's flow-control answer.
func throttled(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case "Throttling", "Throttling.User", "Throttling.Api":
		return true
	}
	return ae.HTTPStatus == 429
}

// retryable reports whether a failed call may succeed when repeated:
// throttling, server errors (5xx) and every error that is not an answer of
// the API (timeouts, resets, EOF, refused connections). Other 4xx answers
// (not found, forbidden, bad signature, bad parameter) stay what they are.
// The caller decides separately that nothing is retried once the scan's
// context is done.
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return throttled(err) || ae.HTTPStatus >= 500
	}
	return err != nil
}

// backoff is the wait before attempt+1: full jitter, uniform in
// [0, min(max, base·2^(attempt-1))], so that callers throttled together do
// not come back together.
func (r Retry) backoff(attempt int) time.Duration {
	ceiling := r.MaxDelay
	if attempt < 32 {
		if d := r.BaseDelay << (attempt - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// sleep waits d or until ctx is done; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// bucket paces the calls into one region for one account: the API's quota
// is per region and account, so every call and retry of every scan into the
// region takes a token from the same bucket (burst 1, so calls leave 1/rate
// apart and never bunch up).
//
// The bucket also gives way when the API throttles anyway (another tool
// shares the account's quota, or the configured rate is above it): a
// throttled answer that follows another within a second halves the rate, at
// most once a second and down to a sixteenth of it, and every successful call
// wins back a thirty-second.
type bucket struct {
	lim           *rate.Limiter
	max           rate.Limit
	mu            sync.Mutex
	lastThrottled time.Time
	lastCut       time.Time
}

func newBucket(perSecond float64) *bucket {
	l := rate.Limit(perSecond)
	return &bucket{lim: rate.NewLimiter(l, 1), max: l}
}

func (b *bucket) throttled(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A lone throttled answer is a call that arrived a little early; two
	// within a second mean the rate is too high.
	repeated := now.Sub(b.lastThrottled) < time.Second
	b.lastThrottled = now
	if !repeated || now.Sub(b.lastCut) < time.Second {
		return
	}
	b.lastCut = now
	b.lim.SetLimitAt(now, max(b.lim.Limit()/2, b.max/16))
}

func (b *bucket) succeeded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.lim.Limit(); cur < b.max {
		b.lim.SetLimit(min(cur+b.max/32, b.max))
	}
}

// take waits for a token. It gives up with errNotReached when ctx ends, or at
// once when the token would come after ctx's deadline: a call that cannot
// start in time is not started.
func (b *bucket) take(ctx context.Context) error {
	if err := b.lim.Wait(ctx); err != nil {
		return errNotReached
	}
	return nil
}
