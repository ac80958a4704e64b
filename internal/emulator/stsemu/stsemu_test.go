package stsemu

import (
	"errors"
	"sync"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"vpnauthz/internal/emulator/cred"
)

const (
	scannerUID = "1000000000000001"
	memberUID  = "2000000000000002"
	otherUID   = "3000000000000003"
	fnAK       = "STS.functionRoleKey"
	fnSecret   = "functionRoleSecret0123"
	fnToken    = "CAISfunctionRoleToken"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = []cred.Credential{{AccessKeyID: fnAK, AccessKeySecret: fnSecret, SecurityToken: fnToken, Account: scannerUID}}
	}
	if opts.Roles == nil {
		opts.Roles = []Role{
			{Account: memberUID, Name: "vpnauthz-auditor", Trusted: []string{scannerUID}, ExternalID: "ext-123"},
			{Account: otherUID, Name: "vpnauthz-auditor", Trusted: []string{"4000000000000004"}},
		}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, s *Server, ak, secret, token string) *sts.Client {
	t.Helper()
	cfg := &openapiutil.Config{
		Endpoint:        dara.String(s.Addr()),
		Protocol:        dara.String("http"),
		AccessKeyId:     dara.String(ak),
		AccessKeySecret: dara.String(secret),
		RegionId:        dara.String("cn-hangzhou"),
	}
	if token != "" {
		cfg.SecurityToken = dara.String(token)
	}
	c, err := sts.NewClient(cfg)
	if err != nil {
		t.Fatalf("sts.NewClient: %v", err)
	}
	return c
}

func assumeReq(arn, session, ext string, duration int64) *sts.AssumeRoleRequest {
	r := &sts.AssumeRoleRequest{RoleArn: dara.String(arn), RoleSessionName: dara.String(session)}
	if ext != "" {
		r.ExternalId = dara.String(ext)
	}
	if duration != 0 {
		r.DurationSeconds = dara.Int64(duration)
	}
	return r
}

func TestAssumeRoleIssuesATokenOfTheRoleAccount(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	published := cred.NewStore()
	s := newServer(t, Options{Publish: []*cred.Store{published}, Now: clk.Now})
	c := client(t, s, fnAK, fnSecret, fnToken)

	resp, err := c.AssumeRole(assumeReq("acs:ram::"+memberUID+":role/vpnauthz-auditor", "vpnauthz-scan1", "ext-123", 1200))
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	cr := resp.Body.Credentials
	ak := tea.StringValue(cr.AccessKeyId)
	if len(ak) < 8 || ak[:4] != "STS." || tea.StringValue(cr.SecurityToken) == "" || tea.StringValue(cr.AccessKeySecret) == "" {
		t.Fatalf("credentials = %+v, want an STS.* key with secret and token", cr)
	}
	if want := clk.Now().Add(1200 * time.Second).Format("2006-01-02T15:04:05Z"); tea.StringValue(cr.Expiration) != want {
		t.Errorf("Expiration = %s, want %s", tea.StringValue(cr.Expiration), want)
	}
	if got := tea.StringValue(resp.Body.AssumedRoleUser.Arn); got != "acs:ram::"+memberUID+":role/vpnauthz-auditor/vpnauthz-scan1" {
		t.Errorf("AssumedRoleUser.Arn = %s", got)
	}
	pub, ok := published.Lookup(ak)
	if !ok || pub.Account != memberUID || pub.SecurityToken != tea.StringValue(cr.SecurityToken) {
		t.Fatalf("published credential = %+v (found %v), want the token under account %s", pub, ok, memberUID)
	}
	if _, p := published.Check(ak, pub.SecurityToken); p != cred.OK {
		t.Errorf("published token check = %v, want OK", p)
	}
	calls := s.Calls()
	if len(calls) != 1 || !calls[0].LegacySignature || calls[0].CallerAccount != scannerUID || !calls[0].ExternalIDSent || calls[0].DurationSeconds != "1200" {
		t.Errorf("calls = %+v, want one RPC-signed call from %s with an ExternalId and 1200 s", calls, scannerUID)
	}
	if st := s.Stats(); st.Issued != 1 || st.ByRoleAccount[memberUID] != 1 {
		t.Errorf("stats = %+v", st)
	}

	// The member token asks who it is.
	who, err := client(t, s, ak, tea.StringValue(cr.AccessKeySecret), tea.StringValue(cr.SecurityToken)).GetCallerIdentity()
	if err != nil {
		t.Fatalf("GetCallerIdentity with the member token: %v", err)
	}
	if tea.StringValue(who.Body.AccountId) != memberUID || tea.StringValue(who.Body.IdentityType) != "AssumedRoleUser" ||
		tea.StringValue(who.Body.Arn) != "acs:ram::"+memberUID+":assumed-role/vpnauthz-auditor/vpnauthz-scan1" {
		t.Errorf("identity = %+v", who.Body)
	}
}

