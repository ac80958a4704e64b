package vpcemu

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/testutil"
)

const (
	actAuthz = "DescribeVpnCrossAccountAuthorizations"
	actConns = "DescribeVpnConnections"
	knownID  = "vco-p0w2jpkhi2eeop6q6****"
)

// outcomeOf names how a call ended: "ok", an error code, or "transport".
func outcomeOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return "ok"
	}
	var se *tea.SDKError
	if errors.As(err, &se) {
		return dara.StringValue(se.Code)
	}
	if isReset(err) {
		return "transport"
	}
	t.Fatalf("unexpected error %T: %v", err, err)
	return ""
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF")
}

// quotaServer is a server whose quota runs on a clock the test steps, so
// what a burst gets depends on the calls alone, not on how fast they went.
func quotaServer(t *testing.T) (*Server, *testutil.Clock) {
	t.Helper()
	// The clock starts at the real time: request signatures are checked by it too.
	clock := testutil.NewClock(time.Now())
	return startServer(t, Options{Inventory: loadTestInventory(t), Now: clock.Now}), clock
}

func TestQuotaBurst(t *testing.T) {
	s, clock := quotaServer(t)
	s.SetQuota(10, 1)
	c := newClient(t, s, clientOptions{})

	// A burst at one instant gets the one token of the bucket.
	const calls = 12
	for i := range calls {
		_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
		if i == 0 {
			if err != nil {
				t.Fatalf("first call: %v", err)
			}
			continue
		}
		wantSDKError(t, err, "Throttling.User", 400)
	}
	st := s.Stats().ByKey[CallKey{Action: actAuthz, Region: "cn-hangzhou"}]
	if st.Calls != calls || st.OK != 1 || st.Throttled != calls-1 || st.ByCode["Throttling.User"] != calls-1 || st.Errors != 0 {
		t.Errorf("stats = %+v, want %d calls, 1 ok, %d throttled", st, calls, calls-1)
	}

	// Buckets are per (region, action).
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("ap-southeast-1", "vco-sg00000000000001")); err != nil {
		t.Errorf("other region: %v", err)
	}
	if _, err := c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-hangzhou")}); err != nil {
		t.Errorf("other action: %v", err)
	}

	// Throttled calls take no token: refused calls every 10 ms do not delay
	// the next token, which is there 100 ms (1/rate) after the last one taken.
	s.SetQuota(10, 1)
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
		t.Fatalf("first call after reset: %v", err)
	}
	for range 9 {
		clock.Advance(10 * time.Millisecond)
		_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
		wantSDKError(t, err, "Throttling.User", 400)
	}
	clock.Advance(10 * time.Millisecond)
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
		t.Errorf("after the refill: %v", err)
	}
}

func TestQuotaPacedClient(t *testing.T) {
	s, clock := quotaServer(t)
	s.SetQuota(10, 1)
	c := newClient(t, s, clientOptions{})
	for i := range 6 {
		if i > 0 {
			clock.Advance(100 * time.Millisecond) // exactly 1/rate between arrivals
		}
		if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if st := s.Stats().Total(); st.Throttled != 0 || st.OK != 6 {
		t.Errorf("stats = %+v", st)
	}
	s.SetQuota(0, 0) // off
	for range 5 {
		if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
			t.Errorf("quota off: %v", err)
		}
	}
}

func TestFailNext(t *testing.T) {
	for _, tc := range []struct {
		kind   FaultKind
		code   string
		status int
	}{
		{ServiceUnavailable, "ServiceUnavailable", 503},
		{InternalError, "InternalError", 500},
		{Throttled, "Throttling.User", 400},
		{Reset, "", 0},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			s := startServer(t, Options{Inventory: loadTestInventory(t)})
			c := newClient(t, s, clientOptions{})
			s.FailNext(actAuthz, "cn-hangzhou", 2, tc.kind)

			// Refused calls do not use up the injected faults.
			bad := newClient(t, s, clientOptions{ak: testAK, secret: "wrong"})
			_, err := bad.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
			wantSDKError(t, err, "SignatureDoesNotMatch", 400)
			_, err = c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", ""))
			wantSDKError(t, err, "MissingVpnConnectionId", 400)

			for i := range 2 {
				_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
				if tc.kind == Reset {
					var se *tea.SDKError
					if err == nil || errors.As(err, &se) || !isReset(err) {
						t.Fatalf("call %d: %v, want a connection reset", i, err)
					}
				} else {
					wantSDKError(t, err, tc.code, tc.status)
				}
				// Other regions and actions are untouched.
				if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("ap-southeast-1", "vco-sg00000000000001")); err != nil {
					t.Errorf("other region: %v", err)
				}
				if _, err := c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-hangzhou")}); err != nil {
					t.Errorf("other action: %v", err)
				}
			}
			if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
				t.Errorf("third call: %v", err)
			}
			st := s.Stats().ByKey[CallKey{Action: actAuthz, Region: "cn-hangzhou"}]
			want := Counter{Calls: 5, OK: 1, Errors: 2}
			switch tc.kind {
			case Reset:
				want.Resets = 2
			case Throttled:
				want.Throttled = 2
			default:
				want.Errors += 2
			}
			if st.Calls != want.Calls || st.OK != want.OK || st.Errors != want.Errors || st.Resets != want.Resets || st.Throttled != want.Throttled {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
			if tc.code != "" && st.ByCode[tc.code] != 2 {
				t.Errorf("ByCode = %v", st.ByCode)
			}
		})
	}
}

