// Package vpcapi is the scanner's Source on top of the VPC OpenAPI SDK: the
// SDK's client configures each Source (endpoint, credential, checks); each
// call is the request the SDK's CallApi sends (signature v3,
// ACS3-HMAC-SHA256, TestRequestIsTheSDKs), built and signed here and sent on
// a pooled HTTP client with the call's context; answers are decoded into the
// SDK's response models and error answers into the SDK's errors; no SDK
// retries (the scanner paces and retries); errors turned into cloudapi
// errors the retry loop classifies by type.
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
		sig, err := newSigner(creds, region, ep, int(opts.CallTimeout/time.Millisecond))
		if err != nil {
			return nil, err
		}
		return &source{region: region, sig: sig, http: hc, timeout: opts.CallTimeout}, nil
	}
}

// newSigner configures the SDK's client of one region and one set of
// credentials, so that a configuration the SDK refuses is reported before
// any call, and keeps what its calls would use: the endpoint its Init
// resolved, the protocol, the user agent and the credential.
func newSigner(creds scan.Credentials, region string, ep endpoint.Endpoint, timeoutMs int) (*signer, error) {
	cfg := &openapiutil.Config{
		AccessKeyId:     dara.String(creds.AccessKeyID),
		AccessKeySecret: dara.String(creds.AccessKeySecret),
		RegionId:        dara.String(region),
		Protocol:        dara.String("https"),
		ReadTimeout:     dara.Int(timeoutMs),
		ConnectTimeout:  dara.Int(timeoutMs),
	}
	if creds.SecurityToken != "" {
		cfg.SecurityToken = dara.String(creds.SecurityToken)
	}
	if !ep.IsZero() {
		// Never a scheme inside Endpoint, or the SDK builds "http://http//host".
		cfg.Endpoint = dara.String(ep.HostPort())
		cfg.Protocol = dara.String(ep.Scheme)
	}
	// The VPC client's Init resolves the regional endpoint and checks the
	// configuration. Only strings are kept of it: a type that reaches an
	// interface drags its fields' types along, and since the SDK's JSON
	// decoding looks methods up by name at run time, the linker then keeps
	// every method of theirs (for *vpc.Client, thousands: the binary more
	// than doubles).
	c, err := vpc.NewClient(cfg)
	if err != nil {
		return nil, cloudapi.Localf("VPC client for %s: %w", region, err)
	}
	sdk := &c.Client
	if sdk.Credential == nil {
		return nil, cloudapi.Localf("VPC client for %s: no credential", region)
	}
	cm, err := sdk.Credential.GetCredential()
	if err != nil {
		return nil, cloudapi.Localf("VPC client for %s: credential: %w", region, err)
	}
	if t := dara.StringValue(cm.Type); t == "bearer" || t == "id_token" {
		return nil, cloudapi.Localf("VPC client for %s: credential type %s is not supported", region, t)
	}
	if alg := dara.StringValue(sdk.SignatureAlgorithm); alg != "" && alg != signatureAlgorithm {
		return nil, cloudapi.Localf("VPC client for %s: signature algorithm %s is not supported", region, alg)
	}
	// DoRequest: the client's protocol, else the action's (HTTPS);
	// dara.DoRequest lower-cases it.
	scheme := strings.ToLower(dara.StringValue(sdk.Protocol))
	if scheme == "" {
		scheme = "https"
	}
	s := &signer{
		scheme:    scheme,
		host:      dara.StringValue(sdk.Endpoint),
		userAgent: dara.StringValue(openapiutil.GetUserAgent(sdk.UserAgent)),
		akID:      dara.StringValue(cm.AccessKeyId),
		secret:    dara.StringValue(cm.AccessKeySecret),
		token:     dara.StringValue(cm.SecurityToken),
		provider:  dara.StringValue(cm.ProviderName),
	}
	if s.host == "" {
		return nil, cloudapi.Localf("VPC client for %s: no endpoint", region)
	}
	return s.init(), nil
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
	// No Timeout: a call without a deadline of its own is given one (do),
	// and the scanner always sets one; a client Timeout would cost a timer
	// and a cancellation goroutine's worth of allocations per call.
	return &http.Client{Transport: tr}
}

