package emulator

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"vpnauthz/internal/assume"
	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/fanout"
	"vpnauthz/internal/resourcedir"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/statestore"
	"vpnauthz/internal/vpcapi"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listIDs lists a region's connections through the real VPC SDK with creds.
func listIDs(t *testing.T, c *Cloud, creds cloudapi.Credentials, region string) ([]string, error) {
	t.Helper()
	src, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(c.VPC.URL())})(creds, region)
	if err != nil {
		t.Fatalf("source: %v", err)
	}
	page, err := src.ListConnections(testCtx(t), region, 1, 50)
	return page.IDs, err
}

func TestStartServesTheDemoOrganisation(t *testing.T) {
	c := startCloud(t, Options{Organization: DemoOrganization(time.Now())})
	ctx := testCtx(t)

	// The directory lists the management account and the three members.
	dir, err := resourcedir.List(ctx, resourcedir.Options{
		Endpoint: endpoint.MustParse(c.RM.URL()), Credentials: cloudCreds(c)})
	if err != nil {
		t.Fatalf("resourcedir.List: %v", err)
	}
	var listed []string
	for _, a := range dir.Accounts {
		listed = append(listed, a.ID)
	}
	slices.Sort(listed)
	want := []string{DemoHubAccount, DemoSandboxAccount, DemoLegacyAccount, DemoAccountID}
	slices.Sort(want)
	if dir.MasterAccountID != DemoAccountID || !slices.Equal(listed, want) {
		t.Errorf("directory master %s accounts %v, want %s and %v", dir.MasterAccountID, listed, DemoAccountID, want)
	}

	newCache := func(externalID string) *assume.Cache {
		cache, err := assume.New(assume.Options{
			Endpoint: endpoint.MustParse(c.STS.URL()), Region: c.Region, Base: cloudCreds(c),
			RoleName: DefaultMemberRole, ExternalID: externalID, ScanID: "demo-test", Retry: retry.Policy{MaxAttempts: 1},
		})
		if err != nil {
			t.Fatalf("assume.New: %v", err)
		}
		return cache
	}
	members := newCache(DemoMemberRoleExternalID)

	// The hub's token sees the hub's connections, not the management's.
	hub, err := members.Credentials(ctx, DemoHubAccount)
	if err != nil {
		t.Fatalf("AssumeRole into the hub: %v", err)
	}
	if ids, err := listIDs(t, c, hub.Credentials, "cn-shanghai"); err != nil || !slices.Equal(ids, []string{DemoHubVendor}) {
		t.Errorf("hub cn-shanghai = %v, %v; want [%s]", ids, err, DemoHubVendor)
	}
	if ids, err := listIDs(t, c, cloudCreds(c), "cn-shanghai"); err != nil || !slices.Equal(ids, []string{DemoStale, DemoRogue}) {
		t.Errorf("management cn-shanghai = %v, %v; want its own", ids, err)
	}

	// The sandbox's role refuses; a wrong ExternalId is refused everywhere.
	if _, err := members.Credentials(ctx, DemoSandboxAccount); !assume.Denied(err) {
		t.Errorf("AssumeRole into the sandbox: %v, want denied", err)
	}
	if _, err := newCache("not-the-demo-id").Credentials(ctx, DemoHubAccount); !assume.Denied(err) {
		t.Errorf("AssumeRole with a wrong ExternalId: %v, want denied", err)
	}
	// The legacy member's role works: only ACCOUNTS_EXCLUDE keeps it out.
	if _, err := members.Credentials(ctx, DemoLegacyAccount); err != nil {
		t.Errorf("AssumeRole into the legacy member: %v", err)
	}

	// The function's own identity.
	id, err := assume.CallerIdentity(ctx, endpoint.MustParse(c.STS.URL()), c.Region, cloudCreds(c), nil)
	if err != nil || id.AccountID != DemoAccountID {
		t.Errorf("CallerIdentity = %+v, %v; want account %s", id, err, DemoAccountID)
	}
}

func TestStartCreatesTheStateTable(t *testing.T) {
	c := startCloud(t, Options{})
	info, ok := c.OTS.Table(DefaultStateTable)
	if !ok {
		t.Fatalf("no table %s", DefaultStateTable)
	}
	if info.TimeToLive != int32(statestore.DefaultTTL/time.Second) || info.MaxVersions != 1 {
		t.Errorf("table %+v, want TTL %v and one version", info, statestore.DefaultTTL)
	}
	// The store vpnauthz opens from Env and DemoEnv reads it.
	env := c.Env()
	loc, err := statestore.ParseStateStore(DemoEnv("p")["STATE_STORE"])
	if err != nil {
		t.Fatal(err)
	}
	st, err := statestore.New(statestore.Options{Location: loc, Endpoint: env["TABLESTORE_ENDPOINT"],
		Credentials: statestore.Credentials{AccessKeyID: c.Credentials.AccessKeyID,
			AccessKeySecret: c.Credentials.AccessKeySecret, SecurityToken: c.Credentials.SecurityToken}})
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := st.Load(testCtx(t), DemoAccountID, "cn-hangzhou"); err != nil || len(recs) != 0 {
		t.Errorf("Load = %v, %v; want an empty table", recs, err)
	}

	bare := startCloud(t, Options{NoStateTable: true})
	if _, ok := bare.OTS.Table(DefaultStateTable); ok {
		t.Error("NoStateTable: the table exists")
	}
}

