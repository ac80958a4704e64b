// Package cloudapi is what the organisation clients (STS, ResourceManager,
// FC) share on top of darabonba-openapi: endpoints (HTTPS, or plain HTTP for
// a loopback emulator only), SDK configurations that carry a call's context,
// credentials that never print their secrets, and SDK errors turned into
// *APIError.
package cloudapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
)

// DefaultCallTimeout bounds one call when a client is given no timeout.
const DefaultCallTimeout = 10 * time.Second

// Credentials are an access key, with an STS token when SecurityToken is set.
// Printing them shows the key id only.
type Credentials struct {
	AccessKeyID, AccessKeySecret, SecurityToken string
}

func (c Credentials) String() string {
	if c.SecurityToken != "" {
		return "{AccessKeyID:" + c.AccessKeyID + " (STS token)}"
	}
	return "{AccessKeyID:" + c.AccessKeyID + "}"
}

// GoString keeps %#v from printing the secret too.
func (c Credentials) GoString() string { return "cloudapi.Credentials" + c.String() }

// Endpoint is an endpoint setting split the way the SDK wants it: never a
// scheme inside the host, or the SDK builds "http://http//host".
type Endpoint struct {
	Host     string // "": the SDK's own endpoint for the region
	Protocol string // "https", or "http" for a loopback host
	Loopback bool
}

// ParseEndpoint reads raw ("", "host[:port]", "https://host[:port]" or
// "http://LOOPBACK:PORT"); errors name the setting.
func ParseEndpoint(setting, raw string) (Endpoint, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Endpoint{Protocol: "https"}, nil
	}
	in := raw
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		// The value is not echoed when it holds user:password.
		shown := in
		if err == nil && u.User != nil {
			shown = u.Scheme + "://…@" + u.Host
		}
		return Endpoint{}, fmt.Errorf("%s %q: want https://host[:port] or http://127.0.0.1:PORT", setting, shown)
	}
	ep := Endpoint{Host: u.Host, Protocol: strings.ToLower(u.Scheme), Loopback: isLoopback(u.Hostname())}
	switch ep.Protocol {
	case "https":
	case "http":
		if !ep.Loopback {
			return Endpoint{}, fmt.Errorf("%s %q: plain http is only for a loopback host", setting, in)
		}
	default:
		return Endpoint{}, fmt.Errorf("%s %q: unsupported scheme %q", setting, in, u.Scheme)
	}
	return ep, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewHTTPClient returns the HTTP client for an endpoint: never through a
// proxy for a loopback emulator.
func NewHTTPClient(ep Endpoint, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.ResponseHeaderTimeout = timeout
	if ep.Loopback {
		tr.Proxy = nil
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Config is the SDK configuration of one call: its HTTP requests carry ctx,
// so a cancelled scan closes the connection instead of leaving a goroutine
// in the SDK. The SDK's own retries stay off: callers pace and retry.
func Config(ctx context.Context, c Credentials, ep Endpoint, region string, hc *http.Client) *openapiutil.Config {
	timeoutMs := int(DefaultCallTimeout / time.Millisecond)
	if hc.Timeout > 0 {
		timeoutMs = int(hc.Timeout / time.Millisecond)
	}
	cfg := &openapiutil.Config{
		AccessKeyId:     dara.String(c.AccessKeyID),
		AccessKeySecret: dara.String(c.AccessKeySecret),
		Protocol:        dara.String(ep.Protocol),
		ReadTimeout:     dara.Int(timeoutMs),
		ConnectTimeout:  dara.Int(timeoutMs),
		HttpClient:      ctxHTTP{ctx: ctx, http: hc},
	}
	if region != "" {
		cfg.RegionId = dara.String(region)
	}
	if c.SecurityToken != "" {
		cfg.SecurityToken = dara.String(c.SecurityToken)
	}
	if ep.Host != "" {
		cfg.Endpoint = dara.String(ep.Host)
	}
	if ep.Loopback {
		// The SDK compares NO_PROXY entries to host:port exactly.
		cfg.NoProxy = dara.String(ep.Host)
	}
	return cfg
}

// ctxHTTP is the SDK's HTTP client for one call.
type ctxHTTP struct {
	ctx  context.Context
	http *http.Client
}

// Call implements the SDK's HttpClient; the SDK's transport is not used.
func (c ctxHTTP) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	return c.http.Do(req.WithContext(c.ctx))
}

// APIError is an error answer of a cloud API.
type APIError struct {
	Code       string
	HTTPStatus int
	Message    string
	RequestID  string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d)", e.Code, e.HTTPStatus)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " [request " + e.RequestID + "]"
	}
	return msg
}

// Throttled reports whether the answer is a quota refusal.
func (e *APIError) Throttled() bool {
	return e.Code == "Throttling" || strings.HasPrefix(e.Code, "Throttling.") || e.Code == "Rejected.Throttling"
}

// Transient reports whether the same call may succeed when tried again.
func (e *APIError) Transient() bool {
	return e.Throttled() || e.HTTPStatus >= 500 || e.Code == "ServiceUnavailable"
}

// MapError turns an SDK error into an *APIError (an answer of the API) or a
// transport error with context. A request URL in a transport error is cut to
// scheme and host: with the legacy RPC signature the query carries the
// access key id and the STS token.
func MapError(ctx context.Context, what string, err error) error {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w", what, apiError(se))
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		redacted := *ue
		if u, perr := url.Parse(ue.URL); perr == nil {
			redacted.URL = u.Scheme + "://" + u.Host + "/"
		} else {
			redacted.URL = ""
		}
		return fmt.Errorf("%s: %w", what, &redacted)
	}
	return fmt.Errorf("%s: %s", what, redactQuery(err.Error()))
}

// redactQuery cuts the query off any URL in a message.
func redactQuery(s string) string {
	fields := strings.Fields(s)
	for i, f := range fields {
		if strings.Contains(f, "://") {
			if j := strings.IndexByte(f, '?'); j >= 0 {
				fields[i] = f[:j] + "?…"
			}
		}
	}
	return strings.Join(fields, " ")
}

func apiError(se *tea.SDKError) *APIError {
	ae := &APIError{Code: dara.StringValue(se.Code), HTTPStatus: dara.IntValue(se.StatusCode)}
	if data := dara.StringValue(se.Data); data != "" {
		var body struct {
			Message   string
			RequestId string
			Code      string
		}
		if json.Unmarshal([]byte(data), &body) == nil {
			ae.Message, ae.RequestID = body.Message, body.RequestId
			if ae.Code == "" {
				ae.Code = body.Code
			}
		}
	}
	if ae.Message == "" {
		ae.Message = dara.StringValue(se.Message)
	}
	ae.Message = redactStringToSign(ae.Message)
	return ae
}

// redactStringToSign drops the string to sign that the gateway quotes in a
// SignatureDoesNotMatch message: with the legacy RPC signature (the STS
// client's) it holds the STS token.
func redactStringToSign(msg string) string {
	if i := strings.Index(strings.ToLower(msg), "string to sign is"); i >= 0 {
		return strings.TrimSpace(msg[:i]) + " [string to sign withheld]"
	}
	return msg
}
