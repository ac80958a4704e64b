package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/slsemu"
)

// The trail's project and logstore, as the sample Log Service trigger event
// names them.
const (
	trailProject  = "vpnauthz-trail"
	trailLogstore = "actiontrail_vpn-org-trail"
)

// trailRecord is an ActionTrail record as a trail delivers it: eventName,
// the account it happened in, the region, request parameters, and an
// errorCode for a failed call.
type trailRecord struct {
	event     string
	account   string
	region    string
	params    map[string]string
	response  map[string]string
	errorCode string
}

func (r trailRecord) json(t *testing.T, n int) string {
	t.Helper()
	params := map[string]string{"RegionId": r.region}
	maps.Copy(params, r.params)
	rec := map[string]any{
		"eventId": fmt.Sprintf("evt-%04d", n), "eventVersion": 1,
		"eventType": "ApiCall", "eventRW": "Write", "eventName": r.event, "acsRegion": r.region,
		"eventTime": time.Now().UTC().Format(time.RFC3339), "recipientAccountId": r.account,
		"userIdentity":      map[string]any{"type": "ram-user", "accountId": r.account, "principalId": "2034"},
		"requestParameters": params,
	}
	if r.response != nil {
		rec["responseElements"] = r.response
	}
	if r.errorCode != "" {
		rec["errorCode"], rec["errorMessage"] = r.errorCode, "the call failed"
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// appendTrail writes records to the trail logstore's shard 0, creating it
// when needed, a few records per log group as a trail delivers them, and
// returns the trigger event announcing them.
func appendTrail(t *testing.T, c *cloud, records []trailRecord) []byte {
	t.Helper()
	c.SLS.CreateProject(trailProject)
	_ = c.SLS.CreateLogStore(trailProject, trailLogstore) // exists after the first call
	var groups []*sls.LogGroup
	for i := 0; i < len(records); i += 3 {
		var logs []*sls.Log
		for j := i; j < min(i+3, len(records)); j++ {
			logs = append(logs, slsemu.ActionTrailLog(time.Now(), records[j].json(t, j)))
		}
		groups = append(groups, slsemu.ActionTrailGroup(logs...))
	}
	begin, end, err := c.SLS.AppendGroups(trailProject, trailLogstore, 0, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return trailEvent(t, begin, end)
}

// trailEvent is the sample Log Service trigger event with the emulated
// logstore's cursors (the sample's are a real service's, which the
// emulator does not issue).
func trailEvent(t *testing.T, begin, end string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "sls-trail.json"), &ev); err != nil {
		t.Fatal(err)
	}
	src := ev["source"].(map[string]any)
	src["beginCursor"], src["endCursor"] = begin, end
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trailAnswer is a report with the trail's counts.
type trailAnswer struct {
	report
	Trail struct {
		Records  int            `json:"records"`
		Kept     int            `json:"kept"`
		Ignored  map[string]int `json:"ignored"`
		Scans    int            `json:"scans"`
		Targets  int            `json:"targets"`
		Complete bool           `json:"complete"`
	} `json:"trail"`
}

func grant(account, region, id string) trailRecord {
	return trailRecord{event: "GrantInstanceToTransitRouter", account: account, region: region,
		params: map[string]string{"InstanceType": "VPN", "InstanceId": id, "CenId": "cen-partner00001"}}
}

func revoke(account, region, id string) trailRecord {
	r := grant(account, region, id)
	r.event = "RevokeInstanceFromTransitRouter"
	return r
}

// A Log Service trigger on the trail logstore: the findings in Log Service
// are those of exactly the connections that successful, in-scope records
// name, each scanned once, and the rest is counted as ignored.
func TestTrailLogServiceTrigger(t *testing.T) {
	c := startCloud(t, nil)
	f := startFunction(t, c, c.functionEnv())
	own, other := emulator.DemoAccountID, "2999000000000001"
	records := []trailRecord{
		grant(own, "cn-hangzhou", emulator.DemoPartner),
		grant(own, "cn-hangzhou", emulator.DemoPartner), // the same connection again: scanned once
		revoke(own, "cn-shanghai", emulator.DemoRogue),
		{event: "ModifyVpnConnectionAttribute", account: own, region: "ap-southeast-1", params: map[string]string{"VpnConnectionId": emulator.DemoOwner}},
		{event: "DeleteVpnConnection", account: own, region: "ap-southeast-1", params: map[string]string{"VpnConnectionId": "vco-sg0notscope001"}}, // not in SCAN_TARGETS
		grant(own, "eu-central-1", "vco-eu0somewhere01"),                                                                                                        // a region out of scope
		{event: "CreateVpc", account: own, region: "cn-hangzhou", params: map[string]string{"VpcName": "x"}},                                                    // unrelated
		{event: "GrantInstanceToTransitRouter", account: own, region: "cn-hangzhou", params: map[string]string{"InstanceType": "VPC", "InstanceId": "vpc-abc"}}, // not VPN
		func() trailRecord {
			r := grant(own, "cn-hangzhou", emulator.DemoTrusted)
			r.errorCode = "Forbidden.RAM"
			return r
		}(), // failed
		grant(other, "cn-hangzhou", "vco-hz0member00001"), // an account that is not scanned
	}
	res := f.invoke(t, call{payload: appendTrail(t, c, records)})
	var ans trailAnswer
	r := asReport(t, res)
	if err := json.Unmarshal(res.Response, &ans); err != nil {
		t.Fatal(err)
	}
	if r.Trigger != "sls" || !r.Complete || !r.Delivery.Delivered {
		t.Errorf("report trigger %q complete %v delivered %v", r.Trigger, r.Complete, r.Delivery.Delivered)
	}
	want := []string{emulator.DemoPartner, emulator.DemoRogue, emulator.DemoOwner}
	stored := checkStoredMatchesReport(t, c, r)
	if got := verdictsOf(t, stored); !maps.Equal(got, expectedVerdicts(want...)) {
		t.Errorf("stored judgements:\n got %v\nwant %v", got, expectedVerdicts(want...))
	}
	checkCalls(t, c, want, nil, r)
	for _, s := range stored {
		if s["trigger"] != "sls" {
			t.Errorf("finding %s has trigger %q", s["finding_uid"], s["trigger"])
		}
	}
	tr := ans.Trail
	wantIgnored := map[string]int{"failed-call": 1, "unrelated-event": 1, "not-vpn": 1, "outside-scope": 2, "outside-accounts": 1}
	if tr.Records != len(records) || tr.Kept != 7 || tr.Scans != 6 || tr.Targets != 3 || !tr.Complete || !maps.Equal(tr.Ignored, wantIgnored) {
		t.Errorf("trail %+v, want %d records, 7 kept, 6 scans, 3 targets, ignored %v", tr, len(records), wantIgnored)
	}
	if st := c.SLS.PullStats(); st.PullLogsOK < 1 || st.LogsServed != len(records) {
		t.Errorf("pull stats %+v", st)
	}

	// Only ignorable records: an ignored answer, nothing scanned or written.
	c.VPC.ResetStats()
	before := c.SLS.Stats().PutLogsCalls
	res = f.invoke(t, call{payload: appendTrail(t, c, records[5:9])})
	checkIgnored(t, res, "no record asks for a connection in scope")
	if n := c.vpcCalls(); n != 0 {
		t.Errorf("%d VPC calls", n)
	}
	if n := c.SLS.Stats().PutLogsCalls - before; n != 0 {
		t.Errorf("%d PutLogs calls", n)
	}

	// A logstore that does not exist: the invocation fails, so the trigger
	// delivers the event again.
	ev := trailEvent(t, "MTYwMDAwMDAwMDAwMDAwMDAwMA==", "MTYwMDAwMDAwMDAwMDAwMDAwMQ==")
	var m map[string]any
	_ = json.Unmarshal(ev, &m)
	m["source"].(map[string]any)["logstoreName"] = "no-such-logstore"
	ev, _ = json.Marshal(m)
	res = f.invoke(t, call{payload: ev})
	if res.Error == nil || res.Error.ErrorType != "TrailReadFailed" {
		t.Errorf("answer %s / %+v, want a TrailReadFailed error", res.Response, res.Error)
	}
	if p := panics(append(f.stdout.Bytes(), f.stderr.Bytes()...)); len(p) > 0 {
		t.Errorf("the function's output shows a panic: %q", p)
	}
}
