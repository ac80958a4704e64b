package handler

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"vpnauthz/events"
)

// HTTPRequest turns an FC3 HTTP trigger event into the *http.Request it stands
// for, as aws-lambda-go's lambdaurl does for function URLs. The path is
// requestContext.http.path (decoded), else rawPath; headers are added in key
// order, so names differing only in letter case become one header with the
// values in a fixed order. ContentLength is the length of the body the event
// carries (decoded from base64 when it is marked so), never the caller's
// Content-Length header. A base64 body is decoded as it is read, so reading
// is where invalid base64 shows.
func HTTPRequest(ctx context.Context, ev *events.HTTPTriggerEvent) *http.Request {
	hc := ev.TriggerContext.Http
	method := deref(hc.Method)
	u := &url.URL{Path: deref(hc.Path)}
	raw := deref(ev.RawPath)
	if u.Path == "" {
		u.Path = raw
		if unescaped, err := url.PathUnescape(raw); err == nil {
			u.Path = unescaped
		}
	}
	if unescaped, err := url.PathUnescape(raw); err == nil && raw != "" && unescaped == u.Path {
		u.RawPath = raw // kept only when it is an encoding of the path
	}
	if ev.QueryParameters != nil {
		q := url.Values{}
		for _, k := range slices.Sorted(maps.Keys(*ev.QueryParameters)) {
			q.Set(k, (*ev.QueryParameters)[k])
		}
		u.RawQuery = q.Encode()
	}
	h := http.Header{}
	if ev.Headers != nil {
		for _, k := range slices.Sorted(maps.Keys(*ev.Headers)) {
			h.Add(k, (*ev.Headers)[k])
		}
	}
	r := (&http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       deref(ev.TriggerContext.DomainName),
		RemoteAddr: deref(hc.SourceIp),
		RequestURI: u.RequestURI(),
		Body:       http.NoBody,
	}).WithContext(ctx)
	if p := deref(hc.Protocol); p != "" {
		if major, minor, ok := http.ParseHTTPVersion(p); ok {
			r.Proto, r.ProtoMajor, r.ProtoMinor = p, major, minor
		}
	}
	body := deref(ev.Body)
	switch {
	case body == "":
	case ev.IsBase64Encoded != nil && *ev.IsBase64Encoded:
		r.ContentLength = base64Len(body)
		r.Body = io.NopCloser(&base64Body{r: base64.NewDecoder(base64.StdEncoding, strings.NewReader(body))})
	default:
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(strings.NewReader(body))
	}
	return r
}

// base64Len is the decoded length of valid standard base64 (line breaks
// allowed), so that a body too large is refused before it is decoded.
func base64Len(s string) int64 {
	n := len(s) - strings.Count(s, "\n") - strings.Count(s, "\r")
	trimmed := strings.TrimRight(s, "\r\n")
	pad := len(trimmed) - len(strings.TrimRight(trimmed, "="))
	return int64(n/4*3 + (n%4)*3/4 - min(pad, 2))
}

// base64Body says what is wrong with a body that does not decode.
type base64Body struct{ r io.Reader }

func (b *base64Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("the body is marked base64 but is not valid base64: %w", err)
	}
	return n, err
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// recorder takes a response the way the HTTP trigger expects it back.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	value  any
	head   bool // a HEAD request: the body is dropped
}

func newRecorder(head bool) *recorder { return &recorder{header: http.Header{}, head: head} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.head {
		return len(b), nil
	}
	return r.body.Write(b)
}

func (r *recorder) setValue(v any) {
	if !r.head {
		r.value = v
	}
}

// result is the trigger's response: headers with repeated values joined by
// commas, and a body that is not UTF-8 text in base64.
func (r *recorder) result() *HTTPResult {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	headers := make(map[string]string, len(r.header))
	for k, v := range r.header {
		headers[k] = strings.Join(v, ", ")
	}
	resp := events.HTTPTriggerResponse{StatusCode: r.status, Headers: headers}
	if b := r.body.Bytes(); utf8.Valid(b) {
		resp.Body = string(b)
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(b)
		resp.IsBase64Encoded = true
	}
	return &HTTPResult{HTTPTriggerResponse: resp, Value: r.value}
}
