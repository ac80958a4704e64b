// Package retry is the one retry loop of vpnauthz's calls to the cloud:
// exponential backoff with full jitter, attempts classified by cloudapi,
// throttled calls given more attempts, and no attempt started that cannot
// finish in time.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"vpnauthz/internal/cloudapi"
)

// Policy says how often and how long one call is tried. The zero Policy is
// filled with the cloudapi defaults by Defaults.
type Policy struct {
	MaxAttempts    int           // first attempt included; throttled answers get cloudapi.ThrottledAttemptsFactor times as many; < 0: no cap
	BaseDelay      time.Duration // ceiling of the first pause
	MaxDelay       time.Duration // ceiling of every pause
	AttemptTimeout time.Duration // one attempt; 0: none
	Budget         time.Duration // the whole call, pauses included; 0: none
	Reserve        time.Duration // kept free before ctx's deadline: nothing starts after deadline − Reserve
}

// Defaults fills the zero fields of p from cloudapi's defaults (not
// AttemptTimeout, Budget and Reserve, which are the caller's).
func (p Policy) Defaults() Policy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = cloudapi.DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = cloudapi.DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = cloudapi.DefaultMaxDelay
	}
	return p
}

// Hooks pace and observe a call; every field is optional.
type Hooks struct {
	// Pace waits before each attempt, e.g. for a rate limiter's token; an
	// error means the attempt cannot start in time.
	Pace func(context.Context) error
	// Attempt is told of each attempt as it starts.
	Attempt func()
	// Answer is told how each attempt ended: nil on success.
	Answer func(err error, class cloudapi.Class)
	// Retry is told of each attempt that follows a pause.
	Retry func()
}

// ErrNoTime: the call's time (ctx, Budget, Reserve) ran out before the call
// could be completed.
var ErrNoTime = errors.New("no time left")

// Error is a call that failed although every failure was worth retrying.
type Error struct {
	Last     error // the last attempt's error; nil when no attempt started
	Attempts int
	NoTime   bool  // stopped by time, not by MaxAttempts
	Ctx      error // the caller's context's cause when it ended the call; nil when Budget or Reserve did
}

func (e *Error) Error() string {
	switch {
	case e.Last == nil:
		return "not sent: " + ErrNoTime.Error()
	case e.NoTime:
		return fmt.Sprintf("%v (gave up after %d attempts: no time left)", e.Last, e.Attempts)
	}
	return fmt.Sprintf("%v (gave up after %d attempts)", e.Last, e.Attempts)
}

// Unwrap gives the last attempt's error and, when time ran out, ErrNoTime
// and the caller's context's cause (context.Canceled, DeadlineExceeded).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.NoTime {
		errs = append(errs, ErrNoTime)
	}
	if e.Ctx != nil {
		errs = append(errs, e.Ctx)
	}
	if e.Last != nil {
		errs = append(errs, e.Last)
	}
	return errs
}

var errAttemptTimeout = errors.New("attempt timed out")

// Do calls fn until it succeeds, fails for good (returned as it is), or
// gives up (an *Error keeping the last answer, so that the cause of a
// failure is never lost to the deadline). Each attempt gets its own context,
// bounded by AttemptTimeout.
func Do(ctx context.Context, p Policy, h Hooks, fn func(context.Context) error) error {
	stop, cancel := ctx, context.CancelFunc(func() {})
	var giveUp time.Time
	if p.Budget > 0 {
		giveUp = time.Now().Add(p.Budget)
	}
	if dl, ok := ctx.Deadline(); ok && p.Reserve > 0 {
		if dl = dl.Add(-p.Reserve); giveUp.IsZero() || dl.Before(giveUp) {
			giveUp = dl
		}
	}
	if !giveUp.IsZero() {
		stop, cancel = context.WithDeadline(ctx, giveUp)
	}
	defer cancel()

	var last error
	noTime := func(attempts int) error {
		e := &Error{Last: last, Attempts: attempts, NoTime: true}
		if ctx.Err() != nil {
			e.Ctx = context.Cause(ctx)
		}
		return e
	}
	for attempt := 1; ; attempt++ {
		if h.Pace != nil {
			if h.Pace(stop) != nil {
				return noTime(attempt - 1)
			}
		}
		if stop.Err() != nil {
			return noTime(attempt - 1)
		}
		if h.Attempt != nil {
			h.Attempt()
		}
		actx, cancelAttempt := stop, context.CancelFunc(func() {})
		if p.AttemptTimeout > 0 {
			actx, cancelAttempt = context.WithTimeoutCause(stop, p.AttemptTimeout, errAttemptTimeout)
		}
		err := fn(actx)
		timedOut := context.Cause(actx) == errAttemptTimeout
		cancelAttempt()
		if err != nil && timedOut {
			err = fmt.Errorf("no answer within %s: %w", p.AttemptTimeout, err)
		}
		class := cloudapi.Final // of a success: nothing to repeat
		if err != nil {
			class = cloudapi.Classify(err)
		}
		if h.Answer != nil {
			h.Answer(err, class)
		}
		if err == nil {
			return nil
		}
		if class == cloudapi.Final {
			return err
		}
		last = err
		if stop.Err() != nil {
			return noTime(attempt)
		}
		limit := p.MaxAttempts
		if class == cloudapi.Throttled {
			limit *= cloudapi.ThrottledAttemptsFactor
		}
		if limit > 0 && attempt >= limit {
			return &Error{Last: last, Attempts: attempt}
		}
		pause := p.Backoff(attempt)
		if !giveUp.IsZero() && !time.Now().Add(pause).Before(giveUp) {
			// Sleeping into the end would waste the time the caller keeps
			// for what it does when the call fails.
			return noTime(attempt)
		}
		if !sleep(stop, pause) {
			return noTime(attempt)
		}
		if h.Retry != nil {
			h.Retry()
		}
	}
}

// Backoff is the pause after attempt (1 for the first): full jitter, uniform
// in [0, min(MaxDelay, BaseDelay·2^(attempt-1))], so that callers throttled
// together do not come back together.
func (p Policy) Backoff(attempt int) time.Duration {
	ceiling := p.MaxDelay
	if attempt >= 1 && attempt < 32 {
		if d := p.BaseDelay << (attempt - 1); d > 0 && d < ceiling {
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
