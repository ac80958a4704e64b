package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/assume"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/testutil"
	"vpnauthz/internal/vpcapi"
)

func orgInventory(account, id string) *vpcemu.Inventory {
	return &vpcemu.Inventory{AccountID: account, Regions: map[string][]vpcemu.Connection{
		"cn-beijing": {{VpnConnectionId: id}},
	}}
}

// TestEmulateServesAnOrganisationFile: the management account's inventory
// answers its own credential; a member's role, assumed with the file's
// ExternalId, gives a token the VPC API accepts for that member's inventory
// alone; --stats counts the calls when the cloud stops.
func TestEmulateServesAnOrganisationFile(t *testing.T) {
	const (
		own, member, other = "1111222233334444", "1111222233330001", "1111222233330002"
		role, external     = "bench-member", "bench-external"
	)
	file := filepath.Join(t.TempDir(), "org.json")
	if err := emulator.WriteOrganization(file, emulator.OrganizationFile{
		Inventory: orgInventory(own, "vco-own0000000001"), RoleName: role, ExternalID: external,
		Members: []emulator.Member{
			{AccountID: member, Inventory: orgInventory(member, "vco-member00000001")},
			{AccountID: other, Inventory: orgInventory(other, "vco-other000000001")},
		},
	}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testutil.Buffer{}, &testutil.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"emulate", "--org", file, "--stats"}, stdout, stderr) }()
	first := regexp.MustCompile(`(?m)^(\{.*\})$`)
	var line []string
	for deadline := time.Now().Add(30 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		line = first.FindStringSubmatch(stdout.String())
	}
	if line == nil {
		t.Fatalf("no endpoints printed; stderr:\n%s", stderr)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(line[1]), &env); err != nil {
		t.Fatal(err)
	}
	if env["accountId"] != own || env["ACCOUNTS"] != "resource-directory" || env["MEMBER_ROLE_NAME"] != role || env["MEMBER_ROLE_EXTERNAL_ID"] != external {
		t.Errorf("account %q ACCOUNTS %q role %q external id %q; want the file's", env["accountId"], env["ACCOUNTS"], env["MEMBER_ROLE_NAME"], env["MEMBER_ROLE_EXTERNAL_ID"])
	}
	base := scan.Credentials{AccessKeyID: env["ALIBABA_CLOUD_ACCESS_KEY_ID"], AccessKeySecret: env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
		SecurityToken: env["ALIBABA_CLOUD_SECURITY_TOKEN"]}
	newSource := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(env["VPC_ENDPOINT"])})
	list := func(c scan.Credentials) ([]string, error) {
		src, err := newSource(c, "cn-beijing")
		if err != nil {
			return nil, err
		}
		page, err := src.ListConnections(ctx, "cn-beijing", 1, 50)
		if err != nil {
			return nil, err
		}
		return page.IDs, nil
	}
	if ids, err := list(base); err != nil || strings.Join(ids, " ") != "vco-own0000000001" {
		t.Errorf("own account lists %v, %v; want its own connection", ids, err)
	}

	cache, err := assume.New(assume.Options{Endpoint: endpoint.MustParse(env["STS_ENDPOINT"]), Region: "cn-beijing", Base: base,
		RoleName: role, ExternalID: external, ScanID: "emulate-org-test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cache.Credentials(ctx, member)
	if err != nil {
		t.Fatalf("assume the member's role: %v", err)
	}
	if ids, err := list(tok.Credentials); err != nil || strings.Join(ids, " ") != "vco-member00000001" {
		t.Errorf("member token lists %v, %v; want the member's connection", ids, err)
	}
	wrong, err := assume.New(assume.Options{Endpoint: endpoint.MustParse(env["STS_ENDPOINT"]), Region: "cn-beijing", Base: base,
		RoleName: role, ExternalID: "not-the-file", ScanID: "emulate-org-test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Credentials(ctx, other); !assume.Denied(err) {
		t.Errorf("assume with another ExternalId: %v, want denied", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("emulate did not stop")
	}
	var stats struct{ Stats EmulateStats }
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &stats); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	// Two listings, one AssumeRole that issued and one refused by the trust policy.
	if s := stats.Stats; s.VPCCalls != 2 || s.VPCThrottled != 0 || s.AssumeRole != 2 || s.TokensIssued != 1 {
		t.Errorf("stats %+v; want 2 VPC calls, 2 AssumeRole, 1 token", s)
	}
}

func TestEmulateRefusesBadOrganisationFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own := `{"AccountId":"1111222233334444","Regions":{}}`
	tests := []struct {
		name, args, want string
	}{
		{"missing", filepath.Join(dir, "none.json"), "read organisation"},
		{"unknown field", write("unknown.json", `{"Inventory":`+own+`,"Memberz":[]}`), "Memberz"},
		{"no inventory", write("noinv.json", `{"Members":[]}`), "no Inventory"},
		{"bad member inventory", write("badmember.json", `{"Inventory":`+own+`,"Members":[{"AccountID":"1111222233330001",
			"Inventory":{"AccountId":"1111222233330001","Regions":{"cn-beijing":[{"VpnConnectionId":"vpn-1"}]}}}]}`), "member 0 (1111222233330001)"},
		{"member is the manager", write("manager.json", `{"Inventory":`+own+`,"Members":[{"AccountID":"1111222233334444"}]}`), "management account"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "emulate", "--org", tc.args)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure naming %q", code, errOut, tc.want)
			}
		})
	}
	t.Run("with --inventory", func(t *testing.T) {
		code, _, errOut := runCLI(t, "emulate", "--org", write("ok.json", `{"Inventory":`+own+`}`), "--inventory", "x.json")
		if code != exitUsage || !strings.Contains(errOut, "--org and --inventory") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}