func TestAssumeRoleRefusals(t *testing.T) {
	s := newServer(t, Options{})
	s.DenyRole(memberUID, "denied-role")
	if err := s.AddRole(Role{Account: memberUID, Name: "denied-role", Trusted: []string{scannerUID}}); err != nil {
		t.Fatal(err)
	}
	s.DenyRole(memberUID, "denied-role")
	good := client(t, s, fnAK, fnSecret, fnToken)
	memberArn := "acs:ram::" + memberUID + ":role/vpnauthz-auditor"
	tests := []struct {
		name   string
		c      *sts.Client
		req    *sts.AssumeRoleRequest
		status int
		code   string
	}{
		{"no RoleArn", good, &sts.AssumeRoleRequest{RoleSessionName: dara.String("vpnauthz-x")}, 400, "MissingRoleArn"},
		{"malformed RoleArn", good, assumeReq("arn:aws:iam::1:role/x", "vpnauthz-x", "", 0), 400, "InvalidParameter.RoleArn"},
		{"no session name", good, &sts.AssumeRoleRequest{RoleArn: dara.String(memberArn)}, 400, "MissingRoleSessionName"},
		{"session name too short", good, assumeReq(memberArn, "a", "ext-123", 0), 400, "InvalidParameter.RoleSessionName"},
		{"session name with *", good, assumeReq(memberArn, "abc*abc", "ext-123", 0), 400, "InvalidParameter.RoleSessionName"},
		{"duration below 900", good, assumeReq(memberArn, "vpnauthz-x", "ext-123", 899), 400, "InvalidParameter.DurationSeconds"},
		{"duration above 3600", good, assumeReq(memberArn, "vpnauthz-x", "ext-123", 3601), 400, "InvalidParameter.DurationSeconds"},
		{"no such role", good, assumeReq("acs:ram::"+memberUID+":role/nope", "vpnauthz-x", "", 0), 404, "EntityNotExist.Role"},
		{"role trusts another account", good, assumeReq("acs:ram::"+otherUID+":role/vpnauthz-auditor", "vpnauthz-x", "", 0), 403, "NoPermission"},
		{"ExternalId missing", good, assumeReq(memberArn, "vpnauthz-x", "", 0), 403, "NoPermission"},
		{"ExternalId wrong", good, assumeReq(memberArn, "vpnauthz-x", "ext-999", 0), 403, "NoPermission"},
		{"trust removed", good, assumeReq("acs:ram::"+memberUID+":role/denied-role", "vpnauthz-x", "", 0), 403, "NoPermission"},
		{"wrong secret", client(t, s, fnAK, "not-the-secret", fnToken), assumeReq(memberArn, "vpnauthz-x", "ext-123", 0), 400, "SignatureDoesNotMatch"},
		{"unknown key", client(t, s, "LTAIunknown", "x", ""), assumeReq(memberArn, "vpnauthz-x", "ext-123", 0), 404, "InvalidAccessKeyId.NotFound"},
		{"token of another key", client(t, s, fnAK, fnSecret, "CAISforged"), assumeReq(memberArn, "vpnauthz-x", "ext-123", 0), 400, "InvalidSecurityToken.Malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.AssumeRole(tt.req)
			var se *tea.SDKError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if tea.StringValue(se.Code) != tt.code || tea.IntValue(se.StatusCode) != tt.status {
				t.Fatalf("answer = %d %s (%s), want %d %s", tea.IntValue(se.StatusCode), tea.StringValue(se.Code), tea.StringValue(se.Message), tt.status, tt.code)
			}
		})
	}
	if st := s.Stats(); st.Issued != 0 {
		t.Errorf("issued %d tokens on refusals", st.Issued)
	}
}

