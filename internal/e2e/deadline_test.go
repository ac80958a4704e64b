package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
)

// TestDeadline gives a timer scan of 60 connections less time than the VPC
// API's pace allows: the invocation answers before Function Compute's
// deadline with complete: false, every connection is accounted for (judged,
// or an ERROR saying it was not scanned before the deadline), and all of it
// is delivered.
func TestDeadline(t *testing.T) {
	const conns = 60
	const timeout = 3 * time.Second
	now := time.Now()
	inv := &vpcemu.Inventory{AccountID: emulator.DemoAccountID, Regions: map[string][]vpcemu.Connection{}}
	var trusted int64
	fmt.Sscan(emulator.DemoTrustedAccount, &trusted)
	for i := range conns {
		inv.Regions["cn-hangzhou"] = append(inv.Regions["cn-hangzhou"], vpcemu.Connection{
			VpnConnectionId: fmt.Sprintf("vco-e2edead%08d", i),
			Authorizations: []vpcemu.Authorization{{BindUid: trusted, BindProduct: "CEN", BindInstance: emulator.DemoTrustedCEN,
				CreationTime: now.Add(-10 * 24 * time.Hour).UnixMilli()}},
		})
	}
	c := startCloud(t, inv)
	env := c.functionEnv()
	env["SCAN_TARGETS"] = "cn-hangzhou:*"
	env["VPC_API_RATE"] = "10" // 60 reads take 6 s at this pace, twice the timeout
	f := startFunction(t, c, env)
	c.VPC.SetLatency(100 * time.Millisecond)
	c.VPC.SetQuota(10, 2)

	res := f.invoke(t, call{payload: readEvent(t, "timer.json"), timeout: timeout})
	if res.Duration >= timeout {
		t.Errorf("answered after %v, not before the %v deadline", res.Duration, timeout)
	}
	r := asReport(t, res)
	if r.Complete {
		t.Errorf("complete = true for a scan cut by the deadline")
	}
	if !r.Delivery.Delivered {
		t.Errorf("delivery %+v, want the partial scan delivered", r.Delivery)
	}
	stored := checkStoredMatchesReport(t, c, r)

	judged, notScanned := 0, 0
	byConn := map[string][]map[string]string{}
	for _, fd := range stored {
		byConn[fd["vpn_connection_id"]] = append(byConn[fd["vpn_connection_id"]], fd)
	}
	for _, id := range inventoryIDs(inv) {
		fs := byConn[id]
		delete(byConn, id)
		switch {
		case len(fs) == 1 && fs[0]["status"] == errored && fs[0]["rule_id"] == ruleRead &&
			strings.Contains(strings.ToLower(fs[0]["status_detail"]), "not scanned before the deadline"):
			notScanned++
		case len(fs) == 4 && allStatus(fs, pass):
			judged++
		default:
			t.Errorf("%s: %d findings %v, want 4 PASS or one ERROR not scanned before the deadline", id, len(fs), statuses(fs))
		}
	}
	for id := range byConn {
		t.Errorf("findings for %s, which is not in the inventory", id)
	}
	if judged == 0 || notScanned == 0 {
		t.Errorf("%d judged, %d not scanned: the deadline was not exercised", judged, notScanned)
	}
	if r.Summary.Connections != conns && r.Summary.Connections != judged {
		t.Errorf("summary.connections = %d (judged %d of %d)", r.Summary.Connections, judged, conns)
	}
	t.Logf("deadline %v: answered after %v; %d connections judged, %d not scanned; %d findings delivered",
		timeout, res.Duration.Round(time.Millisecond), judged, notScanned, r.Summary.FindingsDelivered)
}

func allStatus(fs []map[string]string, status string) bool {
	for _, f := range fs {
		if f["status"] != status {
			return false
		}
	}
	return true
}

func statuses(fs []map[string]string) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f["rule_id"]+"="+f["status"])
	}
	return out
}
