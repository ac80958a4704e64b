package e2e

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/lifecycle"
)

// manyConnections is an inventory of n connections in lcRegion, each with
// one grant to the rogue account (untrusted-account FAIL, unexpected-product
// PASS), with ids named by prefix.
func manyConnections(prefix string, n int, now time.Time) *vpcemu.Inventory {
	inv := &vpcemu.Inventory{AccountID: emulator.DemoAccountID, Regions: map[string][]vpcemu.Connection{}}
	for i := range n {
		inv.Regions[lcRegion] = append(inv.Regions[lcRegion], vpcemu.Connection{
			VpnConnectionId: fmt.Sprintf("vco-%s%08d", prefix, i),
			Authorizations:  []vpcemu.Authorization{rogueAuth(now)},
		})
	}
	return inv
}

// TestCoverageDeadlineNamesEveryConnection cuts a REGION:* scan by the
// invocation's deadline: the listing is read whole, the first reads are
// answered and every later read is held until the deadline has passed. The
// summary names every connection in scope, each connection not read has its
// own ERROR "Not scanned before the deadline.", there is no `*` ERROR, and
// the cut scan resolves nothing that the previous, complete scan opened.
func TestCoverageDeadlineNamesEveryConnection(t *testing.T) {
	const (
		conns   = 120
		read    = 20 // authorization reads answered before the rest are held
		timeout = 4 * time.Second
	)
	now := time.Now()
	inv := manyConnections("e2ecover", conns, now)
	s := startStateCloud(t, inv)
	env := s.env("")
	env["VPC_API_RATE"] = "1000"
	f := startFunction(t, s.cloud, env)

	// A complete scan first: every connection's FAIL is opened.
	full := stepOf(t, s.cloud, "complete scan", lcInvoke(t, f, fcemu.Invocation{}))
	if !full.report.Complete || full.state.ConnectionsInScope != conns || len(full.changes) != conns {
		t.Fatalf("complete scan: complete %v, %d in scope, %d changes; want complete, %d and %d",
			full.report.Complete, full.state.ConnectionsInScope, len(full.changes), conns, conns)
	}

	// Reads after the first `read` are held until the test ends: the
	// scanner must give up on them at its deadline.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the cloud closes: cleanups run last first
	var reads atomic.Int32
	s.VPC.SetArrivalHook(func(k vpcemu.CallKey) {
		if k.Action == "DescribeVpnCrossAccountAuthorizations" && reads.Add(1) > read {
			<-release
		}
	})
	res := lcInvoke(t, f, fcemu.Invocation{Timeout: timeout})
	if res.Duration >= timeout {
		t.Errorf("answered after %v, not before the %v deadline", res.Duration, timeout)
	}
	cut := stepOf(t, s.cloud, "cut scan", res)
	if cut.report.Complete || !cut.report.Delivery.Delivered {
		t.Errorf("cut scan: complete %v, delivery %+v; want incomplete and delivered", cut.report.Complete, cut.report.Delivery)
	}
	if cut.state.ConnectionsInScope != conns {
		t.Errorf("cut scan: connections_in_scope %d, want the inventory's %d", cut.state.ConnectionsInScope, conns)
	}
	if sum := s.storedSummary(cut.report.ScanID); len(sum) != 1 || sum[0].Contents["connections_in_scope"] != strconv.Itoa(conns) {
		t.Errorf("cut scan: summary log %v, want connections_in_scope %d", sum, conns)
	}

	byConn := map[string][]map[string]string{}
	for _, fd := range cut.findings {
		byConn[fd["vpn_connection_id"]] = append(byConn[fd["vpn_connection_id"]], fd)
	}
	judged, notScanned := 0, 0
	for _, id := range inventoryIDs(inv) {
		fs := byConn[id]
		delete(byConn, id)
		switch {
		case len(fs) == 1 && fs[0]["status"] == errored && fs[0]["rule_id"] == ruleRead &&
			fs[0]["status_detail"] == "Not scanned before the deadline.":
			notScanned++
		case len(fs) == 2 && verdictsOf(t, fs)[verdictKey{id, ruleAccount}] == fail && verdictsOf(t, fs)[verdictKey{id, ruleProduct}] == pass:
			judged++
			for _, fd := range fs {
				if fd["rule_id"] == ruleAccount && fd["lifecycle"] != lifecycle.LifecycleOpen {
					t.Errorf("%s: lifecycle %q, want open", id, fd["lifecycle"])
				}
			}
		default:
			t.Errorf("%s: findings %v %q, want its 2 judgements or one ERROR \"Not scanned before the deadline.\"", id, statuses(fs), details(fs))
		}
	}
	for id, fs := range byConn {
		t.Errorf("findings for %s, which is not in the inventory: %v %q", id, statuses(fs), details(fs))
	}
	if judged != read || notScanned != conns-read {
		t.Errorf("%d judged, %d not scanned before the deadline; want %d and %d", judged, notScanned, read, conns-read)
	}
	if cut.report.Summary.Connections != judged {
		t.Errorf("summary connections %d, want the %d read", cut.report.Summary.Connections, judged)
	}
	// Nothing the deadline kept from being read is resolved.
	cut.check(t, s.cloud)
	t.Logf("deadline %v: answered after %v; %d in scope, %d judged, %d ERROR not scanned before the deadline, %d findings delivered, 0 transitions",
		timeout, res.Duration.Round(time.Millisecond), cut.state.ConnectionsInScope, judged, notScanned, cut.report.Summary.FindingsDelivered)
}

