package fcemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/testutil"
)

// echofnPath is the test function, built once for the package.
var echofnPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fcemu-echofn-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echofnPath = filepath.Join(dir, "echofn")
	build := exec.Command("go", "build", "-o", echofnPath, "./internal/echofn")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build echofn: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newServer(t *testing.T) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// startFunction runs echofn against s until the test ends; it returns once
// the runtime is polling.
func startFunction(t *testing.T, s *Server) {
	t.Helper()
	var output testutil.Buffer
	cmd := exec.Command(echofnPath)
	cmd.Env = append(os.Environ(), "FC_RUNTIME_API="+s.Addr())
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start echofn: %v", err)
	}
	// The wait for the first poll ends when the process does, so a function
	// that cannot start fails the test instead of hanging it.
	ctx, exited := context.WithCancel(context.Background())
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		exited()
		close(waited)
	}()
	// Registered after the server's Close, so it runs first: the runtime
	// would spin on a closed API otherwise.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
		if t.Failed() {
			t.Logf("echofn output:\n%s", output.String())
		}
	})
	if err := s.AwaitPolls(ctx, 1); err != nil {
		t.Fatalf("echofn never polled (%v); output:\n%s", err, output.String())
	}
}

// checkDeadline checks the deadline the function saw: timeout after its
// delivery, which happened between sent and back.
func checkDeadline(t *testing.T, deadlineMs int64, timeout time.Duration, sent, back time.Time) {
	t.Helper()
	if lo, hi := sent.Add(timeout).UnixMilli(), back.Add(timeout).UnixMilli(); deadlineMs < lo || deadlineMs > hi {
		t.Errorf("function deadline %d ms is outside [%d, %d]: send time + %v to answer time + %v", deadlineMs, lo, hi, timeout, timeout)
	}
}

// reply mirrors echofn's Reply.
type reply struct {
	Echo            json.RawMessage `json:"echo"`
	RequestID       string          `json:"requestId"`
	AccessKeyID     string          `json:"accessKeyId"`
	AccessKeySecret string          `json:"accessKeySecret"`
	SecurityToken   string          `json:"securityToken"`
	FunctionName    string          `json:"functionName"`
	Handler         string          `json:"handler"`
	Memory          string          `json:"memory"`
	TimeoutSeconds  int             `json:"timeoutSeconds"`
	Region          string          `json:"region"`
	AccountID       string          `json:"accountId"`
	RetryCount      int             `json:"retryCount"`
	LogProject      string          `json:"logProject"`
	LogStore        string          `json:"logStore"`
	Qualifier       string          `json:"qualifier"`
	HasDeadline     bool            `json:"hasDeadline"`
	DeadlineUnixMs  int64           `json:"deadlineUnixMs"`
}

func invoke(t *testing.T, s *Server, inv Invocation) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.Invoke(ctx, inv)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return res
}

func decodeReply(t *testing.T, res Result) reply {
	t.Helper()
	if res.Error != nil {
		t.Fatalf("function failed: %+v", *res.Error)
	}
	var r reply
	if err := json.Unmarshal(res.Response, &r); err != nil {
		t.Fatalf("response %s: %v", res.Response, err)
	}
	return r
}

func TestPayloadInResponseOut(t *testing.T) {
	s := newServer(t)
	startFunction(t, s)

	inv := Invocation{
		RequestID:       "req-0001",
		Payload:         []byte(`{"echo":{"vpn":"vco-123","n":[1,2,3]}}`),
		AccessKeyID:     "STS.Key1",
		AccessKeySecret: "secret1",
		SecurityToken:   "token1",
		FunctionName:    "vpn-scan",
		Handler:         "bootstrap",
		Timeout:         7 * time.Second,
		Region:          "cn-shanghai",
		AccountID:       "1234567890",
		RetryCount:      2,
		MemoryMB:        256,
		LogProject:      "vpn-audit",
		LogStore:        "fc-logs",
	}
	sent := time.Now()
	res := invoke(t, s, inv)
	back := time.Now()
	got := decodeReply(t, res)
	want := reply{
		Echo: json.RawMessage(`{"vpn":"vco-123","n":[1,2,3]}`), RequestID: "req-0001",
		AccessKeyID: "STS.Key1", AccessKeySecret: "secret1", SecurityToken: "token1",
		FunctionName: "vpn-scan", Handler: "bootstrap", Memory: "256", TimeoutSeconds: 7,
		Region: "cn-shanghai", AccountID: "1234567890", RetryCount: 2,
		LogProject: "vpn-audit", LogStore: "fc-logs", Qualifier: "LATEST",
		HasDeadline: true, DeadlineUnixMs: got.DeadlineUnixMs,
	}
	if !bytes.Equal(got.Echo, want.Echo) {
		t.Errorf("echo %s, want %s", got.Echo, want.Echo)
	}
	got.Echo, want.Echo = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("function saw\n %+v\nwant\n %+v", got, want)
	}
	// ctx.Deadline() in the function is Timeout after delivery.
	checkDeadline(t, got.DeadlineUnixMs, 7*time.Second, sent, back)
	if res.RequestID != "req-0001" || res.Error != nil || res.Duration <= 0 || res.Duration > back.Sub(sent) {
		t.Errorf("result %+v, want a duration within the %v the call took", res, back.Sub(sent))
	}
}

