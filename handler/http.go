package handler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"vpnauthz/events"
	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
)

// TokenHeader carries the bearer token when Authorization is taken by the
// HTTP trigger's own signature (authType function).
const TokenHeader = "X-Vpnauthz-Authorization"

// MaxBodyBytes is the largest POST /scans body accepted: a list of targets
// never needs more, and the limit bounds the work an unauthenticated caller
// can cause.
const MaxBodyBytes = 64 << 10

// Error codes of HTTP error bodies.
const (
	CodeInvalidBody          = "InvalidBody"          // 400: not base64, not JSON, wrong field
	CodeInvalidTarget        = "InvalidTarget"        // 400
	CodeNoTargets            = "NoTargets"            // 400
	CodeUnauthorized         = "Unauthorized"         // 401
	CodeOutOfScope           = "OutOfScope"           // 403
	CodeNotFound             = "NotFound"             // 404
	CodeMethodNotAllowed     = "MethodNotAllowed"     // 405
	CodePayloadTooLarge      = "PayloadTooLarge"      // 413
	CodeUnsupportedMediaType = "UnsupportedMediaType" // 415
	CodeInvalidConfiguration = ErrInvalidConfiguration
	CodeScanFailed           = ErrScanFailed     // 500
	CodeDeliveryFailed       = ErrDeliveryFailed // 502
)

// APIError is the error object of an HTTP error body,
// {"error":{"code":…,"message":…}}.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HTTPReport is the body of POST /scans: the report with its findings, a
// list even when empty, and on 502 the delivery error.
type HTTPReport struct {
	scan.Report
	Accounts *AccountsReport   `json:"accounts,omitempty"` // an organisation scan's accounts
	Findings []finding.Finding `json:"findings"`
	Error    *APIError         `json:"error,omitempty"`
}

// Health is the body of GET /health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// ErrorBody is the body of every HTTP error status.
type ErrorBody struct {
	Error APIError `json:"error"`
}

// httpError is a request the handler answers with an error status.
type httpError struct {
	status  int
	code    string
	msg     string
	headers map[string]string // set as given: WWW-Authenticate keeps its spelling
}

func (e *httpError) write(w http.ResponseWriter) {
	for k, v := range e.headers {
		w.Header()[k] = []string{v}
	}
	writeJSON(w, e.status, &ErrorBody{APIError{e.code, e.msg}})
}

// valueWriter is a ResponseWriter that keeps the value a JSON body encodes,
// for an invocation's typed result.
type valueWriter interface{ setValue(v any) }

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalError","message":"the response could not be encoded"}}`)
		v = &ErrorBody{APIError{"InternalError", "the response could not be encoded"}}
	}
	if vw, ok := w.(valueWriter); ok {
		vw.setValue(v)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// The routes. A GET pattern serves HEAD too, without the body.
const (
	routeScans  = "POST /scans"
	routeHealth = "GET /health"
)

// httpServer serves the HTTP API; it reads the invocation each request
// belongs to from the request's context.
type httpServer struct {
	h   *Handler
	mux *http.ServeMux
}

func newHTTPServer(h *Handler) *httpServer {
	s := &httpServer{h: h, mux: http.NewServeMux()}
	s.mux.HandleFunc(routeScans, s.scans)
	s.mux.HandleFunc(routeHealth, s.health)
	return s
}

// ServeHTTP routes with the ServeMux. Where the mux would answer by itself
// (no route, a wrong method, a path to clean) the answer is our JSON error:
// 405 keeps the mux's Allow, and anything but an exact path is 404.
func (s *httpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" && routePath(pattern) == r.URL.Path {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &probeWriter{header: http.Header{}}
	s.mux.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		(&httpError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			msg:     fmt.Sprintf("%s does not accept %s; use %s", r.URL.Path, quote(r.Method), allow),
			headers: map[string]string{"Allow": allow}}).write(w)
		return
	}
	(&httpError{status: http.StatusNotFound, code: CodeNotFound,
		msg: fmt.Sprintf("no route %s %s; routes: POST /scans, GET /health", truncate(r.Method), quote(r.URL.Path))}).write(w)
}

func routePath(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	return path
}

// probeWriter takes what the mux answers by itself.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *probeWriter) Write(b []byte) (int, error) { p.WriteHeader(http.StatusOK); return len(b), nil }

type invocationKey struct{}

func invocationOf(r *http.Request) *invocation {
	inv, _ := r.Context().Value(invocationKey{}).(*invocation)
	return inv
}

