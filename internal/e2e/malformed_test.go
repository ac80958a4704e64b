package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMalformedEvents sends events of every kind that are broken in one
// place: each is a clear invocation error (a type of the function's own and
// a message naming what is wrong), never a panic, and the function goes on
// serving.
func TestMalformedEvents(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())

	timer := func(payload any) []byte {
		b, _ := json.Marshal(map[string]any{"triggerTime": "2026-05-01T02:00:00Z", "triggerName": "daily-scan", "payload": payload})
		return b
	}
	cloudEvent := func(edit func(ev, data map[string]any)) []byte {
		var ev map[string]any
		if err := json.Unmarshal(readEvent(t, "eventbridge-grant.json"), &ev); err != nil {
			t.Fatal(err)
		}
		edit(ev, ev["data"].(map[string]any))
		b, _ := json.Marshal(ev)
		return b
	}
	cases := []struct {
		name    string
		payload []byte
		errType string
		msgHas  []string
	}{
		{"timer: targets not a list", timer(`{"targets":5}`), "InvalidPayload", []string{`"targets"`}},
		{"timer: target not a string", timer(`{"targets":[1]}`), "InvalidPayload", []string{"targets[0]"}},
		{"timer: unknown field", timer(`{"target":["cn-hangzhou:*"]}`), "InvalidPayload", []string{`"target"`}},
		{"timer: payload not JSON", timer(`targets=cn-hangzhou:*`), "InvalidPayload", []string{"payload"}},
		{"timer: trailing data", timer(`{"dryRun":true} {}`), "InvalidPayload", []string{"payload"}},
		{"timer: bad target", timer(`{"targets":["hangzhou"]}`), "InvalidPayload", []string{"hangzhou"}},
		{"timer: target out of scope", timer(`{"targets":["cn-beijing:*"]}`), "InvalidPayload", []string{"cn-beijing"}},
		{"timer: payload not a string", timer(map[string]any{"targets": []string{"cn-hangzhou:*"}}), "InvalidEvent", []string{"payload"}},
		{"HTTP: requestContext not an object", httpEvent(t, func(ev map[string]any) { ev["requestContext"] = 5 }),
			"InvalidEvent", []string{"requestContext"}},
		{"HTTP: headers not an object", httpEvent(t, func(ev map[string]any) { ev["headers"] = []string{"Authorization"} }),
			"InvalidEvent", []string{"headers"}},
		{"CloudEvent: data a number", cloudEvent(func(ev, _ map[string]any) { ev["data"] = 42 }), "InvalidEvent", []string{"data", "number"}},
		{"CloudEvent: data a list", cloudEvent(func(ev, _ map[string]any) { ev["data"] = []int{1} }), "InvalidEvent", []string{"data"}},
		{"CloudEvent: data a string without a record", cloudEvent(func(ev, _ map[string]any) { ev["data"] = "GrantInstanceToTransitRouter" }),
			"InvalidEvent", []string{"data"}},
		{"CloudEvent: no data", cloudEvent(func(ev, _ map[string]any) { delete(ev, "data") }), "InvalidEvent", []string{"data"}},
		{"CloudEvent: eventName missing", cloudEvent(func(_, data map[string]any) { delete(data, "eventName") }),
			"InvalidEvent", []string{"eventName"}},
		{"CloudEvent: eventName a number", cloudEvent(func(_, data map[string]any) { data["eventName"] = 7 }),
			"InvalidEvent", []string{"eventName"}},
		{"CloudEvent: requestParameters a list", cloudEvent(func(_, data map[string]any) { data["requestParameters"] = []int{} }),
			"InvalidEvent", []string{"requestParameters"}},
		{"random JSON: a list", []byte(`[1,2,3]`), "InvalidEvent", []string{"event"}},
		{"random JSON: an object", []byte(`{"hello":"world"}`), "InvalidEvent", []string{"hello"}},
		{"random JSON: a string", []byte(`"timer"`), "InvalidEvent", []string{"event"}},
		{"JSON null", []byte(`null`), "InvalidEvent", []string{"event"}},
		{"not JSON", []byte("triggerTime=now\x00\xff"), "InvalidEvent", []string{"event"}},
		{"truncated JSON", []byte(`{"triggerTime":"2026-05-01T02:00:00Z","payload":`), "InvalidEvent", []string{"event"}},
		{"empty payload", []byte{}, "InvalidEvent", []string{"event"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.VPC.ResetStats()
			res := f.invoke(t, call{payload: tc.payload})
			if res.Error == nil {
				t.Fatalf("answered %s, want an invocation error %s", res.Response, tc.errType)
			}
			e := res.Error
			if len(e.StackTrace) > 0 && string(e.StackTrace) != "null" {
				t.Errorf("error carries a stack trace: a panic")
			}
			if e.ErrorType != tc.errType {
				t.Errorf("errorType = %q, want %q (message %q)", e.ErrorType, tc.errType, e.ErrorMessage)
			}
			for _, s := range tc.msgHas {
				if !strings.Contains(e.ErrorMessage, s) {
					t.Errorf("errorMessage %q does not name %s", e.ErrorMessage, s)
				}
			}
			if n := c.vpcCalls(); n != 0 {
				t.Errorf("a malformed event made %d VPC calls", n)
			}
		})
	}
	t.Run("HTTP: bad base64 is a 400, not an invocation error", func(t *testing.T) {
		ev := httpEvent(t, func(ev map[string]any) {
			withRequest("POST", "/scans", "%%%", map[string]any{"Content-Type": "application/json"})(ev)
			ev["isBase64Encoded"] = true
		})
		e := checkErrorBody(t, asHTTP(t, f.invoke(t, call{payload: ev})), 400, "InvalidBody")
		if !strings.Contains(e.Message, "base64") {
			t.Errorf("message %q does not say the body is not base64", e.Message)
		}
	})
	t.Run("still serving", func(t *testing.T) {
		checkHealth(t, asHTTP(t, f.invoke(t, call{payload: readEvent(t, "http-get-health.json")})))
		r := asReport(t, f.invoke(t, call{payload: readEvent(t, "timer-payload.json")}))
		if !r.Complete || !r.Delivery.Delivered {
			t.Errorf("a good event after the bad ones: complete=%v delivered=%v", r.Complete, r.Delivery.Delivered)
		}
	})
	if p := panics(append(f.stdout.Bytes(), f.stderr.Bytes()...)); len(p) > 0 {
		t.Errorf("the function's output shows a panic: %q", p)
	}
}
