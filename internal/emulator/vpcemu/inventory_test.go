package vpcemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadInventoryFile(t *testing.T) {
	inv := loadTestInventory(t)
	if inv.AccountID != "1250123456123456" {
		t.Errorf("AccountId = %q", inv.AccountID)
	}
	hz := inv.Regions["cn-hangzhou"]
	if len(hz) != 3 || len(inv.Regions["ap-southeast-1"]) != 1 || len(inv.Regions) != 3 {
		t.Fatalf("regions = %+v", inv.Regions)
	}
	want := Authorization{AliUid: 1250123456123456, BindUid: 1210123456123456, BindProduct: "CEN", BindInstance: "cen-vv8h0t3klfpaae****", CreationTime: 1658201810000}
	if hz[0].VpnConnectionId != "vco-p0w2jpkhi2eeop6q6****" || hz[0].Name != "to-partner" || len(hz[0].Authorizations) != 1 || hz[0].Authorizations[0] != want {
		t.Errorf("first connection = %+v", hz[0])
	}
	if hz[2].Error == nil || hz[2].Error.Code != "Forbidden.RAM" || hz[2].Error.HTTPStatus != 403 {
		t.Errorf("third connection = %+v", hz[2])
	}

	if _, err := LoadInventory(filepath.Join(t.TempDir(), "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"AccountId":"1","Regions":{"cn-hangzhou":[{"VpnConnectionId":"x"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadInventory(bad); err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), `Regions["cn-hangzhou"][0].VpnConnectionId`) {
		t.Errorf("bad file: %v", err)
	}
}

func TestParseInventoryRejects(t *testing.T) {
	conn := func(body string) string {
		return `{"AccountId":"1250123456123456","Regions":{"cn-hangzhou":[` + body + `]}}`
	}
	auth := func(body string) string {
		return conn(`{"VpnConnectionId":"vco-1","Authorizations":[` + body + `]}`)
	}
	for _, tc := range []struct {
		name, json, place string
	}{
		{"syntax", "{\n\"AccountId\": \"1\",\n\"Regions\": {,}\n}", "line 3"},
		{"trailing data", `{"AccountId":"1","Regions":{}} {}`, "after top-level value (line 1, column 33)"},
		{"unknown top field", `{"AccountId":"1","Regionz":{}}`, "Regionz: unknown field"},
		{"field in other case", `{"accountid":"1","Regions":{}}`, "accountid: unknown field"},
		{"unknown connection field", conn(`{"VpnConnectionID":"vco-1"}`), `Regions["cn-hangzhou"][0].VpnConnectionID: unknown field`},
		{"unknown authorization field", auth(`{"BindUid":1,"BindProduct":"CEN","BindInstance":"cen-1","Owner":2}`), `Regions["cn-hangzhou"][0].Authorizations[0].Owner: unknown field`},
		{"unknown fault field", conn(`{"VpnConnectionId":"vco-1","Error":{"Code":"Forbidden.RAM","Status":403}}`), `Regions["cn-hangzhou"][0].Error.Status: unknown field`},
		{"account id", `{"AccountId":"12ab","Regions":{}}`, "AccountId"},
		{"region id", `{"Regions":{"CN_Hangzhou":[]}}`, `Regions["CN_Hangzhou"]`},
		{"connection id", conn(`{"VpnConnectionId":"vpn-123"}`), `Regions["cn-hangzhou"][0].VpnConnectionId`},
		{"empty connection id", conn(`{"VpnConnectionId":""}`), `Regions["cn-hangzhou"][0].VpnConnectionId`},
		{"duplicate connection", conn(`{"VpnConnectionId":"vco-1"},{"VpnConnectionId":"vco-1"}`), `Regions["cn-hangzhou"][1].VpnConnectionId: "vco-1" already listed at index 0`},
		{"bind uid zero", auth(`{"BindUid":0,"BindProduct":"CEN","BindInstance":"cen-1"}`), `Regions["cn-hangzhou"][0].Authorizations[0].BindUid`},
		{"bind uid as text", auth(`{"BindUid":"12","BindProduct":"CEN","BindInstance":"cen-1"}`), "BindUid"},
		{"negative owner", auth(`{"AliUid":-1,"BindUid":1,"BindProduct":"CEN","BindInstance":"cen-1"}`), `Authorizations[0].AliUid`},
		{"missing product", auth(`{"BindUid":1,"BindInstance":"cen-1"}`), `Authorizations[0].BindProduct`},
		{"bad instance", auth(`{"BindUid":1,"BindProduct":"CEN","BindInstance":"cen 1"}`), `Authorizations[0].BindInstance`},
		{"fault status", conn(`{"VpnConnectionId":"vco-1","Error":{"Code":"Forbidden.RAM","HTTPStatus":200}}`), `Regions["cn-hangzhou"][0].Error.HTTPStatus`},
		{"unknown fault code without status", conn(`{"VpnConnectionId":"vco-1","Error":{"Code":"Custom.Code"}}`), `Error.HTTPStatus`},
		{"fault without code", conn(`{"VpnConnectionId":"vco-1","Error":{"HTTPStatus":403}}`), `Error.Code`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := ParseInventory([]byte(tc.json))
			if err == nil {
				t.Fatalf("accepted: %+v", inv)
			}
			if !strings.Contains(err.Error(), tc.place) {
				t.Errorf("error %q does not name %q", err, tc.place)
			}
		})
	}
}

func TestParseInventoryAccepts(t *testing.T) {
	inv, err := ParseInventory([]byte(`{"Regions":{"cn-hangzhou":[{"VpnConnectionId":"vco-1","Authorizations":null,
		"Error":{"Code":"Forbidden.RAM"}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c := inv.Regions["cn-hangzhou"][0]; c.Error.Code != "Forbidden.RAM" || len(c.Authorizations) != 0 {
		t.Errorf("connection = %+v", c)
	}
	if _, err := New(Options{Inventory: &Inventory{Regions: map[string][]Connection{"bad region": nil}}}); err == nil {
		t.Error("New accepted an invalid inventory")
	}
	// A configured fault without a status answers with the code's usual one.
	s := startServer(t, Options{Inventory: inv})
	c := newClient(t, s, clientOptions{})
	_, err = c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-1"))
	wantSDKError(t, err, "Forbidden.RAM", 403)
}
