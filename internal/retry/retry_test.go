package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"vpnauthz/internal/cloudapi"
)

// script returns fn answering errs in order, then nil, and a call counter.
func script(errs ...error) (func(context.Context) error, *int) {
	n := 0
	return func(context.Context) error {
		n++
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	}, &n
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func TestEachAnswerIsRetriedOrFinal(t *testing.T) {
	api := func(code string, status int) error {
		return fmt.Errorf("call: %w", &cloudapi.APIError{Code: code, HTTPStatus: status, Message: "m"})
	}
	tests := []struct {
		name  string
		err   error
		class cloudapi.Class
	}{
		{"Throttling", api("Throttling", 400), cloudapi.Throttled},
		{"Throttling.Api", api("Throttling.Api", 400), cloudapi.Throttled},
		{"Throttling.User", api("Throttling.User", 400), cloudapi.Throttled},
		{"Rejected.Throttling", api("Rejected.Throttling", 400), cloudapi.Throttled},
		{"ServiceUnavailable", api("ServiceUnavailable", 503), cloudapi.Throttled},
		{"HTTP 429", api("TooManyRequests", 429), cloudapi.Throttled},
		{"HTTP 503 without code", api("", 503), cloudapi.Throttled},
		{"SLS write quota", api("WriteQuotaExceed", 403), cloudapi.Throttled},
		{"InternalError", api("InternalError", 500), cloudapi.Transient},
		{"502", api("BadGateway", 502), cloudapi.Transient},
		{"EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), cloudapi.Transient},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, cloudapi.Transient},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, cloudapi.Transient},
		{"call timeout", fmt.Errorf("no answer: %w", context.DeadlineExceeded), cloudapi.Transient},
		{"Forbidden.RAM", api("Forbidden.RAM", 403), cloudapi.Final},
		{"SignatureDoesNotMatch", api("SignatureDoesNotMatch", 400), cloudapi.Final},
		{"IncompleteSignature", api("IncompleteSignature", 400), cloudapi.Final},
		{"InvalidAccessKeyId.NotFound", api("InvalidAccessKeyId.NotFound", 404), cloudapi.Final},
		{"token expired", api("InvalidSecurityToken.Expired", 400), cloudapi.Final},
		{"undecodable answer", fmt.Errorf("list: %w", &cloudapi.DecodeError{HTTPStatus: 200, Err: errors.New("bad json")}), cloudapi.Final},
		{"bad region", cloudapi.Localf("invalid region %q", "x"), cloudapi.Final},
	}
	p := Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloudapi.Classify(tt.err); got != tt.class {
				t.Fatalf("Classify = %v, want %v", got, tt.class)
			}
			synctest.Test(t, func(t *testing.T) {
				want := map[cloudapi.Class]int{cloudapi.Final: 1, cloudapi.Transient: 3, cloudapi.Throttled: 12}[tt.class]
				fn, calls := script(repeat(tt.err, 100)...)
				retries := 0
				err := Do(t.Context(), p, Hooks{Retry: func() { retries++ }}, fn)
				if *calls != want || retries != want-1 {
					t.Errorf("%d calls, %d retries; want %d and %d", *calls, retries, want, want-1)
				}
				if !errors.Is(err, tt.err) && !strings.Contains(err.Error(), tt.err.Error()) {
					t.Errorf("error %v does not carry the answer %v", err, tt.err)
				}
				var re *Error
				if isRetry := errors.As(err, &re); isRetry == (tt.class == cloudapi.Final) {
					t.Errorf("error %T: a final answer must come back as it is, others as *Error", err)
				}
			})
		})
	}
}

func TestRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		throttle := &cloudapi.APIError{Code: "Throttling.User", HTTPStatus: 400}
		fn, calls := script(throttle, throttle, io.EOF)
		var answers []cloudapi.Class
		attempts := 0
		err := Do(t.Context(), Policy{}.Defaults(), Hooks{
			Attempt: func() { attempts++ },
			Answer:  func(_ error, c cloudapi.Class) { answers = append(answers, c) },
		}, fn)
		if err != nil || *calls != 4 || attempts != 4 {
			t.Fatalf("err %v after %d calls (%d attempts), want success on the 4th", err, *calls, attempts)
		}
		want := []cloudapi.Class{cloudapi.Throttled, cloudapi.Throttled, cloudapi.Transient, cloudapi.Final}
		if fmt.Sprint(answers) != fmt.Sprint(want) {
			t.Errorf("answers %v, want %v (success is reported with class final, err nil)", answers, want)
		}
	})
}

