package vpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/vpcapi"
)

const (
	region  = "cn-hangzhou"
	account = "1210123456123456"
)

var (
	stsCred  = cred.Credential{AccessKeyID: "STS.testkey", AccessKeySecret: "sts-secret-value", SecurityToken: "sts-token-value"}
	longCred = cred.Credential{AccessKeyID: "LTAI5ttestkey", AccessKeySecret: "long-secret-value"}
)

func creds(c cred.Credential) scan.Credentials {
	return scan.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
}

func connID(i int) string { return fmt.Sprintf("vco-%04d", i) }

func authz(i int) vpcemu.Authorization {
	return vpcemu.Authorization{BindUid: 1500000000000000 + int64(i), BindProduct: "CEN", BindInstance: fmt.Sprintf("cen-%04d", i), CreationTime: 1658201810000 + int64(i)}
}

// inventory: 120 connections in cn-hangzhou, connection i with i%4
// authorizations, vco-big with 120, vco-denied refusing with Forbidden.RAM.
func inventory() *vpcemu.Inventory {
	inv := &vpcemu.Inventory{AccountID: account, Regions: map[string][]vpcemu.Connection{}}
	for i := range 120 {
		c := vpcemu.Connection{VpnConnectionId: connID(i)}
		for j := range i % 4 {
			c.Authorizations = append(c.Authorizations, authz(j))
		}
		inv.Regions[region] = append(inv.Regions[region], c)
	}
	big := vpcemu.Connection{VpnConnectionId: "vco-big"}
	for j := range 120 {
		big.Authorizations = append(big.Authorizations, authz(j))
	}
	inv.Regions["cn-shanghai"] = []vpcemu.Connection{
		big,
		{VpnConnectionId: "vco-denied", Error: &vpcemu.Fault{Code: "Forbidden.RAM"}},
		{VpnConnectionId: "vco-owner", Authorizations: []vpcemu.Authorization{{AliUid: 1999, BindUid: 7, BindProduct: "CEN", BindInstance: "cen-x", CreationTime: 1}}},
	}
	return inv
}

func startEmulator(t *testing.T) *vpcemu.Server {
	t.Helper()
	srv, err := vpcemu.New(vpcemu.Options{Inventory: inventory(), Credentials: []cred.Credential{stsCred, longCred}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func newSource(t *testing.T, opts vpcapi.Options, c cred.Credential, reg string) scan.Source {
	t.Helper()
	src, err := vpcapi.NewSourceFactory(opts)(creds(c), reg)
	if err != nil {
		t.Fatalf("source for %s: %v", reg, err)
	}
	return src
}

func TestListConnectionsPages(t *testing.T) {
	srv := startEmulator(t)
	src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: 5 * time.Second}, stsCred, region)
	var all []string
	for page, want := range []int{50, 50, 20, 0} {
		p, err := src.ListConnections(t.Context(), region, page+1, 50)
		if err != nil {
			t.Fatalf("page %d: %v", page+1, err)
		}
		if len(p.IDs) != want || p.TotalCount != 120 {
			t.Errorf("page %d: %d ids, total %d; want %d and 120", page+1, len(p.IDs), p.TotalCount, want)
		}
		all = append(all, p.IDs...)
	}
	for i, id := range all {
		if id != connID(i) {
			t.Fatalf("id %d = %s, want %s (listing order)", i, id, connID(i))
		}
	}
}

func TestListAuthorizations(t *testing.T) {
	srv := startEmulator(t)
	for _, c := range []cred.Credential{stsCred, longCred} {
		t.Run(c.AccessKeyID, func(t *testing.T) {
			src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL())}, c, "cn-shanghai")
			p, err := src.ListAuthorizations(t.Context(), "cn-shanghai", "vco-owner", 1, 50)
			if err != nil {
				t.Fatal(err)
			}
			want := policy.Authorization{VpnConnectionID: "vco-owner", AliUID: 1999, BindUID: 7, BindProduct: "CEN", BindInstance: "cen-x", CreationTime: 1}
			if p.TotalCount != 1 || len(p.Authorizations) != 1 || p.Authorizations[0] != want {
				t.Errorf("page = %+v, want one %+v", p, want)
			}
		})
	}

	src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL())}, stsCred, "cn-shanghai")
	seen := map[string]bool{}
	for page, want := range []int{50, 50, 20, 0} {
		p, err := src.ListAuthorizations(t.Context(), "cn-shanghai", "vco-big", page+1, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Authorizations) != want || p.TotalCount != 120 {
			t.Errorf("page %d: %d authorizations, total %d; want %d and 120", page+1, len(p.Authorizations), p.TotalCount, want)
		}
		for _, a := range p.Authorizations {
			if a.AliUID != 1210123456123456 || a.BindProduct != "CEN" || a.VpnConnectionID != "vco-big" {
				t.Errorf("authorization %+v: want the owner account and CEN", a)
			}
			seen[a.BindInstance] = true
		}
	}
	if len(seen) != 120 {
		t.Errorf("%d distinct authorizations over the pages, want 120", len(seen))
	}
}

