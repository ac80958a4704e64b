// Package vpcapi is the scanner's Source on top of the VPC OpenAPI SDK: one
// SDK call per method, no SDK retries (the scanner paces and retries), SDK
// errors turned into cloudapi errors the retry loop classifies by type.
package vpcapi

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
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
)

// Options configure the Sources a factory builds.
type Options struct {
	// Endpoint overrides the SDK's regional endpoint, per region or for all
	// (VPC_ENDPOINT); the zero value keeps the SDK's regional HTTPS endpoint.
	Endpoint endpoint.Regional
	// CallTimeout bounds each call (connect, send, answer); default
	// cloudapi.DefaultCallTimeout.
	CallTimeout time.Duration
	// HTTPClient carries the calls; nil: a client of the factory's own, shared
	// by every Source it builds so that connections are reused.
	HTTPClient *http.Client
}

// NewSourceFactory returns the factory of VPC API Sources. A bad endpoint or
// region is reported by the factory, before any call, as a
// cloudapi.LocalError.
func NewSourceFactory(opts Options) scan.SourceFactory {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = cloudapi.DefaultCallTimeout
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = newHTTPClient(opts.CallTimeout)
	}
	return func(creds scan.Credentials, region string) (scan.Source, error) {
		if !target.ValidRegion(region) {
			return nil, cloudapi.Localf("invalid region %q", region)
		}
		if creds.AccessKeyID == "" || creds.AccessKeySecret == "" {
			return nil, cloudapi.Localf("no VPC API credentials")
		}
		ep, err := opts.Endpoint.For(region)
		if err != nil {
			return nil, cloudapi.Localf("VPC endpoint for %s: %w", region, err)
		}
		src := &source{creds: creds, region: region, ep: ep, timeoutMs: int(opts.CallTimeout / time.Millisecond), http: hc}
		// Build one client now, so that a configuration the SDK refuses is
		// reported before any call.
		if _, _, err := src.client(context.Background()); err != nil {
			return nil, err
		}
		return src, nil
	}
}

func newHTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Emulators serve every region from one loopback address, so one host
	// may see every region's calls in flight.
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = timeout
	proxy := tr.Proxy
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		// A proxy from the environment must not capture an emulator's
		// loopback traffic.
		if endpoint.IsLoopbackHost(req.URL.Hostname()) {
			return nil, nil
		}
		return proxy(req)
	}
	// Timeout backs up the per-call context, which the scanner always sets.
	return &http.Client{Transport: tr, Timeout: timeout}
}

// source is the Source of one region for one set of credentials.
type source struct {
	creds     scan.Credentials
	region    string
	ep        endpoint.Endpoint // zero: the SDK's regional endpoint
	timeoutMs int
	http      *http.Client
}

// client is one SDK client, held by the two calls the scanner makes.
//
// Not by *vpc.Client itself: a type that reaches an interface drags its
// fields' types along, and since the SDK's JSON decoding looks methods up by
// name at run time, the linker would then keep every one of the VPC client's
// thousands of API methods, which more than doubles the binary. Method
// values hold the client without naming its type.
type client struct {
	describeConnections    func(*vpc.DescribeVpnConnectionsRequest, *dara.RuntimeOptions) (*vpc.DescribeVpnConnectionsResponse, error)
	describeAuthorizations func(*vpc.DescribeVpnCrossAccountAuthorizationsRequest, *dara.RuntimeOptions) (*vpc.DescribeVpnCrossAccountAuthorizationsResponse, error)
}

