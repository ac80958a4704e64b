package handler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quietRig is a rig whose logs go nowhere: fuzzing makes millions of them.
func quietRig(t testing.TB) *rig {
	t.Helper()
	return newRig(t, func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) })
}

// noLeak checks that no secret of the test context is in the answer.
func noLeak(t *testing.T, resp Result, err error) {
	t.Helper()
	out, _ := json.Marshal(resp)
	text := string(out)
	if err != nil {
		text += err.Error()
	}
	for _, s := range []string{testKeySecret, testToken} {
		if strings.Contains(text, s) {
			t.Fatalf("secret in the answer: %s", text)
		}
	}
}

var httpStatuses = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 413: true, 415: true, 500: true, 502: true}

func addSamples(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzInvoke: any bytes give an answer or an invocation error, never a
// panic, never both, never a secret.
func FuzzInvoke(f *testing.F) {
	addSamples(f)
	for _, s := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"triggerTime":null}`, `{"triggerName":"t","payload":"{\"targets\":[1]}"}`,
		`{"version":"v1","requestContext":null}`, `{"version":"v1","requestContext":{"http":{"method":"POST","path":"/scans"}},"body":"e30=","isBase64Encoded":true,"headers":{"authorization":"Bearer demo-token","content-type":"application/json"}}`,
		`{"specversion":"1.0","type":"x","data":"{\"eventName\":\"CreateVpnAttachment\",\"requestParameters\":{\"RegionId\":\"cn-shanghai\"}}"}`,
		`{"specversion":"1.0","type":"x","data":{"eventName":"GrantInstanceToTransitRouter","requestParameters":{"InstanceId":["vco-a"],"RegionId":{}}}}`,
	} {
		f.Add([]byte(s))
	}
	r := quietRig(f)
	f.Fuzz(func(t *testing.T, event []byte) {
		resp, err := r.h.Handle(context.Background(), testInvocation(), event)
		checkResult(t, resp, err)
		noLeak(t, resp, err)
		if v, ok := resp.(*HTTPResult); ok && !httpStatuses[v.StatusCode] {
			t.Fatalf("status %d", v.StatusCode)
		}
	})
}

// FuzzHTTPBody: any POST /scans body, encoding and content type give a
// status with a JSON body, never an invocation error.
func FuzzHTTPBody(f *testing.F) {
	f.Add(`{"targets":["cn-hangzhou:vco-hz0partner0002"]}`, false, "application/json")
	f.Add(`{"targets":["cn-hangzhou:vco-hz0partner0002"],"dryRun":true}`, false, "application/json; charset=utf-8")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"targets":["cn-shanghai:vco-sh0rogue000002"]}`)), true, "application/json")
	f.Add(`{"targets":[]}`, false, "application/json")
	f.Add(`{"targets":["cn-beijing:*"]}`, false, "application/json")
	f.Add(`{"targets":"x","dryRun":1}`, false, "application/json")
	f.Add(`{} {}`, false, "application/json")
	f.Add(`{}`, false, "text/plain")
	f.Add(`not base64!`, true, "application/json")
	f.Add(``, false, "")
	r := quietRig(f)
	f.Fuzz(func(t *testing.T, body string, isBase64 bool, contentType string) {
		ev := httpReq{method: "POST", path: "/scans", body: body, base64: isBase64,
			headers: map[string]string{"Authorization": "Bearer " + testBearer, "Content-Type": contentType}}.event(t)
		resp, err := r.h.Handle(context.Background(), testInvocation(), ev)
		if err != nil {
			t.Fatalf("invocation error for a request problem: %v", err)
		}
		checkResult(t, resp, err)
		noLeak(t, resp, err)
		v, ok := resp.(*HTTPResult)
		if !ok {
			t.Fatalf("response %T", resp)
		}
		switch v.StatusCode {
		case 200:
			scanReport(t, v.Body)
		case 400, 403, 413, 415:
			var e ErrorBody
			if json.Unmarshal([]byte(v.Body), &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error body %s", v.Body)
			}
		default:
			t.Fatalf("status %d for body %q", v.StatusCode, body)
		}
	})
}
