package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/statestore"
)

// The demo account and the ids of its inventory. The sample events of the
// repository name these connections.
const (
	DemoAccountID      = "1234567890123456"
	DemoTrustedAccount = "1210123456123456"
	DemoTrustedCEN     = "cen-trusted000001"
	DemoPartnerAccount = "1999000011112222"
	DemoPartnerCEN     = "cen-partner00001"
	DemoRogueAccount   = "1888000033334444"
	DemoUnknownCEN     = "cen-unknown000001"

	DemoTrusted = "vco-hz0trusted0001" // cn-hangzhou: trusted account and CEN, 100 days old
	DemoPartner = "vco-hz0partner0002" // cn-hangzhou: untrusted partner under a live exception
	DemoNoAuth  = "vco-hz0noauth00003" // cn-hangzhou: no authorization
	DemoStale   = "vco-sh0stale000001" // cn-shanghai: trusted but 900 days old
	DemoRogue   = "vco-sh0rogue000002" // cn-shanghai: untrusted account and CEN
	DemoDenied  = "vco-sg0denied00001" // ap-southeast-1: the API refuses to read it (Forbidden.RAM)
	DemoOwner   = "vco-sg0owner000002" // ap-southeast-1: authorized to the owner account itself

	// DemoExceptionReason is the reason of the demo policy's exception.
	DemoExceptionReason = "partner migration, ticket NET-123"
)

// The demo organisation: the demo account manages a Resource Directory of
// three members besides itself.
const (
	// DemoHubAccount is the network hub, the account TRUSTED_ACCOUNT_IDS
	// names: its role trusts the demo account, and it has two connections.
	DemoHubAccount = DemoTrustedAccount
	// DemoSandboxAccount's role does not trust the demo account: AssumeRole
	// is refused, one ERROR finding.
	DemoSandboxAccount = "1310000000000002"
	// DemoLegacyAccount is in ACCOUNTS_EXCLUDE: never scanned, although its
	// one connection has an untrusted grant.
	DemoLegacyAccount = "1320000000000003"
	// DemoVendorAccount and DemoVendorCEN are outside the organisation.
	DemoVendorAccount = "1777000055556666"
	DemoVendorCEN     = "cen-vendor0000001"

	DemoHubToHQ     = "vco-hz1hubtohq001" // hub, cn-hangzhou: to the demo account's trusted CEN
	DemoHubVendor   = "vco-sh1vendor0001" // hub, cn-shanghai: to the vendor, untrusted
	DemoSandboxLink = "vco-hz2sandbox001" // sandbox, cn-hangzhou: never read
	DemoLegacyLink  = "vco-hz3legacy0001" // legacy, cn-hangzhou: never read

	// DemoMemberRoleExternalID is MEMBER_ROLE_EXTERNAL_ID of the demo: every
	// member role requires it.
	DemoMemberRoleExternalID = "vpnauthz-demo-external-id"
)

// DemoOrganization is the demo's Resource Directory: the hub, whose role the
// demo account may assume; the sandbox, whose role refuses it; and the legacy
// account, excluded by DemoEnv. Authorizations are created the given number
// of days before now, like Demo's.
func DemoOrganization(now time.Time) *Organization {
	auth := func(owner, bindUID, cen string, ageDays int) vpcemu.Authorization {
		return vpcemu.Authorization{
			AliUid:       mustUID(owner),
			BindUid:      mustUID(bindUID),
			BindProduct:  "CEN",
			BindInstance: cen,
			CreationTime: now.Add(-time.Duration(ageDays) * 24 * time.Hour).UnixMilli(),
		}
	}
	return &Organization{
		RoleName:   DefaultMemberRole,
		ExternalID: DemoMemberRoleExternalID,
		Members: []Member{
			{AccountID: DemoHubAccount, DisplayName: "network-hub", Inventory: &vpcemu.Inventory{
				AccountID: DemoHubAccount,
				Regions: map[string][]vpcemu.Connection{
					"cn-hangzhou": {{VpnConnectionId: DemoHubToHQ, Name: "hub-to-hq",
						Authorizations: []vpcemu.Authorization{auth(DemoHubAccount, DemoAccountID, DemoTrustedCEN, 60)}}},
					"cn-shanghai": {{VpnConnectionId: DemoHubVendor, Name: "hub-to-vendor",
						Authorizations: []vpcemu.Authorization{auth(DemoHubAccount, DemoVendorAccount, DemoVendorCEN, 45)}}},
				},
			}},
			{AccountID: DemoSandboxAccount, DisplayName: "sandbox", Status: "InviteSuccess", DenyAssumeRole: true,
				Inventory: &vpcemu.Inventory{AccountID: DemoSandboxAccount, Regions: map[string][]vpcemu.Connection{
					"cn-hangzhou": {{VpnConnectionId: DemoSandboxLink, Name: "sandbox-lab",
						Authorizations: []vpcemu.Authorization{auth(DemoSandboxAccount, DemoRogueAccount, DemoUnknownCEN, 5)}}},
				}}},
			{AccountID: DemoLegacyAccount, DisplayName: "legacy",
				Inventory: &vpcemu.Inventory{AccountID: DemoLegacyAccount, Regions: map[string][]vpcemu.Connection{
					"cn-hangzhou": {{VpnConnectionId: DemoLegacyLink, Name: "legacy-dc",
						Authorizations: []vpcemu.Authorization{auth(DemoLegacyAccount, DemoRogueAccount, DemoUnknownCEN, 2000)}}},
				}}},
		},
	}
}