// source is the Source of one region for one set of credentials.
type source struct {
	region string
	sig    *signer // configured once
	// timeout bounds a call whose context has no deadline.
	timeout time.Duration
	http    *http.Client
}

// The two actions, as the VPC SDK's DescribeVpnConnectionsWithOptions and
// DescribeVpnCrossAccountAuthorizationsWithOptions call them (RPC style,
// POST, query parameters, no body); the answer is decoded once, with
// encoding/json, straight into the SDK's response model.
var (
	describeConnections    = operation{Action: "DescribeVpnConnections"}
	describeAuthorizations = operation{Action: "DescribeVpnCrossAccountAuthorizations"}
)

// operation names the API a call makes (the RAM policy's tests find the
// calls by it).
type operation struct{ Action string }

// do makes one call and returns the body of its answer, read whole. An
// error answer becomes the SDK's error for it; what failed is told apart
// by mapError.
func (s *source) do(ctx context.Context, op operation, q *rpcQuery, what string) (*call, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	cl := &call{ctx: ctx, http: s.http}
	req, err := s.sig.newRequest(ctx, op.Action, q)
	if err != nil {
		return nil, cl.mapError(what, err)
	}
	if err := cl.send(req); err != nil {
		cl.release()
		return nil, cl.mapError(what, err)
	}
	return cl, nil
}

// connectionsBody is what a listing reads of the SDK's
// DescribeVpnConnectionsResponseBody, under the same keys
// (TestConnectionsBodyKeys): a connection's fifty other fields, some nested,
// are skipped by the decoder instead of each becoming an allocation.
type connectionsBody struct {
	TotalCount     *int32 `json:"TotalCount"`
	VpnConnections *struct {
		VpnConnection []*struct {
			VpnConnectionId *string `json:"VpnConnectionId"`
		} `json:"VpnConnection"`
	} `json:"VpnConnections"`
}

func (s *source) ListConnections(ctx context.Context, region string, pageNumber, pageSize int) (scan.ConnectionPage, error) {
	if err := s.checkRegion(region); err != nil {
		return scan.ConnectionPage{}, err
	}
	what := fmt.Sprintf("list VPN connections in %s", region)
	cl, err := s.do(ctx, describeConnections, &rpcQuery{region: region, pageNumber: pageNumber, pageSize: pageSize}, what)
	if err != nil {
		return scan.ConnectionPage{}, err
	}
	defer cl.release()
	var body connectionsBody
	if err := decode(cl.body.Bytes(), &body); err != nil {
		return scan.ConnectionPage{}, cl.mapError(what, err)
	}
	page := scan.ConnectionPage{TotalCount: int(dara.Int32Value(body.TotalCount))}
	if list := body.VpnConnections; list != nil {
		for _, c := range list.VpnConnection {
			if c == nil {
				continue
			}
			if id := dara.StringValue(c.VpnConnectionId); id != "" {
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
	what := fmt.Sprintf("describe authorizations of %s in %s", connectionID, region)
	q := rpcQuery{region: region, pageNumber: pageNumber, pageSize: pageSize, connection: connectionID}
	cl, err := s.do(ctx, describeAuthorizations, &q, what)
	if err != nil {
		return scan.AuthorizationPage{}, err
	}
	defer cl.release()
	body, err := decodeAuthorizations(cl.body.Bytes())
	if err != nil {
		return scan.AuthorizationPage{}, cl.mapError(what, err)
	}
	page := scan.AuthorizationPage{TotalCount: int(dara.Int32Value(body.TotalCount))}
	if n := len(body.CrossAccountAuthorizations); n > 0 {
		page.Authorizations = make([]policy.Authorization, 0, n)
	}
	for _, a := range body.CrossAccountAuthorizations {
		if a == nil {
			continue
		}
		id := dara.StringValue(a.VpnConnectionId)
		if id == "" {
			id = connectionID
		}
		page.Authorizations = append(page.Authorizations, policy.Authorization{
			VpnConnectionID: id,
			AliUID:          dara.Int64Value(a.AliUid),
			BindUID:         dara.Int64Value(a.BindUid),
			BindProduct:     dara.StringValue(a.BindProduct),
			BindInstance:    dara.StringValue(a.BindInstance),
			CreationTime:    dara.Int64Value(a.CreationTime),
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
