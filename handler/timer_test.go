package handler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"vpnauthz/internal/finding"
)

func timerEvent(t testing.TB, payload any) []byte {
	t.Helper()
	ev := map[string]any{"triggerTime": "2026-05-01T02:00:00Z", "triggerName": "daily-scan"}
	if payload != nil {
		ev["payload"] = payload
	}
	return mustJSON(t, ev)
}

const allTargets = "ap-southeast-1:vco-sg0denied00001 cn-hangzhou:* cn-shanghai:vco-sh0rogue000002 cn-shanghai:vco-sh0stale000001"

func TestTimerScans(t *testing.T) {
	cases := []struct {
		name    string
		payload any // nil: no payload key
		targets string
		dryRun  bool
	}{
		{"no payload", nil, allTargets, false},
		{"empty payload", "", allTargets, false},
		{"blank payload", "  \n", allTargets, false},
		{"null payload", "null", allTargets, false},
		{"empty object", "{}", allTargets, false},
		{"targets null", `{"targets":null}`, allTargets, false},
		{"targets", `{"targets":["cn-hangzhou:vco-hz0partner0002"],"dryRun":false}`, "cn-hangzhou:vco-hz0partner0002", false},
		{"dry run", `{"dryRun":true}`, allTargets, true},
		{"region wildcard in scope", `{"targets":["cn-hangzhou:*"]}`, "cn-hangzhou:*", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			resp, err := r.invoke(t, timerEvent(t, tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			rep := report(t, resp)
			calls := r.scanner.calls()
			if len(calls) != 1 {
				t.Fatalf("scanner called %d times", len(calls))
			}
			req := calls[0]
			if got := targetStrings(req.Targets); got != tc.targets {
				t.Errorf("targets = %s, want %s", got, tc.targets)
			}
			if req.Trigger != "timer" || req.CollectFindings || req.DryRun != tc.dryRun || req.ScanID != testScanID ||
				req.AccountID != testAccount || req.Credentials.AccessKeySecret != testKeySecret {
				t.Errorf("request = %s collect %v dry %v scan %s account %s", req.Trigger, req.CollectFindings, req.DryRun, req.ScanID, req.AccountID)
			}
			if (r.sinks.count() == 0) != tc.dryRun {
				t.Errorf("sinks opened = %d for dry run %v", r.sinks.count(), tc.dryRun)
			}
			// The answer is the report without its findings list.
			checkNoFindingsKey(t, resp)
			if rep.ScanID != testScanID || rep.Trigger != "timer" || rep.Summary.Connections != len(req.Targets) {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

func TestTimerErrors(t *testing.T) {
	cases := []struct {
		name    string
		event   []byte
		typ     string
		mention []string
	}{
		{"unknown field", timerEvent(t, `{"mode":"full"}`), ErrInvalidPayload, []string{`unknown field "mode"`}},
		{"field in wrong case", timerEvent(t, `{"dryrun":true}`), ErrInvalidPayload, []string{`"dryrun"`}},
		{"trailing data", timerEvent(t, `{"dryRun":true}{}`), ErrInvalidPayload, []string{"after the JSON object"}},
		{"not JSON", timerEvent(t, `full scan please`), ErrInvalidPayload, []string{"not valid JSON"}},
		{"not an object", timerEvent(t, `["cn-hangzhou:*"]`), ErrInvalidPayload, []string{"object", "list"}},
		{"truncated", timerEvent(t, `{"targets":["cn-hangzhou:*"`), ErrInvalidPayload, []string{"truncated"}},
		{"targets a string", timerEvent(t, `{"targets":"cn-hangzhou:*"}`), ErrInvalidPayload, []string{`"targets"`, "got a string"}},
		{"target an object", timerEvent(t, `{"targets":[{"region":"cn-hangzhou"}]}`), ErrInvalidPayload, []string{`"targets[0]"`, "got an object"}},
		{"dryRun a string", timerEvent(t, `{"dryRun":"false"}`), ErrInvalidPayload, []string{`"dryRun"`, "got a string"}},
		{"dryRun a number", timerEvent(t, `{"dryRun":0}`), ErrInvalidPayload, []string{`"dryRun"`, "got a number"}},
		{"invalid target", timerEvent(t, `{"targets":["cn-hangzhou:vco-hz0partner0002","hangzhou/vco-x"]}`), ErrInvalidPayload, []string{`"hangzhou/vco-x"`}},
		{"out of scope", timerEvent(t, `{"targets":["eu-central-1:vco-de0any000001"]}`), ErrInvalidPayload, []string{"eu-central-1:vco-de0any000001", "SCAN_TARGETS"}},
		{"empty targets", timerEvent(t, `{"targets":[]}`), ErrInvalidPayload, []string{`"targets"`, "empty"}},
		{"payload not a string", timerEvent(t, map[string]any{"targets": []string{"cn-hangzhou:*"}}), ErrInvalidEvent, []string{`"payload"`, "string"}},
		{"trigger time not a string", []byte(`{"triggerTime":12,"triggerName":"x"}`), ErrInvalidEvent, []string{`"triggerTime"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			_, err := r.invoke(t, tc.event)
			wantInvokeError(t, err, tc.typ, tc.mention...)
			if len(r.scanner.calls()) != 0 {
				t.Error("scanned despite the error")
			}
		})
	}
}

func TestTimerWithoutTargets(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Config.Targets = nil })
	_, err := r.invoke(t, timerEvent(t, ""))
	wantInvokeError(t, err, ErrInvalidConfiguration, "SCAN_TARGETS is empty")

	_, err = r.invoke(t, timerEvent(t, `{"targets":["cn-hangzhou:*"]}`))
	wantInvokeError(t, err, ErrInvalidPayload, "cn-hangzhou:*", "SCAN_TARGETS, which is empty")
}

func TestTimerDeliveryFailed(t *testing.T) {
	r := newRig(t, nil)
	r.sinks.fail = true
	_, err := r.invoke(t, timerEvent(t, ""))
	wantInvokeError(t, err, ErrDeliveryFailed, testScanID, "logstore findings does not exist")

	// The report is logged as one JSON line, so the counts survive.
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		rep, ok := rec["report"].(map[string]any)
		if !ok {
			continue
		}
		found = true
		if rec["request_id"] == nil || rec["scan_id"] != testScanID || rep["scanId"] != testScanID || rep["delivery"] == nil {
			t.Errorf("report line = %s", line)
		}
	}
	if !found {
		t.Errorf("no report logged:\n%s", r.logs.String())
	}
}

func TestTimerSinkUnavailable(t *testing.T) {
	r := newRig(t, nil)
	r.sinks.openErr = errors.New("SLS_ENDPOINT: dial tcp: lookup failed")
	_, err := r.invoke(t, timerEvent(t, ""))
	wantInvokeError(t, err, ErrDeliveryFailed, "SLS_ENDPOINT")
	if len(r.scanner.calls()) != 0 {
		t.Error("scanned although findings could not go anywhere")
	}
}

func TestTimerDryRunNeedsNoSink(t *testing.T) {
	r := newRig(t, func(o *Options) { o.NewSink = nil })
	resp, err := r.invoke(t, timerEvent(t, `{"dryRun":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep := report(t, resp); rep.Delivery.Delivered || rep.Delivery.Sink != "none" {
		t.Errorf("delivery = %+v", rep.Delivery)
	}
}

func TestTimerScannerRefuses(t *testing.T) {
	r := newRig(t, nil)
	r.scanner.err = errors.New("region cn-hangzhou: no endpoint")
	_, err := r.invoke(t, timerEvent(t, ""))
	wantInvokeError(t, err, ErrScanFailed, "no endpoint")
}

// checkNoFindingsKey checks that an asynchronous answer is the report
// without its findings list.
func checkNoFindingsKey(t testing.TB, resp Result) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(mustJSON(t, resp), &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top["findings"]; ok {
		t.Error("the answer carries the findings list")
	}
	for _, k := range []string{"scanId", "trigger", "startedAt", "durationMs", "complete", "summary", "delivery"} {
		if _, ok := top[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
}

// The caller's choices in the Invocation override the event's: the
// recorded trigger, a dry run, and keeping the findings.
func TestInvocationChoices(t *testing.T) {
	cases := []struct {
		name    string
		event   func(t testing.TB) []byte
		trigger string // want in the scan request
	}{
		{"timer", func(t testing.TB) []byte { return timerEvent(t, "") }, "timer"},
		{"event", func(t testing.TB) []byte { return variantFile(t, "eventbridge-grant.json") }, "event"},
		{"http", func(t testing.TB) []byte {
			return httpReq{method: "POST", path: "/scans", headers: authJSON()}.event(t)
		}, "http"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			if _, err := r.h.Handle(context.Background(), testInvocation(), tc.event(t)); err != nil {
				t.Fatal(err)
			}
			in := testInvocation()
			in.Trigger, in.DryRun, in.Collect = "cli", true, true
			res, err := r.h.Handle(context.Background(), in, tc.event(t))
			if err != nil {
				t.Fatal(err)
			}
			calls := r.scanner.calls()
			if len(calls) != 2 || calls[0].Trigger != tc.trigger || calls[0].DryRun || calls[1].Trigger != "cli" || !calls[1].DryRun {
				t.Fatalf("requests %+v", calls)
			}
			if r.sinks.count() != 1 {
				t.Errorf("%d sinks opened, want only the first invocation's", r.sinks.count())
			}
			var fs []finding.Finding
			switch v := res.(type) {
			case *ScanResult:
				fs = v.Findings
				if strings.Contains(string(mustJSON(t, v)), `"findings":`) {
					t.Errorf("collected findings in the answer's JSON: %s", mustJSON(t, v))
				}
			case *HTTPResult:
				fs = v.Value.(*HTTPReport).Findings
			}
			if len(fs) == 0 || fs[0].Trigger != "cli" {
				t.Errorf("findings %+v", fs)
			}
		})
	}
}
