package scan_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
	"vpnauthz/internal/vpcapi"
)

// The integration tests run the scanner through the real SDK, over HTTP,
// against the emulated VPC API.

const (
	hangzhou = "cn-hangzhou"
	account  = "1210123456123456"

	actAuth = "DescribeVpnCrossAccountAuthorizations"
	actList = "DescribeVpnConnections"
)

var emuCred = cred.Credential{AccessKeyID: "STS.scantest", AccessKeySecret: "scan-secret-value", SecurityToken: "scan-token-value"}

func vco(prefix string, i int) string { return fmt.Sprintf("vco-%s%04d", prefix, i) }

func emuAuth(i int) vpcemu.Authorization {
	return vpcemu.Authorization{BindUid: 1500000000000000 + int64(i), BindProduct: "CEN", BindInstance: fmt.Sprintf("cen-%05d", i), CreationTime: 1658201810000}
}

func emuConn(id string, n int) vpcemu.Connection {
	c := vpcemu.Connection{VpnConnectionId: id}
	for i := range n {
		c.Authorizations = append(c.Authorizations, emuAuth(i))
	}
	return c
}

func startEmu(t *testing.T, regions map[string][]vpcemu.Connection) *vpcemu.Server {
	t.Helper()
	srv, err := vpcemu.New(vpcemu.Options{
		Inventory:   &vpcemu.Inventory{AccountID: account, Regions: regions},
		Credentials: []cred.Credential{emuCred},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func newScanner(t *testing.T, srv *vpcemu.Server, mod func(*scan.Options)) *scan.Scanner {
	t.Helper()
	opts := scan.Options{
		Policy:      policy.Policy{},
		NewSource:   vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(srv.URL()), CallTimeout: 5 * time.Second}),
		Rate:        500,
		Concurrency: 8,
		CallTimeout: 5 * time.Second,
		Retry:       retry.Policy{MaxAttempts: 6, BaseDelay: 20 * time.Millisecond, MaxDelay: 500 * time.Millisecond},
	}
	if mod != nil {
		mod(&opts)
	}
	return scan.New(opts)
}

func scanTargets(t *testing.T, s *scan.Scanner, ctx context.Context, targets ...string) (scan.Report, *scan.MemSink) {
	t.Helper()
	req := scan.Request{
		ScanID:      "it-scan",
		Trigger:     finding.TriggerTimer,
		Credentials: scan.Credentials{AccessKeyID: emuCred.AccessKeyID, AccessKeySecret: emuCred.AccessKeySecret, SecurityToken: emuCred.SecurityToken},
		AccountID:   account,
	}
	for _, x := range targets {
		r, id, _ := strings.Cut(x, ":")
		req.Targets = append(req.Targets, target.Target{Region: r, ConnectionID: id})
	}
	sink := &scan.MemSink{}
	rep, err := s.Run(ctx, req, sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sink.Overlap() {
		t.Error("the sink's Write was called from two goroutines at once")
	}
	if got := len(sink.Findings()); got != rep.Summary.Pass+rep.Summary.Fail+rep.Summary.Error+rep.Summary.Suppressed ||
		rep.Summary.FindingsDelivered != got {
		t.Errorf("%d findings written, summary %+v", got, rep.Summary)
	}
	return rep, sink
}

// findingsFor is what the default policy gives a connection with n
// authorizations to other accounts' CENs: untrusted-account FAIL and
// unexpected-product PASS for each, or one PASS per rule for none.
func findingsFor(n int) (pass, fail int) {
	if n == 0 {
		return 2, 0
	}
	return n, n
}

func minReads(n int) int { return max(1, (n+49)/50) }

func errorDetails(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		if f.Status == finding.StatusError {
			out = append(out, f.VpnConnectionID+": "+f.StatusDetail)
		}
	}
	return out
}

func checkConnections(t *testing.T, sink *scan.MemSink, region string, want map[string]int) {
	t.Helper()
	byConn := scan.ByConnection(sink.Findings())
	for id, n := range want {
		fs := byConn[region+"/"+id]
		pass, fail := 0, 0
		for _, f := range fs {
			switch f.Status {
			case finding.StatusPass:
				pass++
			case finding.StatusFail:
				fail++
			default:
				t.Errorf("%s: %s finding: %s", id, f.Status, f.StatusDetail)
			}
			if f.ScanID != "it-scan" || f.Trigger != "timer" || f.OwnerAccountID != account {
				t.Errorf("%s: finding scan id %q trigger %q owner %q", id, f.ScanID, f.Trigger, f.OwnerAccountID)
			}
		}
		if wp, wf := findingsFor(n); pass != wp || fail != wf {
			t.Errorf("%s (%d authorizations): %d PASS %d FAIL, want %d and %d", id, n, pass, fail, wp, wf)
		}
	}
}

func TestMultiPageReads(t *testing.T) {
	sizes := map[string]int{"vco-zero": 0, "vco-fifty": 50, "vco-fiftyone": 51, "vco-onetwenty": 120}
	var conns []vpcemu.Connection
	var targets []string
	for id, n := range sizes {
		conns = append(conns, emuConn(id, n))
		targets = append(targets, hangzhou+":"+id)
	}
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns})
	rep, sink := scanTargets(t, newScanner(t, srv, nil), t.Context(), targets...)

	checkConnections(t, sink, hangzhou, sizes)
	wantCalls := 1 + 1 + 2 + 3
	if rep.Summary.APICalls != wantCalls || srv.Stats().Action(actAuth).Calls != wantCalls {
		t.Errorf("api_calls %d, emulator %d, want %d", rep.Summary.APICalls, srv.Stats().Action(actAuth).Calls, wantCalls)
	}
	if rep.Summary.Authorizations != 221 || rep.Summary.Connections != 4 || !rep.Complete {
		t.Errorf("summary %+v complete=%v", rep.Summary, rep.Complete)
	}
}