func TestFailNextAnyRegion(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	c := newClient(t, s, clientOptions{})
	s.FailNext(actAuthz, "", 2, ServiceUnavailable)
	_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("ap-southeast-1", "vco-sg00000000000001"))
	wantSDKError(t, err, "ServiceUnavailable", 503)
	_, err = c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
	wantSDKError(t, err, "ServiceUnavailable", 503)
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
		t.Errorf("after two faults: %v", err)
	}
}

func TestRandomFaults(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	c := newClient(t, s, clientOptions{})
	run := func() []string {
		var out []string
		for range 40 {
			_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
			out = append(out, outcomeOf(t, err))
		}
		return out
	}
	faults := RandomFaults{Throttle: 0.2, ServiceUnavailable: 0.15, InternalError: 0.1, Reset: 0.1, Seed: 42}
	s.SetRandomFaults(faults)
	first := run()
	s.SetRandomFaults(faults)
	second := run()
	if strings.Join(first, ",") != strings.Join(second, ",") {
		t.Errorf("same seed, different outcomes:\n%v\n%v", first, second)
	}
	seen := map[string]int{}
	for _, o := range first {
		seen[o]++
	}
	for _, o := range []string{"ok", "Throttling.User", "ServiceUnavailable", "InternalError", "transport"} {
		if seen[o] == 0 {
			t.Errorf("no %s in %v", o, first)
		}
	}
	st := s.Stats().Total()
	if st.Calls != 80 || st.OK+st.Throttled+st.Errors+st.Resets != 80 || st.Resets != 2*seen["transport"] || st.OK != 2*seen["ok"] {
		t.Errorf("stats = %+v, outcomes %v", st, seen)
	}

	s.SetRandomFaults(RandomFaults{Throttle: 1})
	for range 3 {
		_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
		wantSDKError(t, err, "Throttling.User", 400)
	}
	s.SetRandomFaults(RandomFaults{})
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID)); err != nil {
		t.Errorf("faults off: %v", err)
	}
}

// TestLatency checks only lower bounds of time, which load cannot break; a
// latency that is not applied, or not lifted, shows as a call that waits an
// hour (and the test's timeout), not as a narrow window missed.
func TestLatency(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t), Latency: 60 * time.Millisecond})
	c := newClient(t, s, clientOptions{})
	timed := func(region, id string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest(region, id)); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := timed("cn-hangzhou", knownID); d < 60*time.Millisecond {
		t.Errorf("call took %v with 60ms latency", d)
	}
	// A latency function overrides the fixed latency, per action and region.
	s.SetLatency(time.Hour)
	var mu sync.Mutex
	var asked []CallKey
	s.SetLatencyFunc(func(action, region string) time.Duration {
		mu.Lock()
		asked = append(asked, CallKey{Action: action, Region: region})
		mu.Unlock()
		if action == actAuthz && region == "ap-southeast-1" {
			return 100 * time.Millisecond
		}
		return 0
	})
	if d := timed("ap-southeast-1", "vco-sg00000000000001"); d < 100*time.Millisecond {
		t.Errorf("slow region took %v", d)
	}
	timed("cn-hangzhou", knownID)
	want := []CallKey{{Action: actAuthz, Region: "ap-southeast-1"}, {Action: actAuthz, Region: "cn-hangzhou"}}
	if mu.Lock(); !slices.Equal(asked, want) {
		t.Errorf("latency asked for %v, want %v", asked, want)
	}
	mu.Unlock()
	s.SetLatencyFunc(nil)
	s.SetLatency(0)
	timed("cn-hangzhou", knownID)
}