func TestStartWithoutOrganisationListsTheManagementAccountAlone(t *testing.T) {
	c := startCloud(t, Options{})
	dir, err := resourcedir.List(testCtx(t), resourcedir.Options{
		Endpoint: endpoint.MustParse(c.RM.URL()), Credentials: cloudCreds(c)})
	if err != nil {
		t.Fatalf("resourcedir.List: %v", err)
	}
	if len(dir.Accounts) != 1 || dir.Accounts[0].ID != DemoAccountID {
		t.Errorf("directory = %+v, want the demo account alone", dir.Accounts)
	}
	if _, ok := c.Env()["FC_ENDPOINT"]; ok || c.FC != nil {
		t.Error("the FC OpenAPI started unasked")
	}
}

func TestStartRefusesABadOrganisation(t *testing.T) {
	tests := map[string]*Organization{
		"no account":         {Members: []Member{{}}},
		"management account": {Members: []Member{{AccountID: DemoAccountID}}},
		"twice":              {Members: []Member{{AccountID: DemoSandboxAccount}, {AccountID: DemoSandboxAccount}}},
		"other inventory": {Members: []Member{{AccountID: DemoSandboxAccount,
			Inventory: &vpcemu.Inventory{AccountID: DemoLegacyAccount}}}},
	}
	for name, org := range tests {
		t.Run(name, func(t *testing.T) {
			if c, err := Start(Options{Organization: org}); err == nil {
				c.Close()
				t.Fatal("accepted")
			}
		})
	}
}

func TestStartWithTheFCOpenAPI(t *testing.T) {
	rt, err := fcemu.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	c := startCloud(t, Options{FCRuntime: rt})
	if got := c.Env()["FC_ENDPOINT"]; got != c.FC.URL() {
		t.Fatalf("FC_ENDPOINT = %q, want %q", got, c.FC.URL())
	}
	d, err := fanout.New(fanout.Options{Endpoint: endpoint.MustParse(c.FC.URL()), Region: c.Region,
		Credentials: cloudCreds(c), FunctionName: DefaultFunctionName, Retry: retry.Policy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	got, err := d.Dispatch(ctx, "scan1", [][]string{{DemoHubAccount}})
	if err != nil || len(got) != 1 || got[0].AlreadyStarted {
		t.Fatalf("Dispatch = %+v, %v", got, err)
	}
	// The invocation reaches the runtime API, where the function would poll.
	if err := rt.AwaitInvocations(ctx, 1); err != nil {
		t.Fatalf("the invocation never reached the runtime: %v", err)
	}
}

func TestChangeDemo(t *testing.T) {
	now := time.Now()
	c := startCloud(t, Options{Organization: DemoOrganization(now)})
	dir := t.TempDir()
	path, err := WriteDemoPolicy(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := ChangeDemo(c, dir, now)
	if err != nil {
		t.Fatalf("ChangeDemo: %v", err)
	}
	if len(changes) != 3 {
		t.Errorf("changes = %+v, want 3", changes)
	}
	inv := c.VPC.Snapshot()
	auths := map[string][]vpcemu.Authorization{}
	for _, conns := range inv.Regions {
		for _, cn := range conns {
			auths[cn.VpnConnectionId] = cn.Authorizations
		}
	}
	if len(auths[DemoRogue]) != 0 {
		t.Errorf("rogue grant kept: %+v", auths[DemoRogue])
	}
	if a := auths[DemoNoAuth]; len(a) != 1 || a[0].BindInstance != DemoUnknownCEN {
		t.Errorf("no-auth connection grants = %+v, want the new untrusted one", a)
	}
	env := DemoEnv(path)
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatalf("the expired policy does not load: %v", err)
	}
	e := cfg.Policy.Exceptions[0]
	if !e.Expires.Before(now) || e.Expires.Add(48*time.Hour).Before(now) {
		t.Errorf("exception expires %s, want yesterday", e.Expires)
	}
	// A second change finds nothing to revoke: it says so.
	if _, err := ChangeDemo(c, dir, now); !errors.Is(err, vpcemu.ErrNotFound) {
		t.Errorf("ChangeDemo twice: %v, want not found", err)
	}
}