func details(fs []map[string]string) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f["status_detail"])
	}
	return out
}

// TestStateStoreDown: with Tablestore unreachable, the scan delivers every
// finding it would have delivered, with empty lifecycle fields, and the
// summary log carries a state_warning; nothing is lost and no transition is
// written. When the store is back, the state is where it was.
func TestStateStoreDown(t *testing.T) {
	now := time.Now()
	s := startStateCloud(t, lcInventory(now))
	f := startFunction(t, s.cloud, s.env(""))

	ref := stepOf(t, s.cloud, "before", lcInvoke(t, f, fcemu.Invocation{}))
	ref.check(t, s.cloud, lcSteady+" opened >new", lcRevoke+" opened >new", lcDelete+" opened >new",
		lcDelFail+" opened >new", lcExcept+" opened >new")
	want := uidStatus(ref.findings)
	stateBefore := s.records(t)

	s.ots.SetDown(true)
	down := stepOf(t, s.cloud, "store down", lcInvoke(t, f, fcemu.Invocation{}))
	if !down.report.Complete || !down.report.Delivery.Delivered {
		t.Errorf("store down: complete %v delivery %+v, want a complete, delivered scan", down.report.Complete, down.report.Delivery)
	}
	if got := uidStatus(down.findings); !maps.Equal(got, want) || len(down.findings) != len(ref.findings) {
		t.Errorf("store down: %d findings stored %v, want the %d of a scan with the store up %v", len(down.findings), got, len(ref.findings), want)
	}
	for _, fd := range down.findings {
		if fd["lifecycle"] != "" || fd["first_seen_at"] != "" {
			t.Errorf("store down: %s %s lifecycle %q first_seen_at %q, want both empty", fd["vpn_connection_id"], fd["rule_id"], fd["lifecycle"], fd["first_seen_at"])
		}
	}
	if len(down.changes) != 0 || down.state.Changes != 0 {
		t.Errorf("store down: %d change logs, summary changes %d", len(down.changes), down.state.Changes)
	}
	logs := s.storedSummary(down.report.ScanID)
	if len(logs) != 1 {
		t.Fatalf("store down: %d summary logs", len(logs))
	}
	w := logs[0].Contents["state_warning"]
	if w == "" || w != down.state.StateWarning {
		t.Errorf("store down: summary log state_warning %q, report %q; want the same warning in both", w, down.state.StateWarning)
	}
	for _, secret := range []string{s.Credentials.AccessKeySecret, s.Credentials.SecurityToken} {
		if strings.Contains(w, secret) {
			t.Errorf("store down: the state warning holds a secret")
		}
	}
	t.Logf("store down: state_warning %q", w)

	s.ots.SetDown(false)
	if after := s.records(t); !maps.Equal(after, stateBefore) {
		t.Errorf("the state changed while the store was down")
	}
	back := stepOf(t, s.cloud, "store back", lcInvoke(t, f, fcemu.Invocation{}))
	back.check(t, s.cloud)
	if fd, ok := back.finding(failUID(lcSteady, rogueAuth(now))); !ok || fd["lifecycle"] != lifecycle.LifecycleOpen {
		t.Errorf("store back: %v, want lifecycle open", fd)
	}
}

