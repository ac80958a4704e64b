package emulator

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/target"
	"vpnauthz/internal/vpcapi"
)

func startCloud(t *testing.T, opts Options) *Cloud {
	t.Helper()
	c, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func cloudCreds(c *Cloud) scan.Credentials {
	return scan.Credentials{
		AccessKeyID:     c.Credentials.AccessKeyID,
		AccessKeySecret: c.Credentials.AccessKeySecret,
		SecurityToken:   c.Credentials.SecurityToken,
	}
}

func TestStartServesTheDemoThroughTheVPCSDK(t *testing.T) {
	c := startCloud(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newSource := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(c.VPC.URL())})

	tests := []struct {
		region string
		want   []string
	}{
		{"cn-hangzhou", []string{DemoTrusted, DemoPartner, DemoNoAuth}},
		{"cn-shanghai", []string{DemoStale, DemoRogue}},
		{"ap-southeast-1", []string{DemoDenied, DemoOwner}},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			src, err := newSource(cloudCreds(c), tt.region)
			if err != nil {
				t.Fatalf("source: %v", err)
			}
			page, err := src.ListConnections(ctx, tt.region, 1, 50)
			if err != nil {
				t.Fatalf("ListConnections: %v", err)
			}
			if !slices.Equal(page.IDs, tt.want) || page.TotalCount != len(tt.want) {
				t.Errorf("connections = %v (total %d), want %v", page.IDs, page.TotalCount, tt.want)
			}
		})
	}

	t.Run("authorizations", func(t *testing.T) {
		src, err := newSource(cloudCreds(c), "cn-hangzhou")
		if err != nil {
			t.Fatalf("source: %v", err)
		}
		page, err := src.ListAuthorizations(ctx, "cn-hangzhou", DemoPartner, 1, 50)
		if err != nil {
			t.Fatalf("ListAuthorizations: %v", err)
		}
		if len(page.Authorizations) != 1 {
			t.Fatalf("authorizations = %+v, want one", page.Authorizations)
		}
		a := page.Authorizations[0]
		if a.BindUID != 1999000011112222 || a.AliUID != 1234567890123456 || a.BindInstance != DemoPartnerCEN || a.BindProduct != "CEN" {
			t.Errorf("authorization = %+v", a)
		}
		age := time.Since(time.UnixMilli(a.CreationTime))
		if age < 29*24*time.Hour || age > 31*24*time.Hour {
			t.Errorf("partner authorization is %v old, want 30 days", age)
		}
	})

	t.Run("forbidden connection", func(t *testing.T) {
		src, err := newSource(cloudCreds(c), "ap-southeast-1")
		if err != nil {
			t.Fatalf("source: %v", err)
		}
		_, err = src.ListAuthorizations(ctx, "ap-southeast-1", DemoDenied, 1, 50)
		var apiErr *cloudapi.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "Forbidden.RAM" || apiErr.HTTPStatus != 403 {
			t.Fatalf("err = %v, want Forbidden.RAM (HTTP 403)", err)
		}
	})

	t.Run("unknown credential refused", func(t *testing.T) {
		other := cloudCreds(c)
		other.AccessKeyID = "STS.NotIssuedByThisEmulator"
		src, err := newSource(other, "cn-hangzhou")
		if err != nil {
			t.Fatalf("source: %v", err)
		}
		if _, err := src.ListConnections(ctx, "cn-hangzhou", 1, 50); err == nil {
			t.Fatal("a key the emulator did not issue was accepted")
		}
	})
}

