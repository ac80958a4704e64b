package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"vpnauthz/internal/emulator/vpcemu"
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

// DemoEnv is the demo's trust policy and scope, as the function's
// environment: the endpoints and credentials come from Cloud.Env. The values
// do not depend on the time; the policy file's exception does.
func DemoEnv(policyPath string) map[string]string {
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
	expires := now.UTC().AddDate(0, 0, 90).Format(time.DateOnly)
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
