package handler

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"vpnauthz/events"
	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
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

type errorBody struct {
	Error APIError `json:"error"`
}

// HTTPReport is the body of POST /scans: the report with its findings, a
// list even when empty, and on 502 the delivery error.
type HTTPReport struct {
	scan.Report
	Findings []finding.Finding `json:"findings"`
	Error    *APIError         `json:"error,omitempty"`
}

// Health is the body of GET /health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// httpError is a request the handler answers with an error status.
type httpError struct {
	status  int
	code    string
	msg     string
	headers map[string]string
}

func (e *httpError) response() events.HTTPTriggerResponse {
	return jsonResponse(e.status, errorBody{APIError{e.code, e.msg}}, e.headers)
}

func jsonResponse(status int, body any, extra map[string]string) events.HTTPTriggerResponse {
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalError","message":"the response could not be encoded"}}`)
	}
	headers := map[string]string{
		"Content-Type":  "application/json; charset=utf-8",
		"Cache-Control": "no-store",
	}
	for k, v := range extra {
		headers[k] = v
	}
	return events.HTTPTriggerResponse{StatusCode: status, Headers: headers, Body: string(b)}
}

// routes maps each path to the one method it serves.
var routes = map[string]string{
	"/scans":  http.MethodPost,
	"/health": http.MethodGet,
}

// http answers an HTTP trigger request. Every problem with the request is a
// status, never an invocation error.
func (inv *invocation) http(raw json.RawMessage) (any, error) {
	var ev events.HTTPTriggerEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, invokeError(ErrInvalidEvent, "HTTP trigger event: %s", describeJSONError("the HTTP trigger event", err))
	}
	method, path := requestLine(&ev)
	inv.log = inv.log.With("method", method, "path", truncate(path))

	resp, err := inv.route(&ev, method, path)
	if err != nil {
		return nil, err
	}
	inv.log.Info("http response", "status", resp.StatusCode)
	return resp, nil
}

func (inv *invocation) route(ev *events.HTTPTriggerEvent, method, path string) (events.HTTPTriggerResponse, error) {
	want, known := routes[path]
	if !known {
		return (&httpError{status: http.StatusNotFound, code: CodeNotFound,
			msg: fmt.Sprintf("no route %s %s; routes: POST /scans, GET /health", truncate(method), quote(path))}).response(), nil
	}
	if method != want {
		return (&httpError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			msg:     fmt.Sprintf("%s does not accept %s; use %s", path, quote(method), want),
			headers: map[string]string{"Allow": want}}).response(), nil
	}
	cfg, cerr := inv.config()
	if cerr != nil {
		// The operator's mistake, not the caller's: 500, naming the variables
		// but not their values, since the caller may not hold the bearer
		// token (which is itself configuration); the log has the whole story.
		msg := "the function's configuration is invalid; its log says what is wrong"
		if vars := invalidVariables(inv.h.opts.ConfigErr); len(vars) > 0 {
			msg = fmt.Sprintf("the function's configuration is invalid (%s); its log says what is wrong", strings.Join(vars, ", "))
		}
		return (&httpError{status: http.StatusInternalServerError, code: CodeInvalidConfiguration, msg: msg}).response(), nil
	}
	if path == "/health" {
		return jsonResponse(http.StatusOK, Health{Status: "ok", Version: inv.h.opts.Version}, nil), nil
	}

	if cfg.HTTPAuthToken != "" {
		if herr := checkBearer(ev.Headers, cfg.HTTPAuthToken); herr != nil {
			inv.log.Warn("unauthorized request", "reason", herr.msg)
			return herr.response(), nil
		}
	}
	body, herr := requestBody(ev)
	if herr == nil {
		herr = checkContentType(ev.Headers, body)
	}
	var p parsedPayload
	if herr == nil {
		var err error
		if p, err = parsePayload(body); err != nil {
			herr = &httpError{status: http.StatusBadRequest, code: CodeInvalidBody, msg: "request body: " + err.Error()}
		}
	}
	if herr != nil {
		inv.log.Warn("bad request", "status", herr.status, "error", herr.msg)
		return herr.response(), nil
	}
	targets, terr := resolveTargets(cfg.Targets, p)
	if terr != nil {
		inv.log.Warn("bad targets", "error", terr.msg)
		status, code := http.StatusBadRequest, CodeInvalidTarget
		switch terr.problem {
		case targetsOutOfScope:
			status, code = http.StatusForbidden, CodeOutOfScope
		case targetsEmpty, targetsNone:
			code = CodeNoTargets
		}
		return (&httpError{status: status, code: code, msg: terr.msg}).response(), nil
	}
	if err := inv.credentials(); err != nil {
		return events.HTTPTriggerResponse{}, err
	}

	report, rerr := inv.run(finding.TriggerHTTP, targets, p.DryRun, true)
	if rerr != nil {
		status := http.StatusInternalServerError
		if rerr.typ == ErrDeliveryFailed {
			status = http.StatusBadGateway
		}
		return (&httpError{status: status, code: rerr.typ, msg: rerr.msg}).response(), nil
	}
	out := HTTPReport{Report: report, Findings: report.Findings}
	out.Report.Findings = nil
	if out.Findings == nil {
		out.Findings = []finding.Finding{}
	}
	status := http.StatusOK
	if undelivered(p.DryRun, report) {
		status = http.StatusBadGateway
		out.Error = &APIError{Code: CodeDeliveryFailed, Message: deliveryMessage(report)}
		inv.log.Error("findings not delivered", "error", out.Error.Message)
	}
	return jsonResponse(status, out, nil), nil
}

