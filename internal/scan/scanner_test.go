package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/target"
)

const region = "cn-hangzhou"

var testCreds = Credentials{AccessKeyID: "LTAI5tTestKey", AccessKeySecret: "s3cr3t-value", SecurityToken: "sts-token-value"}

// testPolicy trusts the owner only: every authorization (to a CEN) fails
// untrusted-account and passes unexpected-product.
var testPolicy = policy.Policy{}

func tg(s string) target.Target {
	r, id, _ := strings.Cut(s, ":")
	return target.Target{Region: r, ConnectionID: id}
}

func connID(i int) string { return fmt.Sprintf("vco-%04d", i) }

func newTestScanner(t *testing.T, src SourceFactory, mod func(*Options)) *Scanner {
	t.Helper()
	opts := Options{
		Policy:      testPolicy,
		NewSource:   src,
		Rate:        1000,
		Concurrency: 8,
		CallTimeout: 2 * time.Second,
		Retry:       retry.Policy{MaxAttempts: 6, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond},
	}
	if mod != nil {
		mod(&opts)
	}
	return New(opts)
}

func runScan(t *testing.T, s *Scanner, ctx context.Context, targets ...string) (Report, *MemSink) {
	t.Helper()
	req := Request{ScanID: "scan-1", Trigger: finding.TriggerCLI, Credentials: testCreds, AccountID: "1000"}
	for _, x := range targets {
		req.Targets = append(req.Targets, tg(x))
	}
	sink := &MemSink{}
	rep, err := s.Run(ctx, req, sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sink.Overlap() {
		t.Error("the sink's Write was called from two goroutines at once")
	}
	return rep, sink
}

// wantFindings is what the test policy gives a connection with n authorizations:
// two rules always enabled, one PASS each for no authorization.
func wantFindings(n int) int { return 2 * max(n, 1) }

func minCalls(n, pageSize int) int { return max(1, (n+pageSize-1)/pageSize) }

func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func errorFindings(fs []finding.Finding) []finding.Finding {
	var out []finding.Finding
	for _, f := range fs {
		if f.Status == finding.StatusError {
			out = append(out, f)
		}
	}
	return out
}

func TestPaging(t *testing.T) {
	for _, n := range []int{0, 1, 49, 50, 51, 100, 120} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			noLeaks(t)
			src := newFakeSource()
			src.addConnection(region, "vco-abcd", n)
			rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")

			if got, want := src.azCallsOf("vco-abcd"), minCalls(n, 50); got != want {
				t.Errorf("ListAuthorizations calls = %d, want %d", got, want)
			}
			if got := len(sink.Findings()); got != wantFindings(n) {
				t.Errorf("findings = %d, want %d", got, wantFindings(n))
			}
			if rep.Summary.Authorizations != n || rep.Summary.Connections != 1 {
				t.Errorf("summary authorizations=%d connections=%d, want %d and 1", rep.Summary.Authorizations, rep.Summary.Connections, n)
			}
			if rep.Summary.APICalls != minCalls(n, 50) || rep.Summary.APIRetries != 0 {
				t.Errorf("api_calls=%d api_retries=%d, want %d and 0", rep.Summary.APICalls, rep.Summary.APIRetries, minCalls(n, 50))
			}
			if !rep.Complete || rep.Summary.Error != 0 {
				t.Errorf("complete=%v errors=%d, want a complete scan without errors", rep.Complete, rep.Summary.Error)
			}
		})
	}
}

func TestPagingPageSizeOption(t *testing.T) {
	src := newFakeSource()
	src.addConnection(region, "vco-abcd", 25)
	s := newTestScanner(t, src.factory(), func(o *Options) { o.PageSize = 10 })
	rep, _ := runScan(t, s, t.Context(), region+":vco-abcd")
	if got := src.azCallsOf("vco-abcd"); got != 3 {
		t.Errorf("calls with page size 10 for 25 authorizations = %d, want 3", got)
	}
	if rep.Summary.Authorizations != 25 {
		t.Errorf("authorizations = %d, want 25", rep.Summary.Authorizations)
	}
}

func TestShortPages(t *testing.T) {
	// A server that serves 20 per page though 50 were asked for: the scan
	// keeps reading until it has TotalCount.
	src := newFakeSource()
	src.maxPage = 20
	src.addConnection(region, "vco-abcd", 45)
	rep, _ := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
	if rep.Summary.Authorizations != 45 {
		t.Errorf("authorizations = %d, want 45", rep.Summary.Authorizations)
	}
	if got := src.azCallsOf("vco-abcd"); got != 3 {
		t.Errorf("calls = %d, want 3", got)
	}
}

