package e2e

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLogServiceFaults runs timer scans through the binary while Log Service
// is busy, over quota or down: short faults are ridden out and everything is
// delivered; an outage for the whole invocation fails it with DeliveryFailed
// (so that Function Compute retries) and every finding is on the function's
// standard output instead. Short faults are counted in requests, not seconds,
// so that how fast the binary retries under load changes nothing.
func TestLogServiceFaults(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())

	const answers = 3 // refusals in a row, more than one request of the scan meets
	cases := []struct {
		name  string
		fault func()
		code  string // error code Log Service answered
	}{
		{"busy for 3 requests", func() { c.SLS.BusyNext(answers) }, "ServerBusy"},
		{"write quota exceeded for 3 requests", func() { c.SLS.QuotaExceededNext(answers) }, "WriteQuotaExceed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.SLS.Stats()
			tc.fault()
			res := f.invoke(t, call{payload: readEvent(t, "timer.json"), timeout: 30 * time.Second})
			r := asReport(t, res)
			if !r.Delivery.Delivered || r.Delivery.Error != "" || !r.Complete {
				t.Errorf("delivery %+v complete=%v, want delivered after the fault", r.Delivery, r.Complete)
			}
			// Every refusal was met, and each by a request of its own: the
			// binary retried through all of them.
			after := c.SLS.Stats()
			if n := after.ErrorsByCode[tc.code] - before.ErrorsByCode[tc.code]; n != answers {
				t.Errorf("Log Service answered %s %d times, want all %d refusals met", tc.code, n, answers)
			}
			if n := after.PutLogsCalls - before.PutLogsCalls; n < answers+2 {
				t.Errorf("%d PutLogs calls, want the %d refused ones and then the findings and the summary", n, answers)
			}
			checkStoredMatchesReport(t, c, r)
			if r.Summary.FindingsDelivered != 25 || r.Summary.findings() != 25 {
				t.Errorf("summary %+v, want the demo's 25 findings all delivered", r.Summary)
			}
		})
	}

	t.Run("down for the whole invocation", func(t *testing.T) {
		c.SLS.SetDown(true)
		res := f.invoke(t, call{payload: readEvent(t, "timer.json"), timeout: 4 * time.Second})
		c.SLS.SetDown(false)
		if res.Error == nil {
			t.Fatalf("answered %s, want the invocation error DeliveryFailed", res.Response)
		}
		if res.Error.ErrorType != "DeliveryFailed" {
			t.Errorf("errorType %q (%s), want DeliveryFailed", res.Error.ErrorType, res.Error.ErrorMessage)
		}
		if res.Duration > 4*time.Second {
			t.Errorf("answered after %v, past the 4 s timeout", res.Duration)
		}
		// The report is logged at level ERROR with the failure; find it by
		// request id.
		var r map[string]any
		f.awaitStdout(t, func(stdout []byte) bool {
			for _, l := range jsonLines(stdout) {
				if l["request_id"] == res.RequestID && l["level"] == "ERROR" && l["report"] != nil {
					r, _ = l["report"].(map[string]any)
				}
			}
			return r != nil
		})
		if r == nil {
			t.Fatalf("no report logged for request %s", res.RequestID)
		}
		scanID, _ := r["scanId"].(string)
		sum, _ := r["summary"].(map[string]any)
		total := 0
		for _, k := range []string{"pass", "fail", "error", "suppressed"} {
			n, _ := sum[k].(float64)
			total += int(n)
		}
		if !strings.Contains(res.Error.ErrorMessage, scanID) {
			t.Errorf("errorMessage %q does not name scan %s", res.Error.ErrorMessage, scanID)
		}
		lines := findingLines(f.stdout.Bytes(), scanID)
		uids := map[string]bool{}
		for _, l := range lines {
			checkKeys(t, "finding on stdout", slices.Collect(maps.Keys(l)), findingKeys)
			uid, _ := l["finding_uid"].(string)
			uids[uid] = true
		}
		stored := c.stored(scanID)
		if total != 25 || len(uids) != len(lines) || len(lines)+len(stored) != total {
			t.Errorf("report counts %d findings; %d on stdout (%d distinct), %d in Log Service: findings vanished",
				total, len(lines), len(uids), len(stored))
		}
		t.Logf("Log Service down: %d of %d findings on stdout, %d stored", len(lines), total, len(stored))
	})

	t.Run("delivers again once back", func(t *testing.T) {
		r := asReport(t, f.invoke(t, call{payload: readEvent(t, "timer.json")}))
		if !r.Delivery.Delivered {
			t.Errorf("delivery %+v after Log Service came back", r.Delivery)
		}
		checkStoredMatchesReport(t, c, r)
	})
}
