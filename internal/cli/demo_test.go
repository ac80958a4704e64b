package cli

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
)

// changeRow is one line of a changes table.
type changeRow struct {
	change, transition, rule, account, region, connection, bindUID string
}

func (c changeRow) String() string {
	return strings.Join([]string{c.change, c.transition, c.rule, c.account, c.region, c.connection, c.bindUID}, " ")
}

// changeTables parses every changes table of out, in order; a scan that
// printed "changes: none" gets an empty table.
func changeTables(t *testing.T, out string) [][]changeRow {
	t.Helper()
	var tables [][]changeRow
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "changes: none":
			tables = append(tables, []changeRow{})
			continue
		case strings.HasPrefix(line, "CHANGE "):
			tables = append(tables, []changeRow{})
			in = true
			continue
		case !in:
			continue
		case strings.TrimSpace(line) == "":
			in = false
			continue
		}
		f := strings.Fields(line)
		if len(f) != 7 {
			t.Fatalf("changes line %q has %d columns, want 7", line, len(f))
		}
		tables[len(tables)-1] = append(tables[len(tables)-1], changeRow{f[0], f[1], f[2], f[3], f[4], f[5], f[6]})
	}
	return tables
}

// recordingSink is a scan.Sink that keeps what it is given and refuses
// transitions, as a Log Service sink that cannot deliver them would.
type recordingSink struct {
	findings []finding.Finding
	changes  []lifecycle.Change
}

func (s *recordingSink) Write(_ context.Context, f *finding.Finding) error {
	s.findings = append(s.findings, *f)
	return nil
}

func (s *recordingSink) WriteChange(_ context.Context, c *lifecycle.Change) error {
	s.changes = append(s.changes, *c)
	return errors.New("change logs are not delivered")
}

func (s *recordingSink) Close(context.Context, *finding.ScanSummary) scan.Delivery {
	return scan.Delivery{}
}

func TestObservedSinkSeesWhatTheSinkReceives(t *testing.T) {
	inner := &recordingSink{}
	w := &scanWatch{}
	sink := w.wrap(inner)
	ctx := context.Background()
	opened := lifecycle.Change{Change: "opened", Lifecycle: "new", RuleID: finding.RuleUntrustedAccount,
		OwnerAccountID: emulator.DemoAccountID, Region: "cn-hangzhou", VpnConnectionID: emulator.DemoNoAuth, BindUID: emulator.DemoRogueAccount}
	resolved := lifecycle.Change{Change: "resolved", PreviousLifecycle: "open", Lifecycle: "resolved", ResolvedReason: "authorization_removed",
		RuleID: finding.RuleUntrustedCEN, OwnerAccountID: emulator.DemoAccountID, Region: "cn-shanghai", VpnConnectionID: emulator.DemoRogue,
		BindUID: emulator.DemoRogueAccount}
	f := finding.Finding{RuleID: finding.RuleUntrustedAccount, Status: finding.StatusFail}
	if err := sink.Write(ctx, &f); err != nil {
		t.Fatal(err)
	}
	// The sink's refusal is the scan's to handle; the transition was made
	// and is shown all the same.
	for _, c := range []lifecycle.Change{resolved, opened} {
		if err := sink.WriteChange(ctx, &c); err == nil {
			t.Fatal("the sink's error was lost")
		}
	}
	if len(inner.findings) != 1 || len(inner.changes) != 2 {
		t.Fatalf("the sink got %d findings and %d changes, want 1 and 2", len(inner.findings), len(inner.changes))
	}
	got := w.takeChanges()
	if len(got) != 2 || got[0] != resolved || got[1] != opened {
		t.Fatalf("watched changes = %+v", got)
	}
	if again := w.takeChanges(); len(again) != 0 {
		t.Errorf("changes seen twice: %+v", again)
	}

	var b strings.Builder
	printChanges(&b, got)
	rows := changeTables(t, b.String())
	want := []changeRow{
		{"opened", "-→new", finding.RuleUntrustedAccount, emulator.DemoAccountID, "cn-hangzhou", emulator.DemoNoAuth, emulator.DemoRogueAccount},
		{"resolved/authorization_removed", "open→resolved", finding.RuleUntrustedCEN, emulator.DemoAccountID, "cn-shanghai", emulator.DemoRogue, emulator.DemoRogueAccount},
	}
	if len(rows) != 1 || !slices.Equal(rows[0], want) {
		t.Errorf("changes table:\n%s\nparsed %v, want %v", b.String(), rows, want)
	}
}

