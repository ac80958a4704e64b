package trail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"vpnauthz/internal/endpoint"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
)

// endpointFor picks where to read. The trigger names the region's internal
// endpoint as http://; the logs are read from that host over HTTPS instead,
// because every request carries the invocation's STS token and the reply
// carries the organisation's audit records, and the service answers HTTPS on
// its internal endpoints as on the public ones. Only hosts of the service's
// domain are accepted: the token must not be sent wherever an event says. A
// loopback SLS_ENDPOINT (the emulated cloud) replaces the event's endpoint.
func endpointFor(configured, fromEvent string) (string, error) {
	if configured != "" && loopback(configured) {
		return configured, nil
	}
	raw := strings.TrimSpace(fromEvent)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "", errors.New("log service trigger event: source.endpoint is not a URL")
		}
		return "", fmt.Errorf("log service trigger event: source.endpoint %s is not a URL", quote(fromEvent))
	}
	shown := quote(u.Redacted()) // never a password an event might carry
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("log service trigger event: source.endpoint %s: scheme must be http or https", shown)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("log service trigger event: source.endpoint %s: only a scheme and a host are expected", shown)
	case !strings.HasSuffix(host, ".aliyuncs.com") || strings.Contains(host, "..") || u.Port() != "":
		return "", fmt.Errorf("log service trigger event: source.endpoint %s is not a Log Service endpoint (*.aliyuncs.com)", shown)
	}
	return "https://" + host, nil
}

// loopback reports whether the configured endpoint is a loopback emulator.
func loopback(configured string) bool {
	ep, err := endpoint.Parse(configured)
	return err == nil && ep.Loopback
}

// client is a Log Service client bound to one Read: its requests carry
// Read's context, and the last error answer is kept, because the SDK
// reports a 5xx that outlived its short retry window as a timeout of its
// own, without the server's code.
type client struct {
	sls *sls.Client
	tr  *boundTransport
}

func newClient(ctx context.Context, raw string, creds scan.Credentials) (*client, error) {
	ep, err := endpoint.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("read the trail: %w", err)
	}
	// slssink's client: HTTPS for every non-loopback host, the dialer that
	// reaches a loopback emulator whatever "{project}.host" the SDK names,
	// and the SDK's own retries cut to one attempt.
	c, err := slssink.NewClient(ep, creds)
	if err != nil {
		return nil, fmt.Errorf("read the trail: %w", err)
	}
	hc := *c.HTTPClient
	tr := &boundTransport{base: hc.Transport, ctx: ctx}
	if tr.base == nil {
		tr.base = http.DefaultTransport
	}
	hc.Transport = tr
	c.SetHTTPClient(&hc)
	return &client{sls: c, tr: tr}, nil
}

func (c *client) close() {
	if ci, ok := c.tr.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// pull reads one page, asking again while the service is busy or out of
// reach.
func (c *client) pull(ctx context.Context, opts Options, src source, cursor string) (*sls.LogGroupList, string, error) {
	where := fmt.Sprintf("PullLogs %s/%s shard %d", src.project, src.logstore, src.shard)
	pause := opts.RetryBase
	for attempt := 1; ; attempt++ {
		c.tr.reset()
		gl, next, err := c.sls.PullLogs(src.project, src.logstore, src.shard, cursor, src.end, opts.PageSize)
		if err == nil {
			if gl == nil {
				gl = &sls.LogGroupList{}
			}
			return gl, next, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		ans := c.tr.lastAnswer()
		final := ans != nil && !transient(ans)
		if final || attempt >= opts.Attempts {
			return nil, "", describeFailure(where, ans, err, attempt)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", ctx.Err()
		case <-t.C:
		}
		pause *= 2
	}
}

// transient answers are worth asking again: the service is busy, throttled
// or failing for a moment.
func transient(a *answer) bool {
	return a.status >= 500 || a.status == http.StatusTooManyRequests ||
		strings.Contains(a.code, "Throttling") || strings.Contains(a.code, "QuotaExceed")
}

func describeFailure(where string, a *answer, err error, attempts int) error {
	tries := ""
	if attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", attempts)
	}
	if a == nil {
		// No answer from the service: the network, or a reply the SDK
		// could not read (bad cursor header, undecodable body).
		return fmt.Errorf("%s%s: %w", where, tries, err)
	}
	msg := fmt.Sprintf("%s%s: %d %s: %s", where, tries, a.status, a.code, a.message)
	if a.requestID != "" {
		msg += " (request id " + a.requestID + ")"
	}
	return &ReadError{Status: a.status, Code: a.code, msg: msg}
}

// ReadError is a refusal by the service: its status and error code, for a
// caller that wants to tell a missing permission from a missing logstore.
type ReadError struct {
	Status int
	Code   string
	msg    string
}

func (e *ReadError) Error() string { return e.msg }

type answer struct {
	status                   int
	code, message, requestID string
}

const maxErrorBody = 64 << 10

type boundTransport struct {
	base http.RoundTripper
	ctx  context.Context

	mu   sync.Mutex
	last *answer
}

func (t *boundTransport) reset() {
	t.mu.Lock()
	t.last = nil
	t.mu.Unlock()
}

func (t *boundTransport) lastAnswer() *answer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req.WithContext(t.ctx))
	if err != nil || resp.StatusCode == http.StatusOK {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	a := &answer{status: resp.StatusCode, requestID: resp.Header.Get("x-log-requestid")}
	var e struct {
		Code    string `json:"errorCode"`
		Message string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		a.code, a.message = e.Code, clipText(e.Message)
	} else {
		a.code, a.message = "(no error code)", clipText(strings.TrimSpace(string(body)))
	}
	t.mu.Lock()
	t.last = a
	t.mu.Unlock()
	return resp, nil
}

func clipText(s string) string {
	const n = 300
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
