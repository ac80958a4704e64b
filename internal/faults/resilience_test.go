package faults

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
)

const actionAuthorizations = "DescribeVpnCrossAccountAuthorizations"

// regionTags shorten regions in generated connection ids.
var regionTags = map[string]string{"cn-hangzhou": "hz", "cn-shanghai": "sh", "ap-southeast-1": "sg"}

// bigInventory is 100 connections in each of three regions, with 0 to 3
// authorizations each, and three connections the API refuses to read.
func bigInventory(t *testing.T, now time.Time, forbidden map[string]bool) (inv *vpcemu.Inventory, authorizations int) {
	t.Helper()
	inv = &vpcemu.Inventory{AccountID: ownerAccount, Regions: map[string][]vpcemu.Connection{}}
	for r, region := range []string{"cn-hangzhou", "cn-shanghai", "ap-southeast-1"} {
		tag := regionTags[region]
		for i := range 100 {
			id := connectionID(tag, i)
			c := vpcemu.Connection{VpnConnectionId: id, Authorizations: grants(t, r*100+i, i%4, now)}
			if forbidden[id] {
				c.Error = &vpcemu.Fault{Code: "Forbidden.RAM", HTTPStatus: 403,
					Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM."}
			} else {
				authorizations += len(c.Authorizations)
			}
			inv.Regions[region] = append(inv.Regions[region], c)
		}
	}
	return inv, authorizations
}

// TestScanUnderFaults scans 300 connections while the VPC API throttles 30 %
// of the calls, answers bursts of 503, resets connections and answers some
// calls after the scanner's per-call timeout, and three connections are
// forbidden. The scan must end with the same verdicts as a scan without
// faults, and Log Service must hold exactly what the report says.
func TestScanUnderFaults(t *testing.T) {
	now := time.Now()
	forbidden := map[string]bool{connectionID("hz", 17): true, connectionID("sh", 42): true, connectionID("sg", 99): true}
	inv, wantAuthorizations := bigInventory(t, now, forbidden)
	cloud := startCloud(t, inv)
	creds := cloudCreds(cloud)
	targets := []string{"cn-hangzhou:*", "cn-shanghai:*", "ap-southeast-1:*"}

	// The verdicts of the same inventory without faults.
	baseline := runScan(t, newScanner(t, cloud, nil), cloud, scanRequest(t, creds, targets...))
	if baseline.Summary.Connections != 300 || baseline.Summary.Error != len(forbidden) || baseline.Summary.APIRetries != 0 {
		t.Fatalf("fault-free scan: %+v", baseline.Summary)
	}
	want := verdictsOf(baseline.Findings)

	// The faults.
	const callTimeout = 300 * time.Millisecond
	var calls, slow atomic.Int64
	burstsAt := map[int64]bool{30: true, 150: true, 270: true}
	cloud.VPC.ResetStats()
	cloud.VPC.SetRandomFaults(vpcemu.RandomFaults{Throttle: 0.3, Reset: 0.05, Seed: 20260501})
	cloud.VPC.SetLatencyFunc(func(action, region string) time.Duration {
		if action != actionAuthorizations {
			return 0
		}
		n := calls.Add(1)
		if burstsAt[n] {
			cloud.VPC.FailNext(actionAuthorizations, "", 5, vpcemu.ServiceUnavailable)
		}
		if n%40 == 7 {
			slow.Add(1)
			return 3 * callTimeout
		}
		return 0
	})

	s := newScanner(t, cloud, func(o *scan.Options) { o.CallTimeout = callTimeout })
	rep := runScanUntimedDelivery(t, s, cloud, scanRequest(t, creds, targets...))
	cloud.VPC.SetLatencyFunc(nil)
	cloud.VPC.SetRandomFaults(vpcemu.RandomFaults{})
	emu := cloud.VPC.Stats().Total()
	t.Logf("faults: %d calls seen by the API, %d throttled, %d ServiceUnavailable, %d resets, %d answered after the %s call timeout",
		emu.Calls, emu.Throttled, emu.ByCode["ServiceUnavailable"], emu.Resets, slow.Load(), callTimeout)
	t.Logf("report: %+v complete=%v duration=%dms", rep.Summary, rep.Complete, rep.DurationMs)

	// Every connection has its findings, or exactly one ERROR naming why.
	conns := byConnection(rep.Findings)
	if len(conns) != 300 {
		t.Errorf("findings name %d connections, want 300", len(conns))
	}
	for id, fs := range conns {
		var errs []finding.Finding
		for _, f := range fs {
			if f.Status == finding.StatusError {
				errs = append(errs, f)
			}
		}
		switch {
		case forbidden[id]:
			if len(fs) != 1 || len(errs) != 1 || !strings.Contains(errs[0].StatusDetail, "Forbidden.RAM") {
				t.Errorf("forbidden connection %s: want one ERROR naming Forbidden.RAM, got %+v", id, fs)
			}
		case len(errs) > 0:
			t.Errorf("connection %s: %d findings, ERROR %q", id, len(fs), errs[0].StatusDetail)
		}
	}
	if d := want.diff(verdictsOf(rep.Findings)); d != "" {
		t.Errorf("verdicts under faults differ from the fault-free scan:%s", d)
	}
	if rep.Summary.Connections != 300 || rep.Summary.Authorizations != wantAuthorizations {
		t.Errorf("report counts %d connections and %d authorizations, want 300 and %d",
			rep.Summary.Connections, rep.Summary.Authorizations, wantAuthorizations)
	}
	if !rep.Complete || !rep.Delivery.Delivered {
		t.Errorf("complete=%v delivery=%+v", rep.Complete, rep.Delivery)
	}

	// The faults were met and retried.
	if rep.Summary.APIRetries == 0 || rep.Summary.Throttled == 0 {
		t.Errorf("api_retries=%d throttled=%d, want both > 0", rep.Summary.APIRetries, rep.Summary.Throttled)
	}
	if emu.ByCode["ServiceUnavailable"] != 15 || emu.Resets == 0 || emu.Throttled == 0 || slow.Load() == 0 {
		t.Errorf("not every fault was injected: %+v, %d slow calls", emu, slow.Load())
	}
	// ServiceUnavailable is throttling too (PRODUCT.md, "Errors from the
	// cloud"); an answer that came after the call timeout is not counted.
	if throttling := emu.Throttled + emu.ByCode["ServiceUnavailable"]; rep.Summary.Throttled > throttling || rep.Summary.APICalls < emu.Calls {
		t.Errorf("report says %d calls, %d throttled; the API saw %d calls, %d throttled or unavailable",
			rep.Summary.APICalls, rep.Summary.Throttled, emu.Calls, throttling)
	}

	// Log Service holds what the report says.
	stored := storedFindings(cloud, rep.ScanID)
	got := countStatuses(stored)
	sum := rep.Summary
	if got.Pass != sum.Pass || got.Fail != sum.Fail || got.Error != sum.Error || got.Suppressed != sum.Suppressed {
		t.Errorf("stored by status %+v, report %+v", got, sum)
	}
	if len(stored) != sum.FindingsDelivered || len(stored) != sum.Findings() || len(stored) != len(rep.Findings) {
		t.Errorf("stored %d findings; report: delivered %d, counted %d, listed %d",
			len(stored), sum.FindingsDelivered, sum.Findings(), len(rep.Findings))
	}
	storedVerdicts := verdicts{}
	for _, l := range stored {
		storedVerdicts[l["finding_uid"]] = l["status"]
	}
	if d := verdictsOf(rep.Findings).diff(storedVerdicts); d != "" {
		t.Errorf("stored findings differ from the report's:%s", d)
	}
	summary := storedSummary(t, cloud, rep.ScanID)
	for key, n := range map[string]int{
		"connections": sum.Connections, "authorizations": sum.Authorizations, "pass": sum.Pass,
		"fail": sum.Fail, "error": sum.Error, "suppressed": sum.Suppressed, "api_calls": sum.APICalls,
		"api_retries": sum.APIRetries, "throttled": sum.Throttled, "findings_delivered": sum.FindingsDelivered,
	} {
		if summary[key] != strconv.Itoa(n) {
			t.Errorf("stored summary %s=%q, report %d", key, summary[key], n)
		}
	}
	if summary["complete"] != "true" {
		t.Errorf("stored summary complete=%q", summary["complete"])
	}
}

// runScanUntimedDelivery is runScan with a sink whose requests only the
// scan's context bounds. This test injects no Log Service fault; a delivery
// attempt cut short by its own timeout on a loaded machine would still be
// stored by the emulator and stored again by the retry, and the exact
// counts below would then differ for a reason that is not the scan's.
func runScanUntimedDelivery(t *testing.T, s *scan.Scanner, c *emulator.Cloud, req scan.Request) scan.Report {
	t.Helper()
	const whole = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), whole)
	defer cancel()
	sink, err := slssink.New(slssink.Options{
		Endpoint:       endpoint.MustParse(c.SLS.Endpoint()),
		Project:        c.Project,
		Logstore:       c.Logstore,
		Credentials:    req.Credentials,
		Stdout:         io.Discard,
		RetryBase:      5 * time.Millisecond,
		RetryCap:       50 * time.Millisecond,
		RetryBudget:    whole,
		AttemptTimeout: whole,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(ctx, req, sink)
	if err != nil {
		t.Fatalf("scan refused: %v", err)
	}
	return rep
}
