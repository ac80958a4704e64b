package actiontrail

import (
	"encoding/json"
	"strings"
	"testing"

	"vpnauthz/events"
)

func record(t *testing.T, js string) *events.ActionTrailRecord {
	t.Helper()
	var rec events.ActionTrailRecord
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

var trailOrigin = Origin{Record: "event"}

func TestExtractRequests(t *testing.T) {
	cases := []struct {
		name, rec string
		origin    Origin
		want      Request
	}{
		{"grant names the connection and the resource owner",
			`{"eventName":"GrantInstanceToTransitRouter","recipientAccountId":"1111","userIdentity":{"accountId":"2222"},
			  "requestParameters":{"RegionId":"cn-hangzhou","InstanceType":"VPN","InstanceId":"vco-hz0001"}}`, trailOrigin,
			Request{"GrantInstanceToTransitRouter", "1111", "cn-hangzhou", "requestParameters.RegionId", "vco-hz0001"}},
		{"the caller's account without a recipient",
			`{"eventName":"ModifyVpnConnectionAttribute","userIdentity":{"accountId":"2222"},
			  "requestParameters":{"RegionId":"cn-shanghai","VpnConnectionId":"vco-sh0001"}}`, trailOrigin,
			Request{"ModifyVpnConnectionAttribute", "2222", "cn-shanghai", "requestParameters.RegionId", "vco-sh0001"}},
		{"ModifyGrant: no InstanceType, no RegionId, the vco- prefix decides",
			`{"eventName":"ModifyGrantInstanceToTransitRouter","acsRegion":"cn-beijing","requestParameters":{"InstanceId":"vco-bj0001"}}`, trailOrigin,
			Request{"ModifyGrantInstanceToTransitRouter", "", "cn-beijing", "event.acsRegion", "vco-bj0001"}},
		{"attachment by VpnId",
			`{"eventName":"DeleteVpnAttachment","requestParameters":{"RegionId":"cn-hangzhou","VpnId":"vco-hz0002"}}`, trailOrigin,
			Request{"DeleteVpnAttachment", "", "cn-hangzhou", "requestParameters.RegionId", "vco-hz0002"}},
		{"create with the id in the response",
			`{"eventName":"CreateVpnConnection","requestParameters":{"RegionId":"cn-hangzhou"},"responseElements":{"VpnConnectionId":"vco-new0001"}}`, trailOrigin,
			Request{"CreateVpnConnection", "", "cn-hangzhou", "requestParameters.RegionId", "vco-new0001"}},
		{"create without a response: the whole region",
			`{"eventName":"CreateVpnAttachment","requestParameters":{"RegionId":"cn-shanghai"}}`, trailOrigin,
			Request{"CreateVpnAttachment", "", "cn-shanghai", "requestParameters.RegionId", ""}},
		{"the envelope's region last",
			`{"eventName":"DeleteVpnConnection","requestParameters":{"VpnConnectionId":"vco-hz0003"}}`,
			Origin{Record: "data", Region: "cn-hangzhou", RegionAt: "aliyunregionid"},
			Request{"DeleteVpnConnection", "", "cn-hangzhou", "aliyunregionid", "vco-hz0003"}},
		{"a number as the region is taken as written, and refused elsewhere",
			`{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou","VpnConnectionId":"vco-hz0004","Extra":7}}`, trailOrigin,
			Request{"DeleteVpnConnection", "", "cn-hangzhou", "requestParameters.RegionId", "vco-hz0004"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ig := Extract(record(t, tc.rec), tc.origin)
			if ig != nil {
				t.Fatalf("ignored: %+v", *ig)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestExtractIgnored(t *testing.T) {
	long := strings.Repeat("é", 100)
	cases := []struct {
		name, rec string
		origin    Origin
		kind      Kind
		reason    string
	}{
		{"failed call, whatever else is wrong",
			`{"eventName":"CreateVpc","errorCode":"Forbidden.RAM","requestParameters":{"InstanceId":"x"}}`, trailOrigin,
			Failed, "the call failed: Forbidden.RAM"},
		{"unrelated", `{"eventName":"CreateVpc","requestParameters":{"RegionId":"cn-hangzhou"}}`, trailOrigin,
			Unrelated, `"CreateVpc" does not change a VPN connection or its grants`},
		{"no event name", `{"requestParameters":{"RegionId":"cn-hangzhou"}}`, trailOrigin,
			Unrelated, `"" does not change a VPN connection or its grants`},
		{"no region, trail", `{"eventName":"DeleteVpnConnection","requestParameters":{"VpnConnectionId":"vco-a"}}`, trailOrigin,
			NoRegion, "the event names no region (requestParameters.RegionId, event.acsRegion)"},
		{"no region, EventBridge", `{"eventName":"DeleteVpnConnection","requestParameters":{"VpnConnectionId":"vco-a"}}`,
			Origin{Record: "data", RegionAt: "aliyunregionid"},
			NoRegion, "the event names no region (requestParameters.RegionId, data.acsRegion, aliyunregionid)"},
		{"invalid region", `{"eventName":"DeleteVpnConnection","acsRegion":"CN_HZ","requestParameters":{"VpnConnectionId":"vco-a"}}`, trailOrigin,
			NoRegion, `invalid region "CN_HZ" in event.acsRegion`},
		{"grant of a VPC", `{"eventName":"GrantInstanceToTransitRouter","requestParameters":{"RegionId":"cn-hangzhou","InstanceType":"VPC","InstanceId":"vpc-a"}}`, trailOrigin,
			NotVPN, `the grant concerns instance type "VPC", not VPN`},
		{"instance not a connection", `{"eventName":"RevokeInstanceFromTransitRouter","requestParameters":{"RegionId":"cn-hangzhou","InstanceId":"vbr-a"}}`, trailOrigin,
			NotVPN, `instance "vbr-a" in requestParameters.InstanceId is not a VPN connection`},
		{"invalid id", `{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou","VpnConnectionId":"vco-../x"}}`, trailOrigin,
			BadID, `invalid VPN connection id "vco-../x" in requestParameters.VpnConnectionId`},
		{"id not a string", `{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou","VpnConnectionId":["vco-a"]}}`, trailOrigin,
			BadID, `invalid VPN connection id "[\"vco-a\"]" in requestParameters.VpnConnectionId`},
		{"a long id is cut", `{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou","VpnConnectionId":"` + long + `"}}`, trailOrigin,
			BadID, `invalid VPN connection id "` + strings.Repeat("é", 40) + `"… in requestParameters.VpnConnectionId`},
		{"a change without an id", `{"eventName":"ModifyVpnAttachmentAttribute","requestParameters":{"RegionId":"cn-hangzhou"}}`, trailOrigin,
			NoID, "ModifyVpnAttachmentAttribute names no VPN connection"},
		{"the response is read for creates only", `{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou"},"responseElements":{"VpnConnectionId":"vco-a"}}`, trailOrigin,
			NoID, "DeleteVpnConnection names no VPN connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ig := Extract(record(t, tc.rec), tc.origin)
			if ig == nil {
				t.Fatalf("not ignored: %+v", got)
			}
			if ig.Kind != tc.kind || ig.Reason != tc.reason {
				t.Errorf("got %s %q\nwant %s %q", ig.Kind, ig.Reason, tc.kind, tc.reason)
			}
		})
	}
}

func TestEventNames(t *testing.T) {
	names := EventNames()
	if len(names) != 9 {
		t.Fatalf("%d names: %v", len(names), names)
	}
	for _, n := range names {
		if !Watched(n) {
			t.Errorf("%s listed but not watched", n)
		}
	}
	names[0] = "changed"
	if EventNames()[0] == "changed" {
		t.Error("EventNames hands out the package's own list")
	}
	if Watched("CreateVpc") || Watched("") {
		t.Error("unrelated calls are watched")
	}
}