func TestWildcardDiscoveryPages(t *testing.T) {
	want := map[string]int{}
	var conns []vpcemu.Connection
	for i := range 120 {
		conns = append(conns, emuConn(vco("w", i), i%3))
		want[vco("w", i)] = i % 3
	}
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns})
	rep, sink := scanTargets(t, newScanner(t, srv, nil), t.Context(), hangzhou+":*", hangzhou+":"+vco("w", 5))

	checkConnections(t, sink, hangzhou, want)
	st := srv.Stats()
	if st.Action(actList).Calls != 3 || st.Action(actAuth).Calls != 120 {
		t.Errorf("emulator saw %d listings and %d reads, want 3 and 120", st.Action(actList).Calls, st.Action(actAuth).Calls)
	}
	if rep.Summary.Connections != 120 || rep.Summary.APICalls != 123 {
		t.Errorf("summary %+v", rep.Summary)
	}
}

func TestHundredConnectionsMinimumCalls(t *testing.T) {
	var conns []vpcemu.Connection
	want := map[string]int{}
	minimum := (100 + 49) / 50 // listing pages
	for i := range 100 {
		n := i % 4
		switch i {
		case 17:
			n = 51
		case 60:
			n = 120
		}
		id := vco("h", i)
		conns = append(conns, emuConn(id, n))
		want[id] = n
		minimum += minReads(n)
	}
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns})
	rep, sink := scanTargets(t, newScanner(t, srv, nil), t.Context(), hangzhou+":*")

	checkConnections(t, sink, hangzhou, want)
	t.Logf("100 connections: api_calls %d, minimum %d, emulator calls %d", rep.Summary.APICalls, minimum, srv.Stats().Total().Calls)
	if rep.Summary.APICalls != minimum || srv.Stats().Total().Calls != minimum {
		t.Errorf("api_calls %d (emulator %d), want the minimum %d", rep.Summary.APICalls, srv.Stats().Total().Calls, minimum)
	}
}

