package handler

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
)

// httpReq builds an FC3 HTTP trigger event.
type httpReq struct {
	method, path string
	rawPathOnly  bool // leave requestContext.http.path out: the path comes from rawPath
	headers      map[string]string
	body         string
	base64       bool
}

func (q httpReq) event(t testing.TB) []byte {
	t.Helper()
	httpCtx := map[string]any{"method": q.method, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}
	if !q.rawPathOnly {
		httpCtx["path"] = q.path
	}
	headers := q.headers
	if headers == nil {
		headers = map[string]string{}
	}
	return mustJSON(t, map[string]any{
		"version": "v1", "rawPath": q.path, "body": q.body, "isBase64Encoded": q.base64,
		"headers": headers, "queryParameters": map[string]string{},
		"requestContext": map[string]any{
			"accountId": testAccount, "domainName": "vpnauthz.cn-hangzhou.fcapp.run", "domainPrefix": "vpnauthz",
			"http": httpCtx, "requestId": "1-69f40ba1-0000", "time": "2026-05-01T02:10:41Z",
			"timeEpoch": "1777601441000", "triggerId": "http-api",
		},
	})
}

// authJSON are the headers of an authorized JSON request.
func authJSON() map[string]string {
	return map[string]string{"Authorization": "Bearer " + testBearer, "Content-Type": "application/json"}
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (r *rig) httpDo(t testing.TB, event []byte) *HTTPResult {
	t.Helper()
	resp, err := r.invoke(t, event)
	if err != nil {
		t.Fatalf("HTTP request gave an invocation error: %v", err)
	}
	out, ok := resp.(*HTTPResult)
	if !ok {
		t.Fatalf("response is %T, want *HTTPResult", resp)
	}
	return out
}

// checkErrorBody checks that body is exactly {"error":{"code":…,"message":…}}
// with the given code and a message mentioning each of want.
func checkErrorBody(t testing.TB, body, code string, want ...string) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if len(top) != 1 || top["error"] == nil {
		t.Fatalf("body %s: want exactly the key error", body)
	}
	var e map[string]any
	if err := json.Unmarshal(top["error"], &e); err != nil {
		t.Fatal(err)
	}
	if len(e) != 2 {
		t.Errorf("error object %v: want exactly code and message", e)
	}
	if e["code"] != code {
		t.Errorf("code = %v, want %s (message %v)", e["code"], code, e["message"])
	}
	msg, _ := e["message"].(string)
	if msg == "" {
		t.Error("empty message")
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not mention %q", msg, w)
		}
	}
}

// padded is a valid JSON body of exactly n bytes.
func padded(t testing.TB, n int) string {
	t.Helper()
	s := `{"targets":["cn-hangzhou:vco-hz0partner0002"]}`
	if n < len(s) {
		t.Fatal("too short")
	}
	return s + strings.Repeat(" ", n-len(s))
}