func TestErrors(t *testing.T) {
	srv := startEmulator(t)
	opts := vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: 5 * time.Second}
	badSecret := longCred
	badSecret.AccessKeySecret = "wrong-secret-value"
	badToken := stsCred
	badToken.SecurityToken = "not-the-token"

	tests := []struct {
		name   string
		cred   cred.Credential
		conn   string
		fail   vpcemu.FaultKind
		code   string
		status int
		msg    string // the server's message, or for transport errors a part of the error
	}{
		{name: "not found", cred: stsCred, conn: "vco-nothere", code: "InvalidVpnConnectionInstanceId.NotFound", status: 404, msg: "The specified vpn connection instance id does not exist."},
		{name: "forbidden", cred: stsCred, conn: "vco-denied", code: "Forbidden.RAM", status: 403, msg: "User not authorized to operate on the specified resource, or this API doesn't support RAM."},
		{name: "bad signature", cred: badSecret, conn: "vco-big", code: "SignatureDoesNotMatch", status: 400},
		{name: "bad token", cred: badToken, conn: "vco-big", code: "InvalidSecurityToken.Malformed", status: 400},
		{name: "throttled", cred: stsCred, conn: "vco-big", fail: vpcemu.Throttled, code: "Throttling.User", status: 400, msg: "Request was denied due to user flow control."},
		{name: "unavailable", cred: stsCred, conn: "vco-big", fail: vpcemu.ServiceUnavailable, code: "ServiceUnavailable", status: 503, msg: "The request has failed due to a temporary failure of the server."},
		{name: "internal", cred: stsCred, conn: "vco-big", fail: vpcemu.InternalError, code: "InternalError", status: 500},
		{name: "reset", cred: stsCred, conn: "vco-big", fail: vpcemu.Reset, msg: "describe authorizations of vco-big in cn-shanghai: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail != 0 {
				srv.FailNext("DescribeVpnCrossAccountAuthorizations", "cn-shanghai", 1, tt.fail)
			}
			src := newSource(t, opts, tt.cred, "cn-shanghai")
			_, err := src.ListAuthorizations(t.Context(), "cn-shanghai", tt.conn, 1, 50)
			if err == nil {
				t.Fatal("no error")
			}
			for _, secret := range []string{tt.cred.AccessKeySecret, tt.cred.SecurityToken} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
			var ae *cloudapi.APIError
			if tt.code == "" {
				if errors.As(err, &ae) {
					t.Fatalf("got API error %v, want a transport error", err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("error %q does not contain %q", err, tt.msg)
				}
				return
			}
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not a *cloudapi.APIError", err, err)
			}
			if ae.Code != tt.code || ae.HTTPStatus != tt.status || ae.RequestID == "" {
				t.Errorf("API error %+v, want code %s status %d and a request id", ae, tt.code, tt.status)
			}
			if tt.msg != "" && ae.Message != tt.msg {
				t.Errorf("message %q, want %q", ae.Message, tt.msg)
			}
			if strings.HasPrefix(ae.Message, "code:") || strings.Contains(ae.Message, "request id:") {
				t.Errorf("message %q keeps the SDK's decoration", ae.Message)
			}
		})
	}
	if c := srv.Stats().Action("DescribeVpnCrossAccountAuthorizations"); c.Calls != len(tests) {
		t.Errorf("emulator saw %d calls for %d requests: the SDK retried", c.Calls, len(tests))
	}
}

func TestInvalidRegionRefusedBeforeAnyCall(t *testing.T) {
	srv := startEmulator(t)
	factory := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL())})
	for _, r := range []string{"", "CN-HANGZHOU", "cn-hangzhou.evil.example.com", "evil.example.com/x", "cn-hangzhou:80", "127.0.0.1"} {
		if _, err := factory(creds(stsCred), r); err == nil {
			t.Errorf("region %q accepted", r)
		}
	}
	src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL())}, stsCred, region)
	if _, err := src.ListConnections(t.Context(), "cn-beijing", 1, 50); err == nil {
		t.Error("a cn-hangzhou source answered for cn-beijing")
	}
	if n := srv.Stats().Total().Calls; n != 0 {
		t.Errorf("emulator saw %d calls, want 0", n)
	}
}

func TestProxyIgnoredForLoopback(t *testing.T) {
	srv := startEmulator(t)
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: 5 * time.Second}, stsCred, region)
	if _, err := src.ListConnections(t.Context(), region, 1, 10); err != nil {
		t.Fatalf("call through HTTP_PROXY: %v", err)
	}
}

