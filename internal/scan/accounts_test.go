package scan_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/assume"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
)

// The organisation tests scan several accounts of the emulated VPC API at
// once: the function's own (account) and members, each read with a
// credential the emulator binds to that member only.

const (
	shanghai = "cn-shanghai"
	member1  = "1310000000000001"
	member2  = "1310000000000002"
	member3  = "1310000000000003"
)

// memberCred is the emulator's credential of a member, as an assumed role's
// token would be.
func memberCred(uid string) cred.Credential {
	return cred.Credential{AccessKeyID: "STS.member" + uid, AccessKeySecret: "member-secret-" + uid,
		SecurityToken: "CAISmembertoken" + uid, Account: uid}
}

func asScanCreds(c cred.Credential) scan.Credentials {
	return scan.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
}

// startOrg starts the emulated VPC API with the own account's regions and
// the members' inventories; every member has a credential of its own.
func startOrg(t *testing.T, own map[string][]vpcemu.Connection, members map[string]map[string][]vpcemu.Connection) *vpcemu.Server {
	t.Helper()
	creds := []cred.Credential{emuCred}
	accounts := map[string]*vpcemu.Inventory{}
	for uid, regions := range members {
		accounts[uid] = &vpcemu.Inventory{Regions: regions}
		creds = append(creds, memberCred(uid))
	}
	srv, err := vpcemu.New(vpcemu.Options{
		Inventory:   &vpcemu.Inventory{AccountID: account, Regions: own},
		Accounts:    accounts,
		Credentials: creds,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// fakeMembers hands out the members' emulator credentials, or an error for
// the members that refuse the role, and counts the requests per member.
type fakeMembers struct {
	mu      sync.Mutex
	denied  map[string]error
	calls   map[string]int
	unknown []string
}

func (m *fakeMembers) Credentials(_ context.Context, uid string) (scan.Credentials, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[uid]++
	if err := m.denied[uid]; err != nil {
		return scan.Credentials{}, err
	}
	if !target.ValidAccountID(uid) || uid == account {
		m.unknown = append(m.unknown, uid)
		return scan.Credentials{}, fmt.Errorf("no member %s", uid)
	}
	return asScanCreds(memberCred(uid)), nil
}

func (m *fakeMembers) callsOf(uid string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[uid]
}

// orgRequest is a scan of the given targets, "[UID/]REGION:ID" each.
func orgRequest(t *testing.T, members scan.MemberCredentials, targets ...string) scan.Request {
	t.Helper()
	req := scan.Request{
		ScanID:          "org-scan",
		Trigger:         finding.TriggerTimer,
		Credentials:     asScanCreds(emuCred),
		AccountID:       account,
		Members:         members,
		CollectFindings: true,
	}
	for _, x := range targets {
		tg, err := target.Parse(x)
		if err != nil {
			t.Fatal(err)
		}
		req.Targets = append(req.Targets, tg)
	}
	return req
}

func runReq(t *testing.T, s *scan.Scanner, ctx context.Context, req scan.Request) (scan.Report, *scan.MemSink) {
	t.Helper()
	sink := &scan.MemSink{}
	rep, err := s.Run(ctx, req, sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sink.Overlap() {
		t.Error("the sink's Write was called from two goroutines at once")
	}
	return rep, sink
}

func uidOf(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

// verdictsByUID is each finding's status and detail by finding uid.
func verdictsByUID(fs []finding.Finding) map[string]string {
	m := map[string]string{}
	for _, f := range fs {
		m[f.FindingUID] = f.Status + " " + f.OwnerAccountID + " " + f.StatusDetail
	}
	return m
}

func ownedBy(fs []finding.Finding, uid string) []finding.Finding {
	var out []finding.Finding
	for _, f := range fs {
		if f.OwnerAccountID == uid {
			out = append(out, f)
		}
	}
	return out
}

func orgInventory() (own map[string][]vpcemu.Connection, members map[string]map[string][]vpcemu.Connection) {
	toMember2 := vpcemu.Authorization{BindUid: uidOf(member2), BindProduct: "CEN", BindInstance: "cen-member2", CreationTime: 1658201810000}
	own = map[string][]vpcemu.Connection{hangzhou: {emuConn("vco-own0", 1)}}
	members = map[string]map[string][]vpcemu.Connection{
		member1: {
			hangzhou: {{VpnConnectionId: "vco-mem1a", Authorizations: []vpcemu.Authorization{toMember2}}, emuConn("vco-mem1b", 0)},
			shanghai: {emuConn("vco-mem1c", 2)},
		},
		member2: {hangzhou: {emuConn("vco-mem2a", 1)}},
		member3: {hangzhou: {emuConn("vco-mem3a", 1)}},
	}
	return own, members
}

// TestMemberAccounts: one scan of the own account and three members, one of
// which refuses the role. Each member is read with its own credentials;
// its findings are those of a scan of that member alone;
// the refusing member is one ERROR, and the scan is complete all the same.
func TestMemberAccounts(t *testing.T) {
	own, members := orgInventory()
	srv := startOrg(t, own, members)
	denial := errors.New("assume role acs:ram::1310000000000003:role/vpnauthz-auditor: NoPermission (HTTP 403): You are not authorized to do this action. You should be authorized by RAM.")
	m := &fakeMembers{denied: map[string]error{member3: denial}}
	s := newScanner(t, srv, nil)

	req := orgRequest(t, m,
		hangzhou+":*", account+"/"+hangzhou+":vco-own0", // the own account, also by its UID
		member1+"/"+hangzhou+":*", member1+"/"+shanghai+":*",
		member2+"/"+hangzhou+":vco-mem2a",
		member3+"/"+hangzhou+":*", member3+"/"+shanghai+":*")
	req.TrustedAccounts = []int64{uidOf(member2)}
	store := lifecycle.NewMemStore()
	req.State = store
	rep, sink := runReq(t, s, t.Context(), req)

	// A member's Sources ask again at each call (Members renews a token
	// near its expiry); the refusing member is asked once and not read.
	for _, uid := range []string{member1, member2} {
		if m.callsOf(uid) == 0 {
			t.Errorf("credentials of %s never asked for", uid)
		}
	}
	for uid, want := range map[string]int{member3: 1, account: 0} {
		if got := m.callsOf(uid); got != want {
			t.Errorf("credentials of %s asked for %d times, want %d", uid, got, want)
		}
	}
	if !rep.Complete {
		t.Error("complete = false: a member that cannot be entered is an ERROR, not an incomplete scan")
	}
	fs := sink.Findings()

	// The refusing member: exactly one ERROR, naming the cause.
	denied := ownedBy(fs, member3)
	if len(denied) != 1 {
		t.Fatalf("member %s: %d findings, want one ERROR: %+v", member3, len(denied), denied)
	}
	d := denied[0]
	if d.Status != finding.StatusError || d.RuleID != finding.RuleReadAuthorizations || d.VpnConnectionID != "*" || d.Region != "*" ||
		!strings.Contains(d.StatusDetail, "NoPermission (HTTP 403)") || !strings.Contains(d.StatusDetail, member3) {
		t.Errorf("denied member's finding: %+v", d)
	}
	for _, want := range []string{"MEMBER_ROLE_NAME", "trust policy", "ExternalId", member3} {
		if !strings.Contains(d.Remediation, want) {
			t.Errorf("remediation %q does not mention %s", d.Remediation, want)
		}
	}
	if d.FindingUID != finding.UID(finding.RuleReadAuthorizations, member3, "*", "*", "", "") {
		t.Errorf("denied member's finding uid %s", d.FindingUID)
	}

	// The own account: vco-own0 once, though named twice.
	if got := len(ownedBy(fs, account)); got != 2 {
		t.Errorf("own account: %d findings, want 2 (one connection, two rules)", got)
	}
	if n := srv.Stats().ByKey[vpcemu.CallKey{Action: actAuth, Region: hangzhou}].Calls; n != 1 {
		t.Errorf("own account: %d reads, want 1", n)
	}
	// Each member's calls were signed by that member: the emulator books
	// them under its account.
	for _, k := range []vpcemu.CallKey{
		{Action: actList, Region: hangzhou, Account: member1}, {Action: actList, Region: shanghai, Account: member1},
		{Action: actAuth, Region: hangzhou, Account: member2},
	} {
		if c := srv.Stats().ByKey[k]; c.Calls == 0 || c.Calls != c.OK {
			t.Errorf("%+v: %+v, want only successful calls", k, c)
		}
	}

	// The trusted member: vco-mem1a's grant to member2 passes.
	for _, f := range ownedBy(fs, member1) {
		if f.VpnConnectionID == "vco-mem1a" && f.RuleID == finding.RuleUntrustedAccount &&
			(f.Status != finding.StatusPass || !strings.HasSuffix(f.StatusDetail, "; it is a trusted account.")) {
			t.Errorf("grant to the trusted member %s: %s %q", member2, f.Status, f.StatusDetail)
		}
	}

	// Each member's findings equal those of a scan of that member alone.
	for _, tc := range []struct {
		uid     string
		targets []string
	}{
		{member1, []string{hangzhou + ":*", shanghai + ":*"}},
		{member2, []string{hangzhou + ":vco-mem2a"}},
	} {
		alone := orgRequest(t, nil, tc.targets...)
		alone.Credentials, alone.AccountID = asScanCreds(memberCred(tc.uid)), tc.uid
		alone.TrustedAccounts = req.TrustedAccounts
		aloneRep, _ := runReq(t, s, t.Context(), alone)
		want, got := verdictsByUID(aloneRep.Findings), verdictsByUID(ownedBy(fs, tc.uid))
		if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got) {
			t.Errorf("member %s: in the organisation %v\nalone %v", tc.uid, got, want)
		}
	}

	// The lifecycle is kept per (account, region), each member's under its
	// own UID: member1's two grants in cn-shanghai fail, and are opened there.
	var opened []string
	for _, c := range sink.Changes() {
		opened = append(opened, c.OwnerAccountID+"/"+c.Region+"/"+c.VpnConnectionID+" "+c.Change)
	}
	slices.Sort(opened)
	want := []string{
		account + "/" + hangzhou + "/vco-own0 opened",
		member1 + "/" + shanghai + "/vco-mem1c opened", member1 + "/" + shanghai + "/vco-mem1c opened",
		member2 + "/" + hangzhou + "/vco-mem2a opened",
	}
	if !slices.Equal(opened, want) || rep.Summary.Changes != 4 || rep.Summary.StateWarning != "" {
		t.Errorf("transitions %q (summary %d, warning %q), want %q", opened, rep.Summary.Changes, rep.Summary.StateWarning, want)
	}
	for _, k := range [][2]string{{member1, shanghai}, {member2, hangzhou}, {account, hangzhou}} {
		if recs, _ := store.Load(t.Context(), k[0], k[1]); len(recs) == 0 {
			t.Errorf("no state stored for %s in %s", k[0], k[1])
		}
	}
	if recs, _ := store.Load(t.Context(), member3, hangzhou); len(recs) != 0 {
		t.Errorf("state stored for the member that could not be entered: %+v", recs)
	}

	s2 := rep.Summary
	// own 1, member1 3, member2 1; member3 named nothing.
	if s2.Connections != 5 || s2.ConnectionsInScope != 5 || s2.Error != 1 || len(fs) != s2.Findings() {
		t.Errorf("summary %+v", s2)
	}
	if sum, _ := sink.Summary(); sum.Accounts != 4 || sum.Role != "" || sum.Batches != 0 {
		t.Errorf("summary accounts %d role %q batches %d, want 4 accounts, not a batch", sum.Accounts, sum.Role, sum.Batches)
	}
}

// TestMemberTargetsNeedMembers: a request naming another account without a
// way to enter it is refused before any call.
func TestMemberTargetsNeedMembers(t *testing.T) {
	own, members := orgInventory()
	srv := startOrg(t, own, members)
	s := newScanner(t, srv, nil)
	for _, tc := range []struct {
		name string
		req  scan.Request
		want string
	}{
		{"no member credentials", orgRequest(t, nil, member1+"/"+hangzhou+":*"), "no member credentials"},
		{"bad account", func() scan.Request {
			r := orgRequest(t, &fakeMembers{}, hangzhou+":*")
			r.Targets[0].Account = "01x"
			return r
		}(), "invalid account id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Run(t.Context(), tc.req, &scan.MemSink{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	if n := srv.Stats().Total().Calls; n != 0 {
		t.Errorf("%d calls for refused requests", n)
	}
	// The own account named by its UID needs no member credentials.
	rep, _ := runReq(t, s, t.Context(), orgRequest(t, nil, account+"/"+hangzhou+":vco-own0"))
	if rep.Summary.Connections != 1 || rep.Summary.Error != 0 {
		t.Errorf("own account by UID: %+v", rep.Summary)
	}
}

// TestAccountsPacedApart: the quota is per account and region, so three
// accounts in one region each get the whole rate, in parallel: the scan
// takes about as long as one account's calls at the rate, no account ever
// goes over it, and nothing is throttled.
func TestAccountsPacedApart(t *testing.T) {
	const n, rate = 20, 20
	conns := func(prefix string) []vpcemu.Connection {
		var cs []vpcemu.Connection
		for i := range n {
			cs = append(cs, emuConn(vco(prefix, i), 1))
		}
		return cs
	}
	srv := startOrg(t, map[string][]vpcemu.Connection{hangzhou: conns("o")},
		map[string]map[string][]vpcemu.Connection{member1: {hangzhou: conns("a")}, member2: {hangzhou: conns("b")}})
	// Each call's departure, by the account whose credentials sign it.
	var mu sync.Mutex
	departures := map[string][]time.Time{}
	s := newScanner(t, srv, func(o *scan.Options) {
		o.Rate = rate
		inner := o.NewSource
		o.NewSource = func(c scan.Credentials, region string) (scan.Source, error) {
			src, err := inner(c, region)
			return timedSource{src, func() {
				mu.Lock()
				defer mu.Unlock()
				departures[c.AccessKeyID] = append(departures[c.AccessKeyID], time.Now())
			}}, err
		}
	})
	req := orgRequest(t, &fakeMembers{}, hangzhou+":vco-o0000", member1+"/"+hangzhou+":vco-a0000", member2+"/"+hangzhou+":vco-b0000")
	runReq(t, s, t.Context(), req) // the first calls' one-off costs

	// The emulator's quota is per (account, region, action), a bucket of one
	// second's calls: a scanner pacing the three accounts as one would not
	// be throttled, but slow; one not pacing each account would be throttled.
	srv.SetQuota(rate, rate)
	srv.ResetStats()
	mu.Lock()
	clear(departures)
	mu.Unlock()
	start := time.Now()
	rep, sink := runReq(t, s, t.Context(), orgRequest(t, &fakeMembers{}, hangzhou+":*", member1+"/"+hangzhou+":*", member2+"/"+hangzhou+":*"))
	elapsed := time.Since(start)

	if errs := errorDetails(sink.Findings()); len(errs) > 0 {
		t.Fatalf("ERROR findings: %v", errs)
	}
	if st := srv.Stats().Total(); st.Throttled != 0 || rep.Summary.Throttled != 0 || st.Calls != 3*(n+1) {
		t.Errorf("emulator: %d calls, %d throttled; want %d and 0", st.Calls, st.Throttled, 3*(n+1))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, key := range []string{emuCred.AccessKeyID, memberCred(member1).AccessKeyID, memberCred(member2).AccessKeyID} {
		// Burst 1: after the first call (on the bucket's one token), calls
		// leave 1/rate apart, so the other n span (n-1)/rate at least (less
		// the scheduling noise of noting a departure).
		ts := departures[key]
		if len(ts) != n+1 {
			t.Errorf("%s: %d calls, want %d", key, len(ts), n+1)
			continue
		}
		span, want := ts[n].Sub(ts[1]), time.Duration(n-1)*time.Second/rate
		if got := maxInWindow(ts, time.Second); got > rate+1 || span < want-25*time.Millisecond {
			t.Errorf("%s: %d calls within one second, the last %d within %v; want at most %d, over %v", key, got, n, span, rate+1, want)
		}
	}
	for _, k := range []vpcemu.CallKey{{Action: actAuth, Region: hangzhou}, {Action: actAuth, Region: hangzhou, Account: member1}, {Action: actAuth, Region: hangzhou, Account: member2}} {
		if c := srv.Stats().ByKey[k]; c.OK != n {
			t.Errorf("%+v: %+v, want %d reads under the account", k, c, n)
		}
	}
	bound := time.Duration(n) * time.Second / rate // one account's n+1 calls, burst 1
	t.Logf("3 accounts × %d connections at %d calls/s each: %v (one account's bound %v)", n, rate, elapsed, bound)
	if elapsed > bound+bound/2+300*time.Millisecond {
		t.Errorf("took %v; accounts in parallel should take about %v", elapsed, bound)
	}
}

// timedSource notes each call as it leaves.
type timedSource struct {
	scan.Source
	note func()
}

func (s timedSource) ListConnections(ctx context.Context, region string, page, size int) (scan.ConnectionPage, error) {
	s.note()
	return s.Source.ListConnections(ctx, region, page, size)
}

func (s timedSource) ListAuthorizations(ctx context.Context, region, id string, page, size int) (scan.AuthorizationPage, error) {
	s.note()
	return s.Source.ListAuthorizations(ctx, region, id, page, size)
}

func maxInWindow(ts []time.Time, w time.Duration) int {
	best := 0
	for i := range ts {
		k := 0
		for j := range ts {
			if !ts[j].Before(ts[i]) && ts[j].Sub(ts[i]) < w {
				k++
			}
		}
		best = max(best, k)
	}
	return best
}

// assumed gives member credentials from the real AssumeRole cache.
type assumed struct{ c *assume.Cache }

func (a assumed) Credentials(ctx context.Context, uid string) (scan.Credentials, error) {
	tok, err := a.c.Credentials(ctx, uid)
	return tok.Credentials, err
}

// TestMembersThroughAssumeRole: member credentials from STS AssumeRole (the
// real SDK against the emulated STS, whose tokens the emulated VPC binds to
// the role's account). A member whose role's trust policy wants another
// ExternalId is one ERROR naming the role and STS's answer, never a secret.
func TestMembersThroughAssumeRole(t *testing.T) {
	const extID = "vpnauthz-ext-7"
	own, members := orgInventory()
	accounts := map[string]*vpcemu.Inventory{}
	for uid, regions := range members {
		accounts[uid] = &vpcemu.Inventory{Regions: regions}
	}
	srv, err := vpcemu.New(vpcemu.Options{
		Inventory: &vpcemu.Inventory{AccountID: account, Regions: own}, Accounts: accounts,
		Credentials: []cred.Credential{emuCred},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ownCred := emuCred
	ownCred.Account = account
	sts, err := stsemu.New(stsemu.Options{
		Credentials: []cred.Credential{ownCred},
		Roles: []stsemu.Role{
			{Account: member1, Name: assume.DefaultRoleName, Trusted: []string{account}, ExternalID: extID},
			{Account: member2, Name: assume.DefaultRoleName, Trusted: []string{account}, ExternalID: "another-ext-id"},
		},
		Publish: []*cred.Store{srv.Credentials()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sts.Close)
	cache, err := assume.New(assume.Options{
		Endpoint: endpoint.MustParse(sts.URL()), Base: asScanCreds(emuCred), ExternalID: extID,
		ScanID: "org-scan", Rate: 1000, Retry: retry.Policy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}

	rep, sink := runReq(t, newScanner(t, srv, nil), t.Context(), orgRequest(t, assumed{cache},
		hangzhou+":*", member1+"/"+hangzhou+":*", member1+"/"+shanghai+":*", member2+"/"+hangzhou+":*"))
	fs := sink.Findings()

	if got := len(ownedBy(fs, member1)); got != 2*(1+1+2) {
		t.Errorf("member %s: %d findings, want 8: %v", member1, got, errorDetails(fs))
	}
	denied := ownedBy(fs, member2)
	if len(denied) != 1 || denied[0].Status != finding.StatusError || denied[0].VpnConnectionID != "*" ||
		!strings.Contains(denied[0].StatusDetail, "acs:ram::"+member2+":role/"+assume.DefaultRoleName) {
		t.Fatalf("member %s: findings %+v, want one ERROR naming its role", member2, denied)
	}
	t.Logf("denied member: %s", denied[0].StatusDetail)
	for _, f := range fs {
		for _, secret := range []string{emuCred.AccessKeySecret, emuCred.SecurityToken, extID} {
			if strings.Contains(f.StatusDetail, secret) || strings.Contains(f.Remediation, secret) {
				t.Errorf("finding %s carries a secret: %q", f.FindingUID, f.StatusDetail)
			}
		}
	}
	if cache.Calls() != 2 || !rep.Complete || rep.Summary.Error != 1 {
		t.Errorf("AssumeRole calls %d, complete %v, errors %d; want 2 (one per member), true, 1", cache.Calls(), rep.Complete, rep.Summary.Error)
	}
	if c := srv.Stats().ByKey[vpcemu.CallKey{Action: actList, Region: shanghai, Account: member1}]; c.OK != 1 {
		t.Errorf("member %s's listing of %s: %+v, want one call under its account", member1, shanghai, c)
	}
}
