package bench

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/finding"
)

func startCloud(tb testing.TB, inv *vpcemu.Inventory) *emulator.Cloud {
	tb.Helper()
	c, err := emulator.Start(emulator.Options{Inventory: inv})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// BenchmarkScan runs the scheduled scan in this process against emulators
// without latency or quota: what is left is the scan's own cost.
func BenchmarkScan(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := startCloud(b, Generate(1, n))
			cloud := InProcess(c)
			ctx := context.Background()
			var calls, putLogs, findings int
			b.ReportAllocs()
			for b.Loop() {
				r, err := RunOurs(ctx, cloud, OursOptions{Rate: 1e6})
				if err != nil {
					b.Fatal(err)
				}
				calls += r.VPCCalls
				putLogs += r.PutLogsCalls
				findings += r.Findings
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(putLogs)/float64(b.N), "putlogs/op")
			b.ReportMetric(float64(findings)/float64(b.N), "findings/op")
		})
	}
}

// outcomes maps finding_uid to status over the findings a logstore received.
func outcomes(t *testing.T, c *emulator.Cloud) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range c.SLS.LogsByTopic(c.Project, c.Logstore, finding.TopicFinding) {
		uid := l.Contents["finding_uid"]
		if prev, dup := out[uid]; dup {
			t.Errorf("finding %s delivered twice (%s, %s)", uid, prev, l.Contents["status"])
		}
		out[uid] = l.Contents["status"]
	}
	return out
}

