package bench

import (
	"context"
	"fmt"
	"maps"
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