// demoIDs in listing order, for callers that walk the whole demo.
var demoIDs = []string{DemoTrusted, DemoPartner, DemoNoAuth, DemoStale, DemoRogue, DemoDenied, DemoOwner}

// DemoConnectionIDs lists every connection of the demo inventory.
func DemoConnectionIDs() []string { return append([]string(nil), demoIDs...) }

// Demo is the demo inventory, its authorizations created the given number of
// days before now, so that the verdicts are the same whenever it runs.
func Demo(now time.Time) *vpcemu.Inventory {
	owner := mustUID(DemoAccountID)
	auth := func(bindUID, cen string, ageDays int) vpcemu.Authorization {
		return vpcemu.Authorization{
			AliUid:       owner,
			BindUid:      mustUID(bindUID),
			BindProduct:  "CEN",
			BindInstance: cen,
			CreationTime: now.Add(-time.Duration(ageDays) * 24 * time.Hour).UnixMilli(),
		}
	}
	return &vpcemu.Inventory{
		AccountID: DemoAccountID,
		Regions: map[string][]vpcemu.Connection{
			"cn-hangzhou": {
				{VpnConnectionId: DemoTrusted, Name: "hq-to-trusted-network",
					Authorizations: []vpcemu.Authorization{auth(DemoTrustedAccount, DemoTrustedCEN, 100)}},
				{VpnConnectionId: DemoPartner, Name: "hq-to-partner",
					Authorizations: []vpcemu.Authorization{auth(DemoPartnerAccount, DemoPartnerCEN, 30)}},
				{VpnConnectionId: DemoNoAuth, Name: "hq-branch-office",
					Authorizations: []vpcemu.Authorization{}},
			},
			"cn-shanghai": {
				{VpnConnectionId: DemoStale, Name: "sh-legacy-link",
					Authorizations: []vpcemu.Authorization{auth(DemoTrustedAccount, DemoTrustedCEN, 900)}},
				{VpnConnectionId: DemoRogue, Name: "sh-unknown-grant",
					Authorizations: []vpcemu.Authorization{auth(DemoRogueAccount, DemoUnknownCEN, 12)}},
			},
			"ap-southeast-1": {
				{VpnConnectionId: DemoDenied, Name: "sg-restricted",
					Authorizations: []vpcemu.Authorization{},
					Error: &vpcemu.Fault{Code: "Forbidden.RAM", HTTPStatus: 403,
						Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM."}},
				{VpnConnectionId: DemoOwner, Name: "sg-own-cen",
					Authorizations: []vpcemu.Authorization{auth(DemoAccountID, DemoTrustedCEN, 10)}},
			},
		},
	}
}

// DemoEnv is the demo's trust policy, scope, organisation and state store,
// as the function's environment: the endpoints and credentials come from
// Cloud.Env. The values do not depend on the time; the policy file's
// exception does.
//
// The organisation settings list the Resource Directory: on a cloud started
// without DemoOrganization it holds the demo account alone, and the scan is
// the single-account scan it was before organisations.
func DemoEnv(policyPath string) map[string]string {
	env := DemoAccountEnv(policyPath)
	env["ACCOUNTS"] = "resource-directory"
	env["ACCOUNTS_EXCLUDE"] = DemoLegacyAccount
	env["MEMBER_ROLE_EXTERNAL_ID"] = DemoMemberRoleExternalID
	env["TRUST_ORGANIZATION"] = "true"
	env["STATE_STORE"] = statestore.Location{Instance: DefaultStateInstance, Table: DefaultStateTable}.String()
	return env
}

// DemoAccountEnv is the demo's configuration for the management account
// alone, stateless: the scope and policy of DemoEnv without the
// organisation and the state store, for tests about one account.
func DemoAccountEnv(policyPath string) map[string]string {
	return map[string]string{
		"SCAN_TARGETS": "cn-hangzhou:* cn-shanghai:* " +
			"ap-southeast-1:" + DemoDenied + " ap-southeast-1:" + DemoOwner,
		"TRUSTED_ACCOUNT_IDS":        DemoTrustedAccount,
		"TRUSTED_CEN_IDS":            DemoTrustedCEN,
		"MAX_AUTHORIZATION_AGE_DAYS": "365",
		"POLICY_FILE":                policyPath,
	}
}

// WriteDemoPolicy writes dir/vpnauthz-demo-policy.yaml: the demo's exception
// for the partner connection, expiring 90 days after now, and returns its path.
func WriteDemoPolicy(dir string, now time.Time) (string, error) {
	return writeDemoPolicy(dir, now.UTC().AddDate(0, 0, 90))
}

// WriteExpiredDemoPolicy writes the demo policy of WriteDemoPolicy at the
// same path, with the exception's last day the day before now: it has run
// out, and the partner's grant fails again.
func WriteExpiredDemoPolicy(dir string, now time.Time) (string, error) {
	return writeDemoPolicy(dir, now.UTC().AddDate(0, 0, -1))
}

func writeDemoPolicy(dir string, lastDay time.Time) (string, error) {
	expires := lastDay.Format(time.DateOnly)
	yaml := fmt.Sprintf(`# vpnauthz demo policy: the trust settings come from the environment
# (TRUSTED_ACCOUNT_IDS, TRUSTED_CEN_IDS, MAX_AUTHORIZATION_AGE_DAYS), which
# overrides the file; the file adds what only it can hold, the exceptions.
exceptions:
  - vpn_connection_id: %s
    bind_uid: %q
    bind_instance: %s
    rules: [untrusted-account, untrusted-cen]
    reason: %q
    expires: %s
`, DemoPartner, DemoPartnerAccount, DemoPartnerCEN, DemoExceptionReason, expires)
	path := filepath.Join(dir, "vpnauthz-demo-policy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return "", fmt.Errorf("write the demo policy: %w", err)
	}
	return path, nil
}

// mustUID converts one of the account id constants above.
func mustUID(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic("emulator: bad demo account id " + s)
	}
	return n
}

// DemoChange is one change ChangeDemo made to the demo between two scans.
type DemoChange struct {
	Account, Region, ConnectionID string
	What                          string // e.g. "grant to 1888000033334444 cen-unknown000001 revoked"
}

// ChangeDemo changes the demo cloud as a week of operations might: the rogue
// grant is revoked, the connection that had none gets an untrusted grant,
// and the partner's exception runs out (its policy file in dir, written by
// WriteDemoPolicy, is rewritten expired). The next scan's transitions are
// resolved, opened and unsuppressed.
func ChangeDemo(c *Cloud, dir string, now time.Time) ([]DemoChange, error) {
	if err := c.VPC.Revoke("cn-shanghai", DemoRogue, mustUID(DemoRogueAccount), DemoUnknownCEN); err != nil {
		return nil, fmt.Errorf("change the demo: %w", err)
	}
	grant := vpcemu.Authorization{
		AliUid:       mustUID(DemoAccountID),
		BindUid:      mustUID(DemoRogueAccount),
		BindProduct:  "CEN",
		BindInstance: DemoUnknownCEN,
		CreationTime: now.UnixMilli(),
	}
	if err := c.VPC.Grant("cn-hangzhou", DemoNoAuth, grant); err != nil {
		return nil, fmt.Errorf("change the demo: %w", err)
	}
	if _, err := WriteExpiredDemoPolicy(dir, now); err != nil {
		return nil, fmt.Errorf("change the demo: %w", err)
	}
	return []DemoChange{
		{DemoAccountID, "cn-shanghai", DemoRogue, fmt.Sprintf("grant to %s %s revoked", DemoRogueAccount, DemoUnknownCEN)},
		{DemoAccountID, "cn-hangzhou", DemoNoAuth, fmt.Sprintf("grant to %s %s added", DemoRogueAccount, DemoUnknownCEN)},
		{DemoAccountID, "cn-hangzhou", DemoPartner, fmt.Sprintf("exception %q expired yesterday", DemoExceptionReason)},
	}, nil
}