func TestStartAcceptsFindingsThroughTheSLSSink(t *testing.T) {
	c := startCloud(t, Options{Project: "my-project", Logstore: "my-findings"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink, err := slssink.New(slssink.Options{
		Endpoint: endpoint.MustParse(c.SLS.Endpoint()), Project: c.Project, Logstore: c.Logstore,
		Credentials: cloudCreds(c), Stdout: os.Stderr,
	})
	if err != nil {
		t.Fatalf("slssink.New: %v", err)
	}
	f := finding.Finding{
		FindingUID: finding.UID(finding.RuleUntrustedAccount, DemoAccountID, "cn-shanghai", DemoRogue, DemoRogueAccount, DemoUnknownCEN),
		ScanID:     "scan-1", Trigger: finding.TriggerCLI, RuleID: finding.RuleUntrustedAccount,
		Status: finding.StatusFail, Region: "cn-shanghai", OwnerAccountID: DemoAccountID,
		VpnConnectionID: DemoRogue, BindUID: DemoRogueAccount, BindInstance: DemoUnknownCEN,
		ObservedAt: time.Now().UTC().Format(time.RFC3339),
	}
	if err := sink.Write(ctx, &f); err != nil {
		t.Fatalf("Write: %v", err)
	}
	summary := finding.ScanSummary{ScanID: "scan-1", Trigger: finding.TriggerCLI, StartedAt: f.ObservedAt, Complete: true,
		Counts: finding.Counts{Connections: 1, Authorizations: 1, Fail: 1}}
	d := sink.Close(ctx, &summary)
	if !d.Delivered || d.Error != "" {
		t.Fatalf("delivery = %+v, want delivered", d)
	}
	logs := c.SLS.LogsByTopic("my-project", "my-findings", finding.TopicFinding)
	if len(logs) != 1 || logs[0].Contents["vpn_connection_id"] != DemoRogue || logs[0].Contents["status"] != "FAIL" {
		t.Fatalf("stored findings = %+v, want the one FAIL of %s", logs, DemoRogue)
	}
	if got := c.SLS.LogsByTopic("my-project", "my-findings", finding.TopicScan); len(got) != 1 {
		t.Errorf("stored summaries = %d, want 1", len(got))
	}
}

func TestEnvPointsAtTheCloud(t *testing.T) {
	c := startCloud(t, Options{})
	env := c.Env()
	want := map[string]string{
		"VPC_ENDPOINT":                    c.VPC.URL(),
		"SLS_ENDPOINT":                    c.SLS.Endpoint(),
		"SLS_PROJECT":                     DefaultProject,
		"SLS_LOGSTORE":                    DefaultLogstore,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     c.Credentials.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": c.Credentials.AccessKeySecret,
		"ALIBABA_CLOUD_SECURITY_TOKEN":    c.Credentials.SecurityToken,
		"FC_ACCOUNT_ID":                   DemoAccountID,
		"FC_REGION":                       "cn-hangzhou",
		"STS_ENDPOINT":                    c.STS.URL(),
		"RESOURCEMANAGER_ENDPOINT":        c.RM.URL(),
		"TABLESTORE_ENDPOINT":             c.OTS.Endpoint(),
	}
	if len(env) != len(want) {
		t.Errorf("Env has %d keys, want %d: %v", len(env), len(want), env)
	}
	// The state store is the demo's choice (DemoEnv), not the cloud's:
	// scans on Env alone are stateless.
	if got, want := DemoEnv("p")["STATE_STORE"], "tablestore://"+DefaultStateInstance+"/"+DefaultStateTable; got != want {
		t.Errorf("DemoEnv[STATE_STORE] = %q, want %q", got, want)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("Env[%s] = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"VPC_ENDPOINT", "SLS_ENDPOINT", "STS_ENDPOINT", "RESOURCEMANAGER_ENDPOINT", "TABLESTORE_ENDPOINT"} {
		if !strings.HasPrefix(env[k], "http://127.0.0.1:") {
			t.Errorf("%s = %q, want a loopback URL", k, env[k])
		}
	}
	if !strings.HasPrefix(c.Credentials.AccessKeyID, "STS.") || c.Credentials.SecurityToken == "" || c.Credentials.AccessKeySecret == "" {
		t.Errorf("credential %q is not an STS key with secret and token", c.Credentials.AccessKeyID)
	}

	other := startCloud(t, Options{})
	if other.Credentials == c.Credentials {
		t.Error("two starts share a credential; each start must generate its own")
	}
}

func TestStartWithOwnInventory(t *testing.T) {
	inv, err := vpcemu.ParseInventory([]byte(`{"AccountId":"1111222233334444","Regions":{"eu-central-1":[
		{"VpnConnectionId":"vco-gk0only0000001","Authorizations":[]}]}}`))
	if err != nil {
		t.Fatalf("ParseInventory: %v", err)
	}
	c := startCloud(t, Options{Inventory: inv})
	if c.AccountID != "1111222233334444" || c.Region != "eu-central-1" {
		t.Errorf("account %q region %q, want the inventory's", c.AccountID, c.Region)
	}

	if _, err := Start(Options{Inventory: &vpcemu.Inventory{}}); err == nil {
		t.Error("an inventory without an account was accepted")
	}
}

func TestStartRefusesABusyAddress(t *testing.T) {
	c := startCloud(t, Options{})
	if _, err := Start(Options{VPCAddr: c.VPC.Addr()}); err == nil {
		t.Fatal("Start on a port in use succeeded")
	}
}

func TestDemoInventory(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	inv := Demo(now)
	if err := inv.Validate(); err != nil {
		t.Fatalf("demo inventory invalid: %v", err)
	}
	if inv.AccountID != DemoAccountID {
		t.Errorf("account = %s", inv.AccountID)
	}
	type want struct {
		region, bindUID, cen string
		ageDays              int
		errCode              string
		noAuth               bool
	}
	wants := map[string]want{
		"vco-hz0trusted0001": {region: "cn-hangzhou", bindUID: "1210123456123456", cen: "cen-trusted000001", ageDays: 100},
		"vco-hz0partner0002": {region: "cn-hangzhou", bindUID: "1999000011112222", cen: "cen-partner00001", ageDays: 30},
		"vco-hz0noauth00003": {region: "cn-hangzhou", noAuth: true},
		"vco-sh0stale000001": {region: "cn-shanghai", bindUID: "1210123456123456", cen: "cen-trusted000001", ageDays: 900},
		"vco-sh0rogue000002": {region: "cn-shanghai", bindUID: "1888000033334444", cen: "cen-unknown000001", ageDays: 12},
		"vco-sg0denied00001": {region: "ap-southeast-1", noAuth: true, errCode: "Forbidden.RAM"},
		"vco-sg0owner000002": {region: "ap-southeast-1", bindUID: "1234567890123456", cen: "cen-trusted000001", ageDays: 10},
	}
	seen := 0
	for region, conns := range inv.Regions {
		for _, c := range conns {
			w, ok := wants[c.VpnConnectionId]
			if !ok {
				t.Errorf("unexpected connection %s", c.VpnConnectionId)
				continue
			}
			seen++
			if region != w.region {
				t.Errorf("%s in %s, want %s", c.VpnConnectionId, region, w.region)
			}
			if (c.Error == nil) != (w.errCode == "") || (c.Error != nil && (c.Error.Code != w.errCode || c.Error.HTTPStatus != 403)) {
				t.Errorf("%s error = %+v, want %q", c.VpnConnectionId, c.Error, w.errCode)
			}
			if w.noAuth {
				if len(c.Authorizations) != 0 {
					t.Errorf("%s has authorizations %+v", c.VpnConnectionId, c.Authorizations)
				}
				continue
			}
			if len(c.Authorizations) != 1 {
				t.Fatalf("%s authorizations = %+v, want one", c.VpnConnectionId, c.Authorizations)
			}
			a := c.Authorizations[0]
			created := time.UnixMilli(a.CreationTime)
			if a.AliUid != 1234567890123456 || a.BindProduct != "CEN" || a.BindInstance != w.cen ||
				strconv.FormatInt(a.BindUid, 10) != w.bindUID || !created.Equal(now.AddDate(0, 0, -w.ageDays)) {
				t.Errorf("%s authorization = %+v (created %s), want bind %s %s %d days old",
					c.VpnConnectionId, a, created, w.bindUID, w.cen, w.ageDays)
			}
		}
	}
	if seen != len(wants) {
		t.Errorf("demo has %d of the %d connections", seen, len(wants))
	}
	if !slices.Equal(DemoConnectionIDs(), []string{DemoTrusted, DemoPartner, DemoNoAuth, DemoStale, DemoRogue, DemoDenied, DemoOwner}) {
		t.Errorf("DemoConnectionIDs = %v", DemoConnectionIDs())
	}
}

func TestDemoConfigurationLoads(t *testing.T) {
	now := time.Now()
	path, err := WriteDemoPolicy(t.TempDir(), now)
	if err != nil {
		t.Fatalf("WriteDemoPolicy: %v", err)
	}
	env := DemoEnv(path)
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatalf("config.Load of the demo: %v", err)
	}
	wantTargets := []target.Target{
		{Region: "cn-hangzhou", ConnectionID: "*"}, {Region: "cn-shanghai", ConnectionID: "*"},
		{Region: "ap-southeast-1", ConnectionID: DemoDenied}, {Region: "ap-southeast-1", ConnectionID: DemoOwner},
	}
	byString := func(a, b target.Target) int { return strings.Compare(a.String(), b.String()) }
	got := slices.SortedFunc(slices.Values(cfg.Targets), byString)
	slices.SortFunc(wantTargets, byString)
	if !slices.Equal(got, wantTargets) {
		t.Errorf("targets = %v, want %v", cfg.Targets, wantTargets)
	}
	p := cfg.Policy
	if !slices.Equal(p.TrustedAccountIDs, []string{DemoTrustedAccount}) || !slices.Equal(p.TrustedCENIDs, []string{DemoTrustedCEN}) ||
		p.MaxAuthorizationAgeDays != 365 {
		t.Errorf("policy = %+v", p)
	}
	if len(p.Exceptions) != 1 {
		t.Fatalf("exceptions = %+v, want the partner's", p.Exceptions)
	}
	e := p.Exceptions[0]
	wantExpiry := now.UTC().AddDate(0, 0, 90).Format(time.DateOnly)
	if e.VpnConnectionID != DemoPartner || e.BindUID != DemoPartnerAccount || e.BindInstance != DemoPartnerCEN ||
		!slices.Equal(e.Rules, []string{finding.RuleUntrustedAccount, finding.RuleUntrustedCEN}) ||
		e.Reason != DemoExceptionReason || e.Expires.Format(time.DateOnly) != wantExpiry {
		t.Errorf("exception = %+v, want the partner's until %s", e, wantExpiry)
	}
}