func TestHTTPErrors(t *testing.T) {
	over := padded(t, MaxBodyBytes+1)
	cases := []struct {
		name    string
		req     httpReq
		noToken bool
		status  int
		code    string
		mention []string
		header  [2]string // a response header that must be set
	}{
		{"unknown route", httpReq{method: "GET", path: "/nope"}, false, 404, CodeNotFound, []string{`"/nope"`}, [2]string{}},
		{"root", httpReq{method: "GET", path: "/"}, false, 404, CodeNotFound, nil, [2]string{}},
		{"route is exact", httpReq{method: "POST", path: "/scans/"}, false, 404, CodeNotFound, nil, [2]string{}},
		{"GET /scans", httpReq{method: "GET", path: "/scans"}, false, 405, CodeMethodNotAllowed, []string{"POST"}, [2]string{"Allow", "POST"}},
		{"POST /health", httpReq{method: "POST", path: "/health"}, false, 405, CodeMethodNotAllowed, []string{"GET"}, [2]string{"Allow", "GET, HEAD"}},
		{"empty method", httpReq{method: "", path: "/health"}, false, 405, CodeMethodNotAllowed, nil, [2]string{"Allow", "GET, HEAD"}},
		{"path to clean", httpReq{method: "GET", path: "/scans/../health"}, false, 404, CodeNotFound, nil, [2]string{}},
		{"DELETE /scans", httpReq{method: "DELETE", path: "/scans", headers: authJSON()}, false, 405, CodeMethodNotAllowed, nil, [2]string{"Allow", "POST"}},
		{"no bearer", httpReq{method: "POST", path: "/scans"}, false, 401, CodeUnauthorized, []string{"missing"}, [2]string{"WWW-Authenticate", "Bearer"}},
		{"empty authorization", httpReq{method: "POST", path: "/scans", headers: map[string]string{"Authorization": ""}}, false, 401, CodeUnauthorized, nil, [2]string{"WWW-Authenticate", "Bearer"}},
		{"wrong bearer", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", "Bearer not-the-token")}, false, 401, CodeUnauthorized, []string{"wrong"}, [2]string{"WWW-Authenticate", "Bearer"}},
		{"bearer prefix of token", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", "Bearer demo")}, false, 401, CodeUnauthorized, nil, [2]string{}},
		{"bearer token extended", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", "Bearer demo-token2")}, false, 401, CodeUnauthorized, nil, [2]string{}},
		{"basic scheme", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", "Basic ZGVtby10b2tlbg==")}, false, 401, CodeUnauthorized, []string{"Bearer"}, [2]string{}},
		{"token without scheme", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", testBearer)}, false, 401, CodeUnauthorized, nil, [2]string{}},
		{"auth before body checks", httpReq{method: "POST", path: "/scans", body: over}, false, 401, CodeUnauthorized, nil, [2]string{}},
		{"body over 64 KiB", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: over}, false, 413, CodePayloadTooLarge, []string{"65536"}, [2]string{}},
		{"Content-Length understated", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Length", "46"), body: over}, false, 413, CodePayloadTooLarge, nil, [2]string{}},
		{"base64 body over 64 KiB", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: base64.StdEncoding.EncodeToString([]byte(over)), base64: true}, false, 413, CodePayloadTooLarge, nil, [2]string{}},
		{"over-long base64 refused before decoding", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: strings.Repeat("!", base64.StdEncoding.EncodedLen(MaxBodyBytes)+1), base64: true}, false, 413, CodePayloadTooLarge, nil, [2]string{}},
		{"bad base64", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: "eyJ0YXJnZXRzIjpbXX0*", base64: true}, false, 400, CodeInvalidBody, []string{"base64"}, [2]string{}},
		{"text/plain", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Type", "text/plain"), body: `{}`}, false, 415, CodeUnsupportedMediaType, []string{`"text/plain"`}, [2]string{}},
		{"no Content-Type", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Type", ""), body: `{}`}, false, 415, CodeUnsupportedMediaType, nil, [2]string{}},
		{"json-like type", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Type", "application/jsonx"), body: `{}`}, false, 415, CodeUnsupportedMediaType, nil, [2]string{}},
		{"malformed type", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Type", "application/json; =x"), body: `{}`}, false, 415, CodeUnsupportedMediaType, nil, [2]string{}},
		{"bad JSON", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":`}, false, 400, CodeInvalidBody, []string{"truncated"}, [2]string{}},
		{"syntax error", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{targets}`}, false, 400, CodeInvalidBody, []string{"not valid JSON"}, [2]string{}},
		{"not an object", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `["cn-hangzhou:*"]`}, false, 400, CodeInvalidBody, []string{"object", "list"}, [2]string{}},
		{"unknown field", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:*"],"region":"x"}`}, false, 400, CodeInvalidBody, []string{`unknown field "region"`}, [2]string{}},
		{"field in wrong case", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"Targets":["cn-hangzhou:*"]}`}, false, 400, CodeInvalidBody, []string{`unknown field "Targets"`}, [2]string{}},
		{"trailing data", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"dryRun":true} {"dryRun":false}`}, false, 400, CodeInvalidBody, []string{"after the JSON object"}, [2]string{}},
		{"trailing garbage", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{}x`}, false, 400, CodeInvalidBody, []string{"after the JSON object"}, [2]string{}},
		{"targets not a list", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":"cn-hangzhou:*"}`}, false, 400, CodeInvalidBody, []string{`"targets"`, "list of strings", "got a string"}, [2]string{}},
		{"target not a string", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:*",7]}`}, false, 400, CodeInvalidBody, []string{`"targets[1]"`, "got a number"}, [2]string{}},
		{"dryRun not a bool", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"dryRun":"yes"}`}, false, 400, CodeInvalidBody, []string{`"dryRun"`, "true or false", "got a string"}, [2]string{}},
		{"bad target", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:i-bp1abc"]}`}, false, 400, CodeInvalidTarget, []string{`"cn-hangzhou:i-bp1abc"`, "vco-"}, [2]string{}},
		{"bad targets all named", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["nocolon","cn-hangzhou:*","CN-HANGZHOU:vco-hz0partner0002"]}`}, false, 400, CodeInvalidTarget, []string{`"nocolon"`, `"CN-HANGZHOU:vco-hz0partner0002"`}, [2]string{}},
		{"empty target list", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":[]}`}, false, 400, CodeNoTargets, []string{"targets"}, [2]string{}},
		{"other region", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-beijing:vco-bj0any000001","cn-hangzhou:vco-hz0partner0002"]}`}, false, 403, CodeOutOfScope, []string{"cn-beijing:vco-bj0any000001"}, [2]string{}},
		{"connection not configured", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["ap-southeast-1:vco-sg0owner000002"]}`}, false, 403, CodeOutOfScope, []string{"ap-southeast-1:vco-sg0owner000002"}, [2]string{}},
		{"wildcard wider than scope", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-shanghai:*"]}`}, false, 403, CodeOutOfScope, []string{"cn-shanghai:*"}, [2]string{}},
		{"no token configured still checks body", httpReq{method: "POST", path: "/scans", headers: map[string]string{"Content-Type": "application/json"}, body: `{"x":1}`}, true, 400, CodeInvalidBody, []string{`"x"`}, [2]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(o *Options) {
				if tc.noToken {
					o.Config.HTTPAuthToken = ""
				}
			})
			resp := r.httpDo(t, tc.req.event(t))
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.status, resp.Body)
			}
			checkErrorBody(t, resp.Body, tc.code, tc.mention...)
			if tc.header[0] != "" && resp.Headers[tc.header[0]] != tc.header[1] {
				t.Errorf("header %s = %q, want %q", tc.header[0], resp.Headers[tc.header[0]], tc.header[1])
			}
			if resp.IsBase64Encoded {
				t.Error("isBase64Encoded set on a JSON body")
			}
			if n := len(r.scanner.calls()); n != 0 {
				t.Errorf("scanner called %d times for a refused request", n)
			}
			if r.sinks.count() != 0 {
				t.Error("a sink was opened for a refused request")
			}
		})
	}
}

