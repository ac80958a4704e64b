package trail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/events"
	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/slsemu"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
)

const (
	project  = "vpnauthz-trail"
	logstore = "actiontrail_vpn-org-trail"
	keyID    = "STS.NTrailReader0001"
	secret   = "trail-secret-0123456789"
	token    = "CAIStrailToken0123456789"

	accountA = "1111222233334444"
	accountB = "5555666677778888"
	caller   = "9999000011112222" // a delegated administrator acting in B
)

type rig struct {
	srv  *slsemu.Server
	opts Options
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv, err := slsemu.New(slsemu.Options{Credentials: []cred.Credential{
		{AccessKeyID: keyID, AccessKeySecret: secret, SecurityToken: token, Expires: time.Now().Add(time.Hour)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.CreateProject(project)
	if err := srv.CreateLogStore(project, logstore); err != nil {
		t.Fatal(err)
	}
	return &rig{srv: srv, opts: Options{
		SLSEndpoint: srv.Endpoint(),
		Credentials: scan.Credentials{AccessKeyID: keyID, AccessKeySecret: secret, SecurityToken: token},
		Retry:       retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	}}
}

// append stores groups of trail logs in a shard and returns the trigger
// event that announces them.
func (r *rig) append(t *testing.T, shard int, groups ...*sls.LogGroup) *events.SLSEvent {
	t.Helper()
	begin, end, err := r.srv.AppendGroups(project, logstore, shard, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return event(shard, begin, end)
}

func event(shard int, begin, end string) *events.SLSEvent {
	s := func(v string) *string { return &v }
	var p events.SLSEvent
	_ = json.Unmarshal([]byte(`{"parameter":{}}`), &p)
	p.CursorTime = new(int)
	p.JobName, p.TaskID = s("1f7043ced683de1a4e3d8d70b5a412843d817a39"), s("c2691505-38da-4d1b-998a-1d4a1d41b30c")
	p.Source = &events.SLSSource{
		Endpoint: s("http://cn-hangzhou-intranet.log.aliyuncs.com"), ProjectName: s(project), LogstoreName: s(logstore),
		ShardID: &shard, BeginCursor: s(begin), EndCursor: s(end),
	}
	return &p
}

// rec is an ActionTrail record in JSON.
type rec struct {
	name, recipient, caller, region, acsRegion, errorCode string
	params, response                                      map[string]any
}

func (r rec) json() string {
	m := map[string]any{
		"eventId": "E-" + r.name, "eventVersion": 1, "eventType": "ApiCall", "eventRW": "Write",
		"eventName": r.name, "serviceName": "Vpc", "eventTime": "2026-05-01T02:03:04Z",
		"userIdentity": map[string]any{"type": "ram-user", "principalId": "203456789012345678", "accountId": r.caller},
	}
	if r.recipient != "" {
		m["recipientAccountId"] = r.recipient
	}
	if r.acsRegion != "" {
		m["acsRegion"] = r.acsRegion
	}
	params := map[string]any{}
	for k, v := range r.params {
		params[k] = v
	}
	if r.region != "" {
		params["RegionId"] = r.region
	}
	m["requestParameters"] = params
	if r.response != nil {
		m["responseElements"] = r.response
	}
	if r.errorCode != "" {
		m["errorCode"], m["errorMessage"] = r.errorCode, "denied"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

var at = time.Now()

func logs(records ...rec) []*sls.Log {
	out := make([]*sls.Log, len(records))
	for i, r := range records {
		out[i] = slsemu.ActionTrailLog(at, r.json())
	}
	return out
}

func grp(l ...*sls.Log) *sls.LogGroup { return slsemu.ActionTrailGroup(l...) }

type p = map[string]any

// The organisation's trail: two accounts, three regions, two shards, every
// kind of record.
func (r *rig) organisation(t *testing.T) []*events.SLSEvent {
	t.Helper()
	// Before and after the announced windows: never read.
	r.append(t, 0, grp(logs(rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-before0001"}})...))
	r.append(t, 1, grp(logs(rec{name: "DeleteVpnConnection", caller: accountB, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-before0002"}})...))

	shard0 := r.append(t, 0,
		grp(logs(
			rec{name: "GrantInstanceToTransitRouter", caller: accountA, region: "cn-hangzhou", params: p{"InstanceType": "VPN", "InstanceId": "vco-hz0a00001", "CenId": "cen-x"}},
			rec{name: "GrantInstanceToTransitRouter", caller: accountA, region: "cn-hangzhou", params: p{"InstanceType": "VPN", "InstanceId": "vco-hz0a00001", "CenId": "cen-y"}},
		)...),
		grp(logs(
			rec{name: "RevokeInstanceFromTransitRouter", caller: accountA, region: "cn-shanghai", params: p{"InstanceType": "VPN", "InstanceId": "vco-sh0a00001"}},
			rec{name: "ModifyVpnConnectionAttribute", caller: accountA, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-hz0a00002"}},
			rec{name: "CreateVpc", caller: accountA, region: "cn-hangzhou"},
		)...),
		grp(logs(
			rec{name: "GrantInstanceToTransitRouter", caller: accountA, region: "cn-hangzhou", errorCode: "Forbidden.RAM", params: p{"InstanceType": "VPN", "InstanceId": "vco-hz0a00003"}},
			rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-hz0a00002"}},
		)...),
		grp(
			slsemu.ActionTrailLog(at, "not json at all"),
			slsemu.LogOf(at, map[string]string{"content": "a line that is not an event"}),
		),
	)
	shard1 := r.append(t, 1,
		grp(logs(
			rec{name: "CreateVpnConnection", recipient: accountB, caller: caller, region: "ap-southeast-1", response: p{"VpnConnectionId": "vco-sg0b00001"}},
			rec{name: "CreateVpnAttachment", recipient: accountB, caller: caller, region: "cn-shanghai"},
			rec{name: "ModifyVpnAttachmentAttribute", recipient: accountB, caller: caller, region: "cn-shanghai", params: p{"VpnConnectionId": "vco-sh0b00009"}},
		)...),
		grp(logs(
			rec{name: "ModifyGrantInstanceToTransitRouter", recipient: accountB, caller: caller, acsRegion: "ap-southeast-1", params: p{"InstanceId": "vco-sg0b00002"}},
			rec{name: "GrantInstanceToTransitRouter", recipient: accountB, caller: caller, region: "ap-southeast-1", params: p{"InstanceType": "VPC", "InstanceId": "vpc-sg0b00001"}},
			rec{name: "ModifyVpnConnectionAttribute", recipient: accountB, caller: caller, region: "ap-southeast-1"},
		)...),
		grp(
			slsemu.LogOf(at, map[string]string{
				"event.eventName":                      "DeleteVpnAttachment",
				"event.recipientAccountId":             accountB,
				"event.userIdentity.accountId":         caller,
				"event.requestParameters.RegionId":     "ap-southeast-1",
				"event.requestParameters.VpnId":        "vco-sg0b00003",
				"event.requestParameterJson":           `{"ignored":"when requestParameters is there"}`,
				"event.acsRegion":                      "ap-southeast-1",
				"event.additionalEventData":            `{"k":"v"}`,
				"event.userIdentity.sessionContext.id": "s",
			}),
			slsemu.ActionTrailLog(at, `{"requestParameters":{"RegionId":"cn-hangzhou"}}`),
		),
	)
	r.append(t, 0, grp(logs(rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-after00001"}})...))
	return []*events.SLSEvent{shard0, shard1}
}

func TestReadOrganisationTrail(t *testing.T) {
	r := newRig(t)
	evs := r.organisation(t)
	r.opts.PageSize = 2

	var all []Scan
	results := make([]Result, len(evs))
	for i, ev := range evs {
		res, err := Read(context.Background(), r.opts, ev)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if !res.Complete || res.Cursor != *ev.Source.EndCursor {
			t.Errorf("shard %d: complete %v at %q", i, res.Complete, res.Cursor)
		}
		if res.Project != project || res.Logstore != logstore || res.Shard != i || res.Endpoint != r.srv.Endpoint() {
			t.Errorf("shard %d: read %s/%s/%d from %s", i, res.Project, res.Logstore, res.Shard, res.Endpoint)
		}
		results[i] = res
		all = append(all, res.Scans...)
	}

	want := []Scan{
		{accountA, "cn-hangzhou", "vco-hz0a00001", []string{"GrantInstanceToTransitRouter"}},
		{accountA, "cn-hangzhou", "vco-hz0a00002", []string{"DeleteVpnConnection", "ModifyVpnConnectionAttribute"}},
		{accountA, "cn-shanghai", "vco-sh0a00001", []string{"RevokeInstanceFromTransitRouter"}},
		{accountB, "ap-southeast-1", "vco-sg0b00001", []string{"CreateVpnConnection"}},
		{accountB, "ap-southeast-1", "vco-sg0b00002", []string{"ModifyGrantInstanceToTransitRouter"}},
		{accountB, "ap-southeast-1", "vco-sg0b00003", []string{"DeleteVpnAttachment"}},
		// The create without an id covers the region; the modify in it is folded in.
		{accountB, "cn-shanghai", "", []string{"CreateVpnAttachment", "ModifyVpnAttachmentAttribute"}},
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("scans:\n got %+v\nwant %+v", all, want)
	}

	for i, w := range []struct {
		pages, groups, records, kept int
		ignored                      map[actiontrail.Kind]int
	}{
		{2, 4, 9, 5, map[actiontrail.Kind]int{actiontrail.Unrelated: 1, actiontrail.Failed: 1, Malformed: 2}},
		{2, 3, 8, 5, map[actiontrail.Kind]int{actiontrail.NotVPN: 1, actiontrail.NoID: 1, Malformed: 1}},
	} {
		res := results[i]
		if res.Pages != w.pages || res.Groups != w.groups || res.Records != w.records || res.Kept != w.kept || !reflect.DeepEqual(res.Ignored, w.ignored) {
			t.Errorf("shard %d: pages %d groups %d records %d kept %d ignored %v; want %+v", i, res.Pages, res.Groups, res.Records, res.Kept, res.Ignored, w)
		}
		sum := res.Kept
		for _, n := range res.Ignored {
			sum += n
		}
		if sum != res.Records {
			t.Errorf("shard %d: %d kept + ignored for %d records", i, sum, res.Records)
		}
		if len(res.Problems) != res.Ignored[Malformed] {
			t.Errorf("shard %d: problems %q", i, res.Problems)
		}
	}
	for _, want := range []string{"event is not a JSON object", "no ActionTrail event in the log", "event.eventName is missing"} {
		if !strings.Contains(strings.Join(append(results[0].Problems, results[1].Problems...), "\n"), want) {
			t.Errorf("problems %q + %q do not mention %q", results[0].Problems, results[1].Problems, want)
		}
	}
	if st := r.srv.PullStats(); st.PullLogsCalls != 4 || st.GroupsServed != 7 {
		t.Errorf("emulator saw %+v", st)
	}
}

func TestReadManyPages(t *testing.T) {
	r := newRig(t)
	var groups []*sls.LogGroup
	for i := range 25 {
		groups = append(groups, grp(logs(rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou",
			params: p{"VpnConnectionId": fmt.Sprintf("vco-hz0page%04d", i%10)}})...))
	}
	ev := r.append(t, 1, groups...)
	for _, tc := range []struct{ pageSize, pages int }{{1, 25}, {7, 4}, {0, 1}, {5000, 1}} {
		r.opts.PageSize = tc.pageSize
		res, err := Read(context.Background(), r.opts, ev)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pages != tc.pages || res.Records != 25 || res.Kept != 25 || len(res.Scans) != 10 || !res.Complete {
			t.Errorf("page size %d: %d pages, %d records, %d kept, %d scans, complete %v", tc.pageSize, res.Pages, res.Records, res.Kept, len(res.Scans), res.Complete)
		}
	}
}

func TestReadAtTheEnd(t *testing.T) {
	r := newRig(t)
	r.append(t, 0, grp(logs(rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-hz0a00001"}})...))
	end, err := r.srv.ShardCursor(project, logstore, 0, "end")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(context.Background(), r.opts, event(0, end, end))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Pages != 0 || res.Records != 0 || len(res.Scans) != 0 {
		t.Errorf("result %+v", res)
	}
	if n := r.srv.PullStats().PullLogsCalls; n != 0 {
		t.Errorf("%d PullLogs for an empty window", n)
	}

	// Cursors the wrong way round: one empty page, and done.
	begin, _ := r.srv.ShardCursor(project, logstore, 0, "begin")
	res, err = Read(context.Background(), r.opts, event(0, end, begin))
	if err != nil || !res.Complete || res.Records != 0 || res.Pages != 1 {
		t.Errorf("reversed cursors: %+v, %v", res, err)
	}
}

func TestReadFailures(t *testing.T) {
	r := newRig(t)
	ev := r.append(t, 0, grp(logs(rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou", params: p{"VpnConnectionId": "vco-hz0a00001"}})...))

	t.Run("busy once, then read", func(t *testing.T) {
		r.srv.FailNextPullLogs(1, http.StatusServiceUnavailable, "ServerBusy", "The server is busy, please try again later.")
		before := r.srv.PullStats().PullLogsCalls
		res, err := Read(context.Background(), r.opts, ev)
		if err != nil || len(res.Scans) != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
		if n := r.srv.PullStats().PullLogsCalls - before; n != 2 {
			t.Errorf("%d calls, want 2", n)
		}
	})
	t.Run("read quota, throttled past the attempts of a failure", func(t *testing.T) {
		r.srv.FailNextPullLogs(4, http.StatusForbidden, "ShardReadQuotaExceed", "shard read quota exceed")
		before := r.srv.PullStats().PullLogsCalls
		res, err := Read(context.Background(), r.opts, ev)
		if err != nil || len(res.Scans) != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
		if n := r.srv.PullStats().PullLogsCalls - before; n != 5 {
			t.Errorf("%d calls, want 5 (4 throttled, then the page)", n)
		}
	})
	for _, tc := range []struct {
		name   string
		n      int
		status int
		code   string
		calls  int
		want   []string
	}{
		{"failing", 3, 500, "InternalServerError", 3, []string{"after 3 attempts", "500 InternalServerError: boom", "request id "}},
		{"token expired", 1, 401, "Unauthorized", 1, []string{"401 Unauthorized"}},
		{"no permission", 1, 403, "Unauthorized", 1, []string{"403 Unauthorized"}},
		{"shard gone", 1, 404, "ShardNotExist", 1, []string{"404 ShardNotExist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.srv.FailNextPullLogs(tc.n, tc.status, tc.code, "boom")
			before := r.srv.PullStats().PullLogsCalls
			_, err := Read(context.Background(), r.opts, ev)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, "PullLogs "+project+"/"+logstore+" shard 0") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var re *ReadError
			if !errors.As(err, &re) || re.Status != tc.status || re.Code != tc.code {
				t.Errorf("error %T %+v", err, err)
			}
			if n := r.srv.PullStats().PullLogsCalls - before; n != tc.calls {
				t.Errorf("%d calls, want %d", n, tc.calls)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), token) {
				t.Errorf("secret in %q", err)
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		opts := r.opts
		opts.Credentials.AccessKeySecret = "not-the-secret"
		_, err := Read(context.Background(), opts, ev)
		var re *ReadError
		if !errors.As(err, &re) || re.Code != "SignatureNotMatch" || strings.Contains(err.Error(), "not-the-secret") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("missing shard", func(t *testing.T) {
		_, err := Read(context.Background(), r.opts, event(7, *ev.Source.BeginCursor, *ev.Source.EndCursor))
		if err == nil || !strings.Contains(err.Error(), "404 ShardNotExist: Shard 7 does not exist") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("cursor of another shard", func(t *testing.T) {
		_, err := Read(context.Background(), r.opts, event(1, *ev.Source.BeginCursor, *ev.Source.EndCursor))
		if err == nil || !strings.Contains(err.Error(), "400 InvalidCursor") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("service down", func(t *testing.T) {
		r.srv.SetDown(true)
		defer r.srv.SetDown(false)
		_, err := Read(context.Background(), r.opts, ev)
		if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
			t.Errorf("error %v", err)
		}
	})
}

func TestReadStopsAtTheDeadline(t *testing.T) {
	r := newRig(t)
	var groups []*sls.LogGroup
	for i := range 6 {
		groups = append(groups, grp(logs(rec{name: "DeleteVpnConnection", caller: accountA, region: "cn-hangzhou",
			params: p{"VpnConnectionId": fmt.Sprintf("vco-hz0dead%04d", i)}})...))
	}
	ev := r.append(t, 0, groups...)
	r.opts.PageSize = 2

	ctx, cancel := context.WithCancel(context.Background())
	testHookPage = func(page int) {
		if page == 2 {
			cancel() // the deadline comes while the second page is being read
		}
	}
	t.Cleanup(func() { testHookPage = nil })
	res, err := Read(ctx, r.opts, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || res.Pages != 2 || res.Records != 4 || len(res.Scans) != 4 || res.Cursor == *ev.Source.EndCursor || res.Cursor == *ev.Source.BeginCursor {
		t.Errorf("result %+v", res)
	}
	// Reading on from where it stopped gets the rest.
	testHookPage = nil
	rest, err := Read(context.Background(), r.opts, event(0, res.Cursor, *ev.Source.EndCursor))
	if err != nil || !rest.Complete || rest.Records != 2 {
		t.Errorf("the rest: %+v, %v", rest, err)
	}

	// Already past the deadline: nothing is read.
	done, stop := context.WithCancel(context.Background())
	stop()
	before := r.srv.PullStats().PullLogsCalls
	res, err = Read(done, r.opts, ev)
	if err != nil || res.Complete || res.Pages != 0 || res.Cursor != *ev.Source.BeginCursor {
		t.Errorf("after the deadline: %+v, %v", res, err)
	}
	if r.srv.PullStats().PullLogsCalls != before {
		t.Error("a call after the deadline")
	}
}

func TestReadBadEvent(t *testing.T) {
	r := newRig(t)
	good := func() *events.SLSEvent { return event(0, "MTA=", "MTE=") }
	cases := []struct {
		name string
		edit func(*events.SLSEvent)
		want string
	}{
		{"no source", func(e *events.SLSEvent) { e.Source = nil }, "source is missing"},
		{"no endpoint", func(e *events.SLSEvent) { e.Source.Endpoint = nil }, "source.endpoint is missing"},
		{"empty project", func(e *events.SLSEvent) { e.Source.ProjectName = new(string) }, "source.projectName is missing"},
		{"no logstore", func(e *events.SLSEvent) { e.Source.LogstoreName = nil }, "source.logstoreName is missing"},
		{"no begin", func(e *events.SLSEvent) { e.Source.BeginCursor = nil }, "source.beginCursor is missing"},
		{"no end", func(e *events.SLSEvent) { e.Source.EndCursor = nil }, "source.endCursor is missing"},
		{"no shard", func(e *events.SLSEvent) { e.Source.ShardID = nil }, "source.shardId is missing"},
		{"negative shard", func(e *events.SLSEvent) { n := -1; e.Source.ShardID = &n }, "source.shardId -1 is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := good()
			tc.edit(ev)
			_, err := Read(context.Background(), r.opts, ev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Read(context.Background(), r.opts, nil); err == nil {
		t.Error("nil event accepted")
	}
	if n := r.srv.Stats().Requests; n != 0 {
		t.Errorf("%d requests for bad events", n)
	}
	// Without a loopback override the event's endpoint is checked, and a
	// host outside the service is never sent the token.
	opts := r.opts
	opts.SLSEndpoint = "https://cn-hangzhou.log.aliyuncs.com"
	ev := good()
	*ev.Source.Endpoint = "http://collector.example.com"
	if _, err := Read(context.Background(), opts, ev); err == nil || !strings.Contains(err.Error(), "not a Log Service endpoint") {
		t.Errorf("error %v", err)
	}
	opts.Credentials = scan.Credentials{}
	if _, err := Read(context.Background(), opts, good()); err == nil || !strings.Contains(err.Error(), "no access key") {
		t.Errorf("no credentials: %v", err)
	}
}

func TestEndpointFor(t *testing.T) {
	const intranet = "http://cn-hangzhou-intranet.log.aliyuncs.com"
	for _, tc := range []struct {
		configured, event, want, err string
	}{
		{"", intranet, "https://cn-hangzhou-intranet.log.aliyuncs.com", ""},
		{"https://cn-shanghai.log.aliyuncs.com", intranet, "https://cn-hangzhou-intranet.log.aliyuncs.com", ""},
		{"http://127.0.0.1:4000", intranet, "http://127.0.0.1:4000", ""},
		{"localhost:4000", intranet, "http://localhost:4000", ""},
		{"http://[::1]:4000", intranet, "http://[::1]:4000", ""},
		{"", "https://CN-Hangzhou.log.aliyuncs.com/", "https://cn-hangzhou.log.aliyuncs.com", ""},
		{"", "cn-hangzhou-intranet.log.aliyuncs.com", "https://cn-hangzhou-intranet.log.aliyuncs.com", ""},
		{"", "http://cn-hangzhou.log.aliyuncs.com.example.com", "", "not a Log Service endpoint"},
		{"", "http://aliyuncs.com", "", "not a Log Service endpoint"},
		{"", "http://cn-hangzhou.log.aliyuncs.com:8080", "", "not a Log Service endpoint"},
		{"", "http://user:pw@cn-hangzhou.log.aliyuncs.com", "", "no path, query or user"},
		{"", "http://cn-hangzhou.log.aliyuncs.com/x", "", "no path, query or user"},
		{"", "http://127.0.0.1", "", "not a Log Service endpoint"},
		{"", "ftp://cn-hangzhou.log.aliyuncs.com", "", "scheme must be http or https"},
		{"", "http://%zz", "", "the host must be a DNS name or an IP address"},
	} {
		ep, err := endpointFor(tc.configured, tc.event)
		got := ep.URL()
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("endpointFor(%q, %q) = %q, %v; want %q", tc.configured, tc.event, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("endpointFor(%q, %q) = %q, %v; want an error with %q", tc.configured, tc.event, got, err, tc.err)
		case err != nil && strings.Contains(err.Error(), "pw@"):
			t.Errorf("error repeats the password: %v", err)
		}
	}
}