// TestNaivePeerAndScannerAgree holds the benchmark's peer to the same result
// as vpnauthz: over an inventory that needs paging on both sides and under a
// quota that throttles the peer, both deliver the same findings with the
// same statuses.
func TestNaivePeerAndScannerAgree(t *testing.T) {
	inv := Generate(7, 240)
	most := 0
	for _, conns := range inv.Regions {
		for _, c := range conns {
			most = max(most, len(c.Authorizations))
		}
	}
	if most <= 50 {
		t.Fatalf("the inventory's largest connection has %d authorizations; the test needs more than a page of 50", most)
	}
	want := Expect(inv, time.Now())

	const quota = 200
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	oursCloud := startCloud(t, inv)
	oursCloud.VPC.SetQuota(quota, 1)
	ours, err := RunOurs(ctx, InProcess(oursCloud), OursOptions{Rate: quota})
	if err != nil {
		t.Fatal(err)
	}
	peerCloud := startCloud(t, inv)
	peerCloud.VPC.SetQuota(quota, 1)
	peer, err := RunPeer(ctx, InProcess(peerCloud), PeerOptions{ThrottlePause: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	got, gotPeer := outcomes(t, oursCloud), outcomes(t, peerCloud)
	if len(got) != want.Findings || ours.Findings != want.Findings {
		t.Errorf("vpnauthz delivered %d findings (%d stored), want %d", ours.Findings, len(got), want.Findings)
	}
	if !maps.Equal(got, gotPeer) {
		var diff []string
		for uid, s := range got {
			if gotPeer[uid] != s {
				diff = append(diff, fmt.Sprintf("%s: vpnauthz %s, peer %q", uid, s, gotPeer[uid]))
			}
		}
		for uid, s := range gotPeer {
			if _, ok := got[uid]; !ok {
				diff = append(diff, fmt.Sprintf("%s: vpnauthz none, peer %s", uid, s))
			}
		}
		slices.Sort(diff)
		t.Errorf("%d findings differ, first: %v", len(diff), diff[:min(5, len(diff))])
	}
	statuses := map[string]int{}
	for _, s := range got {
		statuses[s]++
	}
	for _, s := range []string{finding.StatusPass, finding.StatusFail, finding.StatusSuppressed} {
		if statuses[s] == 0 {
			t.Errorf("no %s finding: the inventory does not exercise the policy (%v)", s, statuses)
		}
	}

	// The peer pages by 10 and writes one request per finding; vpnauthz
	// pages by 50 and batches.
	bound := ComputeBound(inv, quota)
	if ours.VPCCalls-ours.Throttled != bound.Calls {
		t.Errorf("vpnauthz made %d successful calls, the bound is %d", ours.VPCCalls-ours.Throttled, bound.Calls)
	}
	if peer.VPCCalls-peer.Throttled <= bound.Calls || peer.PutLogsCalls != want.Findings {
		t.Errorf("peer: %d successful calls (bound %d), %d PutLogs for %d findings",
			peer.VPCCalls-peer.Throttled, bound.Calls, peer.PutLogsCalls, want.Findings)
	}
	if ours.PutLogsCalls != want.MinPutLogs {
		t.Errorf("vpnauthz sent %d PutLogs, the minimum is %d", ours.PutLogsCalls, want.MinPutLogs)
	}
	t.Logf("findings %d %v; vpnauthz %d calls (%d throttled), peer %d calls (%d throttled)",
		want.Findings, statuses, ours.VPCCalls, ours.Throttled, peer.VPCCalls, peer.Throttled)
}

func TestGenerateIsDeterministicAndSpread(t *testing.T) {
	a, b := Generate(3, 2000), Generate(3, 2000)
	if !slices.Equal(slices.Sorted(maps.Keys(a.Regions)), slices.Sorted(maps.Keys(b.Regions))) {
		t.Fatal("regions differ between two generations")
	}
	big, none, total := 0, 0, 0
	for region, conns := range a.Regions {
		if len(conns) != 500 {
			t.Errorf("%s has %d connections, want an even 500", region, len(conns))
		}
		for i, c := range conns {
			other := b.Regions[region][i]
			if c.VpnConnectionId != other.VpnConnectionId || !slices.Equal(c.Authorizations, other.Authorizations) {
				t.Fatalf("%s[%d] differs between two generations", region, i)
			}
			total++
			switch n := len(c.Authorizations); {
			case n > 50:
				big++
			case n == 0:
				none++
			}
		}
	}
	if big < 5 || big > 40 {
		t.Errorf("%d of %d connections have more than 50 authorizations, want about 1 %%", big, total)
	}
	if none < total/4 {
		t.Errorf("only %d of %d connections have no authorization", none, total)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("the inventory is not valid: %v", err)
	}
}

func TestComputeBound(t *testing.T) {
	inv := &vpcemu.Inventory{AccountID: AccountID, Regions: map[string][]vpcemu.Connection{
		"cn-hangzhou": make([]vpcemu.Connection, 51),
		"cn-shanghai": {{Authorizations: make([]vpcemu.Authorization, 101)}},
	}}
	b := ComputeBound(inv, 10)
	// cn-hangzhou: 2 listing pages + 51 connections of one page each;
	// cn-shanghai: 1 listing page + 3 pages of authorizations.
	if b.Regions["cn-hangzhou"] != 53 || b.Regions["cn-shanghai"] != 4 || b.Calls != 57 || b.Time != 5300*time.Millisecond {
		t.Errorf("bound %+v", b)
	}
}

func TestParseOrgShape(t *testing.T) {
	o, err := ParseOrgShape("50x4x100")
	if err != nil || o != (OrgShape{50, 4, 100}) || o.Total() != 20_000 || o.String() != "50x4x100" {
		t.Errorf("ParseOrgShape(50x4x100) = %+v, %v", o, err)
	}
	for _, bad := range []string{"", "50x4", "50x4x100x2", "0x4x100", "50x-1x100", "ax4x100", "50x13x1", "10001x1x1"} {
		if _, err := ParseOrgShape(bad); err == nil {
			t.Errorf("ParseOrgShape(%q) accepted", bad)
		}
	}
}

func TestGenerateOrg(t *testing.T) {
	shape := OrgShape{Accounts: 5, Regions: 6, Connections: 40}
	a, b := GenerateOrg(2, shape), GenerateOrg(2, shape)
	if a.Own.AccountID != AccountID || len(a.Members) != 4 || len(a.Roles) != 4 {
		t.Fatalf("own %s, %d members, %d roles", a.Own.AccountID, len(a.Members), len(a.Roles))
	}
	total := 0
	ids := map[string]bool{}
	for _, inv := range append([]*vpcemu.Inventory{a.Own}, slices.Collect(maps.Values(a.Members))...) {
		if err := inv.Validate(); err != nil {
			t.Errorf("account %s: %v", inv.AccountID, err)
		}
		if len(inv.Regions) != shape.Regions {
			t.Errorf("account %s has %d regions", inv.AccountID, len(inv.Regions))
		}
		for region, conns := range inv.Regions {
			if len(conns) != shape.Connections {
				t.Errorf("account %s, %s: %d connections", inv.AccountID, region, len(conns))
			}
			for i, c := range conns {
				if ids[c.VpnConnectionId] {
					t.Errorf("connection id %s twice in the organisation", c.VpnConnectionId)
				}
				ids[c.VpnConnectionId] = true
				var other vpcemu.Connection
				if inv.AccountID == AccountID {
					other = b.Own.Regions[region][i]
				} else {
					other = b.Members[inv.AccountID].Regions[region][i]
				}
				if c.VpnConnectionId != other.VpnConnectionId || !slices.Equal(c.Authorizations, other.Authorizations) {
					t.Fatalf("%s differs between two generations", c.VpnConnectionId)
				}
				total++
			}
		}
	}
	if total != shape.Total() {
		t.Errorf("%d connections, want %d", total, shape.Total())
	}
	for _, r := range a.Roles {
		if a.Members[r.Account] == nil || r.Name != OrgRoleName || !slices.Equal(r.Trusted, []string{AccountID}) || r.ExternalID != OrgExternalID {
			t.Errorf("role %+v", r)
		}
	}
	if got := a.Targets(); len(got) != 6 || got[0] != "cn-hangzhou:*" {
		t.Errorf("targets %v", got)
	}

	// The file is what the emulated cloud serves: members with their
	// inventories and the role.
	file := filepath.Join(t.TempDir(), "org.json")
	if err := WriteOrg(file, a); err != nil {
		t.Fatal(err)
	}
	own, org, err := emulator.LoadOrganization(file)
	if err != nil {
		t.Fatal(err)
	}
	if own.AccountID != AccountID || len(org.Members) != 4 || org.RoleName != OrgRoleName || org.ExternalID != OrgExternalID {
		t.Fatalf("the organisation file reads back as own %s, %d members, role %q %q", own.AccountID, len(org.Members), org.RoleName, org.ExternalID)
	}
	for i, m := range org.Members {
		if m.AccountID != MemberID(i+1) || !reflect.DeepEqual(m.Inventory, a.Members[m.AccountID]) {
			t.Errorf("member %d reads back as %s, another inventory", i, m.AccountID)
		}
	}
}

func TestComputeOrgBound(t *testing.T) {
	conns := func(n int) []vpcemu.Connection {
		out := make([]vpcemu.Connection, n)
		for i := range out {
			out[i].VpnConnectionId = fmt.Sprintf("vco-x%04d", i)
		}
		return out
	}
	inv := func(uid string, calls ...int) *vpcemu.Inventory {
		in := &vpcemu.Inventory{AccountID: uid, Regions: map[string][]vpcemu.Connection{}}
		for i, c := range calls {
			// c-1 connections: one listing page and one call each.
			in.Regions[orgRegions[i]] = conns(c - 1)
		}
		return in
	}
	org := &Org{
		Own: inv(AccountID, 11, 21), // 21 calls at 10/s: 2.1 s
		Members: map[string]*vpcemu.Inventory{
			MemberID(1): inv(MemberID(1), 5),     // 0.5 s
			MemberID(2): inv(MemberID(2), 19, 3), // first in: 1.9 s
			MemberID(3): inv(MemberID(3), 18),    // second, 0.5 s later: 2.3 s
			MemberID(4): inv(MemberID(4), 2, 17), // third, 1 s later: 2.7 s
			MemberID(5): inv(MemberID(5), 6, 1),  // last: 1.5 s + 0.6 s
		},
	}
	b := ComputeOrgBound(org, 10, 2)
	if b.Calls != 11+21+5+19+3+18+2+17+6+1 {
		t.Errorf("calls %d", b.Calls)
	}
	if b.Time != 2700*time.Millisecond || b.SlowestAccount != MemberID(4) || b.SlowestRegion != orgRegions[1] || b.Wait != time.Second {
		t.Errorf("bound %+v, want member 4's %s at 2.7 s after 1 s of AssumeRole pacing", b, orgRegions[1])
	}
}