func TestQuotaRespected(t *testing.T) {
	// Three regions under a 10 calls/s quota each; the busiest needs 30
	// calls (1 listing + 29 reads), so the scan takes about 3 s.
	regions := map[string][]vpcemu.Connection{}
	sizes := map[string]int{"cn-hangzhou": 29, "cn-shanghai": 20, "cn-beijing": 12}
	var targets []string
	for r, n := range sizes {
		for i := range n {
			regions[r] = append(regions[r], emuConn(vco("q", i), i%3))
		}
		targets = append(targets, r+":*")
	}
	srv := startEmu(t, regions)
	s := newScanner(t, srv, func(o *scan.Options) { o.Rate = 10 })
	// A first small scan pays for what the first calls cost once (new
	// connections, the client library's first use): that time is not the
	// steady pace this test measures.
	scanTargets(t, s, t.Context(), "cn-hangzhou:"+vco("q", 0), "cn-shanghai:"+vco("q", 0), "cn-beijing:"+vco("q", 0))
	// The published quota is 600 calls per 60 s; the emulator holds it as a
	// bucket of one second's calls refilled at 10/s, which is stricter than a
	// per-minute window and still forgives a call that a busy machine sends a
	// few milliseconds early.
	srv.SetQuota(10, 10)
	srv.ResetStats()

	start := time.Now()
	rep, sink := scanTargets(t, s, t.Context(), targets...)
	elapsed := time.Since(start)

	if errs := errorDetails(sink.Findings()); len(errs) > 0 {
		t.Errorf("ERROR findings: %v", errs)
	}
	st := srv.Stats()
	if rep.Summary.Throttled != 0 || st.Total().Throttled != 0 {
		t.Errorf("throttled answers: report %d, emulator %d; want 0", rep.Summary.Throttled, st.Total().Throttled)
	}
	busiest := 1 + sizes["cn-hangzhou"]
	if rep.Summary.APICalls != 3+61 || rep.Summary.APIRetries != 0 {
		t.Errorf("api_calls %d, retries %d; want %d and 0", rep.Summary.APICalls, rep.Summary.APIRetries, 3+61)
	}
	// Burst 1: the busiest region's calls leave 1/10 s apart.
	ideal := time.Duration(busiest-1) * time.Second / 10
	t.Logf("3 regions at 10 calls/s: %d calls, busiest region %d, wall time %v (bound %v)", rep.Summary.APICalls, busiest, elapsed, ideal)
	if elapsed < ideal-100*time.Millisecond || elapsed > ideal+time.Second {
		t.Errorf("wall time %v, want close to %v", elapsed, ideal)
	}
}

func TestThrottlingRecovered(t *testing.T) {
	var conns []vpcemu.Connection
	want := map[string]int{}
	for i := range 30 {
		conns = append(conns, emuConn(vco("t", i), 1))
		want[vco("t", i)] = 1
	}
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns})
	srv.SetQuota(10, 1)
	s := newScanner(t, srv, func(o *scan.Options) {
		o.Rate = 40
		o.Retry = retry.Policy{MaxAttempts: 6, BaseDelay: 200 * time.Millisecond, MaxDelay: 2 * time.Second}
	})
	rep, sink := scanTargets(t, s, t.Context(), hangzhou+":*")

	checkConnections(t, sink, hangzhou, want)
	st := srv.Stats().Total()
	t.Logf("rate 40 against quota 10: %d calls, %d retries, %d throttled", rep.Summary.APICalls, rep.Summary.APIRetries, rep.Summary.Throttled)
	if rep.Summary.Throttled == 0 || rep.Summary.Throttled != st.Throttled {
		t.Errorf("throttled %d (emulator %d), want > 0 and equal", rep.Summary.Throttled, st.Throttled)
	}
	if rep.Summary.APICalls != st.Calls || rep.Summary.APIRetries != rep.Summary.APICalls-31 {
		t.Errorf("api_calls %d retries %d, emulator calls %d", rep.Summary.APICalls, rep.Summary.APIRetries, st.Calls)
	}
}

