package vpcapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
	"vpnauthz/internal/vpcapi"
)

// fixtureServer answers every call with one status and body, as the real API
// would, and counts the calls.
func fixtureServer(t *testing.T, status int, body []byte) (vpcapi.Options, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(ts.Close)
	return vpcapi.Options{Endpoint: endpoint.MustParseRegional(ts.URL), CallTimeout: 5 * time.Second}, &calls
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The answers of the API reference, decoded through the SDK's own models.
func TestPublishedShapes(t *testing.T) {
	t.Run("DescribeVpnConnections", func(t *testing.T) {
		opts, calls := fixtureServer(t, 200, fixture(t, "DescribeVpnConnections.json"))
		p, err := newSource(t, opts, stsCred, region).ListConnections(t.Context(), region, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"vco-bp1bbi27hojx80nck****", "vco-bp1cvsr8fs8nsqxa8****"}
		if strings.Join(p.IDs, " ") != strings.Join(want, " ") || p.TotalCount != 2 || calls.Load() != 1 {
			t.Errorf("page %+v after %d calls, want %v of 2", p, calls.Load(), want)
		}
	})
	want := []policy.Authorization{
		{VpnConnectionID: "vco-p0w2jpkhi2eeop6q6****", AliUID: 1210123456123456, BindUID: 1250123456123456, BindProduct: "CEN", BindInstance: "cen-p0w2jpkhi2eeop6q6****", CreationTime: 1658201810000},
		{VpnConnectionID: "vco-p0w2jpkhi2eeop6q6****", AliUID: 1210123456123456, BindUID: 1350123456123456, BindProduct: "CEN", BindInstance: "cen-x9k3jpkhi2eeop6q6****", CreationTime: 1658201820000},
	}
	for _, name := range []string{
		"DescribeVpnCrossAccountAuthorizations.json",         // the list bare, as the reference shows it
		"DescribeVpnCrossAccountAuthorizations-wrapped.json", // wrapped, as an older SDK reads it
	} {
		t.Run(name, func(t *testing.T) {
			opts, calls := fixtureServer(t, 200, fixture(t, name))
			p, err := newSource(t, opts, stsCred, region).ListAuthorizations(t.Context(), region, "vco-p0w2jpkhi2eeop6q6****", 1, 10)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalCount != 2 || len(p.Authorizations) != 2 || p.Authorizations[0] != want[0] || p.Authorizations[1] != want[1] || calls.Load() != 1 {
				t.Errorf("page %+v after %d calls, want %+v", p, calls.Load(), want)
			}
		})
	}
	t.Run("error body", func(t *testing.T) {
		opts, calls := fixtureServer(t, 403, fixture(t, "error-Forbidden.RAM.json"))
		_, err := newSource(t, opts, stsCred, region).ListAuthorizations(t.Context(), region, "vco-x", 1, 10)
		var ae *cloudapi.APIError
		if !errors.As(err, &ae) || ae.Code != "Forbidden.RAM" || ae.HTTPStatus != 403 ||
			ae.RequestID != "7E2D8A1F-3C5B-4E6A-9F0D-1B2C3D4E5F60" ||
			ae.Message != "User not authorized to operate on the specified resource, or this API doesn't support RAM." {
			t.Fatalf("error %v, want the body's code, message and request id", err)
		}
		if cloudapi.Classify(err) != cloudapi.Final || calls.Load() != 1 {
			t.Errorf("class %v after %d calls, want final after 1", cloudapi.Classify(err), calls.Load())
		}
	})
}

// Answers that cannot be read are final, named as such, and never decoded
// by guesswork; a gateway's 5xx page is an answer to retry.
func TestUndecodableAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		class  cloudapi.Class
		text   string
	}{
		{"not JSON", 200, "<html>hello</html>", cloudapi.Final, "the answer (HTTP 200) could not be decoded"},
		{"list of the wrong type", 200, `{"TotalCount":1,"CrossAccountAuthorizations":"none"}`, cloudapi.Final, "the answer (HTTP 200) could not be decoded"},
		{"wrapper of the wrong type", 200, `{"TotalCount":1,"CrossAccountAuthorizations":{"CrossAccountAuthorization":7}}`, cloudapi.Final, "could not be decoded"},
		{"gateway page", 502, "<html>Bad Gateway</html>", cloudapi.Transient, "HTTP 502: an answer that could not be decoded"},
		{"unavailable page", 503, "<html>Service Unavailable</html>", cloudapi.Throttled, "HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, _ := fixtureServer(t, tt.status, []byte(tt.body))
			_, err := newSource(t, opts, stsCred, region).ListAuthorizations(t.Context(), region, "vco-x", 1, 10)
			if err == nil || cloudapi.Classify(err) != tt.class || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v (%v), want %v naming %q", err, cloudapi.Classify(err), tt.class, tt.text)
			}
		})
	}
}

