package bench

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/emulator/vpcemu"
)

// OrgShape is an organisation scenario: Accounts accounts (the function's own
// and Accounts-1 members), each with Connections connections in each of
// Regions regions.
type OrgShape struct {
	Accounts, Regions, Connections int
}

// MaxOrgRegions is the most regions an organisation scenario spreads over.
const MaxOrgRegions = 12

// orgRegions are the regions of an organisation scenario, Regions first.
var orgRegions = append(slices.Clone(Regions),
	"cn-qingdao", "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu",
	"cn-chengdu", "cn-guangzhou", "cn-hongkong", "ap-southeast-1")

// ParseOrgShape reads ACCOUNTSxREGIONSxCONNECTIONS, like 50x4x100.
func ParseOrgShape(s string) (OrgShape, error) {
	parts := strings.Split(s, "x")
	if len(parts) != 3 {
		return OrgShape{}, fmt.Errorf("organisation %q: want ACCOUNTSxREGIONSxCONNECTIONS, like 50x4x100", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return OrgShape{}, fmt.Errorf("organisation %q: %q is not a positive number", s, p)
		}
		n[i] = v
	}
	o := OrgShape{Accounts: n[0], Regions: n[1], Connections: n[2]}
	if o.Regions > MaxOrgRegions {
		return OrgShape{}, fmt.Errorf("organisation %q: at most %d regions", s, MaxOrgRegions)
	}
	if o.Accounts > 10_000 {
		return OrgShape{}, fmt.Errorf("organisation %q: at most 10,000 accounts", s)
	}
	return o, nil
}

func (o OrgShape) String() string {
	return fmt.Sprintf("%dx%dx%d", o.Accounts, o.Regions, o.Connections)
}

// Total is the organisation's connections.
func (o OrgShape) Total() int { return o.Accounts * o.Regions * o.Connections }

// Org is a generated organisation: what the emulated VPC API holds for each
// account (vpcemu.Options Inventory and Accounts) and the member role the
// emulated STS lets the function's account assume in every member
// (stsemu.Options Roles).
type Org struct {
	Shape      OrgShape
	Own        *vpcemu.Inventory            // the function's account, AccountID
	Members    map[string]*vpcemu.Inventory // by account id
	Roles      []stsemu.Role
	RoleName   string // MEMBER_ROLE_NAME
	ExternalID string // MEMBER_ROLE_EXTERNAL_ID
}

// The member role of a generated organisation.
const (
	OrgRoleName   = "vpnauthz-member"
	OrgExternalID = "vpnauthz-bench"
)

// MemberID is the account id of the i-th member (from 1) of a generated
// organisation.
func MemberID(i int) string { return strconv.FormatInt(1100220033010000+int64(i), 10) }

// GenerateOrg returns the organisation of shape, the same for the same seed
// and shape: every account's connections drawn as Generate draws them.
func GenerateOrg(seed uint64, shape OrgShape) *Org {
	rng := rand.New(rand.NewPCG(seed, uint64(shape.Total())))
	ref := Reference().UnixMilli()
	org := &Org{Shape: shape, Members: map[string]*vpcemu.Inventory{}, RoleName: OrgRoleName, ExternalID: OrgExternalID}
	for a := range shape.Accounts {
		uid := AccountID
		if a > 0 {
			uid = MemberID(a)
		}
		inv := &vpcemu.Inventory{AccountID: uid, Regions: map[string][]vpcemu.Connection{}}
		for r, region := range orgRegions[:shape.Regions] {
			for i := range shape.Connections {
				// The region's index too: cn-shanghai and cn-shenzhen share a code.
				id := fmt.Sprintf("vco-%s%02d%04d%06d", regionCode(region), r, a, i)
				inv.Regions[region] = append(inv.Regions[region], generateConnection(rng, id, ref))
			}
		}
		if a == 0 {
			org.Own = inv
			continue
		}
		org.Members[uid] = inv
		org.Roles = append(org.Roles, stsemu.Role{Account: uid, Name: OrgRoleName, Trusted: []string{AccountID}, ExternalID: OrgExternalID})
	}
	return org
}