func TestDefaults(t *testing.T) {
	s := newServer(t)
	startFunction(t, s)
	sent := time.Now()
	res := invoke(t, s, Invocation{Payload: []byte(`{}`)})
	back := time.Now()
	got := decodeReply(t, res)
	if got.FunctionName != "vpnauthz" || got.Handler != "main" || got.TimeoutSeconds != 60 || got.Memory != "512" {
		t.Errorf("defaults: %+v", got)
	}
	if got.RequestID == "" || got.RequestID != res.RequestID {
		t.Errorf("generated request id %q, result says %q", got.RequestID, res.RequestID)
	}
	checkDeadline(t, got.DeadlineUnixMs, time.Minute, sent, back)
}

func TestHandlerErrors(t *testing.T) {
	s := newServer(t)
	startFunction(t, s)
	tests := []struct {
		name, payload       string
		wantMessage, wantTy string
		wantStack           bool
	}{
		{"returned error", `{"fail":"scan failed: throttled"}`, "scan failed: throttled", "errorString", false},
		{"typed error", `{"fail":"bad event","failType":"InvalidEvent"}`, "bad event", "InvalidEvent", false},
		{"panic", `{"panic":"nil map"}`, "nil map", "string", true},
		{"payload not JSON", `not json`, "", "SyntaxError", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := invoke(t, s, Invocation{Payload: []byte(tt.payload)})
			if res.Response != nil || res.Error == nil {
				t.Fatalf("result %+v, want an error", res)
			}
			if tt.wantMessage != "" && res.Error.ErrorMessage != tt.wantMessage {
				t.Errorf("errorMessage %q, want %q", res.Error.ErrorMessage, tt.wantMessage)
			}
			if res.Error.ErrorType != tt.wantTy {
				t.Errorf("errorType %q, want %q", res.Error.ErrorType, tt.wantTy)
			}
			if hasStack := len(res.Error.StackTrace) > 0; hasStack != tt.wantStack {
				t.Errorf("stack trace %s, want one: %v", res.Error.StackTrace, tt.wantStack)
			}
		})
	}
	// The runtime keeps serving after errors and panics.
	decodeReply(t, invoke(t, s, Invocation{Payload: []byte(`{"echo":1}`)}))
}

