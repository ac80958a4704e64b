package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcapiemu"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/rmemu"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/finding"
)

// The emulated organisation: the demo account (the function's, the
// directory's management account) and 20 members. Members 18 and 19 cannot
// be entered (18's role trusts another account, 19 has no role), member 20
// is in ACCOUNTS_EXCLUDE, and one more is listed but leaving the directory.
const (
	orgMembers    = 20
	orgDeniedA    = 18
	orgDeniedB    = 19
	orgExcluded   = 20
	orgLeaving    = "2100000000000099"
	orgExternalID = "vpnauthz-e2e-ext"
	orgRole       = "vpnauthz-auditor"
)

func orgMember(i int) string { return fmt.Sprintf("21000000000000%02d", i) }

// orgCloud is the demo cloud with the organisation's directory and STS.
type orgCloud struct {
	*cloud
	rm  *rmemu.Server
	sts *stsemu.Server
	env map[string]string
	now time.Time
}

// memberInventory: every member has a cn-hangzhou connection granted to
// another member, trusted by TRUST_ORGANIZATION (member 1's to the excluded
// member 20, member 2's to the leaving member: trusted too, as listed
// members); odd members a cn-shanghai connection granted to an outsider;
// every fifth member a connection without grants.
func memberInventory(i int, now time.Time) *vpcemu.Inventory {
	uid := orgMember(i)
	bindTo := orgMember(i%orgMembers + 1)
	switch i {
	case 1:
		bindTo = orgMember(orgExcluded)
	case 2:
		bindTo = orgLeaving
	}
	auth := func(bind, cen string) vpcemu.Authorization {
		b, _ := strconv.ParseInt(bind, 10, 64)
		return vpcemu.Authorization{BindUid: b, BindProduct: "CEN", BindInstance: cen, CreationTime: now.Add(-10 * 24 * time.Hour).UnixMilli()}
	}
	inv := &vpcemu.Inventory{AccountID: uid, Regions: map[string][]vpcemu.Connection{
		"cn-hangzhou": {{VpnConnectionId: fmt.Sprintf("vco-m%02dhz00000001", i), Authorizations: []vpcemu.Authorization{auth(bindTo, emulator.DemoTrustedCEN)}}},
	}}
	if i%2 == 1 {
		inv.Regions["cn-shanghai"] = []vpcemu.Connection{{VpnConnectionId: fmt.Sprintf("vco-m%02dsh00000001", i),
			Authorizations: []vpcemu.Authorization{auth(emulator.DemoRogueAccount, emulator.DemoUnknownCEN)}}}
	}
	if i%5 == 0 {
		inv.Regions["cn-hangzhou"] = append(inv.Regions["cn-hangzhou"], vpcemu.Connection{VpnConnectionId: fmt.Sprintf("vco-m%02dhz0noauth01", i)})
	}
	return inv
}

