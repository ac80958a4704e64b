package handler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/trail"
)

func slsEvent(t testing.TB, edit func(src map[string]any)) []byte {
	t.Helper()
	ev := sample(t, "sls-trail.json")
	if edit != nil {
		edit(obj(t, ev, "source"))
	}
	return mustJSON(t, ev)
}

// The trail's scans are kept when in scope and in a scanned account, and
// run as one scan with trigger sls; the others are counted as ignored.
func TestLogServiceTrigger(t *testing.T) {
	r := newOrgRig(t, map[string]string{"ACCOUNTS": testAccount + "," + memberA}, nil)
	r.trail.result = trailResult{records: 12, kept: 7, complete: true,
		ignored: map[actiontrail.Kind]int{actiontrail.Failed: 2, actiontrail.Unrelated: 2, trail.Malformed: 1},
		scans: [][3]string{
			{testAccount, "cn-hangzhou", "vco-hz0partner0002"}, // own, in scope
			{"", "cn-shanghai", "vco-sh0rogue000002"},          // no account named: own
			{testAccount, "cn-shanghai", "vco-sh0other000003"}, // not in SCAN_TARGETS
			{memberA, "cn-hangzhou", "vco-aaaa11110001"},       // member, region wildcard
			{memberA, "cn-shanghai", "vco-sh0rogue000002"},     // member: explicit ids are the own account's
			{memberA, "cn-hangzhou", ""},                       // a create without id: the region, which covers the one above
			{outsider, "cn-hangzhou", "vco-bbbb22220002"},      // not scanned
			{testAccount, "eu-central-1", ""},                  // no target in that region
		}}
	in := testInvocation()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := r.invokeAs(t, ctx, in, slsEvent(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	calls := r.scanner.calls()
	if len(calls) != 1 {
		t.Fatalf("%d scans", len(calls))
	}
	req := calls[0]
	want := "cn-hangzhou:vco-hz0partner0002 cn-shanghai:vco-sh0rogue000002 " + memberA + "/cn-hangzhou:*"
	if got := targetStrings(req.Targets); got != want {
		t.Errorf("targets %s, want %s", got, want)
	}
	if req.Trigger != finding.TriggerSLS || req.Members == nil {
		t.Errorf("trigger %q, members %v", req.Trigger, req.Members)
	}
	res := resp.(*ScanResult)
	tr := res.Trail
	if tr == nil || tr.Project != "vpnauthz-trail" || tr.Logstore != "actiontrail_vpn-org-trail" || tr.Records != 12 || tr.Kept != 7 ||
		tr.Scans != 8 || tr.Targets != 3 || !tr.Complete {
		t.Fatalf("trail report %+v", tr)
	}
	wantIgnored := map[string]int{"failed-call": 2, "unrelated-event": 2, "malformed": 1, "outside-scope": 3, "outside-accounts": 1}
	if b, w := mustJSON(t, tr.Ignored), mustJSON(t, wantIgnored); string(b) != string(w) {
		t.Errorf("ignored %s, want %s", b, w)
	}
	if res.Trigger != finding.TriggerSLS {
		t.Errorf("report trigger %q", res.Trigger)
	}
	out, _ := json.Marshal(resp)
	if !strings.Contains(string(out), `"trail":{"project":"vpnauthz-trail"`) {
		t.Errorf("answer %s has no trail report", out)
	}
	// Reading gets a third of the time left; the scan the rest.
	if left := time.Until(r.trail.deadline); left > 31*time.Second || left < 25*time.Second {
		t.Errorf("the read's deadline is %s away, want about 30 s of 90", left)
	}
}

func TestLogServiceTriggerNothingInScope(t *testing.T) {
	r := newOrgRig(t, nil, nil)
	r.trail.result = trailResult{records: 4, kept: 1, complete: true,
		ignored: map[actiontrail.Kind]int{actiontrail.Failed: 3},
		scans:   [][3]string{{testAccount, "eu-central-1", "vco-eu0000000001"}}}
	resp, err := r.invoke(t, slsEvent(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	ig, ok := resp.(*Ignored)
	if !ok || !strings.Contains(ig.Reason, "4 records, 1 asking for a scan, ignored: failed-call 3, outside-scope 1") {
		t.Errorf("answer %+v", resp)
	}
	if n := len(r.scanner.calls()); n != 0 {
		t.Errorf("%d scans", n)
	}
}

func TestLogServiceTriggerErrors(t *testing.T) {
	cases := []struct {
		name    string
		event   []byte
		readErr error
		typ     string
		mention []string
	}{
		{"no cursors", slsEvent(t, func(s map[string]any) { delete(s, "beginCursor"); s["endCursor"] = "" }), nil,
			ErrInvalidEvent, []string{"source.beginCursor, source.endCursor missing"}},
		{"negative shard", slsEvent(t, func(s map[string]any) { s["shardId"] = -1 }), nil, ErrInvalidEvent, []string{"source.shardId (negative)"}},
		{"source not an object", []byte(`{"source":"x","jobName":"j","taskId":"t","cursorTime":1}`), nil,
			ErrInvalidEvent, []string{`field "source"`}},
		{"the service refuses", slsEvent(t, nil), &trail.ReadError{Status: 403, Code: "Unauthorized"},
			ErrTrailReadFailed, []string{"could not be read"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			r.trail.err = tc.readErr
			_, err := r.invoke(t, tc.event)
			wantInvokeError(t, err, tc.typ, tc.mention...)
			if n := len(r.scanner.calls()); n != 0 {
				t.Errorf("%d scans", n)
			}
		})
	}
	noReader := newRig(t, func(o *Options) { o.ReadTrail = nil })
	_, err := noReader.invoke(t, slsEvent(t, nil))
	wantInvokeError(t, err, ErrScanFailed, "no trail reader")
}