// abort ends a request with an invocation error: the HTTP trigger answers
// it with 502 and FC's error body, and an invocation through Handle returns
// it as its error.
func (inv *invocation) abort(w http.ResponseWriter, err error) {
	inv.abortErr = err
	writeInvocationError(w, err)
}

// writeInvocationError answers a failed invocation as FC's HTTP trigger
// does: 502 with the error's message and type.
func writeInvocationError(w http.ResponseWriter, err error) {
	typ, msg := "Error", err.Error()
	var e *Error
	if errors.As(err, &e) {
		typ, msg = e.Type, e.Message
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Fc-Error-Type", "UnhandledInvocationError")
	w.WriteHeader(http.StatusBadGateway)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorMessage": msg, "errorType": typ})
}

// config writes the 500 every request gets while the configuration is
// invalid.
func (s *httpServer) config(w http.ResponseWriter, inv *invocation) (*config.Config, bool) {
	cfg, cerr := inv.config()
	if cerr == nil {
		return cfg, true
	}
	// The operator's mistake, not the caller's: 500, naming the variables
	// but not their values, since the caller may not hold the bearer token
	// (which is itself configuration); the log has the whole story.
	msg := "the function's configuration is invalid; its log says what is wrong"
	if vars := invalidVariables(s.h.opts.ConfigErr); len(vars) > 0 {
		msg = fmt.Sprintf("the function's configuration is invalid (%s); its log says what is wrong", strings.Join(vars, ", "))
	}
	(&httpError{status: http.StatusInternalServerError, code: CodeInvalidConfiguration, msg: msg}).write(w)
	return nil, false
}

func (s *httpServer) health(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.config(w, invocationOf(r)); !ok {
		return
	}
	writeJSON(w, http.StatusOK, &Health{Status: "ok", Version: s.h.opts.Version})
}

// scans runs POST /scans. Every problem with the request is a status, never
// an invocation error.
func (s *httpServer) scans(w http.ResponseWriter, r *http.Request) {
	inv := invocationOf(r)
	cfg, ok := s.config(w, inv)
	if !ok {
		return
	}
	if cfg.HTTPAuthToken != "" {
		if herr := checkBearer(r.Header, cfg.HTTPAuthToken); herr != nil {
			inv.log.Warn("unauthorized request", "reason", herr.msg)
			herr.write(w)
			return
		}
	}
	body, herr := readBody(w, r)
	if herr == nil {
		herr = checkContentType(r.Header, body)
	}
	var p parsedPayload
	if herr == nil {
		var err error
		if p, err = parsePayload(body, false); err != nil {
			herr = &httpError{status: http.StatusBadRequest, code: CodeInvalidBody, msg: "request body: " + err.Error()}
		}
	}
	if herr != nil {
		inv.log.Warn("bad request", "status", herr.status, "error", herr.msg)
		herr.write(w)
		return
	}
	o, err := inv.organisation(cfg)
	if err != nil {
		inv.abort(w, err)
		return
	}
	targets, terr := resolveTargets(cfg, o, p)
	if terr != nil {
		inv.log.Warn("bad targets", "error", terr.msg)
		status, code := http.StatusBadRequest, CodeInvalidTarget
		switch terr.problem {
		case targetsOutOfScope:
			status, code = http.StatusForbidden, CodeOutOfScope
		case targetsEmpty, targetsNone:
			code = CodeNoTargets
		}
		(&httpError{status: status, code: code, msg: terr.msg}).write(w)
		return
	}
	if err := inv.credentials(); err != nil {
		inv.abort(w, err)
		return
	}

	dryRun := p.DryRun || inv.DryRun
	report, rerr := inv.run(scanJob{trigger: finding.TriggerHTTP, targets: targets, dryRun: dryRun, collect: true,
		org: o, whole: !p.targetsGiven})
	if rerr != nil {
		status := http.StatusInternalServerError
		if rerr.typ == ErrDeliveryFailed {
			status = http.StatusBadGateway
		}
		(&httpError{status: status, code: rerr.typ, msg: rerr.msg}).write(w)
		return
	}
	out := &HTTPReport{Report: report, Accounts: o.report(len(target.Accounts(targets))), Findings: report.Findings}
	out.Report.Findings = nil
	if out.Findings == nil {
		out.Findings = []finding.Finding{}
	}
	status := http.StatusOK
	if undelivered(dryRun, report) {
		status = http.StatusBadGateway
		out.Error = &APIError{Code: CodeDeliveryFailed, Message: deliveryMessage(report)}
		inv.log.Error("findings not delivered", "error", out.Error.Message)
	}
	writeJSON(w, status, out)
}

// HTTPHandler serves the HTTP API directly, as the HTTP trigger serves it
// through Handle. identify gives the invocation each request runs as (its
// id, credentials, region and account); when it fails, the request is
// answered as a failed invocation. The request's context bounds the scan.
func (h *Handler) HTTPHandler(identify func(r *http.Request) (Invocation, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := identify(r)
		if err != nil {
			h.opts.Logger.Error("invocation context", "error", err.Error())
			writeInvocationError(w, &Error{Type: ErrInvalidContext, Message: err.Error()})
			return
		}
		inv := h.begin(r.Context(), in)
		inv.log = inv.log.With("trigger", kindHTTP, "method", truncate(r.Method), "path", truncate(r.URL.Path))
		sw := &statusWriter{ResponseWriter: w}
		h.http.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), invocationKey{}, inv)))
		inv.log.Info("http response", "status", sw.status)
	})
}

