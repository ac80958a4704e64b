package slssink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/endpoint"
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

// NewClient returns a Log Service client for ep, signing with creds (an STS
// token when SecurityToken is set). Its calls carry no context: each HTTP
// request is bounded by the SDK's own timeout.
//
// The SDK sends every request to {project}.{endpoint}; for a loopback
// endpoint such a name does not resolve, so the client dials the loopback
// address whatever the host. The SDK's own retries of 5xx answers are cut to
// a single attempt; callers retry themselves.
func NewClient(ep endpoint.Endpoint, creds scan.Credentials) (*sls.Client, error) {
	f, err := newClients(ep, creds)
	if err != nil {
		return nil, err
	}
	return f.sdkClient(&http.Client{Transport: f.base, Timeout: defaultRequestTimeout}), nil
}

// clients makes the Log Service clients of one sink: one per attempt, whose
// HTTP client carries the attempt's context (the SDK's calls take none) and
// notes the attempt's answer.
type clients struct {
	sdkEndpoint string
	creds       sls.CredentialsProvider
	base        *http.Transport
	wire        *wireStats
}

// wireStats count what goes on the wire, over every attempt.
type wireStats struct {
	calls     atomic.Int64
	rawBytes  atomic.Int64
	wireBytes atomic.Int64
}

func newClients(ep endpoint.Endpoint, creds scan.Credentials) (*clients, error) {
	if ep.IsZero() {
		return nil, errors.New("SLS endpoint is empty")
	}
	if creds.AccessKeyID == "" || creds.AccessKeySecret == "" {
		return nil, errors.New("SLS client: no access key")
	}
	sdkEndpoint, dial := sdkTarget(ep)
	base := http.DefaultTransport.(*http.Transport).Clone()
	// The SDK's default transport keeps idle connections 55 s, below the
	// server's one-minute keep-alive.
	base.IdleConnTimeout = 55 * time.Second
	if dial != "" {
		// No proxy either: a proxy from the environment would receive the
		// {project}.127.0.0.1 name, which is not an IP literal.
		base.Proxy = nil
		var d net.Dialer
		base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, dial)
		}
	}
	return &clients{
		sdkEndpoint: sdkEndpoint,
		creds:       sls.NewStaticCredentialsProvider(creds.AccessKeyID, creds.AccessKeySecret, creds.SecurityToken),
		base:        base,
		wire:        &wireStats{},
	}, nil
}

// sdkTarget is the endpoint as the SDK takes it and, for a loopback
// endpoint, the address every request dials ("" to resolve names).
func sdkTarget(ep endpoint.Endpoint) (sdkEndpoint, dial string) {
	if !ep.Loopback {
		return ep.URL(), ""
	}
	// The SDK writes "{project}." in front of the host; an IPv6 literal would
	// make that an invalid URL, so it gets a name instead. The name never
	// reaches a resolver: the transport dials the address itself.
	virtual := ep
	if strings.Contains(ep.Host, ":") {
		virtual.Host = "localhost"
	}
	if virtual.Port == 0 {
		virtual.Port = 443
		if ep.Scheme == "http" {
			virtual.Port = 80
		}
	}
	return virtual.URL(), ep.DialAddr()
}

// The concrete client, never sls.ClientInterface: a value in an interface
// makes the linker keep all of its hundreds of methods.
func (f *clients) sdkClient(hc *http.Client) *sls.Client {
	c := &sls.Client{Endpoint: f.sdkEndpoint}
	c.WithCredentialsProvider(f.creds)
	c.SetHTTPClient(hc)
	c.SetRetryTimeout(sdkRetryWindow)
	return c
}

// attempt is the client of one attempt and what it saw on the wire.
func (f *clients) attempt(ctx context.Context) (*sls.Client, *attemptTransport) {
	tr := &attemptTransport{ctx: ctx, base: f.base, wire: f.wire}
	return f.sdkClient(&http.Client{Transport: tr}), tr
}

// attemptTransport sits under the SDK for one attempt: it gives every
// request the attempt's context, counts what goes on the wire, and keeps the
// last error answer, because the SDK reports a 5xx that outlived its retry
// window as a timeout of its own, without the server's code. One attempt is
// one goroutine: answer needs no lock.
type attemptTransport struct {
	ctx    context.Context
	base   http.RoundTripper
	wire   *wireStats
	answer *sls.Error
}

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.WithContext(t.ctx)
	if raw := req.Header.Get("x-log-bodyrawsize"); req.Method == http.MethodPost && raw != "" &&
		strings.HasPrefix(req.URL.Path, "/logstores/") && strings.Count(req.URL.Path, "/") == 2 {
		t.wire.calls.Add(1)
		n, _ := strconv.ParseInt(raw, 10, 64)
		t.wire.rawBytes.Add(n)
		t.wire.wireBytes.Add(req.ContentLength)
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
	t.answer = answer
	return resp, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