func startOrg(t *testing.T) *orgCloud {
	t.Helper()
	c := startCloud(t, nil)
	o := &orgCloud{cloud: c, now: c.Now}
	own := c.Credentials
	own.Account = c.AccountID
	var accounts []rmemu.Account
	var roles []stsemu.Role
	for i := 1; i <= orgMembers; i++ {
		uid := orgMember(i)
		if err := c.VPC.AddAccount(uid, memberInventory(i, c.Now)); err != nil {
			t.Fatal(err)
		}
		status := "CreateSuccess"
		if i%3 == 0 {
			status = "InviteSuccess"
		}
		accounts = append(accounts, rmemu.Account{AccountId: uid, Status: status, Type: "ResourceAccount"})
		switch i {
		case orgDeniedA:
			roles = append(roles, stsemu.Role{Account: uid, Name: orgRole, Trusted: []string{"1999999999999999"}, ExternalID: orgExternalID})
		case orgDeniedB:
		default:
			roles = append(roles, stsemu.Role{Account: uid, Name: orgRole, Trusted: []string{c.AccountID}, ExternalID: orgExternalID})
		}
	}
	accounts = append(accounts, rmemu.Account{AccountId: orgLeaving, Status: "Removing", Type: "ResourceAccount"})
	var err error
	o.rm, err = rmemu.New(rmemu.Options{Credentials: []cred.Credential{own}, MasterAccountID: c.AccountID, Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.rm.Close)
	o.sts, err = stsemu.New(stsemu.Options{Credentials: []cred.Credential{own}, DefaultAccount: c.AccountID, Roles: roles,
		Publish: []*cred.Store{c.VPC.Credentials()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.sts.Close)
	o.env = c.functionEnv()
	maps.Copy(o.env, map[string]string{
		"ACCOUNTS":                 "resource-directory",
		"ACCOUNTS_EXCLUDE":         orgMember(orgExcluded),
		"TRUST_ORGANIZATION":       "true",
		"MEMBER_ROLE_EXTERNAL_ID":  orgExternalID,
		"STS_ENDPOINT":             o.sts.URL(),
		"RESOURCEMANAGER_ENDPOINT": o.rm.URL(),
	})
	return o
}

// orgKey is one judgement in one account.
type orgKey struct{ owner, conn, rule string }

// expectedOrg is what a scan of the organisation finds: the demo's
// judgements in the own account, every entered member's, one ERROR per
// member that cannot be entered, nothing for the excluded one.
func expectedOrg(only ...string) map[orgKey]string {
	want := map[orgKey]string{}
	in := func(uid string) bool { return len(only) == 0 || slices.Contains(only, uid) }
	if in(emulator.DemoAccountID) {
		for k, s := range expectedVerdicts(emulator.DemoConnectionIDs()...) {
			want[orgKey{emulator.DemoAccountID, k.conn, k.rule}] = s
		}
	}
	all := func(owner, conn string, account, cen string) {
		want[orgKey{owner, conn, ruleAccount}] = account
		want[orgKey{owner, conn, ruleProduct}] = pass
		want[orgKey{owner, conn, ruleCEN}] = cen
		want[orgKey{owner, conn, ruleStale}] = pass
	}
	for i := 1; i <= orgMembers; i++ {
		uid := orgMember(i)
		if !in(uid) || i == orgExcluded {
			continue
		}
		if i == orgDeniedA || i == orgDeniedB {
			want[orgKey{uid, "*", ruleRead}] = errored
			continue
		}
		for region, conns := range memberInventory(i, time.Now()).Regions {
			for _, conn := range conns {
				switch {
				case len(conn.Authorizations) == 0:
					all(uid, conn.VpnConnectionId, pass, pass)
				case region == "cn-shanghai":
					all(uid, conn.VpnConnectionId, fail, fail)
				default:
					all(uid, conn.VpnConnectionId, pass, pass)
				}
			}
		}
	}
	return want
}

// orgVerdicts gives the judgements of stored findings by account, checking
// each finding_uid is the contract's hash over its own owner account.
func orgVerdicts(t *testing.T, fs []map[string]string) map[orgKey]string {
	t.Helper()
	out := map[orgKey]string{}
	for _, f := range fs {
		k := orgKey{f["owner_account_id"], f["vpn_connection_id"], f["rule_id"]}
		if prev, dup := out[k]; dup {
			t.Errorf("%v judged twice (%s, %s)", k, prev, f["status"])
		}
		out[k] = f["status"]
		if uid := findingUID(f["rule_id"], f["owner_account_id"], f["region"], f["vpn_connection_id"], f["bind_uid"], f["bind_instance"]); uid != f["finding_uid"] {
			t.Errorf("%v: finding_uid %s, want %s", k, f["finding_uid"], uid)
		}
	}
	return out
}

func diffVerdicts(t *testing.T, what string, got, want map[orgKey]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: no finding for %v (want %s)", what, k, w)
		} else if g != w {
			t.Errorf("%s: %v is %s, want %s", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected finding %v %s", what, k, g)
		}
	}
}

// uidStatus is a finding by its stable id and status.
func uidStatus(fs []map[string]string) map[string]string {
	out := map[string]string{}
	for _, f := range fs {
		out[f["finding_uid"]] = f["status"]
	}
	return out
}

// One timer invocation scans the whole organisation: exactly the expected
// findings per account, each member's the same as when it is scanned alone.
func TestOrganisationScan(t *testing.T) {
	o := startOrg(t)
	f := startFunction(t, o.cloud, o.env)
	r := asReport(t, f.invoke(t, call{payload: []byte(`{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"daily","payload":""}`)}))
	if !r.Complete || !r.Delivery.Delivered {
		t.Fatalf("report %+v", r)
	}
	stored := o.stored(r.ScanID)
	diffVerdicts(t, "organisation scan", orgVerdicts(t, stored), expectedOrg())
	if r.Summary.findings() != len(stored) {
		t.Errorf("report counts %d findings, Log Service holds %d", r.Summary.findings(), len(stored))
	}
	if n := o.sts.Stats().ByRoleAccount[orgMember(1)]; n != 1 {
		t.Errorf("member 1 was assumed into %d times, want once", n)
	}
	if n := o.sts.Stats().ByRoleAccount[orgMember(orgExcluded)]; n != 0 {
		t.Errorf("the excluded member was assumed into %d times", n)
	}
	o.audit(t, outcome{fault: "AssumeRole denied for members 18 and 19", runs: 1, expected: len(expectedOrg()), stored: len(stored)}, nil, f)

	// Each member alone (the same function, ACCOUNTS naming only it) finds
	// the same findings with the same ids and statuses.
	for _, i := range []int{1, 2, 7, orgDeniedA} {
		uid := orgMember(i)
		t.Run("alone "+uid, func(t *testing.T) {
			env := maps.Clone(o.env)
			env["ACCOUNTS"] = uid
			alone := startFunction(t, o.cloud, env)
			ra := asReport(t, alone.invoke(t, call{payload: []byte(`{"triggerTime":"2026-05-01T03:00:00Z","triggerName":"once","payload":""}`)}))
			mine := o.stored(ra.ScanID)
			var inOrg []map[string]string
			for _, s := range stored {
				if s["owner_account_id"] == uid {
					inOrg = append(inOrg, s)
				}
			}
			if got, want := uidStatus(mine), uidStatus(inOrg); len(got) == 0 || !maps.Equal(got, want) {
				t.Errorf("alone: %v\nin the organisation: %v", got, want)
			}
			diffVerdicts(t, "alone", orgVerdicts(t, mine), expectedOrg(uid))
		})
	}
}

// orgFanout is the organisation with fan-out through the emulated FC
// OpenAPI, delivering to the runtime the function polls.
type orgFanout struct {
	*orgCloud
	f  *function
	fc *fcapiemu.Server
}

func startFanout(t *testing.T, o *orgCloud, perInvocation int) *orgFanout {
	t.Helper()
	env := maps.Clone(o.env)
	env["FANOUT_ACCOUNTS_PER_INVOCATION"] = strconv.Itoa(perInvocation)
	fx := &orgFanout{orgCloud: o}
	own := o.Credentials
	own.Account = o.AccountID
	// The function must know FC_ENDPOINT before it starts, and the OpenAPI
	// needs the function's runtime: start the OpenAPI on a fixed listener
	// after the function, at an address reserved now.
	addr := reserveAddr(t)
	env["FC_ENDPOINT"] = "http://" + addr
	fx.f = startFunction(t, o.cloud, env)
	var err error
	fx.fc, err = fcapiemu.New(fcapiemu.Options{Addr: addr, Credentials: []cred.Credential{own}, Runtime: fx.f.rt,
		Invocation: fcemu.Invocation{AccessKeyID: o.Credentials.AccessKeyID, AccessKeySecret: o.Credentials.AccessKeySecret,
			SecurityToken: o.Credentials.SecurityToken, Region: o.Region, AccountID: o.AccountID, Timeout: time.Minute},
		DeliveryTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.fc.Close)
	return fx
}

// coordinatorAnswer is a coordinator's report with what it dispatched.
type coordinatorAnswer struct {
	report
	Fanout struct {
		Role           string `json:"role"`
		Accounts       int    `json:"accounts"`
		Batches        int    `json:"batches"`
		Dispatched     int    `json:"dispatched"`
		AlreadyStarted int    `json:"alreadyStarted"`
	} `json:"fanout"`
}

func (fx *orgFanout) coordinate(t *testing.T, requestID string) coordinatorAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := fx.f.rt.Invoke(ctx, fcemu.Invocation{
		RequestID: requestID, Payload: []byte(`{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"daily","payload":""}`),
		AccessKeyID: fx.Credentials.AccessKeyID, AccessKeySecret: fx.Credentials.AccessKeySecret, SecurityToken: fx.Credentials.SecurityToken,
		Region: fx.Region, AccountID: fx.AccountID, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var a coordinatorAnswer
	a.report = asReport(t, res)
	if err := json.Unmarshal(res.Response, &a); err != nil {
		t.Fatal(err)
	}
	if err := fx.fc.WaitIdle(ctx); err != nil {
		t.Fatalf("the workers did not finish: %v", err)
	}
	return a
}

// Fan-out: the coordinator dispatches the organisation in batches through
// FC, scans nothing itself, and the workers' findings together are the
// single scan's; a retried coordinator starts no batch twice.
func TestOrganisationFanout(t *testing.T) {
	o := startOrg(t)
	// The reference: one unbatched scan of the same organisation.
	single := startFunction(t, o.cloud, o.env)
	ref := asReport(t, single.invoke(t, call{payload: []byte(`{"triggerTime":"2026-05-01T01:00:00Z","triggerName":"daily","payload":""}`)}))
	want := uidStatus(o.stored(ref.ScanID))
	before := map[string]bool{}
	for _, l := range o.SLS.LogsByTopic(o.Project, o.Logstore, finding.TopicScan) {
		before[l.Contents["scan_id"]] = true
	}

	const per = 6 // 20 accounts: batches of 6, 6, 6 and 2
	fx := startFanout(t, o, per)
	a := fx.coordinate(t, "1-coordinator-0001")
	if a.Fanout.Role != "coordinator" || a.Fanout.Accounts != 20 || a.Fanout.Batches != 4 || a.Fanout.Dispatched != 4 || a.Fanout.AlreadyStarted != 0 {
		t.Fatalf("coordinator answer %+v", a.Fanout)
	}
	if a.Summary.findings() != 0 || len(o.stored(a.ScanID)) != 0 {
		t.Errorf("the coordinator made findings: %+v", a.Summary)
	}
	if logs := o.storedSummary(a.ScanID); len(logs) != 1 {
		t.Errorf("%d summary logs of the coordinator, want 1", len(logs))
	} else if c := logs[0].Contents; c["role"] != "coordinator" || c["accounts"] != "20" || c["batches"] != "4" || c["pass"] != "0" {
		t.Errorf("coordinator summary %v, want role coordinator, 20 accounts, 4 batches, no findings", c)
	}
	st := fx.fc.Stats()
	if st.Async != 4 || st.Deliveries != 4 || st.Succeeded != 4 || st.Failed != 0 {
		t.Errorf("FC stats %+v, want 4 batches each delivered once and succeeding", st)
	}
	for _, task := range fx.fc.Tasks() {
		var p struct {
			ScanID   string   `json:"scanId"`
			Batch    int      `json:"batch"`
			Batches  int      `json:"batches"`
			Accounts []string `json:"accounts"`
		}
		if err := json.Unmarshal(task.Payload, &p); err != nil || p.ScanID != a.ScanID || p.Batches != 4 || len(p.Accounts) == 0 || len(p.Accounts) > per {
			t.Errorf("task %s payload %s", task.ID, task.Payload)
		}
	}

	// The workers' findings: every finding log of a scan that is neither the
	// reference nor the coordinator.
	var workers []map[string]string
	workerScans := map[string]bool{}
	for _, l := range o.SLS.LogsByTopic(o.Project, o.Logstore, finding.TopicFinding) {
		id := l.Contents["scan_id"]
		if id != ref.ScanID && id != a.ScanID {
			workers = append(workers, l.Contents)
			workerScans[id] = true
		}
	}
	if got := uidStatus(workers); !maps.Equal(got, want) {
		t.Errorf("the workers' findings differ from the single scan's: %d vs %d", len(got), len(want))
		diffVerdicts(t, "fan-out", orgVerdicts(t, workers), expectedOrg())
	}
	if len(workers) != len(want) {
		t.Errorf("%d worker findings, %d distinct: a finding was written twice", len(workers), len(uidStatus(workers)))
	}
	var batches []string
	for _, l := range o.SLS.LogsByTopic(o.Project, o.Logstore, finding.TopicScan) {
		if c := l.Contents; !before[c["scan_id"]] && c["scan_id"] != a.ScanID {
			if c["parent_scan_id"] != a.ScanID || c["batches"] != "4" {
				t.Errorf("worker summary %v does not name its coordinator's scan and batches", c)
			}
			batches = append(batches, c["batch"])
		}
	}
	slices.Sort(batches)
	if !slices.Equal(batches, []string{"1", "2", "3", "4"}) {
		t.Errorf("worker summaries of batches %v, want each of 1..4 once", batches)
	}

	// FC retries the coordinator (same request id): every batch's task id
	// is refused as used, nothing runs again.
	again := fx.coordinate(t, "1-coordinator-0001")
	if again.ScanID != a.ScanID || again.Fanout.Dispatched != 0 || again.Fanout.AlreadyStarted != 4 {
		t.Errorf("retried coordinator %s %+v, want scan %s with every batch already started", again.ScanID, again.Fanout, a.ScanID)
	}
	st = fx.fc.Stats()
	if st.Duplicates != 4 || st.Deliveries != 4 {
		t.Errorf("FC stats after the retry %+v, want 4 refused repeats and still 4 deliveries", st)
	}
	if p := panics(append(fx.f.stdout.Bytes(), fx.f.stderr.Bytes()...)); len(p) > 0 {
		t.Errorf("the function's output shows a panic: %q", p)
	}
}

// reserveAddr is a loopback address free a moment ago, for a server that
// must be started after the process that is told its address.
func reserveAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
