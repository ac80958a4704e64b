package scan_test

import (
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/assume"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/retry"
)

// fakeClock is the time of STS, the VPC API's token checks and the
// AssumeRole cache alike, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestMemberTokenRenewedMidScan: a member's token nears its expiry while
// the member's connections are listed and is over when they are read. The
// reads are signed with the token the AssumeRole cache renewed in between,
// not with the one the member was entered with: no ERROR, no refused call,
// two AssumeRole calls.
func TestMemberTokenRenewedMidScan(t *testing.T) {
	const beijing = "cn-beijing" // the member's region alone, so a call's region names the member
	start := time.Now().UTC().Truncate(time.Second)
	clock := &fakeClock{now: start}
	srv, err := vpcemu.New(vpcemu.Options{
		Inventory:   &vpcemu.Inventory{AccountID: account, Regions: map[string][]vpcemu.Connection{}},
		Accounts:    map[string]*vpcemu.Inventory{member1: {Regions: map[string][]vpcemu.Connection{beijing: {emuConn("vco-renew1", 2)}}}},
		Credentials: []cred.Credential{emuCred},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.Credentials().SetClock(clock.Now)
	ownCred := emuCred
	ownCred.Account = account
	sts, err := stsemu.New(stsemu.Options{
		Credentials: []cred.Credential{ownCred},
		Roles:       []stsemu.Role{{Account: member1, Name: assume.DefaultRoleName, Trusted: []string{account}}},
		Publish:     []*cred.Store{srv.Credentials()},
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sts.Close)
	cache, err := assume.New(assume.Options{
		Endpoint: endpoint.MustParse(sts.URL()), Base: asScanCreds(emuCred), ScanID: "renew-scan", Now: clock.Now,
		Rate: 1000, Retry: retry.Policy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Tokens last ten minutes. The listing comes six minutes in (the first
	// token still good, but within the cache's five minutes of renewal);
	// the first read eleven minutes in (the first token over, one renewed
	// six minutes in still good). The jumps stay within the quarter hour
	// the services allow a request's clock.
	sts.SetTokenLifetime(10 * time.Minute)
	srv.SetArrivalHook(func(k vpcemu.CallKey) {
		if k.Region != beijing {
			return
		}
		switch k.Action {
		case "DescribeVpnConnections":
			clock.set(start.Add(6 * time.Minute))
		case "DescribeVpnCrossAccountAuthorizations":
			clock.set(start.Add(11 * time.Minute))
		}
	})

	rep, sink := runReq(t, newScanner(t, srv, nil), t.Context(), orgRequest(t, assumed{cache}, member1+"/"+beijing+":*"))
	fs := ownedBy(sink.Findings(), member1)
	if len(fs) != 4 || rep.Summary.Error != 0 || !rep.Complete {
		t.Errorf("member findings %d (want 4, one per rule), errors %d, complete %v: %v", len(fs), rep.Summary.Error, rep.Complete, errorDetails(fs))
	}
	for _, f := range fs {
		if f.Status == finding.StatusError {
			t.Errorf("%s %s: %s", f.VpnConnectionID, f.RuleID, f.StatusDetail)
		}
	}
	for k, c := range srv.Stats().ByKey {
		if c.Errors > 0 {
			t.Errorf("%+v: %d calls refused", k, c.Errors)
		}
	}
	if n := sts.Stats().ByRoleAccount[member1]; n != 2 {
		t.Errorf("%d tokens issued for %s, want 2: one on entering, one renewed before the first expired", n, member1)
	}
}