func TestInvokeDemoDryRunScansOnce(t *testing.T) {
	code, out, errOut := runCLI(t, "invoke", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if n := len(allTables(t, out)); n != 1 || strings.Contains(out, "Second scan") {
		t.Errorf("%d findings tables, want the one scan of a dry run:\n%s", n, out)
	}
}

// The two tests below need the organisation scan and the lifecycle of the
// scanner (scan.Request Members, TrustedAccounts and State, filled in from
// ACCOUNTS, TRUST_ORGANIZATION and STATE_STORE by the function's wiring):
// they fail until those land.

func TestInvokeDemoShowsTheOrganisation(t *testing.T) {
	code, out, errOut := runCLI(t, "invoke")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for i, rows := range allTables(t, out) {
		// The hub's role is assumed: its connections are judged, the
		// management account trusted as a member of the organisation.
		hub := verdicts(ofAccount(rows, emulator.DemoHubAccount))
		wantHub := map[string][]string{
			emulator.DemoHubToHQ + " untrusted-account":     {"PASS"},
			emulator.DemoHubToHQ + " untrusted-cen":         {"PASS"},
			emulator.DemoHubToHQ + " stale-authorization":   {"PASS"},
			emulator.DemoHubToHQ + " unexpected-product":    {"PASS"},
			emulator.DemoHubVendor + " untrusted-account":   {"FAIL"},
			emulator.DemoHubVendor + " untrusted-cen":       {"FAIL"},
			emulator.DemoHubVendor + " stale-authorization": {"PASS"},
			emulator.DemoHubVendor + " unexpected-product":  {"PASS"},
		}
		if !mapsEqual(hub, wantHub) {
			t.Errorf("scan %d: hub verdicts %v, want %v", i+1, hub, wantHub)
		}
		// The sandbox refuses the role: one ERROR for the whole account.
		sandbox := ofAccount(rows, emulator.DemoSandboxAccount)
		if len(sandbox) != 1 || sandbox[0].status != "ERROR" || sandbox[0].rule != "read-authorizations" ||
			sandbox[0].connection != "*" || sandbox[0].region != "*" {
			t.Errorf("scan %d: sandbox rows %+v, want one ERROR for the account", i+1, sandbox)
		}
		if legacy := ofAccount(rows, emulator.DemoLegacyAccount); len(legacy) != 0 {
			t.Errorf("scan %d: the excluded account was scanned: %+v", i+1, legacy)
		}
	}
}

func TestInvokeDemoShowsTheLifecycle(t *testing.T) {
	code, out, errOut := runCLI(t, "invoke")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	tables := changeTables(t, out)
	if len(tables) != 2 {
		t.Fatalf("%d changes tables, want one per scan:\n%s", len(tables), out)
	}
	key := func(r changeRow) string { return r.change + " " + r.connection + " " + r.rule }
	keys := func(rows []changeRow) []string {
		var ks []string
		for _, r := range rows {
			ks = append(ks, key(r))
		}
		slices.Sort(ks)
		return ks
	}
	first := []string{
		"opened " + emulator.DemoHubVendor + " untrusted-account",
		"opened " + emulator.DemoHubVendor + " untrusted-cen",
		"opened " + emulator.DemoRogue + " untrusted-account",
		"opened " + emulator.DemoRogue + " untrusted-cen",
		"opened " + emulator.DemoStale + " stale-authorization",
		"suppressed " + emulator.DemoPartner + " untrusted-account",
		"suppressed " + emulator.DemoPartner + " untrusted-cen",
	}
	slices.Sort(first)
	if got := keys(tables[0]); !slices.Equal(got, first) {
		t.Errorf("first scan's transitions:\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(first, "\n"))
	}
	second := []string{
		"opened " + emulator.DemoNoAuth + " untrusted-account",
		"opened " + emulator.DemoNoAuth + " untrusted-cen",
		"resolved/authorization_removed " + emulator.DemoRogue + " untrusted-account",
		"resolved/authorization_removed " + emulator.DemoRogue + " untrusted-cen",
		"unsuppressed " + emulator.DemoPartner + " untrusted-account",
		"unsuppressed " + emulator.DemoPartner + " untrusted-cen",
	}
	slices.Sort(second)
	if got := keys(tables[1]); !slices.Equal(got, second) {
		t.Errorf("second scan's transitions:\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(second, "\n"))
	}
	for _, r := range tables[1] {
		if r.account != emulator.DemoAccountID || !strings.Contains(r.transition, "→") {
			t.Errorf("transition %v: want the demo account's, with PREV→LIFECYCLE", r)
		}
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