func TestServerPagesSmallerThanAsked(t *testing.T) {
	// Ten per page though 50 were asked for: all 100 are read, in the ten
	// calls the server's pages need.
	src := newFakeSource()
	src.maxPage = 10
	src.addConnection(region, "vco-abcd", 100)
	rep, _ := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
	if rep.Summary.Authorizations != 100 || rep.Summary.Error != 0 {
		t.Errorf("authorizations = %d, errors = %d; want 100 and 0", rep.Summary.Authorizations, rep.Summary.Error)
	}
	if got := src.azCallsOf("vco-abcd"); got != 10 {
		t.Errorf("calls = %d, want 10", got)
	}
}

func TestPagesThatNeverReachTotalCount(t *testing.T) {
	// A server that answers page 1 whatever is asked never delivers the
	// 100 it announces: an ERROR, not 50 authorizations judged as if all.
	src := newFakeSource()
	src.firstPageOnly["vco-abcd"] = true
	src.addConnection(region, "vco-abcd", 100)
	rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
	errs := errorFindings(sink.Findings())
	if rep.Summary.Error != 1 || len(errs) != 1 || !strings.Contains(errs[0].StatusDetail, "did not end where its TotalCount said") {
		t.Errorf("findings %+v, want one ERROR saying the list did not end", sink.Findings())
	}
	if got := src.azCallsOf("vco-abcd"); got > 4 {
		t.Errorf("calls = %d, want at most 4 (2 pages + 2 of slack)", got)
	}
}

func TestChangesDuringRead(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		change    func(f *fakeSource, id string)
		wantAuths int
		maxCalls  int
	}{
		// A change seen on page 2 (its TotalCount differs) restarts the read
		// from page 1, and the authorizations are those of the steady pass:
		// shifted items are neither missed nor judged twice.
		{"revoked between pages", 51, func(f *fakeSource, id string) { f.revokeFirst(id) }, 50, 3},
		{"granted at the end between pages", 51, func(f *fakeSource, id string) { f.grantLast(id, 999) }, 52, 4},
		{"granted at the front between pages", 51, func(f *fakeSource, id string) { f.grantFirst(id, 999) }, 52, 4},
		{"revoked down to one page", 60, func(f *fakeSource, id string) {
			for range 15 {
				f.revokeFirst(id)
			}
		}, 45, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.addConnection(region, "vco-abcd", tt.n)
			changed := false
			src.beforeAz = func(id string, page int) {
				if page == 2 && !changed {
					changed = true
					tt.change(src, id)
				}
			}
			rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
			if rep.Summary.Error != 0 {
				t.Fatalf("ERROR findings: %+v", errorFindings(sink.Findings()))
			}
			if rep.Summary.Authorizations != tt.wantAuths {
				t.Errorf("authorizations = %d, want %d", rep.Summary.Authorizations, tt.wantAuths)
			}
			if got := src.azCallsOf("vco-abcd"); got > tt.maxCalls {
				t.Errorf("calls = %d, want at most %d", got, tt.maxCalls)
			}
			// Every authorization is judged once: no duplicate finding uid.
			uids := map[string]bool{}
			for _, f := range sink.Findings() {
				if uids[f.FindingUID] {
					t.Errorf("duplicate finding %s", f.FindingUID)
				}
				uids[f.FindingUID] = true
			}
		})
	}
}

func TestMisbehavingTotalCount(t *testing.T) {
	t.Run("total above the data", func(t *testing.T) {
		src := newFakeSource()
		src.addConnection(region, "vco-abcd", 10)
		src.fixedTotal["vco-abcd"] = 500
		rep, _ := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
		// Page 2 comes back empty: the read ends there.
		if got := src.azCallsOf("vco-abcd"); got != 2 {
			t.Errorf("calls = %d, want 2", got)
		}
		if rep.Summary.Authorizations != 10 {
			t.Errorf("authorizations = %d, want 10", rep.Summary.Authorizations)
		}
	})
	t.Run("endless growth", func(t *testing.T) {
		src := newFakeSource()
		src.endless["vco-abcd"] = true
		rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
		// TotalCount grows with every page: no pass holds still, and after
		// three the connection is an ERROR rather than a guess.
		if got := src.azCallsOf("vco-abcd"); got != 3*2 {
			t.Errorf("calls = %d, want 6 (three passes abandoned at page 2)", got)
		}
		errs := errorFindings(sink.Findings())
		if rep.Summary.Error != 1 || len(errs) != 1 || !strings.Contains(errs[0].StatusDetail, "changed while it was read") {
			t.Errorf("error findings = %+v, want one saying the list kept changing", errs)
		}
	})
}

