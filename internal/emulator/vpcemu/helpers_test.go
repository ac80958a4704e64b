package vpcemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/emulator/cred"
)

const (
	testAK        = "LTAItestAccessKey"
	testSecret    = "testSecretValue0123456789"
	stsAK         = "STS.testAccessKey"
	stsSecret     = "stsSecretValue0123456789"
	stsToken      = "CAIStestSecurityToken"
	otherStsAK    = "STS.otherAccessKey"
	otherStsToken = "CAISotherSecurityToken"
	ownerUID      = 1250123456123456
)

func testCredentials() []cred.Credential {
	return []cred.Credential{
		{AccessKeyID: testAK, AccessKeySecret: testSecret},
		{AccessKeyID: stsAK, AccessKeySecret: stsSecret, SecurityToken: stsToken},
		{AccessKeyID: otherStsAK, AccessKeySecret: "otherSecret", SecurityToken: otherStsToken},
	}
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = testCredentials()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func loadTestInventory(t *testing.T) *Inventory {
	t.Helper()
	inv, err := LoadInventory("testdata/inventory.json")
	if err != nil {
		t.Fatalf("LoadInventory: %v", err)
	}
	return inv
}

type clientOptions struct {
	ak, secret, token string
	rpc               bool            // legacy RPC signature ("v2")
	httpClient        dara.HttpClient // to see or change requests after signing
}

func newClient(t *testing.T, s *Server, o clientOptions) *vpc.Client {
	t.Helper()
	if o.ak == "" {
		o.ak, o.secret = testAK, testSecret
	}
	cfg := &openapiutil.Config{
		Endpoint:        dara.String(s.Addr()),
		Protocol:        dara.String("http"),
		AccessKeyId:     dara.String(o.ak),
		AccessKeySecret: dara.String(o.secret),
		RegionId:        dara.String("cn-hangzhou"),
		NoProxy:         dara.String(s.Addr()),
		ReadTimeout:     dara.Int(5000),
		ConnectTimeout:  dara.Int(2000),
	}
	if o.token != "" {
		cfg.SecurityToken = dara.String(o.token)
	}
	if o.rpc {
		cfg.SignatureAlgorithm = dara.String("v2")
	}
	if o.httpClient != nil {
		cfg.HttpClient = o.httpClient
	}
	c, err := vpc.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// hookClient lets a test change a request after the SDK signed it, and keeps
// the last request and answer body.
type hookClient struct {
	before func(*http.Request)
	http   *http.Client

	mu       sync.Mutex
	lastReq  *http.Request
	lastBody []byte
}

func newHookClient(before func(*http.Request)) *hookClient {
	return &hookClient{before: before, http: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}}
}

func (h *hookClient) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	if h.before != nil {
		h.before(req)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	h.mu.Lock()
	h.lastReq, h.lastBody = req, body
	h.mu.Unlock()
	return resp, nil
}

func (h *hookClient) last() (*http.Request, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastReq, h.lastBody
}

func authzRequest(region, id string) *vpc.DescribeVpnCrossAccountAuthorizationsRequest {
	return &vpc.DescribeVpnCrossAccountAuthorizationsRequest{RegionId: dara.String(region), VpnConnectionId: dara.String(id)}
}

// wantSDKError checks that err is the SDK's error with that code and status.
func wantSDKError(t *testing.T, err error, code string, status int) *tea.SDKError {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("error = %T %v, want *tea.SDKError %s", err, err, code)
	}
	if got := dara.StringValue(se.Code); got != code {
		t.Errorf("Code = %q, want %q (message %q)", got, code, dara.StringValue(se.Message))
	}
	if got := dara.IntValue(se.StatusCode); got != status {
		t.Errorf("StatusCode = %d, want %d for %s", got, status, code)
	}
	return se
}

// signedV3 builds a request signed by the SDK's own V3 signing function, for
// cases the SDK's client cannot produce.
func signedV3(t *testing.T, s *Server, ak, secret string, query url.Values, headers map[string]string, body []byte) *http.Request {
	t.Helper()
	sum := sha256.Sum256(body)
	hashed := hex.EncodeToString(sum[:])
	h := map[string]*string{
		"host":                  dara.String(s.Addr()),
		"x-acs-version":         dara.String(APIVersion),
		"x-acs-date":            dara.String(time.Now().UTC().Format(timeFormat)),
		"x-acs-signature-nonce": dara.String(newRequestID()),
		"x-acs-content-sha256":  dara.String(hashed),
	}
	for k, v := range headers {
		h[k] = dara.String(v)
	}
	q := map[string]*string{}
	for k := range query {
		q[k] = dara.String(query.Get(k))
	}
	dr := &dara.Request{Method: dara.String("POST"), Pathname: dara.String("/"), Headers: h, Query: q}
	authz := openapiutil.GetAuthorization(dr, dara.String(v3Algorithm), dara.String(hashed), dara.String(ak), dara.String(secret))

	req, err := http.NewRequest(http.MethodPost, s.URL()+"/?"+query.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		if k != "host" {
			req.Header[k] = []string{*v}
		}
	}
	req.Header.Set("Authorization", dara.StringValue(authz))
	return req
}

func do(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}
