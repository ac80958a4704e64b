package slsemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

const apiVersion = "0.6.0"

// apiError is an error reply of the service.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func parameterInvalid(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ParameterInvalid", format, args...)
}

type routeKind int

const (
	routeUnknown routeKind = iota
	routeProjectRoot
	routeLogstores
	routeLogstore
	routePutLogs
	routeIndex
	routeGetLogs
	routeShards // ListShards
	routeShard  // GetCursor, PullLogs
)

// request is one parsed call.
type request struct {
	http     *http.Request
	body     []byte
	project  string // "" when the Host names no project
	logstore string
	kind     routeKind
}

func parseRoute(r *http.Request) (kind routeKind, logstore string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/" || r.URL.Path == "":
		return routeProjectRoot, ""
	case len(parts) == 1 && parts[0] == "logstores":
		return routeLogstores, ""
	case len(parts) < 2 || parts[0] != "logstores" || parts[1] == "":
		return routeUnknown, ""
	}
	logstore = parts[1]
	switch {
	case len(parts) == 2 && r.Method == http.MethodPost:
		return routePutLogs, logstore
	case len(parts) == 2:
		return routeLogstore, logstore
	case len(parts) == 4 && parts[2] == "shards" && (parts[3] == "lb" || parts[3] == "route") && r.Method == http.MethodPost:
		return routePutLogs, logstore
	case len(parts) == 3 && parts[2] == "index":
		return routeIndex, logstore
	case len(parts) == 3 && parts[2] == "logs":
		return routeGetLogs, logstore
	case len(parts) == 3 && parts[2] == "shards":
		return routeShards, logstore
	case len(parts) == 4 && parts[2] == "shards" && r.Method == http.MethodGet:
		return routeShard, logstore
	}
	return routeUnknown, logstore
}

// projectFromHost takes the project from a virtual-host name: everything up to
// the first dot. A bare IP address or "localhost" names no project.
func projectFromHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return ""
	}
	name, _, _ := strings.Cut(host, ".")
	return name
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	latency, arrival := s.latency, s.arrival
	s.mu.Unlock()
	if arrival != nil {
		arrival(r)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("x-log-requestid", newRequestID())

	req := &request{http: r, project: projectFromHost(r.Host)}
	req.kind, req.logstore = parseRoute(r)
	if req.kind == routePutLogs {
		s.mu.Lock()
		s.stats.PutLogsCalls++
		s.mu.Unlock()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWireBytes+1))
	if err != nil {
		return // the client is gone
	}
	if len(body) > maxWireBytes {
		s.fail(w, errorf(http.StatusBadRequest, "PostBodyTooLarge", "The request body exceeds %d bytes.", maxWireBytes))
		return
	}
	req.body = body

	reply, e := s.handle(req)
	if e != nil {
		s.fail(w, e)
		return
	}
	if reply == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if b, ok := reply.(*binaryReply); ok {
		b.write(w)
		return
	}
	out, err := json.Marshal(reply)
	if err != nil {
		s.fail(w, errorf(http.StatusInternalServerError, "InternalServerError", "encode reply: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// handle checks what every call needs, then dispatches. A nil reply is an
// empty 200.
func (s *Server) handle(req *request) (any, *apiError) {
	r := req.http
	switch v := r.Header.Get("x-log-apiversion"); {
	case v == "":
		return nil, errorf(http.StatusBadRequest, "MissingAPIVersion", "x-log-apiversion does not exist in http header.")
	case v != apiVersion:
		return nil, errorf(http.StatusBadRequest, "InvalidAPIVersion", "x-log-apiversion %s is unsupported.", v)
	}
	if e := s.authenticate(r, req.body); e != nil {
		return nil, e
	}
	if req.kind == routePutLogs {
		if e := s.injectedFault(); e != nil {
			return nil, e
		}
	}

	if reply, e, ok := s.handleAlerting(req); ok {
		return reply, e
	}
	if req.kind == routeProjectRoot {
		switch {
		case req.project == "" && r.Method == http.MethodGet:
			return s.listProjects(), nil
		case req.project == "":
			return nil, parameterInvalid("the Host %s names no project", r.Host)
		case r.Method == http.MethodPost:
			return nil, s.createProject(req)
		case r.Method == http.MethodGet:
			return s.getProject(req.project)
		}
		return nil, unsupported(r)
	}
	if req.kind == routeUnknown {
		return nil, unsupported(r)
	}
	if e := s.checkProject(req.project); e != nil {
		return nil, e
	}

	switch {
	case req.kind == routeLogstores && r.Method == http.MethodGet:
		return s.listLogstores(req.project), nil
	case req.kind == routeLogstores && r.Method == http.MethodPost:
		return nil, s.createLogstore(req)
	case req.kind == routeLogstores:
		return nil, unsupported(r)
	}

	if e := s.checkLogstore(req.project, req.logstore); e != nil {
		return nil, e
	}
	switch {
	case req.kind == routePutLogs:
		return nil, s.putLogs(req)
	case req.kind == routeLogstore && r.Method == http.MethodGet && len(r.URL.Query()) == 0:
		return s.getLogstore(req.project, req.logstore)
	case req.kind == routeIndex && r.Method == http.MethodPost:
		return nil, s.putIndex(req, false)
	case req.kind == routeIndex && r.Method == http.MethodPut:
		return nil, s.putIndex(req, true)
	case req.kind == routeIndex && r.Method == http.MethodGet:
		return s.getIndex(req.project, req.logstore)
	case req.kind == routeGetLogs && r.Method == http.MethodPost:
		return s.getLogs(req)
	case req.kind == routeShards && r.Method == http.MethodGet:
		return s.listShards(req)
	case req.kind == routeShard:
		return s.readShard(req)
	}
	return nil, unsupported(r)
}

func unsupported(r *http.Request) *apiError {
	return parameterInvalid("the emulated Log Service does not serve %s %s", r.Method, r.URL.RequestURI())
}

func (s *Server) checkProject(name string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.projects[name]; !ok {
		return errorf(http.StatusNotFound, "ProjectNotExist", "The Project does not exist : %s", name)
	}
	return nil
}

func (s *Server) checkLogstore(projectName, logstoreName string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logstoreLocked(projectName, logstoreName) == nil {
		return errorf(http.StatusNotFound, "LogStoreNotExist", "logstore %s does not exist", logstoreName)
	}
	return nil
}

type errorBody struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	s.mu.Lock()
	s.stats.ErrorsByCode[e.code]++
	s.mu.Unlock()
	out, _ := json.Marshal(errorBody{ErrorCode: e.code, ErrorMessage: e.message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(out)
}

// newRequestID returns 24 upper-case hex digits, the shape of the real ids.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