// statusWriter notes the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// httpEvent answers an HTTP trigger invocation: the event becomes an
// *http.Request, the API serves it, and what it writes becomes the
// trigger's response.
func (inv *invocation) httpEvent(raw json.RawMessage) (Result, error) {
	var ev events.HTTPTriggerEvent
	if err := decodeJSON(raw, &ev); err != nil {
		return nil, invokeError(ErrInvalidEvent, "HTTP trigger event: %s", describeJSONError("the HTTP trigger event", err))
	}
	r := HTTPRequest(inv.ctx, &ev)
	inv.log = inv.log.With("method", truncate(r.Method), "path", truncate(r.URL.Path))
	rec := newRecorder(r.Method == http.MethodHead)
	inv.h.http.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), invocationKey{}, inv)))
	if inv.abortErr != nil {
		return nil, inv.abortErr
	}
	res := rec.result()
	inv.log.Info("http response", "status", res.StatusCode)
	return res, nil
}

// header returns the values of a header joined by commas, as the HTTP
// trigger joins repeated headers.
func header(h http.Header, name string) (string, bool) {
	values := h.Values(name)
	if len(values) == 0 {
		return "", false
	}
	return strings.Join(values, ", "), true
}

// checkBearer requires "Authorization: Bearer <token>". The tokens are
// compared as SHA-256 digests in constant time, so neither the content nor
// the length of the configured token leaks through timing.
func checkBearer(h http.Header, token string) *httpError {
	deny := func(msg string) *httpError {
		return &httpError{status: http.StatusUnauthorized, code: CodeUnauthorized, msg: msg,
			headers: map[string]string{"WWW-Authenticate": "Bearer"}}
	}
	// Behind a trigger with authType function, Authorization carries the
	// caller's Alibaba Cloud signature, so the token may come in
	// TokenHeader instead, with the same "Bearer <token>" form.
	value, ok := header(h, TokenHeader)
	if !ok {
		value, ok = header(h, "Authorization")
	}
	if !ok || strings.TrimSpace(value) == "" {
		return deny("missing bearer token: send Authorization: Bearer <token>, or " + TokenHeader + ": Bearer <token> behind a signed trigger")
	}
	scheme, given, _ := strings.Cut(strings.TrimSpace(value), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return deny("the bearer token must use the Bearer scheme")
	}
	a := sha256.Sum256([]byte(strings.TrimSpace(given)))
	b := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return deny("wrong bearer token")
	}
	return nil
}

// readBody reads the body, refusing more than MaxBodyBytes. The size is that
// of the body itself: a Content-Length header is the caller's claim, but
// the request's ContentLength, when known, is the body's real length.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	tooLarge := &httpError{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
		msg: fmt.Sprintf("request body over %d bytes", MaxBodyBytes)}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge
	}
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return nil, tooLarge
	}
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, code: CodeInvalidBody, msg: "cannot read the request body: " + err.Error()}
	}
	return b, nil
}

// checkContentType requires application/json (parameters allowed) for a
// body that is not blank.
func checkContentType(h http.Header, body []byte) *httpError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	ct, ok := header(h, "Content-Type")
	if !ok {
		return &httpError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			msg: "a request body needs Content-Type: application/json"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &httpError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Type %s is not application/json", quote(ct))}
	}
	return nil
}

// invalidVariables lists the configuration variables err names, in order,
// each once.
func invalidVariables(err error) []string {
	var names []string
	var walk func(error)
	walk = func(e error) {
		var ce *config.Error
		switch u := e.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		default:
			if errors.As(e, &ce) && !slices.Contains(names, ce.Variable) {
				names = append(names, ce.Variable)
			}
		}
	}
	walk(err)
	return names
}
