package handler

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"vpnauthz/events"
)

// The HTTP API answers the same whether a request arrives as an HTTP
// trigger event or over a real connection: same status, headers and body.
func TestHTTPHandlerAnswersLikeTheTrigger(t *testing.T) {
	over := padded(t, MaxBodyBytes+1)
	cases := []httpReq{
		{method: "GET", path: "/health"},
		{method: "HEAD", path: "/health"},
		{method: "GET", path: "/nope"},
		{method: "GET", path: "/scans"},
		{method: "POST", path: "/health"},
		{method: "DELETE", path: "/scans", headers: authJSON()},
		{method: "POST", path: "/scans"},
		{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", "Bearer not-the-token")},
		{method: "POST", path: "/scans", headers: authJSON(), body: over},
		{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Type", "text/plain"), body: `{}`},
		{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":`},
		{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-beijing:*"]}`},
		{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":[]}`},
		{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:vco-hz0partner0002"]}`},
		{method: "POST", path: "/scans", headers: authJSON(), body: `{"dryRun":true}`},
		{method: "POST", path: "/scans", headers: authJSON(), body: padded(t, MaxBodyBytes)},
	}
	fc := newRig(t, nil)
	direct := newRig(t, nil)
	srv := httptest.NewServer(direct.h.HTTPHandler(func(*http.Request) (Invocation, error) { return testInvocation(), nil }))
	t.Cleanup(srv.Close)
	for _, q := range cases {
		t.Run(q.method+" "+q.path+" "+truncate(q.body), func(t *testing.T) {
			want := fc.httpDo(t, q.event(t))
			req, err := http.NewRequest(q.method, srv.URL+q.path, strings.NewReader(q.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range q.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != want.StatusCode || string(body) != want.Body {
				t.Errorf("served %d %s\ntrigger %d %s", resp.StatusCode, body, want.StatusCode, want.Body)
			}
			for k, v := range want.Headers {
				if got := strings.Join(resp.Header.Values(k), ", "); got != v {
					t.Errorf("header %s served %q, trigger %q", k, got, v)
				}
			}
		})
	}
}

func TestHTTPHandlerWithoutAnInvocation(t *testing.T) {
	r := newRig(t, nil)
	srv := httptest.NewServer(r.h.HTTPHandler(func(*http.Request) (Invocation, error) {
		return Invocation{}, errors.New("no credentials in the chain")
	}))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Post(srv.URL+"/scans", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(body), `"errorType":"InvalidContext"`) ||
		!strings.Contains(string(body), "no credentials in the chain") || resp.Header.Get("X-Fc-Error-Type") != "UnhandledInvocationError" {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}

func TestHTTPHandlerMissingCredentialsIsAnInvocationError(t *testing.T) {
	r := newRig(t, nil)
	srv := httptest.NewServer(r.h.HTTPHandler(func(*http.Request) (Invocation, error) { return invocationAs("", "", "", "r1"), nil }))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+"/scans", nil)
	req.Header.Set("Authorization", "Bearer "+testBearer)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(body), `"errorType":"InvalidContext"`) {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}

func TestHTTPRequestFromEvent(t *testing.T) {
	str := func(s string) *string { return &s }
	yes := true
	ev := &events.HTTPTriggerEvent{
		RawPath:         str("/scans/a%20b"),
		Body:            str(base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 'x'})),
		IsBase64Encoded: &yes,
		Headers:         &map[string]string{"accept": "text/plain", "Accept": "application/json", "Content-Length": "999"},
		QueryParameters: &map[string]string{"x": "1,2", "dryRun": "true"},
	}
	ev.TriggerContext.DomainName = str("vpnauthz.cn-hangzhou.fcapp.run")
	ev.TriggerContext.Http.Method = str("POST")
	ev.TriggerContext.Http.Protocol = str("HTTP/2.0")
	ev.TriggerContext.Http.SourceIp = str("192.0.2.7")
	r := HTTPRequest(context.Background(), ev)
	if r.Method != "POST" || r.URL.Path != "/scans/a b" || r.URL.EscapedPath() != "/scans/a%20b" ||
		r.URL.Query().Get("x") != "1,2" || r.URL.Query().Get("dryRun") != "true" {
		t.Errorf("request line %s %s", r.Method, r.URL)
	}
	if got := r.Header.Values("Accept"); len(got) != 2 || got[0] != "application/json" || got[1] != "text/plain" {
		t.Errorf("Accept = %v, want both values in key order", got)
	}
	if r.Host != "vpnauthz.cn-hangzhou.fcapp.run" || r.RemoteAddr != "192.0.2.7" || r.ProtoMajor != 2 {
		t.Errorf("host %s remote %s proto %s", r.Host, r.RemoteAddr, r.Proto)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || !bytes.Equal(body, []byte{0xff, 0x00, 'x'}) || r.ContentLength != 3 {
		t.Errorf("body %q (%v), length %d", body, err, r.ContentLength)
	}

	ev.Body = str("eyJ0YXJnZXRzIjpbXX0*")
	_, err = io.ReadAll(HTTPRequest(context.Background(), ev).Body)
	if err == nil || !strings.Contains(err.Error(), "not valid base64") {
		t.Errorf("bad base64 read: %v", err)
	}
}

func TestBase64Len(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 100, MaxBodyBytes} {
		raw := bytes.Repeat([]byte{'a'}, n)
		enc := base64.StdEncoding.EncodeToString(raw)
		if got := base64Len(enc); got != int64(n) {
			t.Errorf("%d bytes: %d", n, got)
		}
		wrapped := strings.Join(chunk(enc, 76), "\r\n") + "\n"
		if got := base64Len(wrapped); got != int64(n) {
			t.Errorf("%d bytes with line breaks: %d", n, got)
		}
	}
}

func chunk(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
