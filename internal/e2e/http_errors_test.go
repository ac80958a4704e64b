package e2e

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHTTPErrorStatuses sends bad HTTP trigger requests through the binary:
// each gets its status and a JSON error naming the problem, and none reaches
// the cloud.
func TestHTTPErrorStatuses(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())

	json200 := map[string]any{"Content-Type": "application/json"}
	big := `{"targets":["cn-hangzhou:*"],"dryRun":false}` + strings.Repeat(" ", 64<<10)
	cases := []struct {
		name   string
		edit   func(map[string]any)
		status int
		code   string
		msgHas string
		header [2]string // a header the answer must carry
	}{
		{"no bearer token", withRequest("POST", "/scans", "", map[string]any{"Authorization": nil}),
			401, "Unauthorized", "bearer", [2]string{"WWW-Authenticate", "Bearer"}},
		{"wrong bearer token", withRequest("POST", "/scans", "", map[string]any{"Authorization": "Bearer not-the-token"}),
			401, "Unauthorized", "bearer", [2]string{"WWW-Authenticate", "Bearer"}},
		{"another scheme", withRequest("POST", "/scans", "", map[string]any{"Authorization": "Basic ZGVtby10b2tlbg=="}),
			401, "Unauthorized", "Bearer", [2]string{"WWW-Authenticate", "Bearer"}},
		{"region out of scope", withRequest("POST", "/scans", `{"targets":["cn-beijing:*"]}`, json200),
			403, "OutOfScope", "cn-beijing", [2]string{}},
		{"connection out of scope", withRequest("POST", "/scans", `{"targets":["ap-southeast-1:vco-sg0other0000009"]}`, json200),
			403, "OutOfScope", "vco-sg0other0000009", [2]string{}},
		{"whole region where only connections are in scope", withRequest("POST", "/scans", `{"targets":["ap-southeast-1:*"]}`, json200),
			403, "OutOfScope", "ap-southeast-1", [2]string{}},
		{"unknown route", withRequest("POST", "/scan", "", nil), 404, "NotFound", "/scan", [2]string{}},
		{"root", withRequest("GET", "/", "", nil), 404, "NotFound", "", [2]string{}},
		{"GET /scans", withRequest("GET", "/scans", "", nil), 405, "MethodNotAllowed", "POST", [2]string{"Allow", "POST"}},
		{"POST /health", withRequest("POST", "/health", "", nil), 405, "MethodNotAllowed", "GET", [2]string{"Allow", "GET, HEAD"}},
		{"body over 64 KiB", withRequest("POST", "/scans", big, json200), 413, "PayloadTooLarge", "65536", [2]string{}},
		{"base64 body over 64 KiB", func(ev map[string]any) {
			withRequest("POST", "/scans", base64.StdEncoding.EncodeToString([]byte(big)), json200)(ev)
			ev["isBase64Encoded"] = true
		}, 413, "PayloadTooLarge", "65536", [2]string{}},
		{"text body", withRequest("POST", "/scans", `{"targets":[]}`, map[string]any{"Content-Type": "text/plain"}),
			415, "UnsupportedMediaType", "text/plain", [2]string{}},
		{"body without content type", withRequest("POST", "/scans", `{"targets":[]}`, map[string]any{"Content-Type": nil}),
			415, "UnsupportedMediaType", "application/json", [2]string{}},
		{"bad JSON", withRequest("POST", "/scans", `{"targets":`, json200), 400, "InvalidBody", "JSON", [2]string{}},
		{"unknown field", withRequest("POST", "/scans", `{"target":["cn-hangzhou:*"]}`, json200), 400, "InvalidBody", `"target"`, [2]string{}},
		{"targets not a list", withRequest("POST", "/scans", `{"targets":"cn-hangzhou:*"}`, json200), 400, "InvalidBody", "targets", [2]string{}},
		{"dryRun not a boolean", withRequest("POST", "/scans", `{"dryRun":"yes"}`, json200), 400, "InvalidBody", "dryRun", [2]string{}},
		{"bad target", withRequest("POST", "/scans", `{"targets":["hangzhou"]}`, json200), 400, "InvalidTarget", "hangzhou", [2]string{}},
		{"bad connection id", withRequest("POST", "/scans", `{"targets":["cn-hangzhou:vpc-123"]}`, json200), 400, "InvalidTarget", "vpc-123", [2]string{}},
		{"bad base64", func(ev map[string]any) {
			withRequest("POST", "/scans", "!!not base64!!", json200)(ev)
			ev["isBase64Encoded"] = true
		}, 400, "InvalidBody", "base64", [2]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.VPC.ResetStats()
			putLogs := c.SLS.Stats().PutLogsCalls
			res := f.invoke(t, call{payload: httpEvent(t, tc.edit)})
			h := asHTTP(t, res)
			e := checkErrorBody(t, h, tc.status, tc.code)
			if !strings.Contains(e.Message, tc.msgHas) {
				t.Errorf("message %q does not name %q", e.Message, tc.msgHas)
			}
			if tc.header[0] != "" && h.Headers[tc.header[0]] != tc.header[1] {
				t.Errorf("header %s = %q, want %q (headers %v)", tc.header[0], h.Headers[tc.header[0]], tc.header[1], h.Headers)
			}
			if n := c.vpcCalls(); n != 0 {
				t.Errorf("a refused request made %d VPC calls", n)
			}
			if n := c.SLS.Stats().PutLogsCalls - putLogs; n != 0 {
				t.Errorf("a refused request made %d PutLogs calls", n)
			}
		})
	}

	t.Run("Log Service down: 502 with the report, findings on stdout", func(t *testing.T) {
		c.SLS.SetDown(true)
		defer c.SLS.SetDown(false)
		res := f.invoke(t, call{payload: readEvent(t, "http-post-scans.json"), timeout: 4 * time.Second})
		h := asHTTP(t, res)
		e := checkErrorStatus(t, h, 502)
		var r report
		if err := json.Unmarshal([]byte(h.Body), &r); err != nil || r.ScanID == "" {
			t.Fatalf("502 body is not a report: %v\n%s", err, h.Body)
		}
		if e.Code != "DeliveryFailed" || r.Delivery.Delivered || r.Delivery.Error == "" {
			t.Errorf("error %+v, delivery %+v; want DeliveryFailed, not delivered, with its cause", e, r.Delivery)
		}
		if len(r.Findings) == 0 || len(r.Findings) != r.Summary.findings() {
			t.Errorf("502 body has %d findings, the summary counts %d", len(r.Findings), r.Summary.findings())
		}
		var lines []map[string]any
		f.awaitStdout(t, func(stdout []byte) bool {
			lines = findingLines(stdout, r.ScanID)
			return len(lines) >= r.Summary.findings()
		})
		if len(lines) != r.Summary.findings() {
			t.Errorf("%d findings of scan %s on stdout, want %d", len(lines), r.ScanID, r.Summary.findings())
		}
		onStdout := map[string]bool{}
		for _, l := range lines {
			checkKeys(t, "finding on stdout", slices.Collect(maps.Keys(l)), findingKeys)
			uid, _ := l["finding_uid"].(string)
			onStdout[uid] = true
		}
		for _, raw := range r.Findings {
			var bf map[string]any
			_ = json.Unmarshal(raw, &bf)
			if uid, _ := bf["finding_uid"].(string); !onStdout[uid] {
				t.Errorf("finding %s of the body is not on stdout", uid)
			}
		}
	})

	t.Run("still serving", func(t *testing.T) {
		checkHealth(t, asHTTP(t, f.invoke(t, call{payload: readEvent(t, "http-get-health.json")})))
	})
	if p := panics(append(f.stdout.Bytes(), f.stderr.Bytes()...)); len(p) > 0 {
		t.Errorf("the function's output shows a panic: %q", p)
	}
}

// checkErrorStatus checks the status and the error object of a response.
func checkErrorStatus(t *testing.T, h httpResponse, status int) apiError {
	t.Helper()
	if h.StatusCode != status {
		t.Fatalf("statusCode = %d, want %d: %s", h.StatusCode, status, h.Body)
	}
	if ct := h.Headers["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var b struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal([]byte(h.Body), &b); err != nil || b.Error == nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("body is not a JSON error with code and message (%v): %s", err, h.Body)
	}
	return *b.Error
}

// checkErrorBody checks a response that is exactly {"error":{"code","message"}}.
func checkErrorBody(t *testing.T, h httpResponse, status int, code string) apiError {
	t.Helper()
	e := checkErrorStatus(t, h, status)
	var top map[string]map[string]any
	if err := json.Unmarshal([]byte(h.Body), &top); err != nil {
		t.Fatalf("error body: %v: %s", err, h.Body)
	}
	checkKeys(t, "error body", slices.Collect(maps.Keys(top)), []string{"error"})
	checkKeys(t, "error object", slices.Collect(maps.Keys(top["error"])), []string{"code", "message"})
	if e.Code != code {
		t.Errorf("code = %q, want %q (message %q)", e.Code, code, e.Message)
	}
	return e
}
