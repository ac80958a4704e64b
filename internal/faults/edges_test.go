package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
)

// smallInventory is four connections in cn-hangzhou and one in cn-shanghai.
func smallInventory(t *testing.T, now time.Time) *vpcemu.Inventory {
	t.Helper()
	inv := &vpcemu.Inventory{AccountID: ownerAccount, Regions: map[string][]vpcemu.Connection{}}
	for i := range 4 {
		inv.Regions["cn-hangzhou"] = append(inv.Regions["cn-hangzhou"],
			vpcemu.Connection{VpnConnectionId: connectionID("hz", i), Authorizations: grants(t, i, i%3+1, now)})
	}
	inv.Regions["cn-shanghai"] = []vpcemu.Connection{{VpnConnectionId: connectionID("sh", 0), Authorizations: grants(t, 9, 2, now)}}
	return inv
}

// TestExpiredToken: with an expired STS token every connection is an ERROR
// naming the expiry, never a PASS, and nothing is retried.
func TestExpiredToken(t *testing.T) {
	cloud := startCloud(t, smallInventory(t, time.Now()))
	expired := cred.Credential{AccessKeyID: "STS.ExpiredKey0001", AccessKeySecret: "expired-secret-0001",
		SecurityToken: "CAISexpiredtoken0001", Expires: time.Now().Add(-time.Minute)}
	cloud.AddCredential(expired)
	creds := scan.Credentials{AccessKeyID: expired.AccessKeyID, AccessKeySecret: expired.AccessKeySecret, SecurityToken: expired.SecurityToken}

	rep := runScan(t, newScanner(t, cloud, nil), cloud,
		scanRequest(t, creds, "cn-hangzhou:*", "cn-shanghai:"+connectionID("sh", 0), "cn-hangzhou:"+connectionID("hz", 1)))
	if len(rep.Findings) != 3 {
		t.Errorf("%d findings, want 3 (the listing of cn-hangzhou and two connections): %+v", len(rep.Findings), rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Status != finding.StatusError || !strings.Contains(f.StatusDetail, "InvalidSecurityToken.Expired") {
			t.Errorf("%s in %s: %s %q, want ERROR naming InvalidSecurityToken.Expired", f.VpnConnectionID, f.Region, f.Status, f.StatusDetail)
		}
	}
	if rep.Summary.Pass != 0 || rep.Summary.Fail != 0 || rep.Summary.APIRetries != 0 {
		t.Errorf("summary %+v: want no PASS, no FAIL, no retry", rep.Summary)
	}
	if n := cloud.VPC.Stats().Total().Calls; n != 3 {
		t.Errorf("the API saw %d calls, want 3: a refused token is not retried", n)
	}
	if rep.Delivery.Delivered {
		t.Errorf("delivery with an expired token reported as delivered: %+v", rep.Delivery)
	}
}

// TestWrongRegion: a region without connections gives none, and an explicit
// connection asked for in the wrong region does not exist there: nothing can
// attach it there, one PASS per rule saying so.
func TestWrongRegion(t *testing.T) {
	cases := []struct {
		name            string
		target          string
		wantConnections int
		wantGoneFor     string // connection with the PASS findings of one that does not exist; "" none
	}{
		{"wildcard in a region without connections", "eu-central-1:*", 0, ""},
		{"wildcard in a region the account never used", "me-east-1:*", 0, ""},
		{"explicit id in another region", "cn-shanghai:" + connectionID("hz", 2), 1, connectionID("hz", 2)},
		{"explicit id in a region without connections", "eu-central-1:" + connectionID("sh", 0), 1, connectionID("sh", 0)},
	}
	cloud := startCloud(t, smallInventory(t, time.Now()))
	s := newScanner(t, cloud, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := runScan(t, s, cloud, scanRequest(t, cloudCreds(cloud), tc.target))
			if rep.Summary.Connections != tc.wantConnections || !rep.Complete || !rep.Delivery.Delivered {
				t.Errorf("report %+v complete=%v delivery=%+v", rep.Summary, rep.Complete, rep.Delivery)
			}
			switch {
			case tc.wantGoneFor == "" && len(rep.Findings) != 0:
				t.Errorf("findings for an empty region: %+v", rep.Findings)
			case tc.wantGoneFor != "":
				if len(rep.Findings) != len(testPolicy.EnabledRules()) {
					t.Fatalf("%d findings, want one PASS per rule: %+v", len(rep.Findings), rep.Findings)
				}
				for _, f := range rep.Findings {
					if f.Status != finding.StatusPass || f.VpnConnectionID != tc.wantGoneFor ||
						!strings.Contains(f.StatusDetail, "no longer exists") {
						t.Errorf("finding %s %s %q, want PASS saying it no longer exists", f.VpnConnectionID, f.Status, f.StatusDetail)
					}
				}
			}
			if got := len(storedFindings(cloud, rep.ScanID)); got != len(rep.Findings) {
				t.Errorf("Log Service holds %d findings, the report %d", got, len(rep.Findings))
			}
		})
	}
}

