package slsemu

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/testutil"
)

func TestBusyNextThenRecovery(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))

	s.BusyNext(2)
	func() {
		noServerRetries(t)
		se := assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusServiceUnavailable, "ServerBusy")
		if se.Message != "The server is busy, please try again later." {
			t.Errorf("message %q", se.Message)
		}
		sls.RetryOnServerErrorEnabled = true
	}()

	// The SDK retries 503 with backoff; the call succeeds once the server recovers.
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("PutLogs across the busy answers: %v", err)
	}
	st := s.Stats()
	if st.ErrorsByCode["ServerBusy"] != 2 || st.PutLogsCalls != 3 || st.PutLogsOK != 1 || st.LogsStored != 1 {
		t.Errorf("stats %+v: want 2 ServerBusy, then 1 accepted", st)
	}
}

func TestQuotaExceededNext(t *testing.T) {
	noServerRetries(t)
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))

	s.QuotaExceededNext(2)
	for i := range 2 {
		se := assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusForbidden, "WriteQuotaExceed")
		if se.Message != "Write quota is exceeded." {
			t.Errorf("call %d: message %q", i, se.Message)
		}
		// Reads are not throttled, and do not use up the fault.
		if _, err := c.GetLogStore(testProject, testLogstore); err != nil {
			t.Errorf("GetLogStore under write quota: %v", err)
		}
	}
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("after the quota answers: %v", err)
	}
	if st := s.Stats(); st.ErrorsByCode["WriteQuotaExceed"] != 2 || st.PutLogsOK != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestFaultWindowsFollowTheClock: BusyFor and QuotaExceededFor are windows of
// the server's clock, stepped here instead of waited out.
func TestFaultWindowsFollowTheClock(t *testing.T) {
	noServerRetries(t)
	// The clock starts at the real time: signatures and log times are checked by it.
	clock := testutil.NewClock(time.Now())
	s := newTestServer(t, Options{Now: clock.Now})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))

	s.BusyFor(2 * time.Second)
	assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusServiceUnavailable, "ServerBusy")
	clock.Advance(2*time.Second - time.Nanosecond)
	assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusServiceUnavailable, "ServerBusy")
	clock.Advance(time.Nanosecond)
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("at the end of the busy window: %v", err)
	}

	s.QuotaExceededFor(time.Minute)
	assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusForbidden, "WriteQuotaExceed")
	if _, err := c.GetLogStore(testProject, testLogstore); err != nil {
		t.Errorf("GetLogStore under write quota: %v", err)
	}
	clock.Advance(59 * time.Second)
	assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusForbidden, "WriteQuotaExceed")
	s.QuotaExceededFor(0)
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("after the quota window was lifted: %v", err)
	}
	if st := s.Stats(); st.ErrorsByCode["ServerBusy"] != 2 || st.ErrorsByCode["WriteQuotaExceed"] != 2 || st.PutLogsOK != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestFailNextPutLogs(t *testing.T) {
	noServerRetries(t)
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))

	s.FailNextPutLogs(2, http.StatusInternalServerError, "InternalServerError", "Internal server error message.")
	for i := range 2 {
		se := assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusInternalServerError, "InternalServerError")
		if se.Message != "Internal server error message." {
			t.Errorf("call %d: message %q", i, se.Message)
		}
	}
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("third call: %v", err)
	}
	st := s.Stats()
	if st.PutLogsCalls != 3 || st.PutLogsOK != 1 || st.ErrorsByCode["InternalServerError"] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestSetDownRefusesConnectionsThenServesOnSameAddress(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()

	s.SetDown(true)
	// The first call may still pick the keep-alive connection the server
	// just closed (EOF); the next one has to dial.
	assertSLSError(t, c.PutLogs(testProject, testLogstore, g), -1, "ClientError")
	se := assertSLSError(t, c.PutLogs(testProject, testLogstore, g), -1, "ClientError")
	if !strings.Contains(se.Message, "connection refused") {
		t.Errorf("message %q does not say connection refused", se.Message)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections", addr)
	}

	s.SetDown(false)
	if s.Addr() != addr {
		t.Errorf("address changed from %s to %s", addr, s.Addr())
	}
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("after SetDown(false): %v", err)
	}
	if got := len(s.Logs(testProject, testLogstore)); got != 2 {
		t.Errorf("stored %d logs, want 2", got)
	}
}

// TestSetDownDropsOpenConnections: a request waiting out an hour's latency
// ends with an error as soon as the server goes down; if it did not, the test
// would hang rather than pass.
func TestSetDownDropsOpenConnections(t *testing.T) {
	noServerRetries(t)
	s := newTestServer(t, Options{Latency: time.Hour})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	arrived := make(chan string, 1)
	s.SetArrivalHook(func(r *http.Request) { arrived <- r.URL.Path })
	done := make(chan error, 1)
	go func() { done <- c.PutLogs(testProject, testLogstore, group("t", "", nil, entry(time.Now(), "k", "v"))) }()
	// The SDK's PutLogs may first read the logstore: whichever request
	// arrives first is the one in flight.
	if path := <-arrived; !strings.HasPrefix(path, "/logstores/"+testLogstore) {
		t.Errorf("arrived %s, want a request of the PutLogs call", path)
	}
	s.SetDown(true)
	if err := <-done; err == nil {
		t.Fatal("PutLogs in flight succeeded although the server went down")
	}
	if got := len(s.Logs(testProject, testLogstore)); got != 0 {
		t.Errorf("stored %d logs", got)
	}
}

// TestLatency checks only a lower bound of time, which load cannot break; a
// latency not lifted shows as a call that waits an hour.
func TestLatency(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))
	s.SetLatency(100 * time.Millisecond)
	start := time.Now()
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("PutLogs took %v under 100ms latency", took)
	}
	s.SetLatency(time.Hour)
	s.SetLatency(0)
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatal(err)
	}
}