func TestTransientFaultsRecovered(t *testing.T) {
	var conns []vpcemu.Connection
	want := map[string]int{}
	for i := range 20 {
		conns = append(conns, emuConn(vco("f", i), i%3))
		want[vco("f", i)] = i % 3
	}
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns})
	srv.FailNext(actList, hangzhou, 2, vpcemu.ServiceUnavailable)
	srv.FailNext(actAuth, hangzhou, 3, vpcemu.ServiceUnavailable)
	srv.FailNext(actAuth, hangzhou, 2, vpcemu.Reset)
	srv.FailNext(actAuth, hangzhou, 1, vpcemu.InternalError)
	rep, sink := scanTargets(t, newScanner(t, srv, nil), t.Context(), hangzhou+":*")

	checkConnections(t, sink, hangzhou, want)
	if rep.Summary.APIRetries != 8 || rep.Summary.APICalls != 21+8 {
		t.Errorf("api_calls %d api_retries %d, want 29 and 8", rep.Summary.APICalls, rep.Summary.APIRetries)
	}
}

func TestPermanentErrors(t *testing.T) {
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: {
		emuConn("vco-good", 1),
		{VpnConnectionId: "vco-denied", Error: &vpcemu.Fault{Code: "Forbidden.RAM"}},
	}})
	rep, sink := scanTargets(t, newScanner(t, srv, nil), t.Context(), hangzhou+":vco-good", hangzhou+":vco-denied", hangzhou+":vco-gone")

	byConn := scan.ByConnection(sink.Findings())
	checkConnections(t, sink, hangzhou, map[string]int{"vco-good": 1})
	const denied = "DescribeVpnCrossAccountAuthorizations failed: Forbidden.RAM (HTTP 403): User not authorized to operate on the specified resource, or this API doesn't support RAM."
	if fs := byConn[hangzhou+"/vco-denied"]; len(fs) != 1 || fs[0].Status != finding.StatusError || fs[0].RuleID != finding.RuleReadAuthorizations ||
		!strings.Contains(fs[0].StatusDetail, denied) {
		t.Errorf("vco-denied: findings %+v, want one ERROR containing %q", fs, denied)
	}
	// A connection that does not exist (InvalidVpnConnectionInstanceId.NotFound)
	// holds no authorization: one PASS per rule, not an ERROR.
	gone := byConn[hangzhou+"/vco-gone"]
	if len(gone) != 2 {
		t.Errorf("vco-gone: %d findings, want one PASS per rule: %+v", len(gone), gone)
	}
	for _, f := range gone {
		if f.Status != finding.StatusPass || f.StatusDetail != "VPN connection vco-gone no longer exists: nothing can attach it." || f.BindUID != "" {
			t.Errorf("vco-gone: %s %q, want PASS saying it no longer exists", f.Status, f.StatusDetail)
		}
	}
	if rep.Summary.APICalls != 3 || rep.Summary.APIRetries != 0 || rep.Summary.Error != 1 || rep.Summary.Connections != 3 {
		t.Errorf("summary %+v, want 3 calls, no retry, 1 error", rep.Summary)
	}
}

func TestChangesMidScan(t *testing.T) {
	srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: {emuConn("vco-busy", 120)}})
	// While page 2 is being served, one authorization is revoked and
	// another granted.
	var reads atomic.Int32
	srv.SetLatencyFunc(func(action, region string) time.Duration {
		if action == actAuth && reads.Add(1) == 2 {
			if err := srv.Revoke(hangzhou, "vco-busy", emuAuth(3).BindUid, emuAuth(3).BindInstance); err != nil {
				t.Errorf("revoke: %v", err)
			}
			if err := srv.Grant(hangzhou, "vco-busy", emuAuth(500)); err != nil {
				t.Errorf("grant: %v", err)
			}
		}
		return 0
	})
	rep, sink := scanTargets(t, newScanner(t, srv, nil), t.Context(), hangzhou+":vco-busy")

	if errs := errorDetails(sink.Findings()); len(errs) > 0 {
		t.Fatalf("ERROR findings: %v", errs)
	}
	// The revocation shifts one authorization from page 2 to page 1, which
	// was read already: 119 or 120 are judged, each once.
	if n := rep.Summary.Authorizations; n < 119 || n > 120 {
		t.Errorf("authorizations %d, want 119 or 120", n)
	}
	if calls := srv.Stats().Action(actAuth).Calls; calls > 5 {
		t.Errorf("%d reads, want at most 5", calls)
	}
	seen := map[string]bool{}
	for _, f := range sink.Findings() {
		if seen[f.FindingUID] {
			t.Errorf("finding %s judged twice", f.FindingUID)
		}
		seen[f.FindingUID] = true
	}
}