// requestLine gives the method and decoded path, from requestContext.http,
// falling back to rawPath (URL-encoded) for the path.
func requestLine(ev *events.HTTPTriggerEvent) (method, path string) {
	if m := ev.TriggerContext.Http.Method; m != nil {
		method = *m
	}
	if p := ev.TriggerContext.Http.Path; p != nil && *p != "" {
		return method, *p
	}
	if ev.RawPath != nil {
		path = *ev.RawPath
		if unescaped, err := url.PathUnescape(path); err == nil {
			path = unescaped
		}
	}
	return method, path
}

// header returns the value of a header, matched case-insensitively. Values
// of keys that differ only in case are joined in key order, as the trigger
// joins repeated headers, so the answer never depends on map order.
func header(h *map[string]string, name string) (string, bool) {
	if h == nil {
		return "", false
	}
	var keys []string
	for k := range *h {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	slices.Sort(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = (*h)[k]
	}
	return strings.Join(values, ", "), true
}

// checkBearer requires "Authorization: Bearer <token>". The tokens are
// compared as SHA-256 digests in constant time, so neither the content nor
// the length of the configured token leaks through timing.
func checkBearer(h *map[string]string, token string) *httpError {
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

// requestBody decodes the body, refusing more than MaxBodyBytes. The size is
// that of the body itself: a Content-Length header is the caller's claim and
// is not consulted. A base64 body too long to decode within the limit is
// refused before it is decoded.
func requestBody(ev *events.HTTPTriggerEvent) ([]byte, *httpError) {
	if ev.Body == nil || *ev.Body == "" {
		return nil, nil
	}
	tooLarge := &httpError{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
		msg: fmt.Sprintf("request body over %d bytes", MaxBodyBytes)}
	s := *ev.Body
	if ev.IsBase64Encoded != nil && *ev.IsBase64Encoded {
		if len(s) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
			return nil, tooLarge
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, &httpError{status: http.StatusBadRequest, code: CodeInvalidBody,
				msg: "request body is marked base64 but is not valid base64: " + err.Error()}
		}
		if len(b) > MaxBodyBytes {
			return nil, tooLarge
		}
		return b, nil
	}
	if len(s) > MaxBodyBytes {
		return nil, tooLarge
	}
	return []byte(s), nil
}

// checkContentType requires application/json (parameters allowed) for a
// body that is not blank.
func checkContentType(h *map[string]string, body []byte) *httpError {
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
