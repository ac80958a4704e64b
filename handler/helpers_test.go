package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
	"vpnauthz/internal/testutil"
)

// Secrets of the test invocations: none may appear in any response, error or
// log line.
const (
	testKeyID     = "STS.NTestAccessKeyId0001"
	testKeySecret = "TestAccessKeySecret-do-not-leak-0001"
	testToken     = "CAIS-security-token-do-not-leak-0001"
	testBearer    = "demo-token"
	testAccount   = "1234567890123456"
	testRegion    = "cn-hangzhou"
	testScanID    = "0123456789abcdef0123456789abcdef"
)

// testScope is SCAN_TARGETS of the tests: all of cn-hangzhou, two
// connections in cn-shanghai, one in ap-southeast-1.
const testScope = "cn-hangzhou:*, cn-shanghai:vco-sh0stale000001 cn-shanghai:vco-sh0rogue000002,ap-southeast-1:vco-sg0denied00001"

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	ts, err := target.ParseList(testScope)
	if err != nil {
		t.Fatal(err)
	}
	return &config.Config{Targets: target.Collapse(ts), HTTPAuthToken: testBearer}
}

// fakeScanner records every request and answers with one PASS finding per
// target, written to the sink like the real scanner does.
type fakeScanner struct {
	mu        sync.Mutex
	requests  []scan.Request
	sinks     []scan.Sink
	noFinding bool                                   // answer with no findings at all
	err       error                                  // refuse every request
	hook      func(req scan.Request, sink scan.Sink) // runs first, outside the lock
}

func (s *fakeScanner) Run(ctx context.Context, req scan.Request, sink scan.Sink) (scan.Report, error) {
	if s.hook != nil {
		s.hook(req, sink)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.sinks = append(s.sinks, sink)
	s.mu.Unlock()
	if s.err != nil {
		return scan.Report{}, s.err
	}
	var counts finding.Counts
	var found []finding.Finding
	if !s.noFinding {
		for _, t := range req.Targets {
			f := finding.Finding{
				FindingUID: finding.UID(finding.RuleUntrustedAccount, req.AccountID, t.Region, t.ConnectionID, "", ""),
				ScanID:     req.ScanID, Trigger: req.Trigger, RuleID: finding.RuleUntrustedAccount,
				Title: "Connection is authorized only to trusted accounts", Severity: "high",
				Status: finding.StatusPass, StatusDetail: "no cross-account authorization",
				Region: t.Region, OwnerAccountID: req.AccountID, VpnConnectionID: t.ConnectionID,
				ObservedAt: "2026-05-01T02:00:01Z",
			}
			counts.Connections++
			counts.Add(&f)
			if sink != nil {
				if err := sink.Write(ctx, &f); err != nil {
					return scan.Report{}, err
				}
			}
			if req.CollectFindings {
				found = append(found, f)
			}
		}
	}
	delivery := scan.Delivery{Sink: "none"}
	if sink != nil {
		summary := finding.ScanSummary{ScanID: req.ScanID, Trigger: req.Trigger, Complete: true, Counts: counts}
		delivery = sink.Close(ctx, &summary)
		counts.FindingsDelivered = summary.Counts.FindingsDelivered
	}
	return scan.Report{
		ScanID: req.ScanID, Trigger: req.Trigger, StartedAt: "2026-05-01T02:00:00Z", DurationMs: 1234,
		Complete: true, Summary: counts, Delivery: delivery, Findings: found,
	}, nil
}

func (s *fakeScanner) calls() []scan.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scan.Request(nil), s.requests...)
}

// fakeSink collects findings; fail makes Close report a failed delivery.
type fakeSink struct {
	creds    scan.Credentials
	region   string
	fail     bool
	findings []finding.Finding
	changes  []lifecycle.Change
}

func (s *fakeSink) Write(_ context.Context, f *finding.Finding) error {
	s.findings = append(s.findings, *f)
	return nil
}

func (s *fakeSink) WriteChange(_ context.Context, c *lifecycle.Change) error {
	s.changes = append(s.changes, *c)
	return nil
}

func (s *fakeSink) Close(_ context.Context, summary *finding.ScanSummary) scan.Delivery {
	d := scan.Delivery{Sink: "sls", Project: "vpnauthz", Logstore: "findings", Delivered: !s.fail}
	if s.fail {
		d.Error = "PostBodyInvalid (HTTP 400): logstore findings does not exist"
		return d
	}
	summary.Counts.FindingsDelivered = len(s.findings)
	return d
}

// fakeSinks is a NewSink that records what it was asked for.
type fakeSinks struct {
	mu      sync.Mutex
	opened  []*fakeSink
	openErr error
	fail    bool
}