// TestShortDeadline: the deadline comes while the connections are read.
// Each region's first five reads are answered at once and every later call is
// held until the scanner gives it up, so what is read before the deadline is
// fixed by call counts, not by how fast a loaded machine runs. The listing
// is read to its end first, so every connection in scope is named: each one
// not read has its own ERROR, and no region is left behind one "*" ERROR.
// When the listing itself is held, what its first page named still gets its
// own ERRORs, and the region one ERROR for the rest.
func TestShortDeadline(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pages     int // listing pages answered
		wantNamed int
	}{
		{"listing complete", 2, 80},
		{"listing cut short", 1, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns []vpcemu.Connection
			for i := range 80 {
				conns = append(conns, emuConn(vco("d", i), 1))
			}
			srv := startEmu(t, map[string][]vpcemu.Connection{hangzhou: conns, "cn-shanghai": conns})
			var mu sync.Mutex
			answered := map[string]int{}
			srv.SetLatencyFunc(func(action, region string) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				answered[action+region]++
				if action == actList && answered[action+region] <= tc.pages ||
					action == actAuth && answered[action+region] <= 5 {
					return 0
				}
				return time.Hour
			})
			s := newScanner(t, srv, func(o *scan.Options) { o.Rate = 1000 })

			// 2 s before the deadline: 1 s of calls, 1 s kept for delivery.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			rep, sink := scanTargets(t, s, ctx, hangzhou+":*", "cn-shanghai:*")
			if ctx.Err() != nil {
				t.Error("Run returned after the deadline, want calls stopped at deadline − 1 s")
			}
			if rep.Complete {
				t.Error("complete = true, want false")
			}
			byConn := scan.ByConnection(sink.Findings())
			wantRead := 0
			if tc.pages == 2 {
				wantRead = 5
			}
			for _, r := range []string{hangzhou, "cn-shanghai"} {
				read, late := 0, 0
				for i := range 80 {
					fs := byConn[r+"/"+vco("d", i)]
					switch {
					case len(fs) == 2 && fs[0].Status != finding.StatusError && fs[1].Status != finding.StatusError:
						read++
					case len(fs) == 1 && fs[0].Status == finding.StatusError && fs[0].StatusDetail == "Not scanned before the deadline.":
						late++
					case len(fs) == 0 && tc.pages < 2:
						// Not listed before the deadline: covered by the region's ERROR.
					default:
						t.Errorf("%s/%s: findings %+v", r, vco("d", i), fs)
					}
				}
				region := byConn[r+"/*"]
				switch {
				case tc.pages == 2 && len(region) != 0:
					t.Errorf("%s: the listing was read to its end, yet the region has findings %+v", r, region)
				case tc.pages < 2 && (len(region) != 1 || region[0].Status != finding.StatusError ||
					!strings.HasPrefix(region[0].StatusDetail, "Not scanned before the deadline")):
					t.Errorf("%s: region findings %+v, want one ERROR for the listing not finished", r, region)
				}
				if read != wantRead || read+late != tc.wantNamed {
					t.Errorf("%s: %d read, %d named and not read; want %d read of %d named", r, read, late, wantRead, tc.wantNamed)
				}
				t.Logf("%s: %d read, %d not read, %d not listed before the deadline", r, read, late, 80-read-late)
			}
			if rep.Summary.ConnectionsInScope != 2*tc.wantNamed || rep.Summary.Connections != 2*wantRead {
				t.Errorf("connections in scope %d, read %d; want %d and %d",
					rep.Summary.ConnectionsInScope, rep.Summary.Connections, 2*tc.wantNamed, 2*wantRead)
			}
		})
	}
}
