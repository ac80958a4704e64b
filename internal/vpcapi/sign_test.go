package vpcapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/scan"
)

var errRecorded = errors.New("recorded")

// sdkRecorder is the SDK's HttpClient: it keeps the request the SDK sends.
type sdkRecorder struct{ req *http.Request }

func (r *sdkRecorder) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	r.req = req
	return nil, errRecorded
}

// sdkRequest is the request the SDK's generic client sends for the call,
// through CallApi as the VPC client's DescribeVpnCrossAccountAuthorizations
// calls it.
func sdkRequest(t *testing.T, creds scan.Credentials, region string, ep endpoint.Endpoint, action string, q *rpcQuery) *http.Request {
	t.Helper()
	cfg := &openapiutil.Config{
		AccessKeyId:     dara.String(creds.AccessKeyID),
		AccessKeySecret: dara.String(creds.AccessKeySecret),
		RegionId:        dara.String(region),
		Protocol:        dara.String("https"),
	}
	if creds.SecurityToken != "" {
		cfg.SecurityToken = dara.String(creds.SecurityToken)
	}
	if !ep.IsZero() {
		cfg.Endpoint = dara.String(ep.HostPort())
		cfg.Protocol = dara.String(ep.Scheme)
	}
	c, err := vpc.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sdkRecorder{}
	c.HttpClient = rec
	query := map[string]*string{
		"RegionId":   dara.String(q.region),
		"PageNumber": dara.String(itoa(q.pageNumber)),
		"PageSize":   dara.String(itoa(q.pageSize)),
	}
	if q.connection != "" {
		query["VpnConnectionId"] = dara.String(q.connection)
	}
	params := &openapiutil.Params{
		Action: dara.String(action), Version: dara.String("2016-04-28"), Protocol: dara.String("HTTPS"),
		Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"),
		Style: dara.String("RPC"), ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
	}
	if _, err := c.CallApi(params, &openapiutil.OpenApiRequest{Query: query}, &dara.RuntimeOptions{}); rec.req == nil {
		t.Fatalf("the SDK sent nothing: %v", err)
	}
	return rec.req
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestRequestIsTheSDKs: the request a Source sends has the URL, the header
// names and the header values of the SDK's, but for the date, the nonce and
// the signature that depends on them; and its signature is what
// openapiutil.GetAuthorization computes for it.
func TestRequestIsTheSDKs(t *testing.T) {
	cases := []struct {
		name  string
		creds scan.Credentials
		ep    string
		q     rpcQuery
	}{
		{"sts, emulator", scan.Credentials{AccessKeyID: "STS.k", AccessKeySecret: "s3cret", SecurityToken: "tok en/+=*~"}, "http://127.0.0.1:8080", rpcQuery{"cn-hangzhou", 2, 50, "vco-1 2*~"}},
		{"long-term, regional", scan.Credentials{AccessKeyID: "LTAIk", AccessKeySecret: "s3cret"}, "", rpcQuery{"eu-central-1", 1, 50, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ep endpoint.Endpoint
			var err error
			if tc.ep != "" {
				ep, err = endpoint.MustParseRegional(tc.ep).For(tc.q.region)
				if err != nil {
					t.Fatal(err)
				}
			}
			s, err := newSigner(tc.creds, tc.q.region, ep, 1000)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := s.newRequest(t.Context(), describeAuthorizations.Action, &tc.q)
			if err != nil {
				t.Fatal(err)
			}
			sdk := sdkRequest(t, tc.creds, tc.q.region, ep, describeAuthorizations.Action, &tc.q)

			if ours.Method != sdk.Method || ours.URL.String() != sdk.URL.String() || ours.Host != sdk.Host || ours.Body != nil {
				t.Errorf("request %s %s (host %s), the SDK's %s %s (host %s)", ours.Method, ours.URL, ours.Host, sdk.Method, sdk.URL, sdk.Host)
			}
			names := func(h http.Header) []string {
				var n []string
				for k := range h {
					if k != "Host" {
						n = append(n, k)
					}
				}
				sort.Strings(n)
				return n
			}
			if got, want := names(ours.Header), names(sdk.Header); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("headers %v, the SDK's %v", got, want)
			}
			for k, v := range sdk.Header {
				switch k {
				case "Host", "x-acs-date", "x-acs-signature-nonce", "Authorization":
					continue
				}
				if got := ours.Header[k]; strings.Join(got, "\x00") != strings.Join(v, "\x00") {
					t.Errorf("header %s: %q, the SDK's %q", k, got, v)
				}
			}
			//lint:ignore SA1008 the SDK writes its x-acs-* header keys in lower case, uncanonicalised
			n, sdkNonce := ours.Header["x-acs-signature-nonce"][0], sdk.Header["x-acs-signature-nonce"][0]
			if len(n) != len(sdkNonce) {
				t.Errorf("nonce %q, the SDK's %q", n, sdkNonce)
			}
			//lint:ignore SA1008 the SDK writes its x-acs-* header keys in lower case, uncanonicalised
			if d := ours.Header["x-acs-date"][0]; len(d) != len("2006-01-02T15:04:05Z") || !strings.HasSuffix(d, "Z") {
				t.Errorf("date %q", d)
			}
			// The SDK's signature of our request.
			dr := dara.NewRequest()
			dr.Method = dara.String("POST")
			dr.Pathname = dara.String("/")
			dr.Query = map[string]*string{}
			for k, v := range ours.URL.Query() {
				dr.Query[k] = dara.String(v[0])
			}
			dr.Headers = map[string]*string{"host": dara.String(ours.Host)}
			for k, v := range ours.Header {
				dr.Headers[strings.ToLower(k)] = dara.String(v[0])
			}
			delete(dr.Headers, "authorization")
			want := openapiutil.GetAuthorization(dr, dara.String(signatureAlgorithm), dara.String(emptyPayloadHash),
				dara.String(tc.creds.AccessKeyID), dara.String(tc.creds.AccessKeySecret))
			if got := ours.Header["Authorization"][0]; got != dara.StringValue(want) {
				t.Errorf("Authorization\n%s\nopenapiutil's\n%s", got, dara.StringValue(want))
			}
		})
	}
}

func TestNoncesUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		n := string(appendNonce(nil))
		if seen[n] || len(n) != 32 {
			t.Fatalf("nonce %q repeated or not 32 digits", n)
		}
		seen[n] = true
	}
}

// TestErrorAnswers: error answers the emulated VPC does not give, read as
// the SDK reads them: an XML error (Log Service style content type), a
// 503 that is not JSON (a proxy's page: retried, without a code), a 4xx
// that is not JSON (a decode error, final), an empty 404.
func TestErrorAnswers(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		check                   func(t *testing.T, err error)
	}{
		{"xml", "text/xml;charset=utf-8", `<?xml version="1.0"?><Error><Code>Throttling.User</Code><Message>Slow down.</Message><RequestId>R9</RequestId></Error>`, 400,
			func(t *testing.T, err error) {
				var ae *cloudapi.APIError
				if !errors.As(err, &ae) || ae.Code != "Throttling.User" || ae.HTTPStatus != 400 || ae.RequestID != "R9" || ae.Message != "Slow down." {
					t.Errorf("error %v (%+v), want the XML answer's code, message and request id", err, ae)
				}
			}},
		{"html 503", "text/html", "<html>busy</html>", 503,
			func(t *testing.T, err error) {
				var ae *cloudapi.APIError
				if !errors.As(err, &ae) || ae.Code != "" || ae.HTTPStatus != 503 {
					t.Errorf("error %v, want an APIError of status 503 without a code", err)
				}
			}},
		{"html 400", "text/html", "<html>bad</html>", 400,
			func(t *testing.T, err error) {
				var de *cloudapi.DecodeError
				if !errors.As(err, &de) || de.HTTPStatus != 400 {
					t.Errorf("error %v, want a DecodeError of status 400", err)
				}
			}},
		{"empty 404", "application/json", "", 404,
			func(t *testing.T, err error) {
				var ae *cloudapi.APIError
				if !errors.As(err, &ae) || ae.HTTPStatus != 404 {
					t.Errorf("error %v, want an APIError of status 404", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(ts.Close)
			src, err := NewSourceFactory(Options{Endpoint: endpoint.MustParseRegional(ts.URL)})(scan.Credentials{AccessKeyID: "k", AccessKeySecret: "s"}, "cn-hangzhou")
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.ListAuthorizations(t.Context(), "cn-hangzhou", "vco-1", 1, 50)
			if err == nil {
				t.Fatal("no error")
			}
			tt.check(t, err)
		})
	}
}
