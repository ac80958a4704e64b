// Package slsemu is an emulated Alibaba Cloud Log Service endpoint. It speaks
// the wire protocol of the Log Service Go SDK: virtual-host projects, v1 and v4
// request signatures, lz4/zstd/deflate/raw protobuf PutLogs bodies, the admin
// calls a deployment needs (projects, logstores, indexes), a small GetLogs and
// the shard read path a Log Service trigger uses (ListShards, GetCursor,
// PullLogs; see pull.go).
// Faults (latency, busy, quota, scripted errors, a dead endpoint) can be
// switched on while it serves.
package slsemu

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"vpnauthz/internal/emulator/cred"
)

// Options configure a Server.
type Options struct {
	Addr              string // default "127.0.0.1:0"
	Credentials       []cred.Credential
	MaxLogsPerRequest int // default 4096
	// MaxBodyBytes limits the raw (uncompressed) protobuf of one PutLogs
	// request; default 3 MiB. Larger requests get 400 PostBodyTooLarge.
	MaxBodyBytes int
	Latency      time.Duration
	Now          func() time.Time
	Region       string // reported by GetProject; default "cn-hangzhou"
}

const (
	defaultMaxLogs      = 4096
	defaultMaxBodyBytes = 3 * 1024 * 1024
	// maxWireBytes bounds what is read of any request body; real clients
	// never come near it, it only keeps a broken client from exhausting memory.
	maxWireBytes = 64 * 1024 * 1024
)

// Stats counts what the server has seen since it started.
type Stats struct {
	PutLogsCalls int // PutLogs requests received, whatever their outcome
	PutLogsOK    int
	LogsStored   int
	RawBytes     int64 // uncompressed protobuf bytes of accepted PutLogs requests
	WireBytes    int64 // body bytes on the wire of accepted PutLogs requests
	ErrorsByCode map[string]int
	Requests     int // every HTTP request
}

// Server is a running emulated Log Service endpoint.
type Server struct {
	opts    Options
	now     func() time.Time
	creds   *cred.Store
	zstd    *zstd.Decoder
	handler http.Handler

	mu         sync.Mutex
	projects   map[string]*project
	latency    time.Duration
	busyUntil  time.Time
	quotaUntil time.Time
	failNext   []apiError
	arrival    func(*http.Request)
	stats      Stats
	pull       pullState    // shards, cursors and PullLogs faults (pull.go)
	admin      adminObjects // alerts and dashboards: alerting.go

	netMu     sync.Mutex // serialises SetDown and Close
	addr      string
	srv       *http.Server
	serveDone chan struct{}
	down      bool
	closed    bool
}

// New starts a server; it is listening when New returns.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.MaxLogsPerRequest <= 0 {
		opts.MaxLogsPerRequest = defaultMaxLogs
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBodyBytes
	}
	if opts.Region == "" {
		opts.Region = "cn-hangzhou"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2),
		zstd.WithDecoderMaxMemory(uint64(opts.MaxBodyBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	s := &Server{
		opts:     opts,
		now:      now,
		creds:    cred.NewStore(opts.Credentials...),
		zstd:     dec,
		projects: map[string]*project{},
		latency:  opts.Latency,
		stats:    Stats{ErrorsByCode: map[string]int{}},
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		dec.Close()
		return nil, fmt.Errorf("listen %s: %w", opts.Addr, err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	s.srv, s.serveDone = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Endpoint is "http://127.0.0.1:PORT", the value to give the SDK. The SDK puts
// the project in front of it, so clients must dial Addr whatever the host.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// Credentials is the store of accepted keys; add to it while serving.
func (s *Server) Credentials() *cred.Store { return s.creds }

// Close stops the server and drops open connections.
func (s *Server) Close() {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if !s.down {
		s.stopServing()
	}
	s.zstd.Close()
}

func (s *Server) stopServing() {
	_ = s.srv.Close() // closes the listener and every connection
	<-s.serveDone
}

// SetDown with true closes the listener and every open connection, so that
// clients get "connection refused" (a request sent on a keep-alive connection
// at that moment gets EOF instead); with false it listens again on the same
// address. It panics if the address cannot be taken back, because every later
// call of the test would fail in a more confusing way.
func (s *Server) SetDown(down bool) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	if s.closed || down == s.down {
		return
	}
	if down {
		s.stopServing()
		s.down = true
		return
	}
	ln, err := listenAgain(s.addr)
	if err != nil {
		panic(fmt.Sprintf("slsemu: listen again on %s: %v", s.addr, err))
	}
	s.serve(ln)
	s.down = false
}

// listenAgain retries for a short while: a port just released can still be
// held by a closing socket for a moment.
func listenAgain(addr string) (net.Listener, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SetLatency delays every later request by d before it is handled.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetArrivalHook sets a function called as each request arrives, before its
// latency and before it is read, so that a test can act while a request is in
// flight instead of guessing it with a sleep. nil removes it.
func (s *Server) SetArrivalHook(f func(*http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrival = f
}

// The answers of a busy Log Service and of an exceeded write quota.
var (
	errServerBusy    = apiError{http.StatusServiceUnavailable, "ServerBusy", "The server is busy, please try again later."}
	errQuotaExceeded = apiError{http.StatusForbidden, "WriteQuotaExceed", "Write quota is exceeded."}
)

// BusyNext answers the next n PutLogs requests with 503 ServerBusy: a fault
// counted in requests, so that a test does not depend on how fast they come.
func (s *Server) BusyNext(n int) { s.failNextWith(n, errServerBusy) }

// QuotaExceededNext answers the next n PutLogs requests with 403 WriteQuotaExceed.
func (s *Server) QuotaExceededNext(n int) { s.failNextWith(n, errQuotaExceeded) }

// BusyFor answers PutLogs with 503 ServerBusy for d from now.
func (s *Server) BusyFor(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busyUntil = s.now().Add(d)
}

// QuotaExceededFor answers PutLogs with 403 WriteQuotaExceed for d from now.
func (s *Server) QuotaExceededFor(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quotaUntil = s.now().Add(d)
}

// FailNextPutLogs answers the next n PutLogs requests with the given error,
// after their signature was checked and before anything is stored.
func (s *Server) FailNextPutLogs(n int, httpStatus int, code, message string) {
	s.failNextWith(n, apiError{status: httpStatus, code: code, message: message})
}

func (s *Server) failNextWith(n int, e apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, e)
	}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ErrorsByCode = make(map[string]int, len(s.stats.ErrorsByCode))
	for k, v := range s.stats.ErrorsByCode {
		st.ErrorsByCode[k] = v
	}
	return st
}

// injectedFault returns the scripted failure for a PutLogs request, if any.
func (s *Server) injectedFault() *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failNext) > 0 {
		e := s.failNext[0]
		s.failNext = s.failNext[1:]
		return &e
	}
	now := s.now()
	if now.Before(s.busyUntil) {
		e := errServerBusy
		return &e
	}
	if now.Before(s.quotaUntil) {
		e := errQuotaExceeded
		return &e
	}
	return nil
}