func TestWildcardDiscovery(t *testing.T) {
	noLeaks(t)
	src := newFakeSource()
	for i := range 120 {
		src.addConnection(region, connID(i), i%3)
	}
	src.addConnection("cn-shanghai", "vco-sh01", 1)
	// vco-0007 is both listed and named; vco-0500 is named only (and does
	// not exist in the listing, but is read anyway).
	src.auths["vco-0500"] = nil
	rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(),
		region+":*", region+":vco-0007", region+":vco-0500", region+":vco-0007", "cn-shanghai:vco-sh01")

	if got := src.listCallsOf(region); got != 3 {
		t.Errorf("ListConnections calls = %d, want 3", got)
	}
	if got := src.listCallsOf("cn-shanghai"); got != 0 {
		t.Errorf("ListConnections calls in cn-shanghai = %d, want 0 (no wildcard there)", got)
	}
	for i := range 120 {
		if got := src.azCallsOf(connID(i)); got != 1 {
			t.Fatalf("%s read %d times, want once", connID(i), got)
		}
	}
	if got := src.azCallsOf("vco-0500"); got != 1 {
		t.Errorf("vco-0500 read %d times, want once", got)
	}
	if rep.Summary.Connections != 122 {
		t.Errorf("connections = %d, want 122", rep.Summary.Connections)
	}
	byConn := ByConnection(sink.Findings())
	if len(byConn) != 122 {
		t.Errorf("connections with findings = %d, want 122", len(byConn))
	}
	for i := range 120 {
		if got := len(byConn[region+"/"+connID(i)]); got != wantFindings(i%3) {
			t.Errorf("%s: %d findings, want %d", connID(i), got, wantFindings(i%3))
		}
	}
	wantCalls := 3 + 120 + 1 + 1
	if rep.Summary.APICalls != wantCalls {
		t.Errorf("api_calls = %d, want %d", rep.Summary.APICalls, wantCalls)
	}
}

func TestRetries(t *testing.T) {
	e503 := &cloudapi.APIError{Code: "ServiceUnavailable", HTTPStatus: 503, Message: "The request has failed due to a temporary failure of the server."}
	throttle := &cloudapi.APIError{Code: "Throttling.User", HTTPStatus: 400, Message: "Request was denied due to user flow control."}
	forbidden := &cloudapi.APIError{Code: "Forbidden.RAM", HTTPStatus: 403, Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM.", RequestID: "R1"}
	notFound := &cloudapi.APIError{Code: "InvalidVpnConnectionInstanceId.NotFound", HTTPStatus: 404, Message: "The specified vpn connection instance id does not exist."}
	badSig := &cloudapi.APIError{Code: "SignatureDoesNotMatch", HTTPStatus: 400, Message: "Specified signature is not matched with our calculation."}
	e500 := &cloudapi.APIError{Code: "InternalError", HTTPStatus: 500, Message: "The request processing has failed due to some unknown error."}
	undecodable := fmt.Errorf("describe authorizations: %w", &cloudapi.DecodeError{HTTPStatus: 200, Err: errors.New("expect [ but found {")})
	local := cloudapi.Localf("source of region cn-hangzhou asked about region %q", "x")
	reset := fmt.Errorf("describe authorizations: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	repeat := func(e error, n int) []error { return slices.Repeat([]error{e}, n) }
	six := func(e error) []error { return repeat(e, 6) }

	tests := []struct {
		name          string
		errs          []error
		wantCalls     int
		wantRetries   int
		wantThrottled int
		wantError     string // "" : the connection is judged; else in the ERROR detail
	}{
		{"503 then success", []error{e503, e503}, 3, 2, 2, ""},
		{"throttled then success", []error{throttle}, 2, 1, 1, ""},
		{"reset then success", []error{reset}, 2, 1, 0, ""},
		{"EOF then success", []error{io.EOF, io.ErrUnexpectedEOF}, 3, 2, 0, ""},
		{"503 exhausted", repeat(e503, 24), 24, 23, 24, "DescribeVpnCrossAccountAuthorizations failed: ServiceUnavailable (HTTP 503): The request has failed due to a temporary failure of the server. (gave up after 24 attempts)."},
		{"500 exhausted", six(e500), 6, 5, 0, "DescribeVpnCrossAccountAuthorizations failed: InternalError (HTTP 500): The request processing has failed due to some unknown error. (gave up after 6 attempts)."},
		{"undecodable answer not retried", []error{undecodable}, 1, 0, 0, "the answer (HTTP 200) could not be decoded"},
		{"local error not retried", []error{local}, 1, 0, 0, "DescribeVpnCrossAccountAuthorizations failed: source of region cn-hangzhou asked about region \"x\"."},
		{"throttled for five attempts", six(throttle)[:5], 6, 5, 5, ""},
		{"throttled exhausted", repeat(throttle, 24), 24, 23, 24, "Throttling.User (HTTP 400): Request was denied due to user flow control. (gave up after 24 attempts)"},
		{"reset exhausted", six(reset), 6, 5, 0, "connection reset by peer"},
		{"forbidden not retried", []error{forbidden}, 1, 0, 0, "DescribeVpnCrossAccountAuthorizations failed: Forbidden.RAM (HTTP 403): User not authorized to operate on the specified resource, or this API doesn't support RAM. (request id R1)."},
		{"not found not retried", []error{notFound}, 1, 0, 0, deletedMark},
		{"bad signature not retried", []error{badSig}, 1, 0, 0, "SignatureDoesNotMatch (HTTP 400)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeaks(t)
			src := newFakeSource()
			src.addConnection(region, "vco-abcd", 2)
			src.failWith("vco-abcd", tt.errs...)
			rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":vco-abcd")
			s := rep.Summary
			if s.APICalls != tt.wantCalls || s.APIRetries != tt.wantRetries || s.Throttled != tt.wantThrottled {
				t.Errorf("api_calls=%d api_retries=%d throttled=%d, want %d %d %d",
					s.APICalls, s.APIRetries, s.Throttled, tt.wantCalls, tt.wantRetries, tt.wantThrottled)
			}
			fs := sink.Findings()
			if tt.wantError == deletedMark {
				// A connection that no longer exists holds no authorization:
				// one PASS per rule, saying so, not an ERROR.
				if s.Error != 0 || s.Pass != len(testPolicy.EnabledRules()) || len(fs) != s.Pass || s.Connections != 1 || !rep.Complete {
					t.Errorf("summary %+v complete=%v, want one PASS per rule of one connection", s, rep.Complete)
				}
				for _, f := range fs {
					if f.Status != finding.StatusPass || f.StatusDetail != "VPN connection vco-abcd no longer exists: nothing can attach it." ||
						f.BindUID != "" || f.BindInstance != "" || f.Remediation != "" || f.OwnerAccountID != "1000" {
						t.Errorf("finding of a deleted connection: %+v", f)
					}
				}
				return
			}
			if tt.wantError == "" {
				if s.Error != 0 || len(fs) != wantFindings(2) {
					t.Errorf("errors=%d findings=%d, want 0 and %d", s.Error, len(fs), wantFindings(2))
				}
				return
			}
			if len(fs) != 1 || fs[0].Status != finding.StatusError {
				t.Fatalf("findings = %+v, want one ERROR", fs)
			}
			f := fs[0]
			if !strings.Contains(f.StatusDetail, tt.wantError) {
				t.Errorf("detail %q does not contain %q", f.StatusDetail, tt.wantError)
			}
			if f.RuleID != finding.RuleReadAuthorizations || f.VpnConnectionID != "vco-abcd" || f.Region != region {
				t.Errorf("ERROR finding = %+v", f)
			}
			if f.ScanID != "scan-1" || f.Trigger != finding.TriggerCLI {
				t.Errorf("scan id %q trigger %q, want scan-1 and cli", f.ScanID, f.Trigger)
			}
			if s.Error != 1 || s.Connections != 1 || !rep.Complete {
				t.Errorf("summary %+v complete=%v, want one error of one connection, complete", s, rep.Complete)
			}
		})
	}
}

