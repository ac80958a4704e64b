package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"vpnauthz/internal/endpoint"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcapiemu"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/retry"
)

const (
	fnAK     = "STS.coordinatorKey"
	fnSecret = "coordinatorSecret0123"
	fnToken  = "CAIScoordinatorToken"
)

var creds = cloudapi.Credentials{AccessKeyID: fnAK, AccessKeySecret: fnSecret, SecurityToken: fnToken}

// worker stands in for the function behind the runtime API: it takes
// invocations and answers them, failing those fail says to.
type worker struct {
	mu       sync.Mutex
	payloads []Payload
	retries  []string // x-fc-retry-count of each delivery
	fail     func(p Payload, retry string) bool
}

func (w *worker) run(ctx context.Context, t testing.TB, addr string) {
	base := "http://" + addr + "/2020-11-11/runtime/invocation/"
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"next", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return
		}
		id, retry := resp.Header.Get("x-fc-request-id"), resp.Header.Get("x-fc-retry-count")
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var p Payload
		if err := dec.Decode(&p); err != nil {
			t.Errorf("worker payload %s: %v", data, err)
		}
		w.mu.Lock()
		w.payloads = append(w.payloads, p)
		w.retries = append(w.retries, retry)
		failing := w.fail != nil && w.fail(p, retry)
		w.mu.Unlock()
		path, body := "/response", `{"ok":true}`
		if failing {
			path, body = "/error", `{"errorMessage":"worker failed","errorType":"UnhandledInvocationError"}`
		}
		post, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+id+path, strings.NewReader(body))
		if r, err := http.DefaultClient.Do(post); err == nil {
			r.Body.Close()
		}
	}
}

type env struct {
	api    *fcapiemu.Server
	worker *worker
}

func newEnv(t testing.TB, retries int, fail func(Payload, string) bool) *env {
	t.Helper()
	rt, err := fcemu.New()
	if err != nil {
		t.Fatal(err)
	}
	api, err := fcapiemu.New(fcapiemu.Options{
		Runtime:      rt,
		Credentials:  []cred.Credential{{AccessKeyID: fnAK, AccessKeySecret: fnSecret, SecurityToken: fnToken}},
		AsyncRetries: retries,
		Invocation:   fcemu.Invocation{Region: "cn-hangzhou", AccountID: "1000000000000001"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{fail: fail}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, t, rt.Addr()) }()
	}
	t.Cleanup(func() {
		api.Close()
		cancel()
		rt.Close()
		wg.Wait()
	})
	return &env{api: api, worker: w}
}

func (e *env) dispatcher(t testing.TB, mod func(*Options)) *Dispatcher {
	t.Helper()
	o := Options{Endpoint: endpoint.MustParse(e.api.URL()), Credentials: creds, FunctionName: "vpnauthz",
		Retry: retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}}
	if mod != nil {
		mod(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *env) waitIdle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.api.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

func accounts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("2%015d", i)
	}
	return out
}

