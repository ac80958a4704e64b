// Package vpcapi is the scanner's Source on top of the VPC OpenAPI SDK: one
// SDK call per method, no SDK retries (the scanner paces and retries), SDK
// errors turned into *cloudapi.APIError.
package vpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
)

// DefaultCallTimeout bounds one API call when Options.CallTimeout is zero.
const DefaultCallTimeout = 10 * time.Second

// Options configure the Sources a factory builds.
type Options struct {
	// Endpoint overrides the SDK's regional endpoint: "" (the SDK's regional
	// HTTPS endpoint), "https://host[:port]", or "http://LOOPBACK:PORT" for
	// emulators. Plain HTTP is refused for any other host.
	Endpoint string
	// CallTimeout bounds each call (connect, send, answer); default 10 s.
	CallTimeout time.Duration
	// HTTPClient carries the calls; nil: a client of the factory's own, shared
	// by every Source it builds so that connections are reused.
	HTTPClient *http.Client
}

// endpoint is Options.Endpoint split the way the SDK wants it: never a scheme
// inside Endpoint, or the SDK builds "http://http//host".
type endpoint struct {
	host     string // "" : the SDK's regional endpoint
	protocol string // "http" or "https"
	loopback bool
}

func parseEndpoint(raw string) (endpoint, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return endpoint{protocol: "https"}, nil
	}
	if !strings.Contains(raw, "://") {
		// host[:port] alone: traffic to the cloud is HTTPS.
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("VPC endpoint %q: %w", raw, err)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("VPC endpoint %q: want https://host[:port] or http://127.0.0.1:PORT", raw)
	}
	ep := endpoint{host: u.Host, protocol: strings.ToLower(u.Scheme), loopback: isLoopback(u.Hostname())}
	switch ep.protocol {
	case "https":
	case "http":
		if !ep.loopback {
			return endpoint{}, fmt.Errorf("VPC endpoint %q: plain http is only for a loopback host", raw)
		}
	default:
		return endpoint{}, fmt.Errorf("VPC endpoint %q: unsupported scheme %q", raw, u.Scheme)
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

// NewSourceFactory returns the factory of VPC API Sources. A bad endpoint or
// region is reported by the factory, before any call.
func NewSourceFactory(opts Options) scan.SourceFactory {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	ep, epErr := parseEndpoint(opts.Endpoint)
	hc := opts.HTTPClient
	if hc == nil {
		hc = newHTTPClient(ep, opts.CallTimeout)
	}
	caller := &ctxClient{http: hc}
	return func(creds scan.Credentials, region string) (scan.Source, error) {
		if epErr != nil {
			return nil, epErr
		}
		if !target.ValidRegion(region) {
			return nil, fmt.Errorf("invalid region %q", region)
		}
		if creds.AccessKeyID == "" || creds.AccessKeySecret == "" {
			return nil, errors.New("no VPC API credentials")
		}
		ms := int(opts.CallTimeout / time.Millisecond)
		// A fresh configuration per client: the SDK writes into it.
		newConfig := func() *openapiutil.Config {
			return sdkConfig(creds, region, ep, ms, caller)
		}
		src := &source{newConfig: newConfig, caller: caller, region: region}
		// Build one client now, so that a configuration the SDK refuses is
		// reported before any call.
		c, err := src.client()
		if err != nil {
			return nil, err
		}
		src.release(c)
		return src, nil
	}
}

// sdkConfig is the SDK configuration of one client. Endpoint stays nil
// without an override, so that the SDK picks its regional HTTPS endpoint.
func sdkConfig(creds scan.Credentials, region string, ep endpoint, timeoutMs int, caller *ctxClient) *openapiutil.Config {
	cfg := &openapiutil.Config{
		AccessKeyId:     dara.String(creds.AccessKeyID),
		AccessKeySecret: dara.String(creds.AccessKeySecret),
		RegionId:        dara.String(region),
		Protocol:        dara.String(ep.protocol),
		ReadTimeout:     dara.Int(timeoutMs),
		ConnectTimeout:  dara.Int(timeoutMs),
		HttpClient:      caller,
		// RetryOptions stays nil: the SDK's retries sleep seconds where they
		// mean milliseconds, and the scanner paces and retries every attempt.
	}
	if creds.SecurityToken != "" {
		cfg.SecurityToken = dara.String(creds.SecurityToken)
	}
	if ep.host != "" {
		cfg.Endpoint = dara.String(ep.host)
	}
	if ep.loopback {
		// The SDK compares NO_PROXY entries to host:port exactly; without
		// this an HTTP_PROXY variable would capture loopback traffic.
		cfg.NoProxy = dara.String(ep.host)
	}
	return cfg
}

// maxIdleClients bounds the SDK clients a Source keeps between calls: one
// per call in flight, as the scanner reads several connections of a region at
// once.
const maxIdleClients = 16

func newHTTPClient(ep endpoint, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Emulators serve every region from one loopback address, so one host
	// may see every region's calls in flight.
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = timeout
	if ep.loopback {
		tr.Proxy = nil
	}
	// Timeout backs up the per-call context, which the scanner always sets.
	return &http.Client{Transport: tr, Timeout: timeout}
}

// callHeader carries a call's number from the SDK request to ctxClient, so
// that the call's context reaches the HTTP request: the SDK's calls take no
// context. The header is removed before the request leaves, and it is not
// signed (only host, content-type and x-acs-* headers are).
const callHeader = "x-vpnauthz-call"

// ctxClient is the SDK's HTTP client: it attaches each call's context to its
// request, so a cancelled scan or an expired call closes the connection
// instead of leaving a goroutine waiting on the SDK.
type ctxClient struct {
	http  *http.Client
	next  atomic.Uint64
	calls sync.Map // call number → context.Context
}

func (c *ctxClient) register(ctx context.Context) (*dara.RuntimeOptions, func()) {
	id := strconv.FormatUint(c.next.Add(1), 10)
	c.calls.Store(id, ctx)
	rt := &dara.RuntimeOptions{ExtendsParameters: &dara.ExtendsParameters{
		Headers: map[string]*string{callHeader: dara.String(id)},
	}}
	return rt, func() { c.calls.Delete(id) }
}

// Call implements the SDK's HttpClient; the SDK's transport is not used.
func (c *ctxClient) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	id := req.Header.Get(callHeader)
	if id == "" {
		//lint:ignore SA1008 the SDK writes its header keys in lower case, uncanonicalised
		if v := req.Header[callHeader]; len(v) > 0 {
			id = v[0]
		}
	}
	req.Header.Del(callHeader)
	delete(req.Header, callHeader)
	if v, ok := c.calls.Load(id); ok {
		req = req.WithContext(v.(context.Context))
	}
	return c.http.Do(req)
}