// client builds the SDK client of one call, bound to the call's context.
// The SDK's calls take no context and its client keeps per-call state in
// its own fields (the RPC headers of the last call), so a client serves one
// call: its HttpClient carries ctx to the request. Building one costs a few
// microseconds (BenchmarkListAuthorizations).
func (s *source) client(ctx context.Context) (client, *call, error) {
	cl := &call{ctx: ctx, http: s.http}
	cfg := &openapiutil.Config{
		AccessKeyId:     dara.String(s.creds.AccessKeyID),
		AccessKeySecret: dara.String(s.creds.AccessKeySecret),
		RegionId:        dara.String(s.region),
		Protocol:        dara.String("https"),
		ReadTimeout:     dara.Int(s.timeoutMs),
		ConnectTimeout:  dara.Int(s.timeoutMs),
		HttpClient:      cl,
		// RetryOptions stays nil: the SDK's retries sleep seconds where they
		// mean milliseconds, and the scanner paces and retries every attempt.
	}
	if s.creds.SecurityToken != "" {
		cfg.SecurityToken = dara.String(s.creds.SecurityToken)
	}
	if !s.ep.IsZero() {
		// Never a scheme inside Endpoint, or the SDK builds "http://http//host".
		cfg.Endpoint = dara.String(s.ep.HostPort())
		cfg.Protocol = dara.String(s.ep.Scheme)
	}
	c, err := vpc.NewClient(cfg)
	if err != nil {
		return client{}, nil, cloudapi.Localf("VPC client for %s: %w", s.region, err)
	}
	return client{
		describeConnections:    c.DescribeVpnConnectionsWithOptions,
		describeAuthorizations: c.DescribeVpnCrossAccountAuthorizationsWithOptions,
	}, cl, nil
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
	c, cl, err := s.client(ctx)
	if err != nil {
		return scan.ConnectionPage{}, err
	}
	resp, err := c.describeConnections(req, &dara.RuntimeOptions{})
	if err != nil {
		return scan.ConnectionPage{}, cl.mapError(fmt.Sprintf("list VPN connections in %s", region), err)
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
	c, cl, err := s.client(ctx)
	if err != nil {
		return scan.AuthorizationPage{}, err
	}
	cl.keepBody = true
	what := fmt.Sprintf("describe authorizations of %s in %s", connectionID, region)
	resp, err := c.describeAuthorizations(req, &dara.RuntimeOptions{})
	var body *vpc.DescribeVpnCrossAccountAuthorizationsResponseBody
	switch err := cl.mapError(what, err); {
	case err == nil:
		body = resp.GetBody()
	case errors.As(err, new(*cloudapi.DecodeError)):
		// The SDK reads the published shape only; an answer with the list
		// wrapped (as an older SDK reads it) is read here, and anything else
		// stays a final decode error.
		if body = decodeAuthorizations(cl.body.Bytes()); body == nil {
			return scan.AuthorizationPage{}, err
		}
	default:
		return scan.AuthorizationPage{}, err
	}
	var page scan.AuthorizationPage
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
		return cloudapi.Localf("source of region %s asked about region %q", s.region, region)
	}
	return nil
}

// mapError turns what the SDK returned into a cloudapi error, from what the
// call saw on the wire rather than from the SDK's message text: an error
// answer (*cloudapi.APIError); a transport failure, sending or reading
// (retried); an answer that came but could not be decoded
// (*cloudapi.DecodeError, final, or for a 5xx or 429 an APIError without a
// code, retried); nothing sent at all (*cloudapi.LocalError). The request URL
// in transport errors is cut to scheme and host: the query is the SDK's, and
// with older signature modes it would carry the access key id and token.
func (c *call) mapError(what string, err error) error {
	if err == nil {
		return nil
	}
	var se *tea.SDKError
	if errors.As(err, &se) {
		// The answer alone: it is what findings and logs show.
		return apiError(se)
	}
	if c.transportErr != nil {
		if ctxErr := c.ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s: %w", what, ctxErr)
		}
		var ue *url.Error
		if errors.As(c.transportErr, &ue) {
			redacted := *ue
			if u, perr := url.Parse(ue.URL); perr == nil {
				redacted.URL = u.Scheme + "://" + u.Host + "/"
			} else {
				redacted.URL = ""
			}
			return fmt.Errorf("%s: %w", what, &redacted)
		}
		return fmt.Errorf("%s: %w", what, c.transportErr)
	}
	switch {
	case c.status == 0:
		return cloudapi.Localf("%s: %w", what, err)
	case c.status >= 500 || c.status == http.StatusTooManyRequests:
		return fmt.Errorf("%s: %w", what, &cloudapi.APIError{HTTPStatus: c.status, Message: "an answer that could not be decoded: " + err.Error()})
	}
	return fmt.Errorf("%s: %w", what, &cloudapi.DecodeError{HTTPStatus: c.status, Err: err})
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

// splitSDKMessage undoes "code: 404, The message. request id: R2", for an
// SDK error whose Data did not carry the server's body.
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