func TestHTTPHealth(t *testing.T) {
	cases := []struct {
		name string
		req  httpReq
	}{
		{"plain", httpReq{method: "GET", path: "/health"}},
		{"no bearer needed even when set", httpReq{method: "GET", path: "/health", headers: map[string]string{"Authorization": "Bearer wrong"}}},
		{"path from rawPath", httpReq{method: "GET", path: "/health", rawPathOnly: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			resp := r.httpDo(t, tc.req.event(t))
			if resp.StatusCode != 200 || resp.Body != `{"status":"ok","version":"1.2.3"}` {
				t.Errorf("got %d %s", resp.StatusCode, resp.Body)
			}
			if len(r.scanner.calls()) != 0 || r.sinks.count() != 0 {
				t.Error("health made a cloud call")
			}
		})
	}
}

func TestHTTPRawPathIsDecoded(t *testing.T) {
	r := newRig(t, nil)
	resp := r.httpDo(t, httpReq{method: "GET", path: "/h%65alth", rawPathOnly: true}.event(t))
	if resp.StatusCode != 200 {
		t.Errorf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
}

// scanReport decodes a POST /scans body and checks its shape: the report
// keys, and findings a list of objects with exactly the finding keys.
func scanReport(t testing.TB, body string) HTTPReport {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scanId", "trigger", "startedAt", "durationMs", "complete", "summary", "delivery", "findings"} {
		if _, ok := top[k]; !ok {
			t.Errorf("report lacks %q: %s", k, body)
		}
	}
	if f := strings.TrimSpace(string(top["findings"])); !strings.HasPrefix(f, "[") {
		t.Fatalf("findings = %s, want a list", f)
	}
	var findings []map[string]any
	if err := json.Unmarshal(top["findings"], &findings); err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		var keys []string
		for k, v := range f {
			keys = append(keys, k)
			if _, ok := v.(string); !ok {
				t.Errorf("finding value %s is %T, want a string", k, v)
			}
		}
		slices.Sort(keys)
		want := slices.Clone(finding.Keys)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("finding keys = %v, want %v", keys, want)
		}
	}
	var rep HTTPReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestHTTPScans(t *testing.T) {
	exact := padded(t, MaxBodyBytes)
	cases := []struct {
		name    string
		req     httpReq
		noToken bool
		targets string // what the scanner is asked for
		dryRun  bool
	}{
		{"targets in body", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:vco-hz0partner0002"]}`}, false, "cn-hangzhou:vco-hz0partner0002", false},
		{"no body: configured targets", httpReq{method: "POST", path: "/scans", headers: map[string]string{"Authorization": "Bearer " + testBearer}}, false,
			"ap-southeast-1:vco-sg0denied00001 cn-hangzhou:* cn-shanghai:vco-sh0rogue000002 cn-shanghai:vco-sh0stale000001", false},
		{"blank body needs no Content-Type", httpReq{method: "POST", path: "/scans", headers: map[string]string{"Authorization": "Bearer " + testBearer}, body: " \n"}, false,
			"ap-southeast-1:vco-sg0denied00001 cn-hangzhou:* cn-shanghai:vco-sh0rogue000002 cn-shanghai:vco-sh0stale000001", false},
		{"empty object: configured targets", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{}`}, false,
			"ap-southeast-1:vco-sg0denied00001 cn-hangzhou:* cn-shanghai:vco-sh0rogue000002 cn-shanghai:vco-sh0stale000001", false},
		{"duplicates collapsed", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-shanghai:vco-sh0stale000001","cn-hangzhou:*","cn-shanghai:vco-sh0stale000001","cn-hangzhou:vco-hz0partner0002"]}`}, false,
			"cn-hangzhou:* cn-shanghai:vco-sh0stale000001", false},
		{"dry run", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-shanghai:vco-sh0rogue000002"],"dryRun":true}`}, false, "cn-shanghai:vco-sh0rogue000002", true},
		{"header names in any case", httpReq{method: "POST", path: "/scans", headers: map[string]string{"authorization": "Bearer " + testBearer, "CONTENT-TYPE": "application/json"}, body: `{"targets":["cn-hangzhou:*"]}`}, false, "cn-hangzhou:*", false},
		{"scheme in any case", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Authorization", "bEaReR "+testBearer), body: `{"targets":["cn-hangzhou:*"]}`}, false, "cn-hangzhou:*", false},
		{"content type with parameters", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Type", "Application/JSON; charset=UTF-8"), body: `{"targets":["cn-hangzhou:*"]}`}, false, "cn-hangzhou:*", false},
		{"base64 body", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: base64.StdEncoding.EncodeToString([]byte(`{"targets":["ap-southeast-1:vco-sg0denied00001"]}`)), base64: true}, false, "ap-southeast-1:vco-sg0denied00001", false},
		{"exactly 64 KiB", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: exact}, false, "cn-hangzhou:vco-hz0partner0002", false},
		{"exactly 64 KiB in base64", httpReq{method: "POST", path: "/scans", headers: authJSON(), body: base64.StdEncoding.EncodeToString([]byte(exact)), base64: true}, false, "cn-hangzhou:vco-hz0partner0002", false},
		{"Content-Length overstated", httpReq{method: "POST", path: "/scans", headers: with(authJSON(), "Content-Length", strconv.Itoa(10*MaxBodyBytes)), body: `{"targets":["cn-hangzhou:*"]}`}, false, "cn-hangzhou:*", false},
		{"no token configured", httpReq{method: "POST", path: "/scans", headers: map[string]string{"Content-Type": "application/json"}, body: `{"targets":["cn-hangzhou:*"]}`}, true, "cn-hangzhou:*", false},
		{"path from rawPath", httpReq{method: "POST", path: "/scans", rawPathOnly: true, headers: authJSON(), body: `{"targets":["cn-hangzhou:*"]}`}, false, "cn-hangzhou:*", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(o *Options) {
				if tc.noToken {
					o.Config.HTTPAuthToken = ""
				}
			})
			resp := r.httpDo(t, tc.req.event(t))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
			}
			calls := r.scanner.calls()
			if len(calls) != 1 {
				t.Fatalf("scanner called %d times", len(calls))
			}
			req := calls[0]
			if got := targetStrings(req.Targets); got != tc.targets {
				t.Errorf("targets = %s, want %s", got, tc.targets)
			}
			if req.Trigger != "http" || req.ScanID != testScanID || !req.CollectFindings || req.DryRun != tc.dryRun ||
				req.AccountID != testAccount || req.Credentials.AccessKeyID != testKeyID ||
				req.Credentials.AccessKeySecret != testKeySecret || req.Credentials.SecurityToken != testToken {
				t.Errorf("request = trigger %s scan %s collect %v dry %v account %s key %s",
					req.Trigger, req.ScanID, req.CollectFindings, req.DryRun, req.AccountID, req.Credentials.AccessKeyID)
			}
			if tc.dryRun != (r.sinks.count() == 0) {
				t.Errorf("sinks opened = %d, dry run %v", r.sinks.count(), tc.dryRun)
			}
			if !tc.dryRun && (r.sinks.opened[0].region != testRegion || r.sinks.opened[0].creds != req.Credentials) {
				t.Errorf("sink opened for %s with other credentials", r.sinks.opened[0].region)
			}
			rep := scanReport(t, resp.Body)
			if rep.ScanID != testScanID || rep.Trigger != "http" || len(rep.Findings) != len(req.Targets) || rep.Error != nil {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

func TestHTTPEmptyFindingsIsAList(t *testing.T) {
	r := newRig(t, nil)
	r.scanner.noFinding = true
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:*"]}`}.event(t))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"findings":[]`) {
		t.Errorf("got %d %s", resp.StatusCode, resp.Body)
	}
	scanReport(t, resp.Body)
}

func TestHTTPDeliveryFailed(t *testing.T) {
	r := newRig(t, nil)
	r.sinks.fail = true
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:vco-hz0partner0002"]}`}.event(t))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
	rep := scanReport(t, resp.Body)
	if rep.Delivery.Delivered || rep.Delivery.Error == "" || len(rep.Findings) != 1 || rep.Summary.Pass != 1 {
		t.Errorf("report = %+v", rep)
	}
	if rep.Error == nil || rep.Error.Code != CodeDeliveryFailed || !strings.Contains(rep.Error.Message, "logstore findings does not exist") {
		t.Errorf("error = %+v", rep.Error)
	}
}

func TestHTTPSinkUnavailable(t *testing.T) {
	r := newRig(t, nil)
	r.sinks.openErr = errors.New("dial tcp: lookup vpnauthz.cn-hangzhou.log.aliyuncs.com: no such host")
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON()}.event(t))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
	checkErrorBody(t, resp.Body, CodeDeliveryFailed, "no such host")
	if len(r.scanner.calls()) != 0 {
		t.Error("scanned although findings could not go anywhere")
	}
}

