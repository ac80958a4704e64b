// Package bench measures vpnauthz's scheduled scan against the API quota: an
// inventory generator, the lower bound a scan can reach, a harness that runs
// the scanner exactly as the function wires it, and a naive peer written the
// way a first script against the SDKs would be, for comparison.
package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/target"
)

// The account, regions and trust lists of every generated inventory.
const (
	AccountID = "1100220033004400"
	// Reference is the "now" creation times are spread back from, fixed so
	// that an inventory depends on its seed and size alone.
	referenceDate = "2026-05-01T00:00:00Z"
)

// Regions share the connections of a generated inventory evenly.
var Regions = []string{"cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen"}

var (
	trustedAccounts = []int64{1200000000000001, 1200000000000002, 1200000000000003}
	trustedCENs     = []string{"cen-trusted0000000001", "cen-trusted0000000002", "cen-trusted0000000003"}
	// exceptedAccount is an untrusted partner with a live exception, so that
	// some findings are SUPPRESSED.
	exceptedAccount int64 = 1300000000000777
)

// Reference is the time generated creation times count back from.
func Reference() time.Time {
	t, err := time.Parse(time.RFC3339, referenceDate)
	if err != nil {
		panic(err)
	}
	return t
}

// Policy is the trust policy every side of the benchmark judges by: all four
// rules on, so each authorization gives four findings, and one exception.
func Policy() policy.Policy {
	p := policy.Policy{MaxAuthorizationAgeDays: 365}
	for _, a := range trustedAccounts {
		p.TrustedAccountIDs = append(p.TrustedAccountIDs, strconv.FormatInt(a, 10))
	}
	p.TrustedCENIDs = append(p.TrustedCENIDs, trustedCENs...)
	p.Exceptions = []policy.Exception{{
		VpnConnectionID: "*",
		BindUID:         strconv.FormatInt(exceptedAccount, 10),
		Rules:           []string{"untrusted-account"},
		Reason:          "partner migration, ticket NET-123",
		Expires:         time.Date(2099, 1, 31, 0, 0, 0, 0, time.UTC),
	}}
	return p
}

// Targets is the scheduled scan of a generated inventory: every connection of
// every region.
func Targets() []target.Target {
	out := make([]target.Target, len(Regions))
	for i, r := range Regions {
		out[i] = target.Target{Region: r, ConnectionID: target.All}
	}
	return out
}

// Generate returns n connections spread evenly over Regions, the same for the
// same seed and n. Most connections hold 0 to 3 authorizations; about 1 % hold
// 51 to 120, more than one page of the API's largest, so that paging is part
// of the measure. Authorizations go to trusted and untrusted accounts, mostly
// CEN, over trusted and other CEN instances, created over the last three years.
func Generate(seed uint64, n int) *vpcemu.Inventory {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	ref := Reference().UnixMilli()
	inv := &vpcemu.Inventory{AccountID: AccountID, Regions: map[string][]vpcemu.Connection{}}
	for i := range n {
		region := Regions[i%len(Regions)]
		id := fmt.Sprintf("vco-%s%08d", regionCode(region), i)
		inv.Regions[region] = append(inv.Regions[region], generateConnection(rng, id, ref))
	}
	return inv
}

// generateConnection draws one connection's authorizations.
func generateConnection(rng *rand.Rand, id string, ref int64) vpcemu.Connection {
	const threeYears = 3 * 365 * 24 * time.Hour
	c := vpcemu.Connection{VpnConnectionId: id, Authorizations: []vpcemu.Authorization{}}
	count := authorizationCount(rng)
	seen := map[string]bool{}
	for len(c.Authorizations) < count {
		a := vpcemu.Authorization{
			BindUid:      bindAccount(rng),
			BindProduct:  "CEN",
			BindInstance: bindInstance(rng, len(c.Authorizations)),
			CreationTime: ref - rng.Int64N(int64(threeYears/time.Millisecond)),
		}
		// The API holds one authorization per account and instance.
		key := fmt.Sprint(a.BindUid, a.BindInstance)
		if seen[key] {
			continue
		}
		seen[key] = true
		if rng.IntN(100) < 2 {
			a.BindProduct = "VBR"
		}
		c.Authorizations = append(c.Authorizations, a)
	}
	return c
}

// regionCode is a short, id-safe form of a region, so that connection ids
// stay unique across regions and tell where they live.
func regionCode(region string) string {
	code := make([]byte, 0, 4)
	for i := range len(region) {
		if region[i] >= 'a' && region[i] <= 'z' && (i == 0 || region[i-1] == '-') {
			code = append(code, region[i], region[i+1])
		}
	}
	return string(code)
}

func authorizationCount(rng *rand.Rand) int {
	if rng.IntN(100) == 0 {
		return 51 + rng.IntN(70)
	}
	switch p := rng.IntN(100); {
	case p < 40:
		return 0
	case p < 70:
		return 1
	case p < 88:
		return 2
	default:
		return 3
	}
}

func bindAccount(rng *rand.Rand) int64 {
	switch p := rng.IntN(100); {
	case p < 55:
		return trustedAccounts[rng.IntN(len(trustedAccounts))]
	case p < 60:
		return exceptedAccount
	default:
		return 1400000000000000 + rng.Int64N(1e12)
	}
}

func bindInstance(rng *rand.Rand, i int) string {
	if rng.IntN(100) < 60 {
		return trustedCENs[rng.IntN(len(trustedCENs))]
	}
	return fmt.Sprintf("cen-other%06d%04d", rng.IntN(1_000_000), i)
}

// Bound is the least a scan of an inventory can do within the quota.
type Bound struct {
	Calls   int           // the fewest VPC API calls over all regions
	Time    time.Duration // the longest region's calls at the quota
	Regions map[string]int
}

// ComputeBound gives, per region, ceil(connections/50) listing pages plus, for
// each connection, max(1, ceil(authorizations/50)) pages of authorizations;
// regions are read in parallel, each at quota calls a second, so the bound's
// time is the slowest region's calls over the quota.
func ComputeBound(inv *vpcemu.Inventory, quota float64) Bound {
	const pageSize = 50
	pages := func(n int) int { return (n + pageSize - 1) / pageSize }
	b := Bound{Regions: map[string]int{}}
	worst := 0
	for region, conns := range inv.Regions {
		calls := max(1, pages(len(conns)))
		for _, c := range conns {
			calls += max(1, pages(len(c.Authorizations)))
		}
		b.Regions[region] = calls
		b.Calls += calls
		worst = max(worst, calls)
	}
	b.Time = time.Duration(float64(worst) / quota * float64(time.Second))
	return b
}
