package slssink

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
)

// classify turns what the SDK returned into an error the retry loop
// classifies: "op: " and a *cloudapi.APIError for an answer, or the
// transport's error when no answer came. answer is the last error reply the
// transport saw during the call: it is the truth when the SDK hid it behind
// its own retry timeout.
func classify(op string, err error, answer *sls.Error) error {
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
			return fmt.Errorf("%s: %s", op, se.Message)
		default:
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return fmt.Errorf("%s: %w", op, &cloudapi.APIError{
		Code:       answer.Code,
		Message:    answer.Message,
		RequestID:  answer.RequestID,
		HTTPStatus: int(answer.HTTPCode),
	})
}

// stdoutReserve is kept free before the context's deadline: the time to
// write a refused batch to standard output and return the report, rather
// than be stopped in the middle of a request.
const stdoutReserve = 250 * time.Millisecond

// caller makes the Log Service calls of a sink or a setup.
type caller struct {
	clients *clients
	policy  retry.Policy
	retries atomic.Int64
}

func newCaller(opts *Options) (*caller, error) {
	f, err := newClients(opts.Endpoint, opts.Credentials)
	if err != nil {
		return nil, err
	}
	return &caller{clients: f, policy: retry.Policy{
		MaxAttempts:    -1, // bounded by time: the budget and the deadline
		BaseDelay:      opts.RetryBase,
		MaxDelay:       opts.RetryCap,
		AttemptTimeout: opts.AttemptTimeout,
		Budget:         opts.RetryBudget,
		Reserve:        stdoutReserve,
	}}, nil
}

// Caller makes Log Service calls for readers other than the sink (the
// trail reader) the way the sink makes its own: through retry.Do under p,
// each attempt with a client bound to the attempt's context, the SDK's own
// retries cut to one attempt, and every error answer a *cloudapi.APIError
// (wrapped in a *retry.Error when the attempts ran out).
type Caller struct{ c *caller }

// NewCaller returns a Caller for ep, signing with creds; p's zero fields are
// cloudapi's defaults.
func NewCaller(ep endpoint.Endpoint, creds scan.Credentials, p retry.Policy) (*Caller, error) {
	f, err := newClients(ep, creds)
	if err != nil {
		return nil, err
	}
	return &Caller{c: &caller{clients: f, policy: p.Defaults()}}, nil
}

// Do runs call; op names it in errors.
func (c *Caller) Do(ctx context.Context, op string, call func(*sls.Client) error) error {
	return c.c.do(ctx, op, call)
}

// Close closes the Caller's idle connections.
func (c *Caller) Close() { c.c.clients.base.CloseIdleConnections() }

// do runs call through the retry loop, each attempt with a client of its
// own bound to the attempt's context. It gives up rather than sleep past the
// budget or ctx's deadline (less stdoutReserve), leaving the caller the time
// to write what failed elsewhere.
func (c *caller) do(ctx context.Context, op string, call func(*sls.Client) error) error {
	return retry.Do(ctx, c.policy, retry.Hooks{Retry: func() { c.retries.Add(1) }}, func(ctx context.Context) error {
		c, tr := c.clients.attempt(ctx)
		if err := call(c); err != nil {
			return classify(op, err, tr.answer)
		}
		return nil
	})
}
