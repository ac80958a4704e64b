// Package fcapiemu emulates the Function Compute 3.0 OpenAPI call a
// coordinator makes: InvokeFunction (version 2023-03-30, ROA:
// POST /2023-03-30/functions/{name}/invocations, V3 signature as
// fc-20230330/v4 v4.8.2 sends it). Invocations reach the function through
// the emulated FC runtime API (fcemu), as FC would hand them to the built
// binary. Async invocations answer 202 at once and are delivered in the
// background, with FC's async retries of a failed attempt and task-id
// de-duplication (a repeated x-fc-async-task-id answers 409).
package fcapiemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/gateway"
)

const (
	pathPrefix = "/2023-03-30/functions/"
	pathSuffix = "/invocations"
	// maxAsyncPayload is FC's async invocation payload limit (128 KB).
	maxAsyncPayload = 128 << 10
	maxSyncPayload  = 32 << 20
	// DefaultAsyncRetries is FC's default maxAsyncRetryAttempts.
	DefaultAsyncRetries = 3
)

// Options configure a Server.
type Options struct {
	Addr        string
	Credentials []cred.Credential
	// Runtime is where invocations are delivered.
	Runtime *fcemu.Server
	// Functions are the function names that exist (default "vpnauthz").
	Functions []string
	// Invocation is the template of each delivery: the function's
	// credentials, region, account, timeout. Payload, RequestID and
	// RetryCount are set per delivery.
	Invocation fcemu.Invocation
	// AsyncRetries is maxAsyncRetryAttempts: how many times a failed async
	// attempt is tried again (0: DefaultAsyncRetries; < 0: never).
	AsyncRetries int
	// DeliveryTimeout bounds one delivery, from queueing to the function's
	// answer (default 10 minutes).
	DeliveryTimeout time.Duration
}

// Task is one async invocation.
type Task struct {
	ID        string
	Function  string
	Payload   []byte
	Attempts  int
	Status    string   // Enqueued, Running, Retrying, Succeeded, Failed
	Errors    []string // error type and message of each failed attempt
	RequestID string
}

// Stats are the call counters.
type Stats struct {
	Calls      int // InvokeFunction calls answered
	Async      int // async invocations accepted
	Sync       int
	Duplicates int // repeated task ids refused with 409
	Deliveries int // attempts handed to the function (retries included)
	Retries    int
	Succeeded  int
	Failed     int // tasks that failed every attempt
	ByCode     map[string]int
}

// Server is a running emulated FC OpenAPI.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	auth *gateway.Verifier
	opts Options
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	tasks    map[string]*Task
	order    []string
	failNext []string
	stats    Stats
	idle     *sync.Cond
	running  int
}

// New starts a server; it is serving when New returns.
func New(opts Options) (*Server, error) {
	if opts.Runtime == nil {
		return nil, fmt.Errorf("fcapiemu: no Runtime to deliver invocations to")
	}
	if len(opts.Functions) == 0 {
		opts.Functions = []string{"vpnauthz"}
	}
	switch {
	case opts.AsyncRetries == 0:
		opts.AsyncRetries = DefaultAsyncRetries
	case opts.AsyncRetries < 0:
		opts.AsyncRetries = 0
	}
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = 10 * time.Minute
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fcapiemu: listen %s: %w", addr, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		ln:    ln,
		auth:  &gateway.Verifier{Store: cred.NewStore(opts.Credentials...)},
		opts:  opts,
		ctx:   ctx,
		stop:  stop,
		tasks: map[string]*Task{},
		stats: Stats{ByCode: map[string]int{}},
	}
	s.idle = sync.NewCond(&s.mu)
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "http://127.0.0.1:PORT".
func (s *Server) URL() string { return "http://" + s.Addr() }

// Credentials is the store of callers' keys.
func (s *Server) Credentials() *cred.Store { return s.auth.Store }

// Close stops serving and abandons deliveries in progress.
func (s *Server) Close() {
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
}

// FailNext makes the next n InvokeFunction calls answer code
// ("ServiceUnavailable", "InternalServerError", "ResourceExhausted").
func (s *Server) FailNext(n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, code)
	}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.ByCode = map[string]int{}
	for k, v := range s.stats.ByCode {
		out.ByCode[k] = v
	}
	return out
}

// Tasks returns the async tasks in the order they were accepted.
func (s *Server) Tasks() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Task, 0, len(s.order))
	for _, id := range s.order {
		t := *s.tasks[id]
		t.Payload = append([]byte(nil), t.Payload...)
		t.Errors = append([]string(nil), t.Errors...)
		out = append(out, t)
	}
	return out
}

// WaitIdle waits until no async task is being delivered, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.idle.Broadcast()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.running > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fcapiemu: %d tasks still running: %w", s.running, err)
		}
		s.idle.Wait()
	}
	return nil
}

// errorBody is FC 3.0's error body.
type errorBody struct {
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	RequestId string `json:"RequestId"`
}

func (s *Server) fail(w http.ResponseWriter, requestID string, status int, code, message string) {
	s.mu.Lock()
	s.stats.ByCode[code]++
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-fc-request-id", requestID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Code: code, Message: message, RequestId: requestID})
}