// GenerateOrgTargets is the scheduled scan of an organisation of shape:
// every region of every account, as SCAN_TARGETS.
func GenerateOrgTargets(shape OrgShape) []string {
	out := make([]string, shape.Regions)
	for i, r := range orgRegions[:shape.Regions] {
		out[i] = r + ":*"
	}
	return out
}

// Targets is the scheduled scan of the whole organisation: every region of
// every account, own included ("REGION:*" covers every scanned account).
func (o *Org) Targets() []string { return GenerateOrgTargets(o.Shape) }

// MemberIDs are the members' account ids, in order.
func (o *Org) MemberIDs() []string {
	return slices.Sorted(maps.Keys(o.Members))
}

// WriteOrg writes org as the organisation file `vpnauthz emulate --org`
// serves: the own account's inventory, the member role and every member with
// its inventory.
func WriteOrg(path string, org *Org) error {
	f := emulator.OrganizationFile{Inventory: org.Own, RoleName: org.RoleName, ExternalID: org.ExternalID}
	for _, uid := range org.MemberIDs() {
		f.Members = append(f.Members, emulator.Member{AccountID: uid, Inventory: org.Members[uid]})
	}
	return emulator.WriteOrganization(path, f)
}

// OrgBound is the least a scan of an organisation can take.
type OrgBound struct {
	Calls int           // the fewest VPC API calls, every account and region
	Time  time.Duration // see ComputeOrgBound
	// Slowest is the account and region that set Time, and Wait the
	// AssumeRole pacing before its account could be entered.
	SlowestAccount, SlowestRegion string
	Wait                          time.Duration
}

// ComputeOrgBound gives the bound of a scan of org: each (account, region)
// reads its fewest calls (ComputeBound) at quota calls a second, all of them
// in parallel, but a member can only start once its role is assumed, and
// AssumeRole is paced at assumeRate calls a second from the start (the first
// at once). The function's own account starts at once. Whatever order a
// scanner enters members in, one of them waits i/assumeRate for the i-th slot,
// so the bound takes the best order, the busiest member first: Time is the
// largest of wait + calls/quota over every (account, region).
func ComputeOrgBound(org *Org, quota, assumeRate float64) OrgBound {
	type work struct {
		account, region string
		calls           int
	}
	slowest := func(uid string, inv *vpcemu.Inventory) work {
		b := ComputeBound(inv, quota)
		w := work{account: uid}
		for _, region := range slices.Sorted(func(yield func(string) bool) {
			for r := range b.Regions {
				if !yield(r) {
					return
				}
			}
		}) {
			if b.Regions[region] > w.calls {
				w = work{uid, region, b.Regions[region]}
			}
		}
		return w
	}
	var out OrgBound
	atQuota := func(calls int) time.Duration { return time.Duration(float64(calls) / quota * float64(time.Second)) }
	consider := func(w work, wait time.Duration) {
		if t := wait + atQuota(w.calls); t > out.Time {
			out.Time, out.SlowestAccount, out.SlowestRegion, out.Wait = t, w.account, w.region, wait
		}
	}
	out.Calls = ComputeBound(org.Own, quota).Calls
	consider(slowest(org.Own.AccountID, org.Own), 0)
	var members []work
	for uid, inv := range org.Members {
		out.Calls += ComputeBound(inv, quota).Calls
		members = append(members, slowest(uid, inv))
	}
	slices.SortFunc(members, func(a, b work) int {
		if a.calls != b.calls {
			return b.calls - a.calls
		}
		return strings.Compare(a.account, b.account)
	})
	for i, w := range members {
		consider(w, time.Duration(float64(i)/assumeRate*float64(time.Second)))
	}
	return out
}
