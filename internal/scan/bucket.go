package scan

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"vpnauthz/internal/retry"
)

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
	users         int       // regions of running scans holding the bucket
	lastUsed      time.Time // when the last of them let go
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

// take waits for a token. It gives up when ctx ends, or at once when the
// token would come after ctx's deadline: a call that cannot start in time is
// not started.
func (b *bucket) take(ctx context.Context) error {
	if err := b.lim.Wait(ctx); err != nil {
		return retry.ErrNoTime
	}
	return nil
}

// idle reports whether dropping b loses nothing: no scan holds it, and it
// is as a new bucket would be (full, at the full rate), or it has not been
// used for a minute, the span of the API's quota.
func (b *bucket) idle(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users > 0 {
		return false
	}
	atRest := b.lim.Limit() == b.max && b.lim.TokensAt(now) >= 1
	return atRest || now.Sub(b.lastUsed) >= time.Minute
}
