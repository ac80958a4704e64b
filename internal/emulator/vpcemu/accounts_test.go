package vpcemu

import (
	"errors"
	"testing"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/emulator/cred"
)

const (
	memberUID    = "1310000000000001"
	memberAK     = "STS.memberAccessKey"
	memberSecret = "memberSecret0123456789"
	memberToken  = "CAISmemberSecurityToken"
)

// memberClient signs with the given STS credential, as a scanner holding an
// assumed role's token does.
func memberClient(t *testing.T, s *Server, ak, secret, token string) *vpc.Client {
	t.Helper()
	c, err := vpc.NewClient(&openapiutil.Config{
		Endpoint:        dara.String(s.Addr()),
		Protocol:        dara.String("http"),
		AccessKeyId:     dara.String(ak),
		AccessKeySecret: dara.String(secret),
		SecurityToken:   dara.String(token),
		RegionId:        dara.String("cn-hangzhou"),
	})
	if err != nil {
		t.Fatalf("vpc.NewClient: %v", err)
	}
	return c
}

func twoAccountServer(t *testing.T) *Server {
	t.Helper()
	own := &Inventory{AccountID: "1250123456123456", Regions: map[string][]Connection{
		"cn-hangzhou": {{VpnConnectionId: "vco-own1", Authorizations: []Authorization{{BindUid: 1777, BindProduct: "CEN", BindInstance: "cen-own"}}}},
	}}
	member := &Inventory{Regions: map[string][]Connection{
		"cn-hangzhou": {
			{VpnConnectionId: "vco-member1", Authorizations: []Authorization{{BindUid: 1888, BindProduct: "CEN", BindInstance: "cen-member"}}},
			{VpnConnectionId: "vco-member2"},
		},
		"cn-shanghai": {{VpnConnectionId: "vco-member3"}},
	}}
	creds := append(testCredentials(), cred.Credential{
		AccessKeyID: memberAK, AccessKeySecret: memberSecret, SecurityToken: memberToken, Account: memberUID,
	})
	return startServer(t, Options{Inventory: own, Accounts: map[string]*Inventory{memberUID: member}, Credentials: creds})
}

func TestMemberTokenSeesOnlyItsAccount(t *testing.T) {
	s := twoAccountServer(t)
	member := memberClient(t, s, memberAK, memberSecret, memberToken)
	own := memberClient(t, s, stsAK, stsSecret, stsToken)

	list, err := member.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: tea.String("cn-hangzhou"), PageSize: tea.Int32(50)})
	if err != nil {
		t.Fatalf("member DescribeVpnConnections: %v", err)
	}
	var ids []string
	for _, c := range list.Body.VpnConnections.VpnConnection {
		ids = append(ids, tea.StringValue(c.VpnConnectionId))
	}
	if len(ids) != 2 || ids[0] != "vco-member1" || ids[1] != "vco-member2" || tea.Int32Value(list.Body.TotalCount) != 2 {
		t.Errorf("member listing = %v (total %d), want its own two connections", ids, tea.Int32Value(list.Body.TotalCount))
	}

	auth, err := member.DescribeVpnCrossAccountAuthorizations(&vpc.DescribeVpnCrossAccountAuthorizationsRequest{RegionId: tea.String("cn-hangzhou"), VpnConnectionId: tea.String("vco-member1")})
	if err != nil {
		t.Fatalf("member reads its connection: %v", err)
	}
	if got := auth.Body.CrossAccountAuthorizations; len(got) != 1 || tea.Int64Value(got[0].AliUid) != 1310000000000001 || tea.Int64Value(got[0].BindUid) != 1888 {
		t.Errorf("member authorizations = %+v, want one owned by the member, bound to 1888", got)
	}

	regions, err := member.DescribeRegions(&vpc.DescribeRegionsRequest{})
	if err != nil {
		t.Fatalf("member DescribeRegions: %v", err)
	}
	if n := len(regions.Body.Regions.Region); n != 2 {
		t.Errorf("member sees %d regions, want its 2", n)
	}

	tests := []struct {
		name   string
		client *vpc.Client
		conn   string
	}{
		{"member token on the own account's connection", member, "vco-own1"},
		{"own token on a member's connection", own, "vco-member1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.DescribeVpnCrossAccountAuthorizations(&vpc.DescribeVpnCrossAccountAuthorizationsRequest{RegionId: tea.String("cn-hangzhou"), VpnConnectionId: tea.String(tt.conn)})
			var se *tea.SDKError
			if !errors.As(err, &se) || tea.StringValue(se.Code) != "InvalidVpnConnectionInstanceId.NotFound" || tea.IntValue(se.StatusCode) != 404 {
				t.Fatalf("err = %v, want 404 InvalidVpnConnectionInstanceId.NotFound", err)
			}
		})
	}

	st := s.Stats()
	if c := st.ByKey[CallKey{Action: "DescribeVpnConnections", Region: "cn-hangzhou", Account: memberUID}]; c.OK != 1 {
		t.Errorf("member's DescribeVpnConnections counter = %+v, want 1 OK under its account", c)
	}
	if c := st.ByKey[CallKey{Action: "DescribeVpnCrossAccountAuthorizations", Region: "cn-hangzhou"}]; c.Errors != 1 {
		t.Errorf("own account's counter = %+v, want its one error under the own key", c)
	}
}

func TestMemberQuotaIsItsOwn(t *testing.T) {
	s := twoAccountServer(t)
	s.SetQuota(0.001, 1) // one call, then throttled, per (account, region, action)
	member := memberClient(t, s, memberAK, memberSecret, memberToken)
	own := memberClient(t, s, stsAK, stsSecret, stsToken)
	req := &vpc.DescribeVpnConnectionsRequest{RegionId: tea.String("cn-hangzhou")}
	if _, err := member.DescribeVpnConnections(req); err != nil {
		t.Fatalf("member's first call: %v", err)
	}
	if _, err := own.DescribeVpnConnections(req); err != nil {
		t.Fatalf("own account's first call, after the member's: %v (quotas must be per account)", err)
	}
	_, err := member.DescribeVpnConnections(req)
	var se *tea.SDKError
	if !errors.As(err, &se) || tea.StringValue(se.Code) != "Throttling.User" {
		t.Fatalf("member's second call: err = %v, want Throttling.User", err)
	}
}

func TestAddAccountRefusesBadInput(t *testing.T) {
	s := twoAccountServer(t)
	tests := []struct {
		name string
		uid  string
		inv  *Inventory
	}{
		{"not an account id", "12ab", nil},
		{"the server's own account", "1250123456123456", nil},
		{"inventory of another account", "1310000000000002", &Inventory{AccountID: "1310000000000003"}},
		{"invalid inventory", "1310000000000002", &Inventory{Regions: map[string][]Connection{"cn-hangzhou": {{VpnConnectionId: "bad"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.AddAccount(tt.uid, tt.inv); err == nil {
				t.Fatal("AddAccount accepted it")
			}
		})
	}
	if got := s.Accounts(); len(got) != 1 || got[0] != memberUID {
		t.Errorf("Accounts() = %v, want only %s", got, memberUID)
	}
	if inv := s.SnapshotAccount(memberUID); inv == nil || len(inv.Regions["cn-hangzhou"]) != 2 {
		t.Errorf("SnapshotAccount = %+v", inv)
	}
}