func (f *fakeSinks) New(_ context.Context, creds scan.Credentials, region string) (scan.Sink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return nil, f.openErr
	}
	s := &fakeSink{creds: creds, region: region, fail: f.fail}
	f.opened = append(f.opened, s)
	return s, nil
}

func (f *fakeSinks) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.opened)
}

// rig is a Handler with fakes around it.
type rig struct {
	h       *Handler
	scanner *fakeScanner
	sinks   *fakeSinks
	logs    *testutil.Buffer
	trail   *fakeTrail
}

func newRig(t testing.TB, change func(*Options)) *rig {
	t.Helper()
	r := &rig{scanner: &fakeScanner{}, sinks: &fakeSinks{}, logs: &testutil.Buffer{}, trail: newFakeTrail()}
	opts := Options{
		Config:    testConfig(t),
		Scanner:   r.scanner,
		NewSink:   r.sinks.New,
		ReadTrail: r.trail.Read,
		Version:   "1.2.3",
		Logger:    slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NewScanID: func() string { return testScanID },
	}
	if change != nil {
		change(&opts)
	}
	r.h = New(opts)
	return r
}

func invocationAs(keyID, secret, token, requestID string) Invocation {
	return Invocation{
		RequestID:   requestID,
		Credentials: scan.Credentials{AccessKeyID: keyID, AccessKeySecret: secret, SecurityToken: token},
		Region:      testRegion,
		AccountID:   testAccount,
	}
}

func testInvocation() Invocation {
	return invocationAs(testKeyID, testKeySecret, testToken, "1-69f40ba1-2f6b1a3c9d8e7f6a5b4c3d2e")
}

// invoke runs one invocation and checks what must hold for every one: an
// answer or an error, never both; errors carry an FC error type; no secret
// leaks into the answer, the error or the logs.
func (r *rig) invoke(t testing.TB, event []byte) (Result, error) {
	t.Helper()
	return r.invokeAs(t, context.Background(), testInvocation(), event)
}

// invokeAs is invoke with the context and invocation given.
func (r *rig) invokeAs(t testing.TB, ctx context.Context, in Invocation, event []byte) (Result, error) {
	t.Helper()
	resp, err := r.h.Handle(ctx, in, event)
	checkResult(t, resp, err)
	out, _ := json.Marshal(resp)
	var text string
	if err != nil {
		text = err.Error()
	}
	for _, secret := range []string{testKeySecret, testToken, testBearer} {
		for where, s := range map[string]string{"response": string(out), "error": text, "logs": r.logs.String()} {
			// The bearer token appears in the sample request, never in what we write.
			if strings.Contains(s, secret) {
				t.Errorf("secret %q leaked into the %s", secret, where)
			}
		}
	}
	return resp, err
}

func checkResult(t testing.TB, resp Result, err error) {
	t.Helper()
	if err != nil {
		if resp != nil {
			t.Errorf("both a response %#v and an error %v", resp, err)
		}
		var ie *Error
		if !errors.As(err, &ie) || ie.Type == "" || ie.Message == "" {
			t.Errorf("error %v is not an *Error with a type and message", err)
		}
		return
	}
	if resp == nil {
		t.Error("no response and no error")
	}
	if r, ok := resp.(*HTTPResult); ok {
		if r.Body == "" && r.Value == nil {
			return // a HEAD request's answer
		}
		if r.Value == nil {
			t.Error("an HTTP answer with a body but no value")
		}
		if !json.Valid([]byte(r.Body)) {
			t.Errorf("HTTP body is not JSON: %q", r.Body)
		}
		if r.Headers["Content-Type"] != "application/json; charset=utf-8" {
			t.Errorf("Content-Type = %q", r.Headers["Content-Type"])
		}
	}
}

// wantInvokeError checks an invocation error's type and that its message
// mentions each of want.
func wantInvokeError(t testing.TB, err error, typ string, want ...string) {
	t.Helper()
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v, want an invocation error of type %s", err, typ)
	}
	if ie.Type != typ {
		t.Errorf("error type = %s (%s), want %s", ie.Type, ie.Message, typ)
	}
	for _, w := range want {
		if !strings.Contains(ie.Message, w) {
			t.Errorf("error message %q does not mention %q", ie.Message, w)
		}
	}
}

func readJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sample(t testing.TB, name string) map[string]any {
	t.Helper()
	return readJSON(t, filepath.Join("..", "events", name))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// obj walks a decoded JSON object along keys, creating nothing.
func obj(t testing.TB, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("no object at %s", strings.Join(keys, "."))
		}
		m = next
	}
	return m
}

func targetStrings(ts []target.Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, " ")
}

func report(t testing.TB, resp Result) scan.Report {
	t.Helper()
	r, ok := resp.(*ScanResult)
	if !ok {
		t.Fatalf("response is %T %s, want a *ScanResult", resp, fmt.Sprint(resp))
	}
	return r.Report
}
