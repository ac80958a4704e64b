package assume

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"vpnauthz/internal/endpoint"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/retry"
)

const (
	scannerUID = "1000000000000001"
	fnAK       = "STS.functionRoleKey"
	fnSecret   = "functionRoleSecret0123"
	fnToken    = "CAISfunctionRoleToken"
	extID      = "vpnauthz-ext-42"
)

var base = cloudapi.Credentials{AccessKeyID: fnAK, AccessKeySecret: fnSecret, SecurityToken: fnToken}

type clock struct {
	mu   sync.Mutex
	t    time.Time
	live bool // follow the real time (benchmarks)
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live {
		return time.Now()
	}
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func member(i int) string { return "20000000000000" + string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// cloud is an emulated organisation: the scanner's account and n members,
// each with one connection and a role trusting the scanner.
type cloud struct {
	sts *stsemu.Server
	vpc *vpcemu.Server
	clk *clock
}

func newCloud(t testing.TB, n int) *cloud {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	accounts := map[string]*vpcemu.Inventory{}
	var roles []stsemu.Role
	for i := range n {
		uid := member(i)
		accounts[uid] = &vpcemu.Inventory{Regions: map[string][]vpcemu.Connection{
			"cn-hangzhou": {{VpnConnectionId: "vco-m" + uid}},
		}}
		roles = append(roles, stsemu.Role{Account: uid, Name: DefaultRoleName, Trusted: []string{scannerUID}, ExternalID: extID})
	}
	v, err := vpcemu.New(vpcemu.Options{Inventory: &vpcemu.Inventory{AccountID: scannerUID}, Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	v.Credentials().SetClock(clk.Now)
	s, err := stsemu.New(stsemu.Options{
		Credentials: []cred.Credential{{AccessKeyID: fnAK, AccessKeySecret: fnSecret, SecurityToken: fnToken, Account: scannerUID}},
		Roles:       roles,
		Publish:     []*cred.Store{v.Credentials()},
		Now:         clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &cloud{sts: s, vpc: v, clk: clk}
}

func (c *cloud) cache(t *testing.T, mod func(*Options)) *Cache {
	t.Helper()
	opts := Options{
		Endpoint:   endpoint.MustParse(c.sts.URL()),
		Base:       base,
		ExternalID: extID,
		ScanID:     "0193f2a4-7c1e-7d2b-9a40-5e6f7a8b9c0d",
		Now:        c.clk.Now,
		Rate:       1000,
		Retry:      retry.Policy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	}
	if mod != nil {
		mod(&opts)
	}
	cache, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return cache
}

// readConnection reads the connection through the emulated VPC with tok.
func (c *cloud) readConnection(t *testing.T, tok Token, conn string) error {
	t.Helper()
	client, err := vpc.NewClient(&openapiutil.Config{
		Endpoint: dara.String(c.vpc.Addr()), Protocol: dara.String("http"), RegionId: dara.String("cn-hangzhou"),
		AccessKeyId: dara.String(tok.Credentials.AccessKeyID), AccessKeySecret: dara.String(tok.Credentials.AccessKeySecret),
		SecurityToken: dara.String(tok.Credentials.SecurityToken),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.DescribeVpnCrossAccountAuthorizations(&vpc.DescribeVpnCrossAccountAuthorizationsRequest{
		RegionId: dara.String("cn-hangzhou"), VpnConnectionId: dara.String(conn)})
	return err
}

func sdkCode(err error) string {
	var se *tea.SDKError
	if errors.As(err, &se) {
		return tea.StringValue(se.Code)
	}
	return ""
}

func TestMemberTokenOpensThatMemberOnly(t *testing.T) {
	c := newCloud(t, 2)
	cache := c.cache(t, nil)
	ctx := context.Background()
	tok, err := cache.Credentials(ctx, member(0))
	if err != nil {
		t.Fatalf("Credentials: %v", err)
	}
	if err := c.readConnection(t, tok, "vco-m"+member(0)); err != nil {
		t.Fatalf("member 0's token on member 0's connection: %v", err)
	}
	if err := c.readConnection(t, tok, "vco-m"+member(1)); sdkCode(err) != "InvalidVpnConnectionInstanceId.NotFound" {
		t.Fatalf("member 0's token on member 1's connection: %v, want not found", err)
	}
	calls := c.sts.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1", len(calls))
	}
	got := calls[0]
	if got.RoleArn != "acs:ram::"+member(0)+":role/vpnauthz-auditor" || got.RoleSessionName != "vpnauthz-0193f2a4-7c1e-7d2b-9a40" ||
		!got.ExternalIDSent || got.DurationSeconds != "3600" || !got.LegacySignature || got.CallerKey != fnAK {
		t.Errorf("call = %+v", got)
	}
}

func TestOneCallPerMemberPerScan(t *testing.T) {
	c := newCloud(t, 5)
	cache := c.cache(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 20 {
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cache.Credentials(ctx, member(i)); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := cache.Calls(); n != 5 {
		t.Errorf("%d AssumeRole calls for 100 requests over 5 members, want 5", n)
	}
	if st := c.sts.Stats(); st.Issued != 5 {
		t.Errorf("issued %d tokens, want 5", st.Issued)
	}
}

func TestRefusedMembers(t *testing.T) {
	c := newCloud(t, 3)
	c.sts.DenyRole(member(1), DefaultRoleName)
	ctx := context.Background()
	tests := []struct {
		name    string
		account string
		mod     func(*Options)
		code    string
	}{
		{"trust removed", member(1), nil, "NoPermission"},
		{"ExternalId wrong", member(0), func(o *Options) { o.ExternalID = "wrong-one" }, "NoPermission"},
		{"ExternalId missing", member(0), func(o *Options) { o.ExternalID = "" }, "NoPermission"},
		{"role missing", member(0), func(o *Options) { o.RoleName = "other-role" }, "EntityNotExist.Role"},
		{"account outside the organisation", "9000000000000009", nil, "EntityNotExist.Role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := c.cache(t, tt.mod)
			_, err := cache.Credentials(ctx, tt.account)
			var ae *cloudapi.APIError
			var re *Error
			if !errors.As(err, &ae) || ae.Code != tt.code || !errors.As(err, &re) || re.Account != tt.account {
				t.Fatalf("err = %v, want %s for %s", err, tt.code, tt.account)
			}
			if !Denied(err) {
				t.Errorf("Denied(%v) = false", err)
			}
			if cache.Calls() != 1 {
				t.Errorf("%d calls: a refusal is not retried", cache.Calls())
			}
			for _, secret := range []string{fnSecret, fnToken, extID} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds a secret", err)
				}
			}
		})
	}
	// The refused member does not stop another.
	if _, err := c.cache(t, nil).Credentials(ctx, member(2)); err != nil {
		t.Fatalf("member 2: %v", err)
	}
}

func TestThrottledThenRetried(t *testing.T) {
	c := newCloud(t, 1)
	c.sts.FailNext(2, "Throttling.User")
	cache := c.cache(t, nil)
	if _, err := cache.Credentials(context.Background(), member(0)); err != nil {
		t.Fatalf("Credentials after 2 throttled answers: %v", err)
	}
	if n := cache.Calls(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
	if st := c.sts.Stats(); st.AssumeRole != 3 || st.ByCode["Throttling.User"] != 2 || st.Issued != 1 {
		t.Errorf("emulator stats = %+v, want 3 calls, 2 throttled", st)
	}

	// Throttling gets more attempts than a server error: 3 attempts give
	// up on InternalError, not on ServiceUnavailable (a 503: throttling).
	tests := []struct {
		code      string
		failures  int
		wantCalls int
		wantErr   bool
	}{
		{"InternalError", 3, 3, true},
		{"ServiceUnavailable", 5, 6, false},
		{"NoPermission", 1, 1, true}, // final: asked once
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			before := c.sts.Stats().AssumeRole
			c.sts.FailNext(tt.failures, tt.code)
			cache := c.cache(t, func(o *Options) { o.Retry.MaxAttempts = 3 })
			_, err := cache.Credentials(context.Background(), member(0))
			if n := c.sts.Stats().AssumeRole - before; n != tt.wantCalls {
				t.Errorf("%d AssumeRole calls reached STS, want %d", n, tt.wantCalls)
			}
			switch {
			case !tt.wantErr && err != nil:
				t.Fatalf("err = %v, want the token", err)
			case tt.wantErr && tt.failures > 1 && (err == nil || !strings.Contains(err.Error(), "3 attempts") || Denied(err)):
				t.Fatalf("err = %v, want giving up after 3 attempts", err)
			case tt.wantErr && tt.failures == 1 && !Denied(err):
				t.Fatalf("err = %v, want a refusal", err)
			}
		})
	}
}

func TestTokenRefreshedNearExpiry(t *testing.T) {
	c := newCloud(t, 1)
	c.sts.SetTokenLifetime(10 * time.Minute)
	cache := c.cache(t, func(o *Options) { o.RefreshBefore = 2 * time.Minute })
	ctx := context.Background()
	first, err := cache.Credentials(ctx, member(0))
	if err != nil {
		t.Fatal(err)
	}
	c.clk.Add(7 * time.Minute)
	again, err := cache.Credentials(ctx, member(0))
	if err != nil || again.Credentials.AccessKeyID != first.Credentials.AccessKeyID || cache.Calls() != 1 {
		t.Fatalf("at 7 min: %v, key changed %v, calls %d; want the cached token", err, again.Credentials.AccessKeyID != first.Credentials.AccessKeyID, cache.Calls())
	}
	c.clk.Add(2 * time.Minute) // 9 min: within 2 min of expiry
	fresh, err := cache.Credentials(ctx, member(0))
	if err != nil || fresh.Credentials.AccessKeyID == first.Credentials.AccessKeyID || cache.Calls() != 2 {
		t.Fatalf("at 9 min: %v, calls %d; want a new token", err, cache.Calls())
	}
	c.clk.Add(2 * time.Minute) // 11 min: the first token has expired
	if err := c.readConnection(t, first, "vco-m"+member(0)); sdkCode(err) != "InvalidSecurityToken.Expired" {
		t.Fatalf("expired token: %v, want InvalidSecurityToken.Expired", err)
	}
	if err := c.readConnection(t, fresh, "vco-m"+member(0)); err != nil {
		t.Fatalf("refreshed token: %v", err)
	}
}

func TestCancelledWhileWaiting(t *testing.T) {
	c := newCloud(t, 1)
	cache := c.cache(t, func(o *Options) { o.Rate = 0.001 })
	ctx := context.Background()
	if _, err := cache.Credentials(ctx, member(0)); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cache.Credentials(ctx2, "2000000000000099"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestOptionsAndHelpers(t *testing.T) {
	bad := []struct {
		name string
		opts Options
		want string
	}{
		{"http to a remote host", Options{Endpoint: endpoint.Endpoint{Scheme: "http", Host: "sts.aliyuncs.com"}, Base: base}, "STS_ENDPOINT"},
		{"role name", Options{Endpoint: endpoint.MustParse("https://sts.aliyuncs.com"), Base: base, RoleName: "bad role"}, "MEMBER_ROLE_NAME"},
		{"external id", Options{Endpoint: endpoint.MustParse("https://sts.aliyuncs.com"), Base: base, ExternalID: "x"}, "MEMBER_ROLE_EXTERNAL_ID"},
		{"no credentials", Options{Endpoint: endpoint.MustParse("https://sts.aliyuncs.com")}, "credentials"},
		{"no endpoint or region", Options{Base: base}, "region"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
	if _, err := New(Options{Base: base, Region: "cn-hangzhou"}); err != nil {
		t.Errorf("SDK endpoint for a region: %v", err)
	}
	if _, err := (&Cache{}).Credentials(context.Background(), "12ab"); err == nil {
		t.Error("a non-numeric account was accepted")
	}

	for in, want := range map[string]string{
		"":                      "vpnauthz-scan",
		"abc":                   "vpnauthz-abc",
		"a b*c/d":               "vpnauthz-a-b-c-d",
		strings.Repeat("x", 40): "vpnauthz-" + strings.Repeat("x", 23),
	} {
		if got := SessionName(in); got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		deadline time.Time
		want     time.Duration
	}{
		{time.Time{}, time.Hour},
		{now.Add(5 * time.Minute), 900 * time.Second},
		{now.Add(20 * time.Minute), 21 * time.Minute},
		{now.Add(3 * time.Hour), time.Hour},
	} {
		if got := Duration(now, tt.deadline); got != tt.want {
			t.Errorf("Duration(deadline %v) = %v, want %v", tt.deadline.Sub(now), got, tt.want)
		}
	}
	if s := base.String() + base.GoString(); strings.Contains(s, fnSecret) || strings.Contains(s, fnToken) {
		t.Errorf("credentials print their secret: %s", s)
	}
}

func TestCallerIdentity(t *testing.T) {
	c := newCloud(t, 0)
	id, err := CallerIdentity(context.Background(), endpoint.MustParse(c.sts.URL()), "", base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.AccountID != scannerUID || id.IdentityType != "AssumedRoleUser" {
		t.Errorf("identity = %+v", id)
	}
	_, err = CallerIdentity(context.Background(), endpoint.MustParse(c.sts.URL()), "", cloudapi.Credentials{AccessKeyID: fnAK, AccessKeySecret: "wrong", SecurityToken: fnToken}, nil)
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) || ae.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), fnToken) {
		t.Errorf("error holds the token: %v", err)
	}
}

// BenchmarkAssumeFiftyMembers enters 50 members at the default pacing (90
// calls a second, under the quota of 100): the AssumeRole part of the
// bound of an organisation scan.
func BenchmarkAssumeFiftyMembers(b *testing.B) {
	c := newCloud(b, 50)
	c.clk.mu.Lock()
	c.clk.live = true // the quota refills with the real time
	c.clk.mu.Unlock()
	ctx := context.Background()
	for b.Loop() {
		cache, err := New(Options{Endpoint: endpoint.MustParse(c.sts.URL()), Base: base, ExternalID: extID, ScanID: "bench", Now: c.clk.Now})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cache.Credentials(ctx, member(i)); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		if cache.Calls() != 50 {
			b.Fatalf("%d calls", cache.Calls())
		}
	}
	if st := c.sts.Stats(); st.ByCode["Throttling.User"] != 0 {
		b.Errorf("%d throttled", st.ByCode["Throttling.User"])
	}
}