// deletedMark in TestRetries: the connection turns out deleted.
const deletedMark = "(deleted)"

func TestListingFailure(t *testing.T) {
	src := newFakeSource()
	src.addConnection(region, "vco-abcd", 1)
	src.failWith("list:"+region, &cloudapi.APIError{Code: "Forbidden.RAM", HTTPStatus: 403, Message: "User not authorized."})
	rep, sink := runScan(t, newTestScanner(t, src.factory(), nil), t.Context(), region+":*", region+":vco-abcd")
	byConn := ByConnection(sink.Findings())
	region := byConn[region+"/*"]
	if len(region) != 1 || region[0].Status != finding.StatusError ||
		!strings.Contains(region[0].StatusDetail, "DescribeVpnConnections failed: Forbidden.RAM (HTTP 403)") {
		t.Errorf("region findings = %+v, want one ERROR naming the listing failure", region)
	}
	if got := len(byConn["cn-hangzhou/vco-abcd"]); got != 2 {
		t.Errorf("explicit connection has %d findings, want 2 (read despite the listing failure)", got)
	}
	if rep.Summary.Error != 1 || rep.Summary.Connections != 1 {
		t.Errorf("summary %+v", rep.Summary)
	}
}

func TestSourceFactoryFailure(t *testing.T) {
	s := newTestScanner(t, func(Credentials, string) (Source, error) {
		return nil, errors.New("bad endpoint")
	}, nil)
	rep, sink := runScan(t, s, t.Context(), region+":*", region+":vco-abcd")
	if rep.Summary.Error != 2 || len(sink.Findings()) != 2 {
		t.Errorf("summary %+v, want two ERROR findings (region and connection)", rep.Summary)
	}
	for _, f := range sink.Findings() {
		if !strings.Contains(f.StatusDetail, "bad endpoint") {
			t.Errorf("detail %q does not name the cause", f.StatusDetail)
		}
	}
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, testDeadline)
}

