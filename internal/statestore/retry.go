package statestore

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
)

// outcome is what a failed request means for a retry.
type outcome int

const (
	final      outcome = iota // retrying cannot help
	notApplied                // the service did nothing: retry as is
	ambiguous                 // the request may have been applied
)

// otsCode is the service's error code of err, or "".
func otsCode(err error) string {
	var oe *tablestore.OtsError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

// classify tells whether a failed request may be retried. Codes the service
// documents as "retry" and that it answers before applying anything are
// notApplied; a timeout, an internal error or a lost connection after the
// request was sent leave a write in doubt; a refused signature, a missing
// table, a bad parameter or an answer that cannot be decoded are final.
func classify(err error) outcome {
	var oe *tablestore.OtsError
	if errors.As(err, &oe) {
		return classifyCode(oe.Code, oe.Message, oe.HttpStatusCode)
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ambiguous // the per-request timeout, not the caller's context
		}
		return final
	case errors.Is(err, syscall.ECONNREFUSED):
		return notApplied
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return notApplied
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return ambiguous
	}
	return final
}

func classifyCode(code, message string, status int) outcome {
	switch code {
	case "OTSServerBusy", "OTSStorageServerBusy", "OTSNotEnoughCapacityUnit", "OTSTableNotReady",
		"OTSPartitionUnavailable", "OTSRowOperationConflict":
		return notApplied
	case "OTSQuotaExhausted":
		if message == "Too frequent table operations." {
			return notApplied
		}
		return final
	case "OTSServerUnavailable", "OTSTimeout", "OTSInternalServerError", "OTSStorageTimeout":
		return ambiguous
	}
	if status >= 500 {
		return ambiguous
	}
	return final
}

// pause waits before retry n (1 for the first retry): Backoff doubled n-1
// times, capped at two seconds.
// TODO(retry): move onto internal/retry when it lands.
func (s *Store) pause(ctx context.Context, n int) error {
	d := s.backoff << (n - 1)
	if d > 2*time.Second || d <= 0 {
		d = 2 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retry runs call until it succeeds, fails finally or the attempts run out.
// onAmbiguous, when set, is told of each failure that may have been applied.
// TODO(retry): move onto internal/retry when it lands.
func (s *Store) retry(ctx context.Context, call func(*tablestore.TableStoreClient) error, onAmbiguous func()) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := call(s.client(ctx))
		if err == nil {
			return nil
		}
		o := classify(err)
		if o == ambiguous && onAmbiguous != nil {
			onAmbiguous()
		}
		if o == final || attempt >= s.attempts || ctx.Err() != nil {
			return err
		}
		if perr := s.pause(ctx, attempt); perr != nil {
			return err
		}
		s.retries.Add(1)
	}
}

// ctxTransport sends requests under the caller's context as well as the
// http.Client's timeout, and releases that context once the body is closed.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
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
