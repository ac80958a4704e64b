package slssink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// callError is why a Log Service call failed: the server's answer, or the
// transport's error when no answer came.
type callError struct {
	op        string // "PutLogs to project/logstore"
	httpCode  int    // 0 when no answer came
	code      string
	message   string
	requestID string
	retryable bool
}

func (e *callError) Error() string {
	switch {
	case e.httpCode == 0:
		return fmt.Sprintf("%s: %s", e.op, e.message)
	case e.code == "":
		return fmt.Sprintf("%s: HTTP %d: %s", e.op, e.httpCode, e.message)
	}
	return fmt.Sprintf("%s: %s (HTTP %d): %s", e.op, e.code, e.httpCode, e.message)
}

// classify turns what the SDK returned into a callError. answer is the last
// error reply the transport saw during the call: it is the truth when the SDK
// hid it behind its own retry timeout.
func classify(op string, err error, answer *sls.Error) *callError {
	if answer == nil {
		var se *sls.Error
		var be *sls.BadResponseError
		switch {
		case errors.As(err, &se) && se.HTTPCode > 0:
			answer = se
		case errors.As(err, &be):
			answer = &sls.Error{HTTPCode: int32(be.HTTPCode), Message: truncate(be.RespBody, 200)}
		case errors.As(err, &se):
			// HTTPCode -1: the SDK's ClientError around a transport error.
			return &callError{op: op, message: se.Message, retryable: true}
		default:
			return &callError{op: op, message: err.Error(), retryable: true}
		}
	}
	e := &callError{
		op:        op,
		httpCode:  int(answer.HTTPCode),
		code:      answer.Code,
		message:   answer.Message,
		requestID: answer.RequestID,
	}
	switch {
	case e.httpCode >= 500, e.httpCode == http.StatusTooManyRequests:
		e.retryable = true
	case e.httpCode == http.StatusForbidden:
		e.retryable = e.code == "WriteQuotaExceed" || e.code == "ShardWriteQuotaExceed"
	}
	return e
}

// retrier runs a call until it succeeds, fails for good, or its time is up.
type retrier struct {
	base, cap      time.Duration // full-jitter exponential backoff
	budget         time.Duration // time one call may take, retries included
	attemptTimeout time.Duration // one attempt
	retries        func()        // counts one retry
}

// stdoutReserve is kept free before the context's deadline: the time to
// write a refused batch to standard output and return the report, rather
// than be stopped in the middle of a request.
const stdoutReserve = 250 * time.Millisecond

// do runs call with the transport bound to a per-attempt context, retrying
// with exponential backoff and full jitter while the failure is transient and
// the next attempt can start before the budget and ctx's deadline (less
// stdoutReserve) run out. It gives up rather than sleep past that point,
// leaving the caller the time to write what failed elsewhere.
func (r retrier) do(ctx context.Context, tr *transport, op string, call func() error) error {
	giveUp := time.Now().Add(r.budget)
	if d, ok := ctx.Deadline(); ok && d.Add(-stdoutReserve).Before(giveUp) {
		giveUp = d.Add(-stdoutReserve)
	}
	var last *callError
	for attempt := 0; ; attempt++ {
		now := time.Now()
		if err := ctx.Err(); err != nil || !now.Before(giveUp) {
			if last != nil {
				return last
			}
			if err == nil {
				err = context.DeadlineExceeded
			}
			return &callError{op: op, message: "not sent, no time left: " + err.Error()}
		}
		attemptEnd := now.Add(r.attemptTimeout)
		if giveUp.Before(attemptEnd) {
			attemptEnd = giveUp
		}
		actx, cancel := context.WithDeadline(ctx, attemptEnd)
		tr.bind(actx)
		err := call()
		answer := tr.lastAnswer()
		tr.unbind()
		cancel()
		if err == nil {
			return nil
		}
		last = classify(op, err, answer)
		if !last.retryable {
			return last
		}
		pause := r.backoff(attempt)
		if !time.Now().Add(pause).Before(giveUp) {
			return last
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return last
		case <-t.C:
		}
		r.retries()
	}
}

// backoff is a random pause in [0, min(cap, base·2^attempt)).
func (r retrier) backoff(attempt int) time.Duration {
	ceiling := r.cap
	if attempt < 30 {
		if d := r.base << attempt; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}