func TestQuotaAndInjectedFailures(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	s := newServer(t, Options{Now: clk.Now})
	s.SetQuota(3, 3)
	c := client(t, s, fnAK, fnSecret, fnToken)
	req := assumeReq("acs:ram::"+memberUID+":role/vpnauthz-auditor", "vpnauthz-q", "ext-123", 0)
	code := func() string {
		t.Helper()
		_, err := c.AssumeRole(req)
		var se *tea.SDKError
		if errors.As(err, &se) {
			return tea.StringValue(se.Code)
		}
		if err != nil {
			t.Fatalf("AssumeRole: %v", err)
		}
		return ""
	}
	for i := range 3 {
		if got := code(); got != "" {
			t.Fatalf("call %d within the quota: %s", i+1, got)
		}
	}
	if got := code(); got != "Throttling.User" {
		t.Fatalf("call beyond the quota: %q, want Throttling.User", got)
	}
	clk.Add(time.Second)
	if got := code(); got != "" {
		t.Fatalf("call a second later: %s", got)
	}

	s.SetQuota(0, 0)
	s.FailNext(2, "ServiceUnavailable")
	if got := code(); got != "ServiceUnavailable" {
		t.Fatalf("injected 1: %q", got)
	}
	if got := code(); got != "ServiceUnavailable" {
		t.Fatalf("injected 2: %q", got)
	}
	if got := code(); got != "" {
		t.Fatalf("after the injected failures: %q", got)
	}
	st := s.Stats()
	if st.ByCode["Throttling.User"] != 1 || st.ByCode["ServiceUnavailable"] != 2 || st.Issued != 5 || st.AssumeRole != 8 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTokenLifetimeOverride(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := newServer(t, Options{Now: clk.Now})
	s.SetTokenLifetime(2 * time.Minute)
	resp, err := client(t, s, fnAK, fnSecret, fnToken).AssumeRole(assumeReq("acs:ram::"+memberUID+":role/vpnauthz-auditor", "vpnauthz-l", "ext-123", 3600))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tea.StringValue(resp.Body.Credentials.Expiration), clk.Now().Add(2*time.Minute).Format("2006-01-02T15:04:05Z"); got != want {
		t.Errorf("Expiration = %s, want %s", got, want)
	}
}

func TestGetCallerIdentityOfTheFunctionRole(t *testing.T) {
	s := newServer(t, Options{})
	who, err := client(t, s, fnAK, fnSecret, fnToken).GetCallerIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if tea.StringValue(who.Body.AccountId) != scannerUID || tea.StringValue(who.Body.IdentityType) != "AssumedRoleUser" {
		t.Errorf("identity = %+v", who.Body)
	}
	if s.Stats().GetCallerIdentity != 1 {
		t.Errorf("GetCallerIdentity counter = %d", s.Stats().GetCallerIdentity)
	}
}

func TestAddRoleRefusesBadRoles(t *testing.T) {
	s := newServer(t, Options{})
	for _, r := range []Role{{Account: "x1", Name: "r"}, {Account: memberUID, Name: "bad name"}, {Account: memberUID, Name: ""}} {
		if err := s.AddRole(r); err == nil {
			t.Errorf("AddRole(%+v) accepted", r)
		}
	}
}