// source is the Source of one region for one set of credentials. The SDK's
// client keeps per-call state in its own fields (the RPC headers of the last
// call), so one client serves one call at a time: calls in flight take a
// client each from a small pool, all built from the same configuration.
type source struct {
	newConfig func() *openapiutil.Config
	caller    *ctxClient
	region    string

	mu   sync.Mutex
	idle []client
}

// client is one SDK client, held by the two calls the scanner makes.
//
// Not by *vpc.Client itself: a source travels as a scan.Source interface,
// and a type that reaches an interface drags its fields' types along. Since
// the SDK's JSON decoding looks methods up by name at run time, the linker
// would then keep every one of the VPC client's thousands of API methods,
// which more than doubles the binary. Method values hold the client without
// naming its type.
type client struct {
	describeConnections    func(*vpc.DescribeVpnConnectionsRequest, *dara.RuntimeOptions) (*vpc.DescribeVpnConnectionsResponse, error)
	describeAuthorizations func(*vpc.DescribeVpnCrossAccountAuthorizationsRequest, *dara.RuntimeOptions) (*vpc.DescribeVpnCrossAccountAuthorizationsResponse, error)
}

func (s *source) client() (client, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	c, err := vpc.NewClient(s.newConfig())
	if err != nil {
		return client{}, fmt.Errorf("VPC client for %s: %w", s.region, err)
	}
	return client{
		describeConnections:    c.DescribeVpnConnectionsWithOptions,
		describeAuthorizations: c.DescribeVpnCrossAccountAuthorizationsWithOptions,
	}, nil
}

func (s *source) release(c client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idle) < maxIdleClients {
		s.idle = append(s.idle, c)
	}
}