// TestConnectionDeletedMidScan: a connection deleted while its call is on
// the way ends as PASS findings saying it no longer exists (it holds no
// authorization any more); the others keep the verdicts they have without
// the deletion.
func TestConnectionDeletedMidScan(t *testing.T) {
	cloud := startCloud(t, smallInventory(t, time.Now()))
	var targets []string
	for i := range 4 {
		targets = append(targets, "cn-hangzhou:"+connectionID("hz", i))
	}
	victim := connectionID("hz", 1)
	// One connection at a time: the second call is the victim's.
	s := newScanner(t, cloud, func(o *scan.Options) { o.Concurrency = 1 })
	before := runScan(t, s, cloud, scanRequest(t, cloudCreds(cloud), targets...))

	held, release := make(chan struct{}), make(chan struct{})
	n := 0
	cloud.VPC.SetLatencyFunc(func(action, region string) time.Duration {
		if action == actionAuthorizations {
			if n++; n == 2 {
				close(held)
				<-release
			}
		}
		return 0
	})
	t.Cleanup(func() { cloud.VPC.SetLatencyFunc(nil) })
	go func() {
		<-held
		if !cloud.VPC.DeleteConnection("cn-hangzhou", victim) {
			t.Errorf("%s was not there to delete", victim)
		}
		close(release)
	}()
	rep := runScan(t, s, cloud, scanRequest(t, cloudCreds(cloud), targets...))

	got := byConnection(rep.Findings)
	if fs := got[victim]; len(fs) != len(testPolicy.EnabledRules()) || fs[0].Status != finding.StatusPass || !strings.Contains(fs[0].StatusDetail, "no longer exists") {
		t.Errorf("deleted connection: %+v, want one PASS per rule saying it no longer exists", fs)
	}
	want := byConnection(before.Findings)
	for _, id := range targets {
		if id == victim {
			continue
		}
		if d := verdictsOf(want[id]).diff(verdictsOf(got[id])); d != "" {
			t.Errorf("%s changed with another connection's deletion:%s", id, d)
		}
	}
	if rep.Summary.Connections != 4 || !rep.Complete {
		t.Errorf("report %+v complete=%v", rep.Summary, rep.Complete)
	}
}