func TestHTTPSinkNotConfigured(t *testing.T) {
	// Missing SLS settings are configuration: 500, as for any other
	// invalid variable, not a delivery failure.
	r := newRig(t, nil)
	r.sinks.openErr = &config.Error{Variable: "SLS_PROJECT, SLS_LOGSTORE", Reason: "must be set to deliver findings to Log Service"}
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON()}.event(t))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
	checkErrorBody(t, resp.Body, CodeInvalidConfiguration, "SLS_PROJECT, SLS_LOGSTORE")
	if len(r.scanner.calls()) != 0 {
		t.Error("scanned although findings could not go anywhere")
	}
}

func TestHTTPTokenBehindSignedTrigger(t *testing.T) {
	// authType function: Authorization carries the caller's signature, the
	// token comes in TokenHeader.
	signed := map[string]string{
		"Authorization": "ACS3-HMAC-SHA256 Credential=LTAI5t,SignedHeaders=host;x-acs-date,Signature=0f",
		"Content-Type":  "application/json",
	}
	r := newRig(t, nil)
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: with(signed, "x-vpnauthz-authorization", "Bearer "+testBearer)}.event(t))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("token in %s: status %d, body %s", TokenHeader, resp.StatusCode, resp.Body)
	}
	for name, value := range map[string]string{TokenHeader: "Bearer wrong", "": ""} {
		h := signed
		if name != "" {
			h = with(signed, name, value)
		}
		resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: h}.event(t))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %q beside a signature: status %d, want 401", name, value, resp.StatusCode)
		}
	}
}

