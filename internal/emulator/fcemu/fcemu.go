// Package fcemu is an emulated Function Compute runtime API, the endpoint a
// function built with the FC Go runtime SDK polls for invocations
// (FC_RUNTIME_API). A test queues invocations with Invoke and gets back what
// the function posted.
package fcemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	apiPrefix       = "/2020-11-11/runtime/invocation/"
	defaultTimeout  = 60 * time.Second
	defaultFunction = "vpnauthz"
	defaultHandler  = "main"
	defaultMemoryMB = 512
	maxReplyBytes   = 32 * 1024 * 1024
)

// ErrClosed is returned by Invoke when the server closes first.
var ErrClosed = errors.New("fcemu: server closed")

// Invocation is one call of the function.
type Invocation struct {
	RequestID                                   string // default: generated
	Payload                                     []byte
	AccessKeyID, AccessKeySecret, SecurityToken string
	FunctionName, Handler                       string // defaults "vpnauthz", "main"
	// Timeout is sent as x-fc-function-timeout (seconds) and
	// x-fc-function-deadline (epoch ms, now+Timeout); default 60 s.
	Timeout           time.Duration
	Region, AccountID string
	RetryCount        int
	MemoryMB          int    // default 512
	LogProject        string // the function's log configuration
	LogStore          string
	Qualifier         string // default "LATEST"
}

// Result is what the function posted for one invocation.
type Result struct {
	RequestID string
	Response  json.RawMessage // body posted to /response; nil after an error
	Error     *ErrorBody      // body posted to /error
	Duration  time.Duration   // from delivery to the function until its answer
}

// ErrorBody is the error a function reports.
type ErrorBody struct {
	ErrorMessage string          `json:"errorMessage"`
	ErrorType    string          `json:"errorType"`
	StackTrace   json.RawMessage `json:"stackTrace,omitempty"`
}

type call struct {
	inv       Invocation
	result    chan Result
	delivered time.Time // set by the poll that takes the call
}

// Server is a running runtime API.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	queue  chan *call
	closed chan struct{}
	once   sync.Once
	done   chan struct{}

	mu      sync.Mutex
	pending map[string]*call // delivered, awaiting the function's answer
	queued  map[string]bool  // request ids waiting in Invoke
	polls   int
	changed chan struct{} // closed and replaced when polls or queued change
}

// New starts a runtime API on 127.0.0.1 with a free port.
func New() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		ln:      ln,
		queue:   make(chan *call),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
		pending: map[string]*call{},
		queued:  map[string]bool{},
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"next", s.next)
	mux.HandleFunc("POST "+apiPrefix+"{requestID}/response", s.answer(false))
	mux.HandleFunc("POST "+apiPrefix+"{requestID}/error", s.answer(true))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is "127.0.0.1:PORT", the value for FC_RUNTIME_API.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving; pending polls and Invoke calls return.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		_ = s.srv.Close()
		<-s.done
	})
}

// Polls counts the /next long polls that arrived, so that a test can tell
// the function's runtime has started.
func (s *Server) Polls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

// AwaitPolls blocks until n polls of /next have arrived in all, so that a
// test can tell the function's runtime has started, or until ctx ends or the
// server closes.
func (s *Server) AwaitPolls(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return s.polls >= n })
}

// AwaitInvocations blocks until n calls of Invoke are outstanding (waiting
// for a poll or for the function's answer), or until ctx ends or the server
// closes.
func (s *Server) AwaitInvocations(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return len(s.queued) >= n })
}

// await waits until cond, read under s.mu, holds.
func (s *Server) await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return ErrClosed
		}
	}
}

