package statestore

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/retry"
)

// otsCode is the service's error code of err, or "".
func otsCode(err error) string {
	var ae *cloudapi.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// mapError turns what the SDK returned into an error cloudapi classifies: a
// *cloudapi.APIError for the service's answer, the transport's error when
// no answer came, a DecodeError when an answer came that the SDK could not
// read, and a LocalError when the SDK refused the request before sending it.
func mapError(err error, tr *ctxTransport) error {
	if err == nil {
		return nil
	}
	var oe *tablestore.OtsError
	if errors.As(err, &oe) {
		return apiError(oe.Code, oe.Message, oe.RequestId, oe.HttpStatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // no answer, or one cut short
	}
	if status := tr.answered(); status != 0 {
		return &cloudapi.DecodeError{HTTPStatus: status, Err: err}
	}
	return cloudapi.Local(err)
}

func apiError(code, message, requestID string, status int) *cloudapi.APIError {
	return &cloudapi.APIError{Code: code, Message: message, RequestID: requestID, HTTPStatus: status}
}

// mayBeApplied tells whether a failed write may have been applied, so that
// a later conditional failure is read back: a throttling answer comes before
// anything is done, a connection never made sent nothing; any other
// transient failure (a timeout, a server error, a lost connection) leaves
// the write in doubt.
func mayBeApplied(err error) bool {
	if cloudapi.Classify(err) == cloudapi.Throttled {
		return false
	}
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial") {
		return false
	}
	return cloudapi.Classify(err) == cloudapi.Transient
}

// do runs call through the retry loop, each attempt with a client of its
// own bound to the attempt's context. onFailure, when set, is told of each
// failed attempt's error.
func (s *Store) do(ctx context.Context, call func(*tablestore.TableStoreClient) error, onFailure func(error)) error {
	return retry.Do(ctx, s.policy, retry.Hooks{Retry: func() { s.retries.Add(1) }}, func(ctx context.Context) error {
		c, tr := s.client(ctx)
		err := mapError(call(c), tr)
		if err != nil && onFailure != nil {
			onFailure(err)
		}
		return err
	})
}

// ctxTransport sends requests under the caller's context as well as the
// http.Client's timeout, releases that context once the body is closed, and
// notes whether an answer came.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper

	mu     sync.Mutex
	status int // the last answer's HTTP status; 0: none came
}

func (t *ctxTransport) answered() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	release := func() { stop(); cancel() }
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	t.mu.Lock()
	t.status = resp.StatusCode
	t.mu.Unlock()
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