// TestCloseEndsWaitingCalls: a call waiting out its latency is answered at
// once on Close, not cut off when the server's shutdown gives up on it.
func TestCloseEndsWaitingCalls(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t), Latency: time.Hour})
	c := newClient(t, s, clientOptions{})
	arrived := make(chan CallKey, 1)
	s.SetArrivalHook(func(k CallKey) { arrived <- k })
	done := make(chan error, 1)
	go func() {
		_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
		done <- err
	}()
	if k := <-arrived; k != (CallKey{Action: actAuthz, Region: "cn-hangzhou"}) {
		t.Errorf("arrived %v", k)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Errorf("waiting call after Close: %v, want its answer", err)
	}
}

func TestInventoryChangesWhileServing(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	c := newClient(t, s, clientOptions{})
	count := func(region, id string) int {
		t.Helper()
		resp, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest(region, id))
		if err != nil {
			t.Fatalf("%s %s: %v", region, id, err)
		}
		return int(dara.Int32Value(resp.Body.TotalCount))
	}
	partner := Authorization{BindUid: 1999000011112222, BindProduct: "CEN", BindInstance: "cen-new", CreationTime: 1}
	if err := s.Grant("cn-hangzhou", knownID, partner); err != nil {
		t.Fatal(err)
	}
	if n := count("cn-hangzhou", knownID); n != 2 {
		t.Errorf("after Grant: %d authorizations", n)
	}
	if err := s.Revoke("cn-hangzhou", knownID, 1999000011112222, "cen-new"); err != nil {
		t.Fatal(err)
	}
	if n := count("cn-hangzhou", knownID); n != 1 {
		t.Errorf("after Revoke: %d authorizations", n)
	}
	if err := s.Revoke("cn-hangzhou", knownID, 1999000011112222, "cen-new"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Revoke: %v", err)
	}
	if err := s.Grant("cn-hangzhou", "vco-missing", partner); !errors.Is(err, ErrNotFound) {
		t.Errorf("Grant on a missing connection: %v", err)
	}

	s.PutConnection("cn-hangzhou", Connection{VpnConnectionId: knownID, Name: "replaced"})
	if n := count("cn-hangzhou", knownID); n != 0 {
		t.Errorf("after replace: %d authorizations", n)
	}
	s.PutConnection("cn-beijing", Connection{VpnConnectionId: "vco-new", Authorizations: []Authorization{partner}})
	if n := count("cn-beijing", "vco-new"); n != 1 {
		t.Errorf("new region: %d authorizations", n)
	}
	if !s.DeleteConnection("cn-beijing", "vco-new") || s.DeleteConnection("cn-beijing", "vco-new") {
		t.Error("DeleteConnection should report true once")
	}
	_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-beijing", "vco-new"))
	wantSDKError(t, err, "InvalidVpnConnectionInstanceId.NotFound", 404)

	snap := s.Snapshot()
	snap.Regions["cn-hangzhou"][0].Name = "changed in the copy"
	snap.Regions["ap-southeast-1"][0].Authorizations[0].BindUid = 7
	again := s.Snapshot()
	if again.Regions["cn-hangzhou"][0].Name != "replaced" || again.Regions["ap-southeast-1"][0].Authorizations[0].BindUid == 7 {
		t.Error("Snapshot is not a deep copy")
	}
	if again.AccountID != "1250123456123456" || len(again.Regions["cn-beijing"]) != 0 {
		t.Errorf("snapshot = %+v", again)
	}
}

func TestConcurrentCallsAndChanges(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	s.SetLatency(time.Millisecond)
	s.SetQuota(1e6, 1000)
	const workers, perWorker = 6, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each client gets its own HTTP client: the SDK's shared default one
			// writes its Timeout while other calls read it (a race in the SDK).
			c := newClient(t, s, clientOptions{ak: stsAK, secret: stsSecret, token: stsToken, httpClient: newHookClient(nil)})
			for i := range perWorker {
				var err error
				if (w+i)%2 == 0 {
					_, err = c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
				} else {
					_, err = c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-hangzhou")})
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	stop := make(chan struct{})
	changed := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				changed <- n
				return
			default:
			}
			a := Authorization{BindUid: int64(2000 + n), BindProduct: "CEN", BindInstance: fmt.Sprintf("cen-%d", n)}
			_ = s.Grant("cn-hangzhou", knownID, a)
			s.PutConnection("cn-hangzhou", Connection{VpnConnectionId: "vco-churn"})
			_ = s.Revoke("cn-hangzhou", knownID, a.BindUid, "")
			s.DeleteConnection("cn-hangzhou", "vco-churn")
			_ = s.Stats()
			_ = s.Snapshot()
			n++
			time.Sleep(200 * time.Microsecond) // leave the locks to the calls now and then
		}
	}()
	wg.Wait()
	close(stop)
	if n := <-changed; n == 0 {
		t.Error("no changes ran")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats().Total(); st.Calls != workers*perWorker || st.OK != workers*perWorker {
		t.Errorf("stats = %+v", st)
	}
}