func TestHTTPScannerRefuses(t *testing.T) {
	r := newRig(t, nil)
	r.scanner.err = errors.New("no targets")
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON()}.event(t))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
	checkErrorBody(t, resp.Body, CodeScanFailed, "no targets")
}

func TestHTTPNoTargetsAnywhere(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Config.Targets = nil })
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON()}.event(t))
	if resp.StatusCode != 400 {
		t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
	checkErrorBody(t, resp.Body, CodeNoTargets, "SCAN_TARGETS is empty")

	resp = r.httpDo(t, httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["cn-hangzhou:*"]}`}.event(t))
	if resp.StatusCode != 403 {
		t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
	}
	checkErrorBody(t, resp.Body, CodeOutOfScope, "SCAN_TARGETS, which is empty", "cn-hangzhou:*")
}

func TestHTTPConfigError(t *testing.T) {
	for _, path := range []string{"/scans", "/health"} {
		method := map[string]string{"/scans": "POST", "/health": "GET"}[path]
		t.Run(path, func(t *testing.T) {
			r := newRig(t, func(o *Options) {
				o.Config = nil
				o.ConfigErr = errors.Join(
					&config.Error{Variable: "TRUSTED_ACCOUNT_IDS", Value: "12ab", Reason: "must be an account UID"},
					&config.Error{Variable: "SCAN_TARGETS", Value: "cn-hangzhou:vco-secretname", Reason: "too short"})
			})
			resp := r.httpDo(t, httpReq{method: method, path: path, headers: authJSON()}.event(t))
			if resp.StatusCode != 500 {
				t.Fatalf("status = %d, body %s", resp.StatusCode, resp.Body)
			}
			checkErrorBody(t, resp.Body, CodeInvalidConfiguration, "TRUSTED_ACCOUNT_IDS, SCAN_TARGETS")
			// The caller learns which variables to fix, not their values.
			for _, value := range []string{"12ab", "vco-secretname"} {
				if strings.Contains(resp.Body, value) {
					t.Errorf("body %s shows the configured value %q", resp.Body, value)
				}
			}
		})
	}
}

func TestHTTPAmbiguousHeaderCase(t *testing.T) {
	// Two keys differing only in case are joined, in key order, as repeated
	// headers are: the answer never depends on map iteration order.
	r := newRig(t, nil)
	req := httpReq{method: "POST", path: "/scans", body: `{}`, headers: map[string]string{
		"Authorization": "Bearer " + testBearer, "authorization": "Bearer " + testBearer, "Content-Type": "application/json"}}
	for range 20 {
		resp := r.httpDo(t, req.event(t))
		if resp.StatusCode != 401 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	}
}

func TestHTTPHead(t *testing.T) {
	cases := []struct {
		name   string
		path   string
		status int
		allow  string
	}{
		{"health", "/health", 200, ""},
		{"scans", "/scans", 405, "POST"},
		{"unknown", "/nope", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			head := r.httpDo(t, httpReq{method: "HEAD", path: tc.path}.event(t))
			if head.StatusCode != tc.status || head.Body != "" || head.Value != nil || head.Headers["Allow"] != tc.allow {
				t.Errorf("HEAD %s = %d %q value %v allow %q, want %d, no body, Allow %q",
					tc.path, head.StatusCode, head.Body, head.Value, head.Headers["Allow"], tc.status, tc.allow)
			}
			if tc.status == 200 {
				get := r.httpDo(t, httpReq{method: "GET", path: tc.path}.event(t))
				if !maps.Equal(get.Headers, head.Headers) {
					t.Errorf("HEAD headers %v, GET headers %v", head.Headers, get.Headers)
				}
			}
			if len(r.scanner.calls()) != 0 {
				t.Error("HEAD scanned")
			}
		})
	}
}

// The answers keep exactly the JSON FC returned before they were typed.
func TestResultsMarshalAsTheirWireForm(t *testing.T) {
	r := newRig(t, nil)
	resp, err := r.invoke(t, timerEvent(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(mustJSON(t, resp)), string(mustJSON(t, report(t, resp))); got != want {
		t.Errorf("scan result %s, report %s", got, want)
	}
	h := r.httpDo(t, httpReq{method: "GET", path: "/health"}.event(t))
	if got, want := string(mustJSON(t, h)), string(mustJSON(t, h.HTTPTriggerResponse)); got != want {
		t.Errorf("HTTP result %s, response %s", got, want)
	}
	if want := `{"statusCode":200,"headers":{"Cache-Control":"no-store","Content-Type":"application/json; charset=utf-8"},"isBase64Encoded":false,"body":"{\"status\":\"ok\",\"version\":\"1.2.3\"}"}`; string(mustJSON(t, h)) != want {
		t.Errorf("health = %s, want %s", mustJSON(t, h), want)
	}
	if v, ok := h.Value.(*Health); !ok || v.Status != "ok" {
		t.Errorf("value %T %+v", h.Value, h.Value)
	}
	ig, err := r.invoke(t, variantFile(t, "eventbridge-unrelated.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(mustJSON(t, ig)); !strings.HasPrefix(got, `{"ignored":true,"reason":"`) {
		t.Errorf("ignored = %s", got)
	}
}

func TestUnauthorizedHeaderKeepsItsSpelling(t *testing.T) {
	r := newRig(t, nil)
	resp := r.httpDo(t, httpReq{method: "POST", path: "/scans"}.event(t))
	if _, ok := resp.Headers["WWW-Authenticate"]; !ok || len(resp.Headers) != 3 {
		t.Errorf("headers %v: want WWW-Authenticate, Content-Type and Cache-Control", resp.Headers)
	}
}
