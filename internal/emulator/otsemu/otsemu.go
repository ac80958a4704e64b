// Package otsemu is an emulated Tablestore (OTS) instance endpoint. It speaks
// the wire protocol of the Tablestore Go SDK: POST /{Operation} with protobuf
// bodies, x-ots-* headers signed with HMAC-SHA1 (access keys and STS tokens),
// rows in PlainBuffer. It serves the operations a state store needs —
// CreateTable, DescribeTable, ListTable, DeleteTable, GetRange, GetRow, PutRow
// and BatchWriteRow — with row-existence and column conditions and the
// service's error codes. Faults (scripted errors per operation or per row, a
// dead endpoint) can be switched on while it serves, and every call is counted.
//
// Simplifications, each refused loudly rather than served wrongly where a
// client could notice: one version per column; GetRange reads forward only and
// without filters; no UpdateRow, BatchGetRow, streams, indexes or
// transactions. Rows past the table's TimeToLive (by the version of their
// newest cell, as the service judges expiry) are hidden from reads and
// conditions, like the service does before it compacts them away.
package otsemu

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"vpnauthz/internal/emulator/cred"
)

// Options configure a Server.
type Options struct {
	Addr        string // default "127.0.0.1:0"
	Instance    string // the instance name clients must send; default "vpnauthz"
	Credentials []cred.Credential
	// MaxRowsPerPage bounds the rows of one GetRange answer, whatever the
	// request's limit; default 5000, the service's.
	MaxRowsPerPage int
	// Now is the clock of the data: cell versions and their expiry. Request
	// dates are judged on the wall clock, which is what clients sign with.
	Now func() time.Time
}

// Limits of the service that the emulator enforces.
const (
	DefaultInstance       = "vpnauthz"
	MaxBatchWriteRows     = 200
	defaultMaxRowsPerPage = 5000
	maxBodyBytes          = 5 * 1024 * 1024
)

// Operations, as they appear in the request path and in Stats.
const (
	OpCreateTable   = "CreateTable"
	OpDescribeTable = "DescribeTable"
	OpListTable     = "ListTable"
	OpDeleteTable   = "DeleteTable"
	OpGetRange      = "GetRange"
	OpGetRow        = "GetRow"
	OpPutRow        = "PutRow"
	OpBatchWriteRow = "BatchWriteRow"
)

// Stats counts what the server has seen since it started or ResetStats.
type Stats struct {
	Calls        map[string]int // requests per operation, whatever their outcome
	Requests     int            // every HTTP request, operation known or not
	RowsWritten  int            // rows put by PutRow and BatchWriteRow
	RowsRead     int            // rows returned by GetRange and GetRow
	ErrorsByCode map[string]int // request errors and BatchWriteRow row errors
}

// fault is a scripted error answered instead of serving.
type fault struct {
	op   string // "" for any operation
	code string
	left int
}

// Server is a running emulated Tablestore endpoint.
type Server struct {
	opts  Options
	now   func() time.Time
	creds *cred.Store

	mu        sync.Mutex
	tables    map[string]*table
	faults    []*fault
	rowFaults []*fault // BatchWriteRow rows that fail
	stats     Stats
	reqSeq    uint64

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
	if opts.Instance == "" {
		opts.Instance = DefaultInstance
	}
	if opts.MaxRowsPerPage <= 0 {
		opts.MaxRowsPerPage = defaultMaxRowsPerPage
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:   opts,
		now:    now,
		creds:  cred.NewStore(opts.Credentials...),
		tables: map[string]*table{},
	}
	s.resetStatsLocked()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", opts.Addr, err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	s.srv, s.serveDone = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Endpoint is "http://127.0.0.1:PORT", the endpoint to give the SDK.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// Instance is the instance name the server answers to.
func (s *Server) Instance() string { return s.opts.Instance }

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
}

func (s *Server) stopServing() {
	_ = s.srv.Close()
	<-s.serveDone
}

// SetDown with true closes the listener and every open connection, so that
// clients get "connection refused"; with false it listens again on the same
// address. Tables and rows survive. It panics if the address cannot be taken
// back, because every later call of the test would fail more confusingly.
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
		panic(fmt.Sprintf("otsemu: listen again on %s: %v", s.addr, err))
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

// FailNext makes the next n requests of op ("" for any operation) answer the
// error code with its documented HTTP status (OTSServerUnavailable: 503, …)
// after authentication and before anything is applied.
func (s *Server) FailNext(op string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{op: op, code: code, left: n})
}

// FailNextRows makes the next n rows of BatchWriteRow requests fail with code
// in the row's result (the request itself succeeds); those rows are not
// applied, the others of the same request are.
func (s *Server) FailNextRows(n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rowFaults = append(s.rowFaults, &fault{code: code, left: n})
}

// takeFault returns the code of the next scripted fault for op, if any.
// Callers hold s.mu.
func takeFault(list []*fault, op string) (string, []*fault) {
	for i, f := range list {
		if f.op != "" && f.op != op {
			continue
		}
		f.left--
		code := f.code
		if f.left <= 0 {
			list = append(list[:i:i], list[i+1:]...)
		}
		return code, list
	}
	return "", list
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = make(map[string]int, len(s.stats.Calls))
	for k, v := range s.stats.Calls {
		st.Calls[k] = v
	}
	st.ErrorsByCode = make(map[string]int, len(s.stats.ErrorsByCode))
	for k, v := range s.stats.ErrorsByCode {
		st.ErrorsByCode[k] = v
	}
	return st
}

// ResetStats sets every counter back to zero.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetStatsLocked()
}

func (s *Server) resetStatsLocked() {
	s.stats = Stats{Calls: map[string]int{}, ErrorsByCode: map[string]int{}}
}

// TableInfo describes a table as the emulator holds it.
type TableInfo struct {
	Name        string
	PrimaryKey  []string // "name:TYPE", in order
	TimeToLive  int32    // seconds; -1: never expires
	MaxVersions int32
	Rows        int // rows stored, expired or not
}

// Table describes a table, for tests; ok is false when there is none.
func (s *Server) Table(name string) (TableInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[name]
	if !ok {
		return TableInfo{}, false
	}
	info := TableInfo{Name: name, TimeToLive: t.ttl, MaxVersions: t.maxVersions, Rows: len(t.rows)}
	for _, c := range t.pk {
		info.PrimaryKey = append(info.PrimaryKey, c.name+":"+c.typ.String())
	}
	return info, true
}