// taskIDPattern: FC task ids start with a letter or '_' and hold letters,
// digits, '_' and '-', at most 128 characters (FC help, GetStatefulAsyncInvocation
// "statefulAsyncInvocationId" rules).
var taskIDPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSyncPayload+1))
	if err != nil {
		s.fail(w, requestID, 400, "InvalidArgument", "the request body could not be read")
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, pathPrefix)
	if ok {
		name, ok = strings.CutSuffix(name, pathSuffix)
	}
	if !ok || name == "" || strings.Contains(name, "/") || r.Method != http.MethodPost {
		s.fail(w, requestID, 400, "PathNotSupported", fmt.Sprintf("'%s' against '%s' is not supported", r.Method, r.URL.Path))
		return
	}
	if _, e := s.auth.Verify(r, body); e != nil {
		// FC's own codes for the gateway's refusals (FC error code list).
		code, status := "SignatureNotMatch", 403
		switch {
		case strings.HasPrefix(e.Code, "InvalidAccessKeyId"):
			code = "InvalidAccessKeyID"
		case strings.HasPrefix(e.Code, "InvalidSecurityToken"), e.Code == "MissingSecurityToken":
			code = "InvalidSecurityToken"
		case strings.HasPrefix(e.Code, "InvalidTimeStamp"), e.Code == "SignatureNonceUsed":
			code, status = "InvalidArgument", 400
		}
		s.fail(w, requestID, status, code, e.Message)
		return
	}
	s.mu.Lock()
	s.stats.Calls++
	var injected string
	if len(s.failNext) > 0 {
		injected, s.failNext = s.failNext[0], s.failNext[1:]
	}
	s.mu.Unlock()
	if injected != "" {
		status := 503
		switch injected {
		case "InternalServerError":
			status = 500
		case "ResourceExhausted":
			status = 429
		}
		s.fail(w, requestID, status, injected, "injected failure")
		return
	}
	if !contains(s.opts.Functions, name) {
		s.fail(w, requestID, 404, "FunctionNotFound", fmt.Sprintf("function '%s' does not exist", name))
		return
	}
	if !strings.EqualFold(r.Header.Get("x-fc-invocation-type"), "Async") {
		s.invokeSync(w, r.Context(), requestID, body)
		return
	}
	if len(body) > maxAsyncPayload {
		s.fail(w, requestID, 400, "EntityTooLarge", fmt.Sprintf("payload size exceeds maximum allowed size (%d bytes)", maxAsyncPayload))
		return
	}
	taskID := r.Header.Get("x-fc-async-task-id")
	if taskID == "" {
		taskID = requestID
	} else if !taskIDPattern.MatchString(taskID) {
		s.fail(w, requestID, 400, "InvalidArgument", fmt.Sprintf("invalid async task id %q: start with a letter or '_', then letters, digits, '_' or '-', at most 128 characters", taskID))
		return
	}
	s.mu.Lock()
	if _, dup := s.tasks[taskID]; dup {
		s.stats.Duplicates++
		s.mu.Unlock()
		// FC answers 409 to a repeated task id ("task de-duplication" help
		// page). The code is FC 2.0's, as clients match it; FC 3.0's name is
		// not documented.
		s.fail(w, requestID, http.StatusConflict, "StatefulAsyncInvocationAlreadyExists", fmt.Sprintf("async invocation %s already exists", taskID))
		return
	}
	task := &Task{ID: taskID, Function: name, Payload: body, Status: "Enqueued", RequestID: requestID}
	s.tasks[taskID] = task
	s.order = append(s.order, taskID)
	s.stats.Async++
	s.running++
	s.mu.Unlock()

	s.wg.Add(1)
	go s.deliver(task)

	h := w.Header()
	h.Set("x-fc-request-id", requestID)
	h.Set("x-fc-async-task-id", taskID)
	w.WriteHeader(http.StatusAccepted)
}

// deliver runs an async task: one attempt and up to AsyncRetries more while
// the function reports an error, as FC retries function errors.
func (s *Server) deliver(t *Task) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.running--
		s.idle.Broadcast()
		s.mu.Unlock()
	}()
	s.mu.Lock()
	payload, requestID := t.Payload, t.RequestID
	s.mu.Unlock()
	for attempt := 0; attempt <= s.opts.AsyncRetries; attempt++ {
		s.mu.Lock()
		t.Attempts++
		if attempt == 0 {
			t.Status = "Running"
		} else {
			t.Status = "Retrying"
			s.stats.Retries++
		}
		s.stats.Deliveries++
		s.mu.Unlock()

		inv := s.opts.Invocation
		inv.FunctionName = t.Function
		inv.Payload = payload
		inv.RequestID = requestID
		inv.RetryCount = attempt
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.DeliveryTimeout)
		res, err := s.opts.Runtime.Invoke(ctx, inv)
		cancel()
		var failure string
		switch {
		case err != nil:
			failure = "DeliveryError: " + err.Error()
		case res.Error != nil:
			failure = res.Error.ErrorType + ": " + res.Error.ErrorMessage
		}
		s.mu.Lock()
		if failure == "" {
			t.Status = "Succeeded"
			s.stats.Succeeded++
			s.mu.Unlock()
			return
		}
		t.Errors = append(t.Errors, failure)
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			break
		}
	}
	s.mu.Lock()
	t.Status = "Failed"
	s.stats.Failed++
	s.mu.Unlock()
}

// invokeSync delivers and answers the function's response: 200 with its
// body, or 200 with x-fc-error-type and the error body for a function error.
func (s *Server) invokeSync(w http.ResponseWriter, ctx context.Context, requestID string, body []byte) {
	s.mu.Lock()
	s.stats.Sync++
	s.stats.Deliveries++
	s.mu.Unlock()
	inv := s.opts.Invocation
	inv.Payload, inv.RequestID = body, requestID
	res, err := s.opts.Runtime.Invoke(ctx, inv)
	if err != nil {
		s.fail(w, requestID, 500, "InternalServerError", "an internal error has occurred. Please retry.")
		return
	}
	h := w.Header()
	h.Set("x-fc-request-id", requestID)
	if res.Error != nil {
		h.Set("x-fc-error-type", res.Error.ErrorType)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(res.Error)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Response)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	x := hex.EncodeToString(b[:])
	return "1-" + x[0:8] + "-" + x[8:16] + "-" + x[16:32]
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
