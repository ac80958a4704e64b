package slsemu

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func TestBusyThenRecovery(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))

	s.BusyFor(2 * time.Second)
	busySince := time.Now()
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
		t.Fatalf("PutLogs across the busy period: %v", err)
	}
	if waited := time.Since(busySince); waited < 2*time.Second {
		t.Errorf("succeeded after %v, inside the busy period", waited)
	}
	st := s.Stats()
	if st.ErrorsByCode["ServerBusy"] < 2 || st.PutLogsOK != 1 || st.LogsStored != 1 {
		t.Errorf("stats %+v: want at least 2 ServerBusy, then 1 accepted", st)
	}
}

func TestQuotaExceeded(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))

	s.QuotaExceededFor(time.Hour)
	se := assertSLSError(t, c.PutLogs(testProject, testLogstore, g), http.StatusForbidden, "WriteQuotaExceed")
	if se.Message != "Write quota is exceeded." {
		t.Errorf("message %q", se.Message)
	}
	// Reads are not throttled.
	if _, err := c.GetLogStore(testProject, testLogstore); err != nil {
		t.Errorf("GetLogStore under write quota: %v", err)
	}
	s.QuotaExceededFor(0)
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatalf("after the quota period: %v", err)
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

func TestSetDownDropsOpenConnections(t *testing.T) {
	s := newTestServer(t, Options{Latency: 2 * time.Second})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	done := make(chan error, 1)
	go func() { done <- c.PutLogs(testProject, testLogstore, group("t", "", nil, entry(time.Now(), "k", "v"))) }()
	for s.Stats().Requests == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	s.SetDown(true)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("PutLogs in flight succeeded although the server went down")
		}
		if time.Since(start) > time.Second {
			t.Errorf("in-flight call ended %v after SetDown", time.Since(start))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("in-flight PutLogs still blocked after SetDown")
	}
	if got := len(s.Logs(testProject, testLogstore)); got != 0 {
		t.Errorf("stored %d logs", got)
	}
}

func TestLatency(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))
	s.SetLatency(300 * time.Millisecond)
	start := time.Now()
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("PutLogs took %v under 300ms latency", took)
	}
	s.SetLatency(0)
	start = time.Now()
	if err := c.PutLogs(testProject, testLogstore, g); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= 300*time.Millisecond {
		t.Errorf("PutLogs took %v without latency", took)
	}
}