func TestTwoThousandAccountsInFortyInvocations(t *testing.T) {
	e := newEnv(t, 0, nil)
	all := accounts(2000)
	batches := Batches(all, 50)
	res, err := e.dispatcher(t, nil).Dispatch(context.Background(), "5f3a9c0e12ab34cd", batches)
	if err != nil {
		t.Fatalf("Dispatch: %v", err)
	}
	e.waitIdle(t)
	if len(res) != 40 {
		t.Fatalf("%d batches, want 40", len(res))
	}
	for i, r := range res {
		if r.Batch != i+1 || r.TaskID != fmt.Sprintf("vpnauthz-5f3a9c0e12ab34cd-%d", i+1) || r.AlreadyStarted || r.Accounts != 50 || r.RequestID == "" {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	st := e.api.Stats()
	if st.Calls != 40 || st.Async != 40 || st.Deliveries != 40 || st.Succeeded != 40 {
		t.Errorf("FC stats = %+v, want 40 calls, 40 deliveries", st)
	}
	var got []string
	batchSeen := map[int]bool{}
	for _, p := range e.worker.payloads {
		if p.ScanID != "5f3a9c0e12ab34cd" || p.Batches != 40 || batchSeen[p.Batch] {
			t.Errorf("payload %+v", p)
		}
		batchSeen[p.Batch] = true
		got = append(got, p.Accounts...)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(all, ",") {
		t.Errorf("workers got %d accounts, want each of the 2000 once", len(got))
	}
}

func TestRetriedCoordinatorStartsNoBatchTwice(t *testing.T) {
	e := newEnv(t, 0, nil)
	batches := Batches(accounts(120), 50)
	d := e.dispatcher(t, nil)
	if _, err := d.Dispatch(context.Background(), "scan-1", batches); err != nil {
		t.Fatal(err)
	}
	res, err := d.Dispatch(context.Background(), "scan-1", batches)
	if err != nil {
		t.Fatalf("second dispatch: %v", err)
	}
	for _, r := range res {
		if !r.AlreadyStarted {
			t.Errorf("batch %d not reported as already started", r.Batch)
		}
	}
	e.waitIdle(t)
	if st := e.api.Stats(); st.Duplicates != 3 || st.Async != 3 || st.Deliveries != 3 || st.ByCode["StatefulAsyncInvocationAlreadyExists"] != 3 {
		t.Errorf("FC stats = %+v, want 3 tasks and 3 refused repeats", st)
	}
}

func TestFailedWorkerRetriedByFC(t *testing.T) {
	e := newEnv(t, 2, func(p Payload, retry string) bool {
		return (p.Batch == 2 && retry == "0") || p.Batch == 3
	})
	if _, err := e.dispatcher(t, nil).Dispatch(context.Background(), "scan-2", Batches(accounts(150), 50)); err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t)
	tasks := e.api.Tasks()
	want := map[string]struct {
		attempts int
		status   string
	}{"scan-2-1": {1, "Succeeded"}, "scan-2-2": {2, "Succeeded"}, "scan-2-3": {3, "Failed"}}
	for _, task := range tasks {
		w := want[task.ID]
		if task.Attempts != w.attempts || task.Status != w.status {
			t.Errorf("task %s: %d attempts, %s; want %d, %s", task.ID, task.Attempts, task.Status, w.attempts, w.status)
		}
	}
	if st := e.api.Stats(); st.Retries != 3 || st.Failed != 1 || st.Succeeded != 2 {
		t.Errorf("FC stats = %+v", st)
	}
}

func TestDispatchErrors(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.api.FailNext(1, "ServiceUnavailable")
	res, err := e.dispatcher(t, nil).Dispatch(context.Background(), "scan-3", Batches(accounts(10), 50))
	if err != nil || res[0].AlreadyStarted {
		t.Fatalf("a 503 then success: %v %+v", err, res)
	}
	if st := e.api.Stats(); st.Calls != 2 || st.Async != 1 {
		t.Errorf("stats = %+v, want the 503 retried once", st)
	}

	// Throttling (429) is asked again past MaxAttempts; a server error is
	// not.
	for _, tt := range []struct {
		code      string
		failures  int
		wantCalls int
		wantErr   bool
	}{
		{"ResourceExhausted", 4, 5, false},
		{"InternalServerError", 3, 3, true},
	} {
		before := e.api.Stats().Calls
		e.api.FailNext(tt.failures, tt.code)
		_, err := e.dispatcher(t, nil).Dispatch(context.Background(), "scan-"+tt.code, Batches(accounts(10), 50))
		if n := e.api.Stats().Calls - before; n != tt.wantCalls || (err != nil) != tt.wantErr {
			t.Errorf("%d × %s: %d calls, err %v; want %d calls, error %v", tt.failures, tt.code, n, err, tt.wantCalls, tt.wantErr)
		}
	}

	tests := []struct {
		name string
		mod  func(*Options)
		code string
	}{
		{"no such function", func(o *Options) { o.FunctionName = "nope" }, "FunctionNotFound"},
		{"wrong secret", func(o *Options) {
			o.Credentials = cloudapi.Credentials{AccessKeyID: fnAK, AccessKeySecret: "wrong", SecurityToken: fnToken}
		}, "SignatureNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.api.Stats()
			_, err := e.dispatcher(t, tt.mod).Dispatch(context.Background(), "scan-4", Batches(accounts(60), 50))
			var ae *cloudapi.APIError
			if !errors.As(err, &ae) || ae.Code != tt.code || !strings.Contains(err.Error(), "batch 1") {
				t.Fatalf("err = %v, want %s naming the batch", err, tt.code)
			}
			if strings.Contains(err.Error(), fnToken) || strings.Contains(err.Error(), fnSecret) {
				t.Errorf("error holds a secret: %v", err)
			}
			if n := e.api.Stats().ByCode[tt.code] - before.ByCode[tt.code]; n != 2 {
				t.Errorf("%d %s answers for 2 batches: a final answer is not asked again", n, tt.code)
			}
		})
	}
}

func TestBatchesAndTaskIDs(t *testing.T) {
	for _, tt := range []struct{ n, per, batches, last int }{{0, 50, 0, 0}, {1, 50, 1, 1}, {50, 50, 1, 50}, {51, 50, 2, 1}, {2000, 50, 40, 50}, {7, 0, 1, 7}} {
		b := Batches(accounts(tt.n), tt.per)
		if len(b) != tt.batches || (tt.batches > 0 && len(b[len(b)-1]) != tt.last) {
			t.Errorf("Batches(%d, %d): %d batches", tt.n, tt.per, len(b))
		}
	}
	for _, tt := range []struct {
		scan  string
		batch int
		want  string
	}{
		{"scanA", 1, "scanA-1"},
		{"0193f2a4", 7, "vpnauthz-0193f2a4-7"},
		{"a.b/c", 2, "a_b_c-2"},
	} {
		if got := TaskID(tt.scan, tt.batch); got != tt.want {
			t.Errorf("TaskID(%q, %d) = %q, want %q", tt.scan, tt.batch, got, tt.want)
		}
	}
	if id := TaskID(strings.Repeat("x", 200), 3); len(id) != 128 || !taskIDPattern.MatchString(id) {
		t.Errorf("long TaskID = %q (%d)", id, len(id))
	}
	for _, o := range []Options{{Endpoint: endpoint.Endpoint{Scheme: "http", Host: "fc.example.com"}, FunctionName: "f", Credentials: creds}, {Region: "cn-hangzhou", Credentials: creds}, {FunctionName: "f", Credentials: creds}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// BenchmarkDispatchTwoThousandAccounts dispatches 2,000 accounts in batches
// of 50: 40 InvokeFunction calls per coordinator run.
func BenchmarkDispatchTwoThousandAccounts(b *testing.B) {
	e := newEnv(b, 0, nil)
	batches := Batches(accounts(2000), 50)
	d := e.dispatcher(b, nil)
	n := 0
	for b.Loop() {
		n++
		res, err := d.Dispatch(context.Background(), fmt.Sprintf("bench-%d", n), batches)
		if err != nil || len(res) != 40 {
			b.Fatalf("%v, %d batches", err, len(res))
		}
	}
	b.StopTimer()
	e.waitIdle(b)
	b.ReportMetric(float64(e.api.Stats().Calls)/float64(n), "calls/op")
}
