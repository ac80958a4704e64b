// Package openapi is what the clients built on darabonba-openapi (STS,
// ResourceManager, FC) share: an SDK configuration for one call that carries
// the call's context and never enables the SDK's own retries, an HTTP client
// per endpoint, and the SDK's errors turned into cloudapi errors without
// secrets in them.
package openapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
)

// NewHTTPClient returns the HTTP client for an endpoint: never through a
// proxy for a loopback emulator.
func NewHTTPClient(ep endpoint.Endpoint, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = cloudapi.DefaultCallTimeout
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
// in the SDK. The SDK's own retries stay off: callers pace and retry. A zero
// ep leaves the SDK its own endpoint for the region.
func Config(ctx context.Context, c cloudapi.Credentials, ep endpoint.Endpoint, region string, hc *http.Client) *openapiutil.Config {
	timeoutMs := int(cloudapi.DefaultCallTimeout / time.Millisecond)
	if hc.Timeout > 0 {
		timeoutMs = int(hc.Timeout / time.Millisecond)
	}
	protocol := "https"
	if !ep.IsZero() {
		protocol = ep.Scheme
	}
	cfg := &openapiutil.Config{
		AccessKeyId:     dara.String(c.AccessKeyID),
		AccessKeySecret: dara.String(c.AccessKeySecret),
		Protocol:        dara.String(protocol),
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
	if !ep.IsZero() {
		// Never a scheme inside Endpoint, or the SDK builds "http://http//host".
		cfg.Endpoint = dara.String(ep.HostPort())
	}
	if ep.Loopback {
		// The SDK compares NO_PROXY entries to host:port exactly.
		cfg.NoProxy = dara.String(ep.HostPort())
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

// MapError turns an SDK error into a *cloudapi.APIError (an answer of the
// API) or a transport error with context. A request URL in a transport error
// is cut to scheme and host: with the legacy RPC signature the query carries
// the access key id and the STS token.
func MapError(ctx context.Context, what string, err error) error {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w", what, APIError(se))
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", what, RedactURL(ue))
	}
	return fmt.Errorf("%s: %s", what, redactQuery(err.Error()))
}

// RedactURL returns ue with its URL cut to scheme and host.
func RedactURL(ue *url.Error) *url.Error {
	redacted := *ue
	if u, perr := url.Parse(ue.URL); perr == nil {
		redacted.URL = u.Scheme + "://" + u.Host + "/"
	} else {
		redacted.URL = ""
	}
	return &redacted
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

// APIError is the answer an SDK error carries. Data is the whole error body
// as JSON, with the server's own message; the SDK's decorated Message is the
// fallback only when no body came.
func APIError(se *tea.SDKError) *cloudapi.APIError {
	ae := &cloudapi.APIError{Code: dara.StringValue(se.Code), HTTPStatus: dara.IntValue(se.StatusCode)}
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