// TestRevokedBetweenPages: an authorization revoked while a connection with
// 120 of them is read page by page (50 a page). The read must end, judge no
// authorization twice, and judge every authorization that existed
// throughout; the revoked one may be judged (the state before) or not (the
// state after).
func TestRevokedBetweenPages(t *testing.T) {
	const total, region = 120, "cn-beijing"
	id := connectionID("bj", 0)
	cases := []struct {
		name   string
		revoke []int // indices into the 120 authorizations
	}{
		{"one already read on page 1", []int{10}},
		{"several already read on page 1", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"one on the page being read", []int{75}},
		{"one on a page not read yet", []int{110}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			auths := make([]vpcemu.Authorization, total)
			for i := range auths {
				auths[i] = vpcemu.Authorization{BindUid: uid(t, partnerAccount) + int64(i), BindProduct: "CEN",
					BindInstance: fmt.Sprintf("cen-grant%06d", i), CreationTime: now.Add(-24 * time.Hour).UnixMilli()}
			}
			cloud := startCloud(t, &vpcemu.Inventory{AccountID: ownerAccount,
				Regions: map[string][]vpcemu.Connection{region: {{VpnConnectionId: id, Authorizations: auths}}}})
			calls := 0
			cloud.VPC.SetLatencyFunc(func(action, _ string) time.Duration {
				if action != actionAuthorizations {
					return 0
				}
				if calls++; calls == 2 { // page 2 is on its way
					for _, i := range tc.revoke {
						if err := cloud.VPC.Revoke(region, id, auths[i].BindUid, ""); err != nil {
							t.Error(err)
						}
					}
				}
				return 0
			})
			rep := runScan(t, newScanner(t, cloud, nil), cloud, scanRequest(t, cloudCreds(cloud), region+":"+id))

			revoked := map[string]bool{}
			for _, i := range tc.revoke {
				revoked[fmt.Sprint(auths[i].BindUid)] = true
			}
			judged := map[string]int{} // bind uid → findings
			for _, f := range rep.Findings {
				if f.Status == finding.StatusError {
					t.Fatalf("ERROR: %s", f.StatusDetail)
				}
				judged[f.BindUID]++
			}
			rules := len(testPolicy.EnabledRules())
			var missing []string
			for _, a := range auths {
				u := fmt.Sprint(a.BindUid)
				switch n := judged[u]; {
				case n != 0 && n != rules:
					t.Errorf("authorization to %s judged %d times by %d rules", u, n/rules, rules)
				case n == 0 && !revoked[u]:
					missing = append(missing, u)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%d authorizations that were never revoked were not judged: %v", len(missing), missing)
			}
			if rep.Summary.Authorizations != len(judged) {
				t.Errorf("report counts %d authorizations, %d were judged", rep.Summary.Authorizations, len(judged))
			}
			t.Logf("%d calls, %d authorizations judged, %d revoked", calls, len(judged), len(tc.revoke))
			if calls > 6 {
				t.Errorf("%d calls to read %d authorizations", calls, total)
			}
		})
	}
}

// TestDeletedBetweenListingPages: connections deleted while a region's
// connections are listed page by page (50 a page). Every connection that
// existed throughout must still be scanned; a deleted one may end as PASS
// findings saying it no longer exists, or not be scanned at all.
func TestDeletedBetweenListingPages(t *testing.T) {
	const total, region = 120, "cn-beijing"
	cases := []struct {
		name   string
		delete []int
	}{
		{"one already listed on page 1", []int{10}},
		{"several already listed on page 1", []int{0, 1, 2, 3, 4, 5}},
		{"one on a page not listed yet", []int{110}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inv := &vpcemu.Inventory{AccountID: ownerAccount, Regions: map[string][]vpcemu.Connection{}}
			for i := range total {
				inv.Regions[region] = append(inv.Regions[region], vpcemu.Connection{VpnConnectionId: connectionID("bj", i)})
			}
			cloud := startCloud(t, inv)
			deleted := map[string]bool{}
			for _, i := range tc.delete {
				deleted[connectionID("bj", i)] = true
			}
			listings := 0
			cloud.VPC.SetLatencyFunc(func(action, _ string) time.Duration {
				if action == "DescribeVpnConnections" {
					if listings++; listings == 2 { // page 2 is on its way
						for id := range deleted {
							cloud.VPC.DeleteConnection(region, id)
						}
					}
				}
				return 0
			})
			rep := runScan(t, newScanner(t, cloud, nil), cloud, scanRequest(t, cloudCreds(cloud), region+":*"))
			got := byConnection(rep.Findings)
			var missing []string
			for i := range total {
				id := connectionID("bj", i)
				fs := got[id]
				switch {
				case deleted[id]:
					// Read before its deletion (its verdicts then), or PASS
					// saying it no longer exists, or not listed at all.
					if len(fs) > 0 && fs[0].Status == finding.StatusError {
						t.Errorf("deleted %s: ERROR %q", id, fs[0].StatusDetail)
					}
				case len(fs) == 0:
					missing = append(missing, id)
				case fs[0].Status == finding.StatusError:
					t.Errorf("%s: ERROR %q", id, fs[0].StatusDetail)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%d connections that were never deleted were not scanned (report complete=%v): %v",
					len(missing), rep.Complete, missing)
			}
			t.Logf("%d listing calls, %d connections scanned", listings, rep.Summary.Connections)
		})
	}
}