// recorder answers nothing: it records where the SDK would send a request.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return nil, errors.New("recorded")
}

func TestRegionalEndpoint(t *testing.T) {
	rec := &recorder{}
	opts := vpcapi.Options{HTTPClient: &http.Client{Transport: rec}}
	for _, r := range []string{"cn-hangzhou", "ap-southeast-1", "eu-central-1"} {
		src := newSource(t, opts, stsCred, r)
		if _, err := src.ListConnections(t.Context(), r, 1, 50); err == nil || !strings.Contains(err.Error(), "recorded") {
			t.Fatalf("%s: error %v, want the recorder's", r, err)
		}
	}
	if len(rec.reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(rec.reqs))
	}
	for _, req := range rec.reqs {
		if req.URL.Scheme != "https" || !strings.HasSuffix(req.URL.Host, ".aliyuncs.com") || !strings.HasPrefix(req.URL.Host, "vpc") {
			t.Errorf("request to %s://%s, want the SDK's regional HTTPS endpoint", req.URL.Scheme, req.URL.Host)
		}
	}
}

func TestHTTPSEndpoint(t *testing.T) {
	emu := startEmulator(t)
	var mu sync.Mutex
	var headers []http.Header
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)

	src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(ts.URL), HTTPClient: ts.Client()}, stsCred, "cn-shanghai")
	p, err := src.ListAuthorizations(t.Context(), "cn-shanghai", "vco-big", 3, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Authorizations) != 20 {
		t.Errorf("%d authorizations on page 3, want 20", len(p.Authorizations))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range headers {
		if h.Get("X-Acs-Action") != "DescribeVpnCrossAccountAuthorizations" || h.Get("X-Acs-Security-Token") != stsCred.SecurityToken {
			t.Errorf("headers %v: want a V3-signed STS call", h)
		}
	}
}

// holdCalls makes srv hold every call until the client goes away, and
// tells of each arrival: cancellation tests wait on arrivals, not on time.
func holdCalls(srv *vpcemu.Server) <-chan string {
	arrived := make(chan string, 16)
	srv.SetLatencyFunc(func(action, _ string) time.Duration {
		arrived <- action
		return time.Hour
	})
	return arrived
}

func TestCancellation(t *testing.T) {
	t.Run("cancelled", func(t *testing.T) {
		srv := startEmulator(t)
		arrived := holdCalls(srv)
		src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: time.Hour}, stsCred, region)
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-arrived; cancel() }()
		_, err := src.ListAuthorizations(ctx, region, connID(3), 1, 50)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("per-call timeout", func(t *testing.T) {
		srv := startEmulator(t)
		holdCalls(srv)
		src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: 100 * time.Millisecond}, stsCred, region)
		_, err := src.ListConnections(t.Context(), region, 1, 50)
		if err == nil || cloudapi.Classify(err) != cloudapi.Transient {
			t.Fatalf("error %v from a call slower than CallTimeout, want a transient one", err)
		}
	})
	t.Run("concurrent calls keep their own contexts", func(t *testing.T) {
		srv := startEmulator(t)
		arrivals := make(chan string, 2)
		release := make(chan struct{})
		srv.SetLatencyFunc(func(action, _ string) time.Duration {
			arrivals <- action
			<-release
			return 0
		})
		src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: time.Hour}, stsCred, region)
		ctx, cancel := context.WithCancel(t.Context())
		cancelled, other := make(chan error, 1), make(chan error, 1)
		go func() { _, err := src.ListAuthorizations(ctx, region, connID(1), 1, 50); cancelled <- err }()
		go func() { _, err := src.ListAuthorizations(t.Context(), region, connID(2), 1, 50); other <- err }()
		<-arrivals
		<-arrivals // both calls are in the server
		cancel()
		// The cancelled call returns while the server still holds both.
		cancelledErr := <-cancelled
		close(release)
		if okErr := <-other; !errors.Is(cancelledErr, context.Canceled) || okErr != nil {
			t.Errorf("cancelled call: %v; other call: %v", cancelledErr, okErr)
		}
	})
}

// Each region may have its own endpoint: REGION=endpoint pairs, and one for
// the others.
func TestEndpointPerRegion(t *testing.T) {
	hangzhou, others := startEmulator(t), startEmulator(t)
	ep := endpoint.MustParseRegional("cn-hangzhou=" + hangzhou.URL() + " " + others.URL())
	factory := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: ep})
	for _, r := range []string{"cn-hangzhou", "cn-shanghai"} {
		src, err := factory(creds(stsCred), r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.ListConnections(t.Context(), r, 1, 50); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	if h, o := hangzhou.Stats().Total().Calls, others.Stats().Total().Calls; h != 1 || o != 1 {
		t.Errorf("calls: %d to the cn-hangzhou endpoint, %d to the other; want 1 and 1", h, o)
	}
}