// notify wakes the waiters of await; s.mu is held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Invoke hands inv to the next poll of the function and waits for its
// response or error, or for ctx to end. Several invocations may be
// outstanding at once.
func (s *Server) Invoke(ctx context.Context, inv Invocation) (Result, error) {
	if inv.RequestID == "" {
		inv.RequestID = newRequestID()
	}
	if inv.FunctionName == "" {
		inv.FunctionName = defaultFunction
	}
	if inv.Handler == "" {
		inv.Handler = defaultHandler
	}
	if inv.Timeout <= 0 {
		inv.Timeout = defaultTimeout
	}
	if inv.MemoryMB <= 0 {
		inv.MemoryMB = defaultMemoryMB
	}
	if inv.Qualifier == "" {
		inv.Qualifier = "LATEST"
	}
	c := &call{inv: inv, result: make(chan Result, 1)}

	s.mu.Lock()
	if s.queued[inv.RequestID] || s.pending[inv.RequestID] != nil {
		s.mu.Unlock()
		return Result{}, fmt.Errorf("invoke %s: request id already in use", inv.RequestID)
	}
	s.queued[inv.RequestID] = true
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.queued, inv.RequestID)
		delete(s.pending, inv.RequestID)
		s.mu.Unlock()
	}()

	select {
	case s.queue <- c:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invoke %s: not picked up by the function: %w", inv.RequestID, ctx.Err())
	case <-s.closed:
		return Result{}, fmt.Errorf("invoke %s: %w", inv.RequestID, ErrClosed)
	}
	select {
	case r := <-c.result:
		return r, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invoke %s: no answer from the function: %w", inv.RequestID, ctx.Err())
	case <-s.closed:
		return Result{}, fmt.Errorf("invoke %s: %w", inv.RequestID, ErrClosed)
	}
}

// next is the long poll: it blocks until an invocation is queued.
func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.polls++
	s.notify()
	s.mu.Unlock()
	var c *call
	select {
	case c = <-s.queue:
	case <-r.Context().Done():
		return
	case <-s.closed:
		http.Error(w, "runtime API closed", http.StatusServiceUnavailable)
		return
	}
	now := time.Now()
	c.delivered = now
	s.mu.Lock()
	// Invoke may have given up between the hand-over and now; then the
	// function's answer will find no taker.
	if s.queued[c.inv.RequestID] {
		s.pending[c.inv.RequestID] = c
	}
	s.mu.Unlock()

	inv := c.inv
	h := w.Header()
	set := func(name, value string) {
		if value != "" {
			h.Set(name, value)
		}
	}
	set("x-fc-request-id", inv.RequestID)
	set("x-fc-access-key-id", inv.AccessKeyID)
	set("x-fc-access-key-secret", inv.AccessKeySecret)
	set("x-fc-security-token", inv.SecurityToken)
	set("x-fc-function-name", inv.FunctionName)
	set("x-fc-function-handler", inv.Handler)
	set("x-fc-function-memory", strconv.Itoa(inv.MemoryMB))
	set("x-fc-function-timeout", strconv.Itoa(int((inv.Timeout+time.Second-1)/time.Second)))
	set("x-fc-function-deadline", strconv.FormatInt(now.Add(inv.Timeout).UnixMilli(), 10))
	set("x-fc-region", inv.Region)
	set("x-fc-account-id", inv.AccountID)
	set("x-fc-retry-count", strconv.Itoa(inv.RetryCount))
	set("x-fc-service-logproject", inv.LogProject)
	set("x-fc-service-logstore", inv.LogStore)
	set("x-fc-qualifier", inv.Qualifier)
	h.Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Payload)
}

// answer takes the function's response or error for a delivered invocation.
func (s *Server) answer(isError bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("requestID")
		body, err := io.ReadAll(io.LimitReader(r.Body, maxReplyBytes+1))
		if err != nil {
			return
		}
		if len(body) > maxReplyBytes {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		s.mu.Lock()
		c := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if c == nil {
			http.Error(w, fmt.Sprintf("unknown request id %q", id), http.StatusNotFound)
			return
		}
		res := Result{RequestID: id, Duration: time.Since(c.delivered)}
		if isError {
			var eb ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				eb = ErrorBody{ErrorMessage: strings.TrimSpace(string(body)), ErrorType: "InvalidErrorBody"}
			}
			res.Error = &eb
		} else {
			res.Response = json.RawMessage(body)
		}
		c.result <- res
		w.WriteHeader(http.StatusOK)
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	x := hex.EncodeToString(b[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