func (s *source) ListConnections(ctx context.Context, region string, pageNumber, pageSize int) (scan.ConnectionPage, error) {
	if err := s.checkRegion(region); err != nil {
		return scan.ConnectionPage{}, err
	}
	req := &vpc.DescribeVpnConnectionsRequest{
		RegionId:   dara.String(region),
		PageNumber: dara.Int32(int32(pageNumber)),
		PageSize:   dara.Int32(int32(pageSize)),
	}
	c, err := s.client()
	if err != nil {
		return scan.ConnectionPage{}, err
	}
	defer s.release(c)
	rt, done := s.caller.register(ctx)
	defer done()
	resp, err := c.describeConnections(req, rt)
	if err != nil {
		return scan.ConnectionPage{}, mapError(ctx, fmt.Sprintf("list VPN connections in %s", region), err)
	}
	var page scan.ConnectionPage
	body := resp.GetBody()
	if body == nil {
		return page, nil
	}
	page.TotalCount = int(dara.Int32Value(body.GetTotalCount()))
	if list := body.GetVpnConnections(); list != nil {
		for _, c := range list.GetVpnConnection() {
			if c == nil {
				continue
			}
			if id := dara.StringValue(c.GetVpnConnectionId()); id != "" {
				page.IDs = append(page.IDs, id)
			}
		}
	}
	return page, nil
}

func (s *source) ListAuthorizations(ctx context.Context, region, connectionID string, pageNumber, pageSize int) (scan.AuthorizationPage, error) {
	if err := s.checkRegion(region); err != nil {
		return scan.AuthorizationPage{}, err
	}
	req := &vpc.DescribeVpnCrossAccountAuthorizationsRequest{
		RegionId:        dara.String(region),
		VpnConnectionId: dara.String(connectionID),
		PageNumber:      dara.Int32(int32(pageNumber)),
		PageSize:        dara.Int32(int32(pageSize)),
	}
	c, err := s.client()
	if err != nil {
		return scan.AuthorizationPage{}, err
	}
	defer s.release(c)
	rt, done := s.caller.register(ctx)
	defer done()
	resp, err := c.describeAuthorizations(req, rt)
	if err != nil {
		return scan.AuthorizationPage{}, mapError(ctx, fmt.Sprintf("describe authorizations of %s in %s", connectionID, region), err)
	}
	var page scan.AuthorizationPage
	body := resp.GetBody()
	if body == nil {
		return page, nil
	}
	page.TotalCount = int(dara.Int32Value(body.GetTotalCount()))
	for _, a := range body.GetCrossAccountAuthorizations() {
		if a == nil {
			continue
		}
		id := dara.StringValue(a.GetVpnConnectionId())
		if id == "" {
			id = connectionID
		}
		page.Authorizations = append(page.Authorizations, policy.Authorization{
			VpnConnectionID: id,
			AliUID:          dara.Int64Value(a.GetAliUid()),
			BindUID:         dara.Int64Value(a.GetBindUid()),
			BindProduct:     dara.StringValue(a.GetBindProduct()),
			BindInstance:    dara.StringValue(a.GetBindInstance()),
			CreationTime:    dara.Int64Value(a.GetCreationTime()),
		})
	}
	return page, nil
}

// checkRegion keeps a Source to the region its client signs for: the
// endpoint and RegionId of the client were chosen for it.
func (s *source) checkRegion(region string) error {
	if region != s.region {
		return fmt.Errorf("source of region %s asked about region %q", s.region, region)
	}
	return nil
}

// mapError turns an SDK error into a *cloudapi.APIError (an answer of the API)
// or a transport error with context. The request URL in transport errors is
// cut to scheme and host: the query is the SDK's, and with older signature
// modes it would carry the access key id and token.
func mapError(ctx context.Context, what string, err error) error {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return apiError(se)
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
	return fmt.Errorf("%s: %w", what, err)
}

func apiError(se *tea.SDKError) *cloudapi.APIError {
	ae := &cloudapi.APIError{
		Code:       dara.StringValue(se.Code),
		HTTPStatus: dara.IntValue(se.StatusCode),
	}
	// Data is the whole error body as JSON: it has the server's own message,
	// without the SDK's "code: N, … request id: …" decoration.
	if data := dara.StringValue(se.Data); data != "" {
		var body struct {
			Message   string
			RequestId string
			Code      string
		}
		if json.Unmarshal([]byte(data), &body) == nil {
			ae.Message = body.Message
			ae.RequestID = body.RequestId
			if ae.Code == "" {
				ae.Code = body.Code
			}
		}
	}
	if ae.Message == "" {
		ae.Message, ae.RequestID = splitSDKMessage(dara.StringValue(se.Message), ae.RequestID)
	}
	return ae
}

// splitSDKMessage undoes "code: 404, The message. request id: R2".
func splitSDKMessage(msg, requestID string) (string, string) {
	if strings.HasPrefix(msg, "code: ") {
		if i := strings.Index(msg, ", "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	if i := strings.LastIndex(msg, " request id: "); i >= 0 {
		if requestID == "" {
			requestID = strings.TrimSpace(msg[i+len(" request id: "):])
		}
		msg = msg[:i]
	}
	return strings.TrimSpace(msg), requestID
}