func TestConcurrentInvocationsKeepTheirCredentials(t *testing.T) {
	s := newServer(t)
	startFunction(t, s)
	const n = 5
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := range n {
		wg.Go(func() {
			// Every call waits until all five have reached the function, so
			// this passes only if they are outstanding at the same time.
			results[i], errs[i] = s.Invoke(ctx, Invocation{
				RequestID:       "req-" + strconv.Itoa(i),
				Payload:         []byte(fmt.Sprintf(`{"echo":%d,"waitForPeers":%d}`, i, n)),
				AccessKeyID:     "STS.Key" + strconv.Itoa(i),
				AccessKeySecret: "secret" + strconv.Itoa(i),
				SecurityToken:   "token" + strconv.Itoa(i),
			})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("invoke %d: %v", i, errs[i])
		}
		got := decodeReply(t, results[i])
		id := strconv.Itoa(i)
		if got.RequestID != "req-"+id || results[i].RequestID != "req-"+id || string(got.Echo) != id ||
			got.AccessKeyID != "STS.Key"+id || got.AccessKeySecret != "secret"+id || got.SecurityToken != "token"+id {
			t.Errorf("invoke %d got %+v", i, got)
		}
	}
}

// TestRuntimeProtocol drives the runtime API by hand, as the SDK does.
func TestRuntimeProtocol(t *testing.T) {
	s := newServer(t)
	base := "http://" + s.Addr() + "/2020-11-11/runtime/invocation/"
	done := make(chan Result, 1)
	go func() {
		res, err := s.Invoke(context.Background(), Invocation{RequestID: "r-1", Payload: []byte(`"hi"`), Timeout: 1500 * time.Millisecond, RetryCount: 1})
		if err != nil {
			t.Errorf("Invoke: %v", err)
		}
		done <- res
	}()

	resp, err := http.Get(base + "next")
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(payload) != `"hi"` {
		t.Fatalf("next: %d %q", resp.StatusCode, payload)
	}
	for name, want := range map[string]string{
		"x-fc-request-id": "r-1", "x-fc-function-timeout": "2", "x-fc-retry-count": "1",
		"x-fc-function-name": "vpnauthz", "x-fc-function-handler": "main",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, err := strconv.ParseInt(resp.Header.Get("x-fc-function-deadline"), 10, 64); err != nil {
		t.Errorf("x-fc-function-deadline %q: %v", resp.Header.Get("x-fc-function-deadline"), err)
	}

	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("unknown-id/response", `{}`); code != http.StatusNotFound {
		t.Errorf("response for an unknown id: %d, want 404", code)
	}
	if code := post("r-1/response", `{"ok":true}`); code != http.StatusOK {
		t.Fatalf("response: %d", code)
	}
	if res := <-done; string(res.Response) != `{"ok":true}` || res.RequestID != "r-1" {
		t.Errorf("result %+v", res)
	}
	if code := post("r-1/error", `{"errorMessage":"late","errorType":"x"}`); code != http.StatusNotFound {
		t.Errorf("second answer for r-1: %d, want 404", code)
	}
}

func TestInvokeGivesUpWhenContextEnds(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	abandoned := make(chan error, 1)
	go func() {
		_, err := s.Invoke(ctx, Invocation{RequestID: "abandoned", Payload: []byte(`{}`)})
		abandoned <- err
	}()
	if err := s.AwaitInvocations(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke without a runtime: %v, want canceled", err)
	}

	// The abandoned invocation is not handed to a later poll: the poll's
	// invocation is the one that comes next.
	polled := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/2020-11-11/runtime/invocation/next")
		if err != nil {
			t.Errorf("poll: %v", err)
			polled <- ""
			return
		}
		resp.Body.Close()
		polled <- resp.Header.Get("x-fc-request-id")
	}()
	if err := s.AwaitPolls(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	next, cancelNext := context.WithCancel(context.Background())
	go func() { _, _ = s.Invoke(next, Invocation{RequestID: "next", Payload: []byte(`{}`)}) }()
	if id := <-polled; id != "next" {
		t.Errorf("poll got invocation %q, want %q", id, "next")
	}
	cancelNext()
}

func TestCloseUnblocksPollsAndInvokes(t *testing.T) {
	s := newServer(t)
	next := "http://" + s.Addr() + "/2020-11-11/runtime/invocation/next"

	// One invocation delivered to a poll that never answers, one queued with
	// no poll to take it, and one poll parked with nothing to take.
	delivered := make(chan error, 1)
	go func() {
		_, err := s.Invoke(context.Background(), Invocation{RequestID: "delivered"})
		delivered <- err
	}()
	resp, err := http.Get(next)
	if err != nil || resp.Header.Get("x-fc-request-id") != "delivered" {
		t.Fatalf("poll: %v", err)
	}
	resp.Body.Close()
	queued := make(chan error, 1)
	go func() {
		_, err := s.Invoke(context.Background(), Invocation{RequestID: "queued"})
		queued <- err
	}()
	if err := s.AwaitInvocations(context.Background(), 2); err != nil {
		t.Fatal(err)
	}

	s2 := newServer(t)
	parked := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s2.Addr() + "/2020-11-11/runtime/invocation/next")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				err = &invocationLeak{resp.Header.Get("x-fc-request-id")}
			}
		}
		parked <- err
	}()
	if err := s2.AwaitPolls(context.Background(), 1); err != nil {
		t.Fatal(err)
	}

	s.Close()
	s2.Close()
	// Each of these would block the test (until its timeout) if Close left it waiting.
	for name, ch := range map[string]chan error{"delivered": delivered, "queued": queued} {
		if err := <-ch; !errors.Is(err, ErrClosed) {
			t.Errorf("%s Invoke after Close: %v, want ErrClosed", name, err)
		}
	}
	var leak *invocationLeak
	if err := <-parked; errors.As(err, &leak) {
		t.Error(err)
	}
	if err := s.AwaitPolls(context.Background(), 100); !errors.Is(err, ErrClosed) {
		t.Errorf("AwaitPolls after Close: %v, want ErrClosed", err)
	}
}

type invocationLeak struct{ requestID string }

func (e *invocationLeak) Error() string { return "a poll got invocation " + e.requestID }
