package slssink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/scan"
)

const (
	// sdkRetryWindow is the client-level retry timeout given to the SDK. The
	// SDK retries 5xx answers inside every call for up to RetryTimeOut (90 s by
	// default) with a backoff whose first pause is at least 250 ms; a window
	// shorter than that pause lets exactly one attempt through, so the sink's
	// own loop (shorter, jittered, bounded by the caller's deadline) decides
	// about retries. The global sls.RetryOnServerErrorEnabled switch is left
	// alone: it would change every Log Service client in the process.
	sdkRetryWindow = 200 * time.Millisecond

	// defaultRequestTimeout bounds one HTTP request of a client made by
	// NewClient, whose calls carry no context; it is the SDK's own default.
	defaultRequestTimeout = 60 * time.Second

	// maxErrorBody bounds what is kept of an error reply.
	maxErrorBody = 64 << 10
)

// NewClient returns a Log Service client for endpoint, signing with creds (an
// STS token when SecurityToken is set).
//
// endpoint is a URL or a bare host. Traffic to Alibaba Cloud is always HTTPS:
// a bare host gets https://, and http:// is refused unless the host is a
// loopback address (127.0.0.0/8, ::1, localhost). The SDK sends every request
// to {project}.{endpoint}; for a loopback endpoint such a name does not
// resolve, so the client dials the loopback address whatever the host.
//
// The SDK's own retries of 5xx answers are cut to a single attempt; callers
// retry themselves.
func NewClient(endpoint string, creds scan.Credentials) (*sls.Client, error) {
	c, _, err := newClient(endpoint, creds, defaultRequestTimeout)
	return c, err
}

// newClient is NewClient returning the transport too, so that the sink can
// bind each call to its context and read what happened on the wire.
// requestTimeout 0 leaves the bound context as the only limit.
func newClient(endpoint string, creds scan.Credentials, requestTimeout time.Duration) (*sls.Client, *transport, error) {
	ep, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, nil, err
	}
	if creds.AccessKeyID == "" || creds.AccessKeySecret == "" {
		return nil, nil, errors.New("SLS client: no access key")
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	// The SDK's default transport keeps idle connections 55 s, below the
	// server's one-minute keep-alive.
	base.IdleConnTimeout = 55 * time.Second
	if ep.dial != "" {
		// No proxy either: a proxy from the environment would receive the
		// {project}.127.0.0.1 name, which is not an IP literal.
		base.Proxy = nil
		var d net.Dialer
		addr := ep.dial
		base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
	}
	tr := &transport{base: base}

	// The concrete client, never sls.ClientInterface: a value in an
	// interface makes the linker keep all of its hundreds of methods.
	c := &sls.Client{Endpoint: ep.sdk}
	c.WithCredentialsProvider(sls.NewStaticCredentialsProvider(creds.AccessKeyID, creds.AccessKeySecret, creds.SecurityToken))
	c.SetHTTPClient(&http.Client{Transport: tr, Timeout: requestTimeout})
	c.SetRetryTimeout(sdkRetryWindow)
	return c, tr, nil
}

// endpoint is a parsed SLS endpoint.
type endpoint struct {
	sdk  string // scheme://host[:port], as given to the SDK
	dial string // loopback host:port to dial for every request; "" to resolve names
}

// parseEndpoint accepts "https://host[:port]", "host[:port]" (HTTPS), and for
// loopback hosts "http://host:port" or "host:port" (HTTP).
func parseEndpoint(raw string) (endpoint, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return endpoint{}, errors.New("SLS endpoint is empty")
	}
	shown := s // the endpoint as errors show it, without a password
	scheme := ""
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			if strings.Contains(s, "@") {
				return endpoint{}, errors.New("SLS endpoint is not a valid URL")
			}
			return endpoint{}, fmt.Errorf("SLS endpoint %q is not a valid URL", s)
		}
		shown = u.Redacted()
		if u.Scheme != "http" && u.Scheme != "https" {
			return endpoint{}, fmt.Errorf("SLS endpoint %q: scheme must be https (or http for a loopback host)", shown)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return endpoint{}, fmt.Errorf("SLS endpoint %q: only scheme, host and port are allowed", shown)
		}
		scheme, hostport = u.Scheme, u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port, or an IPv6 literal without one.
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return endpoint{}, fmt.Errorf("SLS endpoint %q: no host", shown)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return endpoint{}, fmt.Errorf("SLS endpoint %q: bad port %q", shown, port)
		}
	}

	if !isLoopback(host) {
		if scheme == "http" {
			return endpoint{}, fmt.Errorf("SLS endpoint %q: plain http is allowed only for a loopback host; use https", shown)
		}
		return endpoint{sdk: "https://" + hostport}, nil
	}
	if scheme == "" {
		scheme = "http"
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	// The SDK writes "{project}." in front of the host; an IPv6 literal would
	// make that an invalid URL, so it gets a name instead. The name never
	// reaches a resolver: the transport dials the address itself.
	virtual := host
	if strings.Contains(host, ":") {
		virtual = "localhost"
	}
	return endpoint{
		sdk:  scheme + "://" + net.JoinHostPort(virtual, port),
		dial: net.JoinHostPort(host, port),
	}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// transport sits under the SDK. The SDK builds its requests without a
// context, so the transport attaches the context of the call in progress; it
// counts what goes on the wire; and it keeps the last error answer, because
// the SDK reports a 5xx that outlived its retry window as a timeout of its
// own, without the server's code.
type transport struct {
	base http.RoundTripper

	mu     sync.Mutex
	ctx    context.Context // of the call in progress; nil: the request's own
	answer *sls.Error      // last non-200 answer since bind

	calls     atomic.Int64
	rawBytes  atomic.Int64
	wireBytes atomic.Int64
}

// bind makes the requests that follow carry ctx and forgets the last answer.
// Calls through one transport are sequential: one sender at a time.
func (t *transport) bind(ctx context.Context) {
	t.mu.Lock()
	t.ctx, t.answer = ctx, nil
	t.mu.Unlock()
}

// unbind ends what bind began: later requests carry no call's context.
func (t *transport) unbind() {
	t.mu.Lock()
	t.ctx, t.answer = nil, nil
	t.mu.Unlock()
}

// lastAnswer is the last error reply received since bind, or nil.
func (t *transport) lastAnswer() *sls.Error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.answer
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	ctx := t.ctx
	t.mu.Unlock()
	if ctx != nil {
		req = req.WithContext(ctx)
	}
	if raw := req.Header.Get("x-log-bodyrawsize"); req.Method == http.MethodPost && raw != "" &&
		strings.HasPrefix(req.URL.Path, "/logstores/") && strings.Count(req.URL.Path, "/") == 2 {
		t.calls.Add(1)
		n, _ := strconv.ParseInt(raw, 10, 64)
		t.rawBytes.Add(n)
		t.wireBytes.Add(req.ContentLength)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusOK {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	answer := &sls.Error{}
	if json.Unmarshal(body, answer) != nil {
		answer = &sls.Error{Message: strings.TrimSpace(truncate(string(body), 200))}
	}
	answer.HTTPCode = int32(resp.StatusCode)
	answer.RequestID = resp.Header.Get("x-log-requestid")
	t.mu.Lock()
	t.answer = answer
	t.mu.Unlock()
	return resp, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
