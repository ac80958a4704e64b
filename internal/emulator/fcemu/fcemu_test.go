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
	// Registered after the server's Close, so it runs first: the runtime
	// would spin on a closed API otherwise.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("echofn output:\n%s", output.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for s.Polls() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("echofn never polled; output:\n%s", output.String())
		}
		time.Sleep(10 * time.Millisecond)
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
	deadline := time.UnixMilli(got.DeadlineUnixMs)
	if d := deadline.Sub(sent.Add(7 * time.Second)); d < -time.Second || d > time.Second {
		t.Errorf("function deadline %v is %v off send time + 7s", deadline, d)
	}
	if res.RequestID != "req-0001" || res.Error != nil || res.Duration <= 0 || res.Duration > 5*time.Second {
		t.Errorf("result %+v", res)
	}
}

func TestDefaults(t *testing.T) {
	s := newServer(t)
	startFunction(t, s)
	sent := time.Now()
	res := invoke(t, s, Invocation{Payload: []byte(`{}`)})
	got := decodeReply(t, res)
	if got.FunctionName != "vpnauthz" || got.Handler != "main" || got.TimeoutSeconds != 60 || got.Memory != "512" {
		t.Errorf("defaults: %+v", got)
	}
	if got.RequestID == "" || got.RequestID != res.RequestID {
		t.Errorf("generated request id %q, result says %q", got.RequestID, res.RequestID)
	}
	if d := time.UnixMilli(got.DeadlineUnixMs).Sub(sent.Add(time.Minute)); d < -time.Second || d > time.Second {
		t.Errorf("deadline %v off send time + 60s", d)
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Invoke(ctx, Invocation{RequestID: "abandoned", Payload: []byte(`{}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke without a runtime: %v, want deadline exceeded", err)
	}
	// The abandoned invocation is not handed to a later poll.
	client := &http.Client{Timeout: 300 * time.Millisecond}
	resp, err := client.Get("http://" + s.Addr() + "/2020-11-11/runtime/invocation/next")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("poll got invocation %q", resp.Header.Get("x-fc-request-id"))
	}
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
	time.Sleep(20 * time.Millisecond) // let it queue

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
	for s2.Polls() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	s.Close()
	s2.Close()
	for name, ch := range map[string]chan error{"delivered": delivered, "queued": queued} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s Invoke after Close: %v, want ErrClosed", name, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s Invoke still blocked after Close", name)
		}
	}
	select {
	case err := <-parked:
		var got *invocationLeak
		if errors.As(err, &got) {
			t.Error(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("poll still blocked after Close")
	}
}

type invocationLeak struct{ requestID string }

func (e *invocationLeak) Error() string { return "a poll got invocation " + e.requestID }
