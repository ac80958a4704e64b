package vpcemu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
)

var requestIDPattern = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

func TestDescribeAuthorizationsDocExample(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	for _, tc := range []struct {
		name string
		o    clientOptions
	}{
		{"access key", clientOptions{}},
		{"sts token", clientOptions{ak: stsAK, secret: stsSecret, token: stsToken}},
		{"legacy rpc signature", clientOptions{rpc: true}},
		{"legacy rpc signature with sts token", clientOptions{ak: stsAK, secret: stsSecret, token: stsToken, rpc: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s, tc.o)
			resp, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****"))
			if err != nil {
				t.Fatalf("DescribeVpnCrossAccountAuthorizations: %v", err)
			}
			if got := dara.Int32Value(resp.StatusCode); got != 200 {
				t.Errorf("StatusCode = %d", got)
			}
			if got := dara.StringValue(resp.Headers["content-type"]); got != "application/json;charset=utf-8" {
				t.Errorf("content-type = %q", got)
			}
			b := resp.Body
			if id := dara.StringValue(b.RequestId); !requestIDPattern.MatchString(id) || dara.StringValue(resp.Headers["x-acs-request-id"]) != id {
				t.Errorf("RequestId = %q, header x-acs-request-id = %q", id, dara.StringValue(resp.Headers["x-acs-request-id"]))
			}
			if dara.Int32Value(b.PageNumber) != 1 || dara.Int32Value(b.PageSize) != 10 || dara.Int32Value(b.TotalCount) != 1 {
				t.Errorf("PageNumber/PageSize/TotalCount = %d/%d/%d, want 1/10/1", dara.Int32Value(b.PageNumber), dara.Int32Value(b.PageSize), dara.Int32Value(b.TotalCount))
			}
			if len(b.CrossAccountAuthorizations) != 1 {
				t.Fatalf("got %d authorizations, want 1", len(b.CrossAccountAuthorizations))
			}
			a := b.CrossAccountAuthorizations[0]
			for _, f := range []struct {
				name      string
				got, want any
			}{
				{"BindInstance", dara.StringValue(a.BindInstance), "cen-vv8h0t3klfpaae****"},
				{"VpnConnectionId", dara.StringValue(a.VpnConnectionId), "vco-p0w2jpkhi2eeop6q6****"},
				{"AliUid", dara.Int64Value(a.AliUid), int64(1250123456123456)},
				{"BindUid", dara.Int64Value(a.BindUid), int64(1210123456123456)},
				{"BindProduct", dara.StringValue(a.BindProduct), "CEN"},
				{"CreationTime", dara.Int64Value(a.CreationTime), int64(1658201810000)},
			} {
				if f.got != f.want {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func TestAuthorizationsWireShape(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	hook := newHookClient(nil)
	c := newClient(t, s, clientOptions{httpClient: hook})

	// No authorizations: still an array, never null or missing.
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-nobody0000000001")); err != nil {
		t.Fatal(err)
	}
	_, body := hook.last()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if got := string(raw["CrossAccountAuthorizations"]); got != "[]" {
		t.Errorf("CrossAccountAuthorizations = %s, want []", got)
	}
	if got := string(raw["TotalCount"]); got != "0" {
		t.Errorf("TotalCount = %s, want 0", got)
	}

	// The owner defaults to the inventory's account; the list is a bare array.
	if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("ap-southeast-1", "vco-sg00000000000001")); err != nil {
		t.Fatal(err)
	}
	_, body = hook.last()
	var page struct {
		CrossAccountAuthorizations []map[string]any
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if len(page.CrossAccountAuthorizations) != 2 {
		t.Fatalf("got %d authorizations in %s", len(page.CrossAccountAuthorizations), body)
	}
	for _, a := range page.CrossAccountAuthorizations {
		if a["AliUid"] != float64(ownerUID) || a["VpnConnectionId"] != "vco-sg00000000000001" {
			t.Errorf("authorization %v: want AliUid %d and the connection id", a, ownerUID)
		}
	}
	if strings.Contains(string(body), "x-ratelimit") {
		t.Errorf("body mentions rate limit headers: %s", body)
	}
	if req, _ := hook.last(); req == nil {
		t.Fatal("no request seen")
	}
}

func TestDescribeVpnConnections(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	c := newClient(t, s, clientOptions{})

	resp, err := c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-hangzhou")})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.Body
	if dara.Int32Value(b.TotalCount) != 3 || dara.Int32Value(b.PageNumber) != 1 || dara.Int32Value(b.PageSize) != 10 {
		t.Errorf("TotalCount/PageNumber/PageSize = %d/%d/%d", dara.Int32Value(b.TotalCount), dara.Int32Value(b.PageNumber), dara.Int32Value(b.PageSize))
	}
	if b.VpnConnections == nil {
		t.Fatal("VpnConnections missing")
	}
	var ids []string
	for _, v := range b.VpnConnections.VpnConnection {
		ids = append(ids, dara.StringValue(v.VpnConnectionId))
	}
	want := "vco-p0w2jpkhi2eeop6q6****,vco-nobody0000000001,vco-denied0000000001"
	if got := strings.Join(ids, ","); got != want {
		t.Errorf("ids = %s, want %s (listing order)", got, want)
	}
	first := b.VpnConnections.VpnConnection[0]
	if dara.StringValue(first.Name) != "to-partner" || dara.StringValue(first.Status) != "ipsec_sa_established" ||
		dara.Int64Value(first.CreateTime) == 0 || !dara.BoolValue(first.CrossAccountAuthorized) {
		t.Errorf("first connection = %s", first)
	}
	if dara.BoolValue(b.VpnConnections.VpnConnection[1].CrossAccountAuthorized) {
		t.Error("connection without authorizations says CrossAccountAuthorized")
	}

	filtered, err := c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-hangzhou"), VpnConnectionId: dara.String("vco-nobody0000000001")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(filtered.Body.VpnConnections.VpnConnection); n != 1 || dara.Int32Value(filtered.Body.TotalCount) != 1 ||
		dara.StringValue(filtered.Body.VpnConnections.VpnConnection[0].Name) != "unshared" {
		t.Errorf("filtered by id: %s", filtered.Body)
	}

	for _, region := range []string{"eu-central-1", "cn-nowhere"} {
		empty, err := c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String(region)})
		if err != nil {
			t.Fatal(err)
		}
		if dara.Int32Value(empty.Body.TotalCount) != 0 || empty.Body.VpnConnections == nil || len(empty.Body.VpnConnections.VpnConnection) != 0 {
			t.Errorf("%s: %s", region, empty.Body)
		}
	}

	_, err = c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{})
	wantSDKError(t, err, "MissingRegionId", 400)
}

func TestDescribeRegions(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	for _, tc := range []struct {
		lang, hangzhou string
		o              clientOptions
	}{
		{"", "华东1（杭州）", clientOptions{}},
		{"en-US", "China (Hangzhou)", clientOptions{ak: stsAK, secret: stsSecret, token: stsToken}},
		{"en-US", "China (Hangzhou)", clientOptions{rpc: true}},
	} {
		c := newClient(t, s, tc.o)
		req := &vpc.DescribeRegionsRequest{}
		if tc.lang != "" {
			req.AcceptLanguage = dara.String(tc.lang)
		}
		resp, err := c.DescribeRegions(req)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range resp.Body.Regions.Region {
			got = append(got, fmt.Sprintf("%s|%s|%s", dara.StringValue(r.RegionId), dara.StringValue(r.LocalName), dara.StringValue(r.RegionEndpoint)))
		}
		want := []string{
			"ap-southeast-1|" + map[bool]string{false: "新加坡", true: "Singapore"}[tc.lang == "en-US"] + "|vpc.aliyuncs.com",
			"cn-hangzhou|" + tc.hangzhou + "|vpc.aliyuncs.com",
			"eu-central-1|" + map[bool]string{false: "德国（法兰克福）", true: "Germany (Frankfurt)"}[tc.lang == "en-US"] + "|vpc.eu-central-1.aliyuncs.com",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("lang %q regions:\n%s\nwant:\n%s", tc.lang, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	st := s.Stats().Action("DescribeRegions")
	if st.Calls != 3 || st.OK != 3 {
		t.Errorf("DescribeRegions stats = %+v, want 3 calls OK", st)
	}
}

func TestPagination(t *testing.T) {
	s := startServer(t, Options{Inventory: &Inventory{AccountID: "1250123456123456", Regions: map[string][]Connection{}}})
	c := newClient(t, s, clientOptions{})
	for _, n := range []int{0, 1, 50, 51, 120} {
		id := fmt.Sprintf("vco-page%04d", n)
		conn := Connection{VpnConnectionId: id}
		for i := range n {
			conn.Authorizations = append(conn.Authorizations, Authorization{
				BindUid: int64(1000 + i), BindProduct: "CEN", BindInstance: fmt.Sprintf("cen-%04d", i), CreationTime: int64(i),
			})
		}
		s.PutConnection("cn-shanghai", conn)
		for _, size := range []int{50, 10} {
			t.Run(fmt.Sprintf("%d authorizations page size %d", n, size), func(t *testing.T) {
				pages := (n + size - 1) / size
				next := 0
				for p := 1; p <= pages+1; p++ { // one page past the end
					req := authzRequest("cn-shanghai", id)
					req.PageSize, req.PageNumber = dara.Int32(int32(size)), dara.Int32(int32(p))
					resp, err := c.DescribeVpnCrossAccountAuthorizations(req)
					if err != nil {
						t.Fatalf("page %d: %v", p, err)
					}
					b := resp.Body
					if dara.Int32Value(b.TotalCount) != int32(n) || dara.Int32Value(b.PageNumber) != int32(p) || dara.Int32Value(b.PageSize) != int32(size) {
						t.Errorf("page %d: TotalCount/PageNumber/PageSize = %d/%d/%d", p, dara.Int32Value(b.TotalCount), dara.Int32Value(b.PageNumber), dara.Int32Value(b.PageSize))
					}
					wantLen := min(size, n-next)
					if p > pages {
						wantLen = 0
					}
					if len(b.CrossAccountAuthorizations) != wantLen {
						t.Fatalf("page %d: %d items, want %d", p, len(b.CrossAccountAuthorizations), wantLen)
					}
					for _, a := range b.CrossAccountAuthorizations {
						if got, want := dara.StringValue(a.BindInstance), fmt.Sprintf("cen-%04d", next); got != want {
							t.Fatalf("page %d: item %s, want %s", p, got, want)
						}
						next++
					}
				}
				if next != n {
					t.Errorf("collected %d authorizations, want %d", next, n)
				}
			})
		}
	}
	// Connections are paged too.
	req := &vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-shanghai"), PageSize: dara.Int32(2), PageNumber: dara.Int32(3)}
	resp, err := c.DescribeVpnConnections(req)
	if err != nil {
		t.Fatal(err)
	}
	if dara.Int32Value(resp.Body.TotalCount) != 5 || len(resp.Body.VpnConnections.VpnConnection) != 1 ||
		dara.StringValue(resp.Body.VpnConnections.VpnConnection[0].VpnConnectionId) != "vco-page0120" {
		t.Errorf("connections page 3 of 2: %s", resp.Body)
	}
}

func TestPageParameterErrors(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	c := newClient(t, s, clientOptions{})
	for _, tc := range []struct {
		name         string
		number, size *int32
		param        string
	}{
		{"size 0", nil, dara.Int32(0), "PageSize"},
		{"size 51", nil, dara.Int32(51), "PageSize"},
		{"size negative", nil, dara.Int32(-1), "PageSize"},
		{"number 0", dara.Int32(0), nil, "PageNumber"},
		{"number negative", dara.Int32(-3), dara.Int32(10), "PageNumber"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****")
			req.PageNumber, req.PageSize = tc.number, tc.size
			_, err := c.DescribeVpnCrossAccountAuthorizations(req)
			se := wantSDKError(t, err, "InvalidParameter", 400)
			if !strings.Contains(dara.StringValue(se.Message), tc.param) {
				t.Errorf("message %q does not name %s", dara.StringValue(se.Message), tc.param)
			}
			_, err = c.DescribeVpnConnections(&vpc.DescribeVpnConnectionsRequest{RegionId: dara.String("cn-hangzhou"), PageNumber: tc.number, PageSize: tc.size})
			wantSDKError(t, err, "InvalidParameter", 400)
		})
	}
	// Non-numeric values cannot come from the SDK's typed fields: send them signed by hand.
	for _, param := range []string{"PageSize", "PageNumber"} {
		q := map[string][]string{"RegionId": {"cn-hangzhou"}, "VpnConnectionId": {"vco-p0w2jpkhi2eeop6q6****"}, param: {"ten"}}
		req := signedV3(t, s, testAK, testSecret, q, map[string]string{"x-acs-action": "DescribeVpnCrossAccountAuthorizations"}, nil)
		status, body, _ := do(t, req)
		if status != 400 || !strings.Contains(string(body), `"InvalidParameter"`) || !strings.Contains(string(body), param) {
			t.Errorf("%s=ten: %d %s", param, status, body)
		}
	}
}