// The deadline that comes while the next attempt waits for the pacer keeps
// the last answer: the caller must be able to say why the call failed.
func TestDeadlineWhilePacedKeepsTheLastAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		throttle := &cloudapi.APIError{Code: "Throttling", HTTPStatus: 400, Message: "flow control"}
		fn, calls := script(repeat(throttle, 1000)...)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		paced := 0
		pace := func(ctx context.Context) error {
			paced++
			if paced == 1 {
				return nil
			}
			<-ctx.Done() // the next token comes after the deadline
			return ctx.Err()
		}
		err := Do(ctx, Policy{MaxAttempts: 1000, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}, Hooks{Pace: pace}, fn)
		var ae *cloudapi.APIError
		if !errors.Is(err, ErrNoTime) || !errors.As(err, &ae) || ae.Code != "Throttling" || *calls != 1 {
			t.Fatalf("err %v after %d calls: want ErrNoTime with the last Throttling answer", err, *calls)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v does not carry the caller's deadline", err)
		}
	})
}

func TestBudgetAndReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		busy := &cloudapi.APIError{Code: "InternalError", HTTPStatus: 500}
		fn, calls := script(repeat(busy, 1000)...)
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		p := Policy{MaxAttempts: -1, BaseDelay: 100 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Budget: 30 * time.Second, Reserve: 2 * time.Second}
		err := Do(ctx, p, Hooks{}, fn)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrNoTime) || !errors.Is(err, busy) {
			t.Fatalf("err %v, want ErrNoTime with the last answer", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v: the reserve, not the caller's deadline, stopped it", err)
		}
		if elapsed > 8*time.Second || *calls < 10 {
			t.Errorf("gave up after %v and %d calls: want before deadline − reserve (8 s), after many calls", elapsed, *calls)
		}
		if !strings.Contains(err.Error(), "InternalError (HTTP 500)") || !strings.Contains(err.Error(), "no time left") {
			t.Errorf("error text %q", err)
		}
	})
}

func TestNoAttemptAfterTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		fn, calls := script()
		err := Do(ctx, Policy{}.Defaults(), Hooks{}, fn)
		if *calls != 0 || !errors.Is(err, ErrNoTime) || err.Error() != "not sent: no time left" {
			t.Errorf("err %v after %d calls, want none sent", err, *calls)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v does not say the caller cancelled", err)
		}
	})
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		fn := func(ctx context.Context) error {
			n++
			if n == 1 {
				<-ctx.Done()
				return fmt.Errorf("read: %w", ctx.Err())
			}
			return nil
		}
		var first error
		err := Do(t.Context(), Policy{AttemptTimeout: time.Second}.Defaults(), Hooks{Answer: func(err error, _ cloudapi.Class) {
			if first == nil {
				first = err
			}
		}}, fn)
		if err != nil || n != 2 {
			t.Fatalf("err %v after %d calls", err, n)
		}
		if first == nil || !strings.HasPrefix(first.Error(), "no answer within 1s: ") {
			t.Errorf("first answer %v, want it to name the attempt timeout", first)
		}
	})
}

func TestBackoffFullJitter(t *testing.T) {
	p := Policy{BaseDelay: 200 * time.Millisecond, MaxDelay: 5 * time.Second}
	for attempt := 1; attempt <= 40; attempt++ {
		ceiling := time.Duration(math.Min(float64(p.MaxDelay), float64(p.BaseDelay)*math.Pow(2, float64(attempt-1))))
		var sum time.Duration
		const n = 400
		for range n {
			d := p.Backoff(attempt)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: backoff %v outside [0, %v]", attempt, d, ceiling)
			}
			sum += d
		}
		// Full jitter: the mean is about half the ceiling.
		if mean := sum / n; mean < ceiling*35/100 || mean > ceiling*65/100 {
			t.Errorf("attempt %d: mean backoff %v, want about %v", attempt, mean, ceiling/2)
		}
	}
}
