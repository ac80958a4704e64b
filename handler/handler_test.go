package handler

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"vpnauthz/internal/scan"
)

// Every sample event is recognised as its kind and answered as that kind.
func TestSamples(t *testing.T) {
	cases := map[string]struct {
		want    string // report, http NNN, ignored
		targets string
	}{
		"timer.json":                         {"report", allTargets},
		"timer-payload.json":                 {"report", "cn-hangzhou:vco-hz0partner0002"},
		"http-post-scans.json":               {"http 200", "cn-hangzhou:vco-hz0partner0002"},
		"http-get-health.json":               {"http 200", ""},
		"eventbridge-grant.json":             {"report", "cn-hangzhou:vco-hz0partner0002"},
		"eventbridge-revoke.json":            {"report", "cn-shanghai:vco-sh0rogue000002"},
		"eventbridge-modify-connection.json": {"report", "cn-hangzhou:vco-hz0trusted0001"},
		"eventbridge-create-without-id.json": {"report", "cn-shanghai:vco-sh0rogue000002 cn-shanghai:vco-sh0stale000001"},
		"eventbridge-failed-call.json":       {"ignored", ""},
		"eventbridge-unrelated.json":         {"ignored", ""},
		"sls-trail.json":                     {"report", "cn-hangzhou:vco-hz0partner0002"},
	}
	files, err := filepath.Glob(filepath.Join("..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			tc, ok := cases[name]
			if !ok {
				t.Fatalf("sample %s has no expectation here", name)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			kind, err := detect(data)
			if err != nil {
				t.Fatal(err)
			}
			if prefix := strings.SplitN(name, "-", 2)[0]; map[string]string{"timer.json": "timer", "timer": "timer", "http": "http", "eventbridge": "event", "sls": "sls"}[prefix] != kind {
				t.Errorf("%s recognised as %s", name, kind)
			}
			r := newRig(t, nil)
			resp, err := r.invoke(t, data)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			switch v := resp.(type) {
			case *ScanResult:
				got = "report"
			case *Ignored:
				got = "ignored"
			case *HTTPResult:
				got = "http " + itoa(v.StatusCode)
			default:
				t.Fatalf("response %T", resp)
			}
			if got != tc.want {
				t.Errorf("answered %s, want %s", got, tc.want)
			}
			calls := r.scanner.calls()
			if tc.targets == "" {
				if len(calls) != 0 {
					t.Errorf("scanned %d times", len(calls))
				}
				return
			}
			if len(calls) != 1 || targetStrings(calls[0].Targets) != tc.targets {
				t.Errorf("scan requests = %+v, want targets %s", calls, tc.targets)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestUnrecognisedEvents(t *testing.T) {
	cases := []struct {
		name    string
		event   string
		mention []string
	}{
		{"invalid JSON", `{"triggerTime":`, []string{"truncated"}},
		{"garbage", `hello`, []string{"not valid JSON"}},
		{"empty", ``, []string{"empty"}},
		{"a list", `[1,2]`, []string{"must be an object", "got a list"}},
		{"a string", `"timer"`, []string{"got a string"}},
		{"null", `null`, []string{"keys (none)"}},
		{"no known keys", `{"Records":[{"eventName":"x"}]}`, []string{`"Records"`, "timer event", "CloudEvent"}},
		{"HTTP of another version", `{"version":"v2","requestContext":{}}`, []string{`"version"`}},
		{"HTTP without context", `{"version":"v1","rawPath":"/scans"}`, []string{`"rawPath"`}},
		{"CloudEvent without type", `{"specversion":"1.0","data":{}}`, []string{`"specversion"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			_, err := r.invoke(t, []byte(tc.event))
			wantInvokeError(t, err, ErrInvalidEvent, tc.mention...)
		})
	}
}

func TestConfigErrorForEveryTrigger(t *testing.T) {
	cerr := errors.New(`SCAN_TARGETS: "cn-hangzhou/vco-1" (target must be REGION:vco-… or REGION:*)`)
	for _, name := range []string{"timer.json", "timer-payload.json", "eventbridge-grant.json", "eventbridge-unrelated.json"} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, func(o *Options) { o.Config, o.ConfigErr = nil, cerr })
			_, err := r.invoke(t, variant(t, name, nil))
			wantInvokeError(t, err, ErrInvalidConfiguration, "SCAN_TARGETS", `"cn-hangzhou/vco-1"`)
		})
	}
	t.Run("nil config without an error", func(t *testing.T) {
		r := newRig(t, func(o *Options) { o.Config = nil })
		_, err := r.invoke(t, variant(t, "timer.json", nil))
		wantInvokeError(t, err, ErrInvalidConfiguration, "no configuration")
	})
}

func variantFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestInvocationContext(t *testing.T) {
	cases := []struct {
		name  string
		inv   Invocation
		event string
	}{
		{"no credentials: timer", invocationAs("", "", "", "r1"), "timer.json"},
		{"no credentials: event", invocationAs("", "", "", "r1"), "eventbridge-grant.json"},
		{"no credentials: HTTP scan", invocationAs("", "", "", "r1"), "http-post-scans.json"},
		{"no secret", invocationAs(testKeyID, "", testToken, "r1"), "timer.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			resp, err := r.h.Handle(context.Background(), tc.inv, variantFile(t, tc.event))
			checkResult(t, resp, err)
			wantInvokeError(t, err, ErrInvalidContext)
			if len(r.scanner.calls()) != 0 {
				t.Error("scanned without credentials")
			}
		})
	}
	t.Run("health needs no credentials", func(t *testing.T) {
		r := newRig(t, nil)
		resp, err := r.h.Handle(context.Background(), invocationAs("", "", "", "r1"), variantFile(t, "http-get-health.json"))
		checkResult(t, resp, err)
		if v, ok := resp.(*HTTPResult); !ok || v.StatusCode != 200 {
			t.Errorf("got %+v, %v", resp, err)
		}
	})
}

// Two invocations at once, each with its own credentials: each scan and each
// sink gets its own, never the other's.
func TestConcurrentInvocationsKeepTheirCredentials(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	r := newRig(t, func(o *Options) { o.NewScanID = randomScanID })
	// Hold each scan until both are running, so the two really overlap.
	r.scanner.hook = func(req scan.Request, sink scan.Sink) {
		arrived.Done()
		arrived.Wait()
		if s, ok := sink.(*fakeSink); !ok || s.creds != req.Credentials {
			t.Errorf("sink credentials differ from the scan's")
		}
	}
	type call struct {
		keyID, secret, token, target string
		kind                         string
	}
	calls := []call{
		{"STS.AAAA", "secret-a", "token-a", "cn-hangzhou:vco-hz0partner0002", "timer"},
		{"STS.BBBB", "secret-b", "token-b", "cn-shanghai:vco-sh0rogue000002", "http"},
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			inv := invocationAs(c.keyID, c.secret, c.token, "req-"+c.keyID)
			var ev []byte
			if c.kind == "timer" {
				ev = timerEvent(t, `{"targets":["`+c.target+`"]}`)
			} else {
				ev = httpReq{method: "POST", path: "/scans", headers: authJSON(), body: `{"targets":["` + c.target + `"]}`}.event(t)
			}
			resp, err := r.h.Handle(context.Background(), inv, ev)
			if err != nil {
				t.Errorf("%s: %v", c.kind, err)
			}
			checkResult(t, resp, err)
		})
	}
	wg.Wait()
	reqs := r.scanner.calls()
	if len(reqs) != 2 {
		t.Fatalf("scans = %d", len(reqs))
	}
	if reqs[0].ScanID == reqs[1].ScanID {
		t.Error("two invocations share a scan id")
	}
	for _, req := range reqs {
		var want *call
		for i := range calls {
			if targetStrings(req.Targets) == calls[i].target {
				want = &calls[i]
			}
		}
		if want == nil {
			t.Fatalf("unexpected targets %s", targetStrings(req.Targets))
		}
		got := req.Credentials
		if got.AccessKeyID != want.keyID || got.AccessKeySecret != want.secret || got.SecurityToken != want.token {
			t.Errorf("scan of %s ran with the credentials of %s", want.target, got.AccessKeyID)
		}
	}
	for _, s := range []string{"secret-a", "secret-b", "token-a", "token-b"} {
		if strings.Contains(r.logs.String(), s) {
			t.Errorf("%s logged", s)
		}
	}
}

func TestLogsCarryRequestAndScanIDs(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.invoke(t, variantFile(t, "eventbridge-grant.json")); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(r.logs.String()), "\n")
	if len(lines) == 0 {
		t.Fatal("nothing logged")
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %s", line)
		}
		if rec["request_id"] != "1-69f40ba1-2f6b1a3c9d8e7f6a5b4c3d2e" || rec["scan_id"] != testScanID {
			t.Errorf("line without ids: %s", line)
		}
	}
}

func TestDefaults(t *testing.T) {
	h := New(Options{Config: testConfig(t), Scanner: &fakeScanner{}, NewSink: (&fakeSinks{}).New})
	a, b := h.opts.NewScanID(), h.opts.NewScanID()
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("scan ids %q %q: want 32 random hex digits", a, b)
	}
	resp, err := h.Handle(context.Background(), testInvocation(), variantFile(t, "http-get-health.json"))
	if v, ok := resp.(*HTTPResult); err != nil || !ok || v.Body != `{"status":"ok","version":"dev"}` {
		t.Errorf("got %+v, %v", resp, err)
	}
}

func TestJSONProblemsAreToldByType(t *testing.T) {
	cases := []struct {
		event string
		want  string
	}{
		{"", "the event is empty"},
		{"  \n", "the event is empty"},
		{`{"triggerTime":`, "the event is truncated JSON"},
		{`{"triggerTime":tru`, "the event is truncated JSON"},
		{`{"triggerTime":1x}`, "the event is not valid JSON: invalid character 'x'"},
		{`{"triggerTime":1} {}`, "the event has unexpected data after the JSON object"},
		{`[1]`, "the event must be an object, got a list"},
	}
	for _, tc := range cases {
		_, err := newRig(t, nil).invoke(t, []byte(tc.event))
		wantInvokeError(t, err, ErrInvalidEvent, tc.want)
	}
}