// TestStateCallsPerScan counts the state calls of scans of a region of
// 1,000 connections, each with one untrusted grant: one range read per
// (account, region) and the rows written in BatchWriteRow requests of at
// most 200. The figures are logged for the lead.
func TestStateCallsPerScan(t *testing.T) {
	const conns = 1000
	now := time.Now()
	inv := manyConnections("e2ecalls", conns, now)
	s := startStateCloud(t, inv)
	env := s.env("")
	env["VPC_API_RATE"] = "1000"
	env["SCAN_CONCURRENCY"] = "32"
	f := startFunction(t, s.cloud, env)

	var figures []string
	scan := func(name string, wantChanges, wantRows int) {
		t.Helper()
		before := s.ots.Stats()
		start := time.Now()
		st := stepOf(t, s.cloud, name, lcInvoke(t, f, fcemu.Invocation{}))
		wall := time.Since(start)
		after := s.ots.Stats()
		ranges := after.Calls["GetRange"] - before.Calls["GetRange"]
		batches := after.Calls["BatchWriteRow"] - before.Calls["BatchWriteRow"]
		rows := after.RowsWritten - before.RowsWritten
		others := after.Requests - before.Requests - ranges - batches
		if !st.report.Complete || len(st.changes) != wantChanges || st.state.Changes != wantChanges || st.state.StateWarning != "" {
			t.Errorf("%s: complete %v, %d change logs (summary %d), warning %q; want %d", name, st.report.Complete,
				len(st.changes), st.state.Changes, st.state.StateWarning, wantChanges)
		}
		if wantBatches := (wantRows + 199) / 200; ranges != 1 || batches != wantBatches || rows != wantRows || others != 0 {
			t.Errorf("%s: %d GetRange, %d BatchWriteRow, %d rows written, %d other requests; want 1, %d, %d, 0",
				name, ranges, batches, rows, others, wantBatches, wantRows)
		}
		figures = append(figures, fmt.Sprintf("%s: %d GetRange, %d BatchWriteRow (%d rows), %d change logs, %d findings, %d VPC calls, wall %v",
			name, ranges, batches, rows, len(st.changes), len(st.findings), st.report.Summary.APICalls, wall.Round(time.Millisecond)))
	}
	scan("first scan (1,000 opened)", conns, conns)
	// Open findings are rewritten by every scan that sees them: their
	// last_seen_at and last_scan_id move.
	scan("unchanged", 0, conns)
	for i := range 10 {
		a := rogueAuth(now)
		if err := s.VPC.Revoke(lcRegion, fmt.Sprintf("vco-e2ecalls%08d", i), a.BindUid, a.BindInstance); err != nil {
			t.Fatal(err)
		}
	}
	scan("10 revoked", 10, conns)
	scan("settled (10 resolved rows not rewritten)", 0, conns-10)

	// The same scan without a state store, for the wall time the lifecycle
	// adds (a figure, not a bound: the machine is shared).
	stateless := s.env("")
	delete(stateless, "STATE_STORE")
	delete(stateless, "TABLESTORE_ENDPOINT")
	stateless["VPC_API_RATE"], stateless["SCAN_CONCURRENCY"] = "1000", "32"
	g := startFunction(t, s.cloud, stateless)
	before := s.ots.Stats().Requests
	start := time.Now()
	st := stepOf(t, s.cloud, "stateless", lcInvoke(t, g, fcemu.Invocation{}))
	wall := time.Since(start)
	if n := s.ots.Stats().Requests - before; n != 0 || len(st.changes) != 0 {
		t.Errorf("stateless: %d Tablestore requests, %d change logs", n, len(st.changes))
	}
	figures = append(figures, fmt.Sprintf("stateless (no STATE_STORE): 0 state calls, %d findings, wall %v", len(st.findings), wall.Round(time.Millisecond)))
	t.Logf("state calls per scan of a region of %d connections:\n%s", conns, strings.Join(figures, "\n"))
}