func testDeadline(t *testing.T) {
	src := newFakeSource()
	src.latency = 50 * time.Millisecond
	const n = 60
	var targets []string
	for i := range n {
		src.addConnection(region, connID(i), 1)
		targets = append(targets, region+":"+connID(i))
	}
	for i := range 200 {
		src.addConnection("cn-shanghai", fmt.Sprintf("vco-sh%03d", i), 0)
	}
	// Listing cn-shanghai is slow: it will not finish before the deadline.
	src.failWith("list:cn-shanghai")
	targets = append(targets, "cn-shanghai:*")
	s := newTestScanner(t, src.factory(), func(o *Options) {
		o.Concurrency = 2
		o.Rate = 20
	})

	// 2 s left: 1 s of delivery margin, 1 s of calls at about 20/s.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	rep, sink := runScan(t, s, ctx, targets...)
	elapsed := time.Since(start)

	if rep.Complete {
		t.Error("complete = true, want false")
	}
	if elapsed > time.Second+src.latency {
		t.Errorf("Run took %v: calls went on past deadline − margin (1 s)", elapsed)
	}
	byConn := ByConnection(sink.Findings())
	read, unread := 0, 0
	for i := range n {
		fs := byConn[region+"/"+connID(i)]
		switch {
		case len(fs) == 1 && fs[0].Status == finding.StatusError:
			if fs[0].StatusDetail != detailDeadline {
				t.Errorf("%s: detail %q, want %q", connID(i), fs[0].StatusDetail, detailDeadline)
			}
			unread++
		case len(fs) == wantFindings(1) && fs[0].Status != finding.StatusError:
			read++
		default:
			t.Errorf("%s: findings %+v, want either its judgement or one ERROR", connID(i), fs)
		}
	}
	if read == 0 || unread == 0 {
		t.Errorf("read %d, unread %d: want some of each", read, unread)
	}
	// Every connection is named: the 60 explicit ones and the 200 the
	// listing of cn-shanghai found (its pages come first); read are those
	// that got a verdict.
	readSH := 0
	for k, fs := range byConn {
		if strings.HasPrefix(k, "cn-shanghai/vco-sh") && len(errorFindings(fs)) == 0 {
			readSH++
		}
	}
	if rep.Summary.ConnectionsInScope != n+200 || rep.Summary.Connections != read+readSH {
		t.Errorf("connections in scope %d, read %d; want %d and %d", rep.Summary.ConnectionsInScope, rep.Summary.Connections, n+200, read+readSH)
	}
	if fs := byConn["cn-shanghai/*"]; len(fs) != 0 {
		t.Errorf("cn-shanghai was listed to its end, yet has a region finding: %+v", fs)
	}
	if got := countErrorsIn(byConn, "cn-shanghai/vco-sh") + readSH; got != 200 {
		t.Errorf("cn-shanghai: %d connections with findings, want all 200 listed", got)
	}
	if rep.Summary.Error != unread+len(byConn["cn-shanghai/*"])+countErrorsIn(byConn, "cn-shanghai/vco-sh") {
		t.Errorf("error count %d does not match the ERROR findings", rep.Summary.Error)
	}
	if sum, closed := sink.Summary(); closed != 1 || sum.Complete {
		t.Errorf("sink closed %d times with complete=%v, want once with false", closed, sum != nil && sum.Complete)
	}
}

func countErrorsIn(byConn map[string][]finding.Finding, prefix string) int {
	n := 0
	for k, fs := range byConn {
		if strings.HasPrefix(k, prefix) {
			n += len(errorFindings(fs))
		}
	}
	return n
}

func TestDeadlineDuringListing(t *testing.T) {
	synctest.Test(t, testDeadlineDuringListing)
}

