package emulator

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/config"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/statestore"
	"vpnauthz/internal/vpcapi"
)

// TestDemoChangesMakeTheLifecycleTransitions runs the demo account's two
// scans around ChangeDemo through the real scanner, the lifecycle engine
// and the state store on the emulated Tablestore, and checks that the demo
// shows what it is meant to: each kind of transition of a week's changes.
func TestDemoChangesMakeTheLifecycleTransitions(t *testing.T) {
	now := time.Now()
	c := startCloud(t, Options{Organization: DemoOrganization(now)})
	dir := t.TempDir()
	path, err := WriteDemoPolicy(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	env := c.Env()
	for k, v := range DemoEnv(path) {
		env[k] = v
	}
	loc, err := statestore.ParseStateStore(env["STATE_STORE"])
	if err != nil {
		t.Fatal(err)
	}
	store, err := statestore.New(statestore.Options{Location: loc, Endpoint: env["TABLESTORE_ENDPOINT"],
		Credentials: statestore.Credentials{AccessKeyID: c.Credentials.AccessKeyID,
			AccessKeySecret: c.Credentials.AccessKeySecret, SecurityToken: c.Credentials.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)

	scanOnce := func(scanID string) []string {
		t.Helper()
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		s := scan.New(scan.Options{Policy: cfg.Policy,
			NewSource: vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(env["VPC_ENDPOINT"])})})
		rep, err := s.Run(ctx, scan.Request{ScanID: scanID, Trigger: finding.TriggerCLI, Targets: cfg.Targets,
			Credentials: cloudCreds(c), AccountID: DemoAccountID, CollectFindings: true, DryRun: true}, nil)
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		// Per region, the findings of each connection read without error.
		byRegion := map[string]map[string][]finding.Finding{}
		failed := map[string]bool{}
		for _, f := range rep.Findings {
			if byRegion[f.Region] == nil {
				byRegion[f.Region] = map[string][]finding.Finding{}
			}
			byRegion[f.Region][f.VpnConnectionID] = append(byRegion[f.Region][f.VpnConnectionID], f)
			if f.Status == finding.StatusError {
				failed[f.VpnConnectionID] = true
			}
		}
		var changes []string
		for region, conns := range byRegion {
			tr, err := lifecycle.Open(ctx, store, DemoAccountID, region, scanID, finding.TriggerCLI, time.Now())
			if err != nil {
				t.Fatalf("open %s: %v", region, err)
			}
			listing := lifecycle.Listing{}
			if region != "ap-southeast-1" { // listed whole: REGION:*
				listing.Complete = true
			}
			for id, fs := range conns {
				listing.ConnectionIDs = append(listing.ConnectionIDs, id)
				if !failed[id] {
					tr.Connection(id, fs)
				}
			}
			cs, err := tr.Finish(ctx, listing)
			if err != nil {
				t.Fatalf("finish %s: %v", region, err)
			}
			for _, ch := range cs {
				k := ch.Change
				if ch.ResolvedReason != "" {
					k += "/" + ch.ResolvedReason
				}
				changes = append(changes, k+" "+ch.VpnConnectionID+" "+ch.RuleID)
			}
		}
		slices.Sort(changes)
		return changes
	}

	first := scanOnce("first")
	wantFirst := []string{
		"opened " + DemoRogue + " untrusted-account",
		"opened " + DemoRogue + " untrusted-cen",
		"opened " + DemoStale + " stale-authorization",
		"suppressed " + DemoPartner + " untrusted-account",
		"suppressed " + DemoPartner + " untrusted-cen",
	}
	slices.Sort(wantFirst)
	if !slices.Equal(first, wantFirst) {
		t.Errorf("first scan:\n%s\nwant\n%s", strings.Join(first, "\n"), strings.Join(wantFirst, "\n"))
	}

	if _, err := ChangeDemo(c, dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	second := scanOnce("second")
	wantSecond := []string{
		"opened " + DemoNoAuth + " untrusted-account",
		"opened " + DemoNoAuth + " untrusted-cen",
		"resolved/authorization_removed " + DemoRogue + " untrusted-account",
		"resolved/authorization_removed " + DemoRogue + " untrusted-cen",
		"unsuppressed " + DemoPartner + " untrusted-account",
		"unsuppressed " + DemoPartner + " untrusted-cen",
	}
	slices.Sort(wantSecond)
	if !slices.Equal(second, wantSecond) {
		t.Errorf("second scan:\n%s\nwant\n%s", strings.Join(second, "\n"), strings.Join(wantSecond, "\n"))
	}
}