// scanOne scans one connection of the emulator with fast retries and
// returns the report and the emulator's calls of the authorizations action.
func scanOne(t *testing.T, srv *vpcemu.Server, c scan.Credentials, id string) (scan.Report, int) {
	t.Helper()
	s := scan.New(scan.Options{
		NewSource: vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: 5 * time.Second}),
		Rate:      1000,
		Retry:     retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
	})
	before := srv.Stats().Action("DescribeVpnCrossAccountAuthorizations").Calls
	rep, err := s.Run(t.Context(), scan.Request{
		ScanID: "s", Trigger: finding.TriggerCLI, Credentials: c, AccountID: account, CollectFindings: true,
		Targets: []target.Target{{Region: "cn-shanghai", ConnectionID: id}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep, srv.Stats().Action("DescribeVpnCrossAccountAuthorizations").Calls - before
}

// What a real cloud says: every throttling answer of PRODUCT.md is retried
// (and counted as throttling), every final answer is not.
func TestWhatARealCloudSays(t *testing.T) {
	srv := startEmulator(t)
	const action = "DescribeVpnCrossAccountAuthorizations"
	retried := []struct {
		name      string
		answer    vpcemu.Answer
		throttled bool
	}{
		{"Throttling", vpcemu.Answer{Code: "Throttling"}, true},
		{"Throttling.Api", vpcemu.Answer{Code: "Throttling.Api"}, true},
		{"Throttling.User", vpcemu.Answer{Code: "Throttling.User"}, true},
		{"Rejected.Throttling", vpcemu.Answer{Code: "Rejected.Throttling", Message: "Request was rejected due to flow control."}, true},
		{"HTTP 429", vpcemu.Answer{Status: 429, Code: "TooManyRequests", Message: "Too many requests."}, true},
		{"ServiceUnavailable", vpcemu.Answer{Code: "ServiceUnavailable"}, true},
		{"InternalError", vpcemu.Answer{Code: "InternalError"}, false},
	}
	for _, tt := range retried {
		t.Run("retried/"+tt.name, func(t *testing.T) {
			srv.AnswerNext(action, "cn-shanghai", 2, tt.answer)
			rep, calls := scanOne(t, srv, creds(stsCred), "vco-owner")
			wantThrottled := 0
			if tt.throttled {
				wantThrottled = 2
			}
			if calls != 3 || rep.Summary.APIRetries != 2 || rep.Summary.Throttled != wantThrottled || rep.Summary.Error != 0 {
				t.Errorf("%d calls, summary %+v: want 3 calls, 2 retries, %d throttled, no ERROR", calls, rep.Summary, wantThrottled)
			}
		})
	}
	badSecret := longCred
	badSecret.AccessKeySecret = "wrong-secret-value"
	final := []struct {
		name   string
		answer *vpcemu.Answer
		cred   scan.Credentials
		detail string
	}{
		{"signature", nil, creds(badSecret), "SignatureDoesNotMatch (HTTP 400)"},
		{"Forbidden.RAM", &vpcemu.Answer{Code: "Forbidden.RAM"}, creds(stsCred), "Forbidden.RAM (HTTP 403)"},
		{"undecodable body", &vpcemu.Answer{Body: `{"TotalCount":1,"CrossAccountAuthorizations":`}, creds(stsCred), "could not be decoded"},
	}
	for _, tt := range final {
		t.Run("final/"+tt.name, func(t *testing.T) {
			if tt.answer != nil {
				srv.AnswerNext(action, "cn-shanghai", 1, *tt.answer)
			}
			rep, calls := scanOne(t, srv, tt.cred, "vco-owner")
			if calls != 1 || rep.Summary.APIRetries != 0 || rep.Summary.Error != 1 || len(rep.Findings) != 1 ||
				!strings.Contains(rep.Findings[0].StatusDetail, tt.detail) {
				t.Errorf("%d calls, summary %+v, findings %+v: want 1 call and one ERROR naming %q", calls, rep.Summary, rep.Findings, tt.detail)
			}
		})
	}
	t.Run("final/bad region", func(t *testing.T) {
		before := srv.Stats().Total().Calls
		_, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL())})(creds(stsCred), "cn-hangzhou.evil.example.com")
		var le *cloudapi.LocalError
		if !errors.As(err, &le) || cloudapi.Classify(err) != cloudapi.Final || srv.Stats().Total().Calls != before {
			t.Errorf("error %v: want a final local error and no call", err)
		}
		src := newSource(t, vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL())}, stsCred, region)
		_, err = src.ListConnections(t.Context(), "cn-beijing", 1, 50)
		if cloudapi.Classify(err) != cloudapi.Final || srv.Stats().Total().Calls != before {
			t.Errorf("a %s source asked about cn-beijing: %v; want a final local error and no call", region, err)
		}
	})
}