func testDeadlineDuringListing(t *testing.T) {
	src := newFakeSource()
	src.latency = 600 * time.Millisecond
	for i := range 120 {
		src.addConnection(region, connID(i), 0)
	}
	s := newTestScanner(t, src.factory(), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	rep, sink := runScan(t, s, ctx, region+":*")
	if rep.Complete {
		t.Error("complete = true, want false")
	}
	byConn := ByConnection(sink.Findings())
	if fs := byConn[region+"/*"]; len(fs) != 1 || fs[0].StatusDetail != detailDeadline {
		t.Errorf("region findings %+v, want one ERROR %q", fs, detailDeadline)
	}
}

// TestRateLimiterPaces runs on the fake clock of a synctest bubble: calls
// leave exactly when their tokens come, so the pacing is measured without
// the scheduler's noise.
func TestRateLimiterPaces(t *testing.T) {
	synctest.Test(t, testRateLimiterPaces)
}

func testRateLimiterPaces(t *testing.T) {
	src := newFakeSource()
	for i := range 20 {
		src.addConnection(region, connID(i), 0)
		src.addConnection("cn-beijing", connID(i), 0)
	}
	s := newTestScanner(t, src.factory(), func(o *Options) { o.Rate = 20 })

	// Two scans at once into cn-hangzhou share its bucket (40 calls at 20/s,
	// about 2 s); cn-beijing has its own bucket and proceeds in parallel.
	start := time.Now()
	done := make(chan Report, 2)
	for range 2 {
		go func() {
			rep, _ := runScan(t, s, t.Context(), region+":*", "cn-beijing:*")
			done <- rep
		}()
	}
	calls := 0
	for range 2 {
		rep := <-done
		calls += rep.Summary.APICalls
		if rep.Summary.Error != 0 {
			t.Errorf("errors = %d", rep.Summary.Error)
		}
	}
	elapsed := time.Since(start)
	// Per region: 2 listings + 2×20 reads = 42 calls; burst 1 → 41 intervals
	// at 20 calls/s.
	if calls != 84 {
		t.Errorf("api_calls = %d, want 84", calls)
	}
	want := 41 * time.Second / 20
	if elapsed != want {
		t.Errorf("two scans took %v, want about %v (20 calls/s per region, regions in parallel)", elapsed, want)
	}
	// No one-second window holds more than the rate allows, per region.
	src.mu.Lock()
	times := append([]time.Time(nil), src.callTimes...)
	src.mu.Unlock()
	if got := maxInWindow(times, time.Second); got != 2*20 {
		t.Errorf("%d calls within one second across two regions, want %d", got, 2*20)
	}
}

func maxInWindow(ts []time.Time, w time.Duration) int {
	best := 0
	for i := range ts {
		n := 0
		for j := range ts {
			if !ts[j].Before(ts[i]) && ts[j].Sub(ts[i]) < w {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

func TestReport(t *testing.T) {
	noLeaks(t)
	src := newFakeSource()
	src.addConnection(region, "vco-abcd", 3)
	s := newTestScanner(t, src.factory(), nil)
	req := Request{ScanID: "scan-7", Trigger: finding.TriggerHTTP, Credentials: testCreds, AccountID: "1000",
		Targets: []target.Target{tg(region + ":vco-abcd")}}

	t.Run("streamed", func(t *testing.T) {
		sink := &MemSink{}
		rep, err := s.Run(t.Context(), req, sink)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Findings != nil {
			t.Errorf("findings kept in the report without CollectFindings")
		}
		if rep.ScanID != "scan-7" || rep.Trigger != "http" || !rep.Complete {
			t.Errorf("report %+v", rep)
		}
		if _, err := time.Parse(time.RFC3339, rep.StartedAt); err != nil {
			t.Errorf("startedAt %q: %v", rep.StartedAt, err)
		}
		if rep.Delivery != (Delivery{Sink: "memory", Delivered: true}) {
			t.Errorf("delivery %+v", rep.Delivery)
		}
		sum, closed := sink.Summary()
		if closed != 1 || sum.ScanID != "scan-7" || sum.Counts.Fail != 3 || sum.Counts.Pass != 3 || sum.Counts.APICalls != 1 {
			t.Errorf("summary given to Close: %+v (closed %d times)", sum, closed)
		}
		if rep.Summary.FindingsDelivered != 6 || rep.Summary.Fail != 3 || rep.Summary.Authorizations != 3 {
			t.Errorf("report summary %+v", rep.Summary)
		}
	})
	t.Run("collected", func(t *testing.T) {
		req := req
		req.CollectFindings = true
		rep, err := s.Run(t.Context(), req, &MemSink{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 6 {
			t.Errorf("report findings = %d, want 6", len(rep.Findings))
		}
		for _, f := range rep.Findings {
			if f.ScanID != "scan-7" || f.Trigger != "http" {
				t.Errorf("finding scan id %q trigger %q", f.ScanID, f.Trigger)
			}
		}
	})
	t.Run("dry run", func(t *testing.T) {
		req := req
		req.CollectFindings = true
		for _, dry := range []Request{req, func() Request { r := req; r.DryRun = true; return r }()} {
			sink := Sink(nil)
			var mem *MemSink
			if dry.DryRun {
				mem = &MemSink{}
				sink = mem
			}
			rep, err := s.Run(t.Context(), dry, sink)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Delivery != (Delivery{Sink: "none"}) || rep.Summary.FindingsDelivered != 0 {
				t.Errorf("delivery %+v delivered %d, want sink none", rep.Delivery, rep.Summary.FindingsDelivered)
			}
			if len(rep.Findings) != 6 {
				t.Errorf("findings = %d, want 6", len(rep.Findings))
			}
			if mem != nil && len(mem.Findings()) != 0 {
				t.Errorf("dry run wrote %d findings to the sink", len(mem.Findings()))
			}
		}
	})
}

func TestInvalidRequest(t *testing.T) {
	src := newFakeSource()
	s := newTestScanner(t, src.factory(), nil)
	tests := []struct {
		name string
		req  Request
	}{
		{"no targets", Request{Credentials: testCreds}},
		{"bad region", Request{Credentials: testCreds, Targets: []target.Target{{Region: "Cn_Hangzhou", ConnectionID: "vco-abcd"}}}},
		{"region with a host", Request{Credentials: testCreds, Targets: []target.Target{{Region: "evil.example.com", ConnectionID: "*"}}}},
		{"bad connection id", Request{Credentials: testCreds, Targets: []target.Target{{Region: region, ConnectionID: "vpn-abcd"}}}},
		{"no credentials", Request{Targets: []target.Target{{Region: region, ConnectionID: "*"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Run(t.Context(), tt.req, &MemSink{}); err == nil {
				t.Error("Run accepted an invalid request")
			}
		})
	}
	if src.listCallsOf(region) != 0 {
		t.Error("an invalid request made API calls")
	}
}

func TestDeliveryMargin(t *testing.T) {
	tests := []struct{ left, want time.Duration }{
		{0, time.Second},
		{5 * time.Second, time.Second},
		{30 * time.Second, 3 * time.Second},
		{10 * time.Minute, 15 * time.Second},
		{24 * time.Hour, 15 * time.Second},
	}
	for _, tt := range tests {
		if got := DeliveryMargin(tt.left); got != tt.want {
			t.Errorf("DeliveryMargin(%v) = %v, want %v", tt.left, got, tt.want)
		}
	}
}

func TestCredentialsRedacted(t *testing.T) {
	req := Request{ScanID: "x", Credentials: testCreds}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", testCreds),
		"%+v":  fmt.Sprintf("%+v", testCreds),
		"%#v":  fmt.Sprintf("%#v", testCreds),
		"%s":   fmt.Sprintf("%s", testCreds),
		"%d":   fmt.Sprintf("%d", testCreds),
		"%x":   fmt.Sprintf("%x", testCreds),
		"%q":   fmt.Sprintf("%q", testCreds),
		"req":  fmt.Sprintf("%+v", req),
		"req#": fmt.Sprintf("%#v", req),
		"ptr":  fmt.Sprintf("%v", &testCreds),
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "credentials", testCreds, "request", req)
	outputs["slog"] = buf.String()
	buf.Reset()
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "credentials", testCreds)
	outputs["slog text"] = buf.String()
	for name, out := range outputs {
		if strings.Contains(out, testCreds.AccessKeySecret) || strings.Contains(out, testCreds.SecurityToken) ||
			strings.Contains(out, fmt.Sprintf("%x", testCreds.AccessKeySecret)) {
			t.Errorf("%s leaks a secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["%v"], testCreds.AccessKeyID) || !strings.Contains(outputs["slog"], testCreds.AccessKeyID) {
		t.Errorf("the access key id should stay visible: %s / %s", outputs["%v"], outputs["slog"])
	}
}

func TestScanLogs(t *testing.T) {
	var buf bytes.Buffer
	src := newFakeSource()
	src.addConnection(region, "vco-abcd", 1)
	s := newTestScanner(t, src.factory(), func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	runScan(t, s, t.Context(), region+":vco-abcd")
	out := buf.String()
	if !strings.Contains(out, `"scan_id":"scan-1"`) {
		t.Errorf("logs carry no scan id: %s", out)
	}
	if strings.Contains(out, testCreds.AccessKeySecret) || strings.Contains(out, testCreds.SecurityToken) {
		t.Errorf("logs leak credentials: %s", out)
	}
}

func TestThrottledUntilTheDeadline(t *testing.T) {
	// The API throttles every attempt until the scan's time is up: the
	// connection was cut short by the deadline, so the scan is incomplete and
	// the finding says so, naming the last answer, even when the deadline
	// comes while the next attempt waits for the rate limiter (the bucket
	// slows down as the throttling goes on, so it does).
	synctest.Test(t, testThrottledUntilTheDeadline)
}

func testThrottledUntilTheDeadline(t *testing.T) {
	src := newFakeSource()
	src.addConnection(region, "vco-abcd", 1)
	throttle := &cloudapi.APIError{Code: "Throttling.User", HTTPStatus: 400, Message: "Request was denied due to user flow control."}
	src.failWith("vco-abcd", slices.Repeat([]error{throttle}, 1000)...)
	s := newTestScanner(t, src.factory(), func(o *Options) {
		o.Retry = retry.Policy{MaxAttempts: 1000, BaseDelay: 20 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	rep, sink := runScan(t, s, ctx, region+":vco-abcd")
	errs := errorFindings(sink.Findings())
	if rep.Complete || len(errs) != 1 {
		t.Fatalf("complete=%v, ERROR findings %d; want incomplete with one ERROR", rep.Complete, len(errs))
	}
	if d := errs[0].StatusDetail; !strings.Contains(d, "Not scanned before the deadline") || !strings.Contains(d, "Throttling.User") {
		t.Errorf("detail %q, want the deadline and the last answer", d)
	}
	if r := errs[0].Remediation; !strings.Contains(r, "timeout") {
		t.Errorf("remediation %q, want advice about the timeout", r)
	}
}

// TestBucketsBounded: without an account id every access key is its own
// quota; the buckets of keys no longer used are dropped once enough pile up,
// while a bucket in use or still slowed down by throttling is kept.
func TestBucketsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.addConnection(region, "vco-abcd", 1)
		s := newTestScanner(t, src.factory(), func(o *Options) { o.Rate = 10; o.MaxIdleBuckets = 8 })
		held, release := s.bucket("held-key", region)
		slowed, releaseSlowed := s.bucket("slowed-key", region)
		now := time.Now()
		slowed.throttled(now)
		slowed.throttled(now.Add(time.Millisecond)) // two within a second: the rate halves
		releaseSlowed()
		for i := range 100 {
			req := Request{ScanID: "s", Trigger: finding.TriggerCLI, Targets: []target.Target{tg(region + ":vco-abcd")},
				Credentials: Credentials{AccessKeyID: fmt.Sprintf("key-%03d", i), AccessKeySecret: "x"}}
			if _, err := s.Run(t.Context(), req, nil); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // the key's bucket fills up again: idle
			if n := s.bucketCount(); n > 2*8 {
				t.Fatalf("after %d keys, %d buckets kept", i+1, n)
			}
		}
		s.mu.Lock()
		_, heldKept := s.buckets[bucketKey{"held-key", region}]
		_, slowedKept := s.buckets[bucketKey{"slowed-key", region}]
		s.mu.Unlock()
		if !heldKept {
			t.Error("a bucket in use was dropped")
		}
		if slowedKept {
			t.Error("a slowed-down bucket unused for over a minute was kept")
		}
		if again, release2 := s.bucket("held-key", region); again != held {
			t.Error("a bucket in use was replaced")
		} else {
			release2()
		}
		release()
	})
}

func TestSlowedBucketKeptWhileRecent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestScanner(t, newFakeSource().factory(), func(o *Options) { o.Rate = 10; o.MaxIdleBuckets = 1 })
		b, release := s.bucket("slowed", region)
		now := time.Now()
		b.throttled(now)
		b.throttled(now.Add(time.Millisecond))
		release()
		time.Sleep(2 * time.Second)
		_, r := s.bucket("other", region) // sweeps: "slowed" is not at rest and was used 2 s ago
		r()
		s.mu.Lock()
		_, kept := s.buckets[bucketKey{"slowed", region}]
		s.mu.Unlock()
		if !kept {
			t.Error("a bucket slowed by throttling two seconds ago was dropped: its next scan would start at the full rate")
		}
	})
}

// slowMembers answers only when the scan's time is up.
type slowMembers struct{}

func (slowMembers) Credentials(ctx context.Context, uid string) (Credentials, error) {
	<-ctx.Done()
	return Credentials{}, fmt.Errorf("assume role acs:ram::%s:role/vpnauthz-auditor: %w", uid, ctx.Err())
}

// TestDeadlineWhileEnteringAccount: a member whose credentials are still
// being asked for when the time runs out is not a denied member: what it
// would have read is "not scanned before the deadline", and the scan is
// incomplete, while the own account's connections are read.
func TestDeadlineWhileEnteringAccount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.addConnection(region, "vco-abcd", 1)
		s := newTestScanner(t, src.factory(), nil)
		req := Request{ScanID: "scan-1", Trigger: finding.TriggerCLI, Credentials: testCreds, AccountID: "1000", Members: slowMembers{},
			Targets: []target.Target{tg(region + ":vco-abcd"), {Region: region, ConnectionID: "vco-mem00001", Account: "2000"}, {Region: "cn-beijing", ConnectionID: "*", Account: "2000"}}}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		sink := &MemSink{}
		rep, err := s.Run(ctx, req, sink)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Complete {
			t.Error("complete = true, want false")
		}
		byConn := ByConnection(sink.Findings())
		if got := len(byConn[region+"/vco-abcd"]); got != 2 {
			t.Errorf("own connection: %d findings, want 2", got)
		}
		for _, k := range []string{region + "/vco-mem00001", "cn-beijing/*"} {
			fs := byConn[k]
			if len(fs) != 1 || fs[0].Status != finding.StatusError || fs[0].StatusDetail != detailDeadline || fs[0].OwnerAccountID != "2000" {
				t.Errorf("%s: %+v, want one ERROR not scanned before the deadline, owned by 2000", k, fs)
			}
		}
		if rep.Summary.ConnectionsInScope != 2 || rep.Summary.Connections != 1 {
			t.Errorf("summary %+v, want 2 in scope, 1 read", rep.Summary)
		}
	})
}
