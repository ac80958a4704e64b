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
// standard output instead.
func TestLogServiceFaults(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())

	cases := []struct {
		name    string
		fault   func()
		code    string        // error code Log Service answered
		lasts   time.Duration // how long the fault lasts
		timeout time.Duration
	}{
		{"busy for 5 s", func() { c.SLS.BusyFor(5 * time.Second) }, "ServerBusy", 5 * time.Second, 30 * time.Second},
		{"write quota exceeded for 3 s", func() { c.SLS.QuotaExceededFor(3 * time.Second) }, "WriteQuotaExceed", 3 * time.Second, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.SLS.Stats().ErrorsByCode[tc.code]
			start := time.Now()
			tc.fault()
			res := f.invoke(t, call{payload: readEvent(t, "timer.json"), timeout: tc.timeout})
			r := asReport(t, res)
			if !r.Delivery.Delivered || r.Delivery.Error != "" || !r.Complete {
				t.Errorf("delivery %+v complete=%v, want delivered after the fault", r.Delivery, r.Complete)
			}
			if n := c.SLS.Stats().ErrorsByCode[tc.code] - before; n == 0 {
				t.Errorf("Log Service never answered %s: the fault was not exercised", tc.code)
			}
			if took := time.Since(start); took < tc.lasts {
				t.Errorf("delivered after %v, before the %v fault ended", took, tc.lasts)
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
		// request id. The function's stdout arrives through a pipe, which may
		// still hold the line when the invocation's answer is already here.
		var r map[string]any
		for deadline := time.Now().Add(5 * time.Second); r == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, l := range jsonLines(f.stdout.Bytes()) {
				if l["request_id"] == res.RequestID && l["level"] == "ERROR" && l["report"] != nil {
					r, _ = l["report"].(map[string]any)
				}
			}
		}
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
