package handler

import (
	"encoding/json"
	"strings"
	"testing"
)

// variant is a sample event changed by edit, which gets the envelope, its
// data and data.requestParameters.
func variant(t testing.TB, name string, edit func(ev, data, params map[string]any)) []byte {
	t.Helper()
	ev := sample(t, name)
	if edit != nil {
		data := obj(t, ev, "data")
		edit(ev, data, obj(t, data, "requestParameters"))
	}
	return mustJSON(t, ev)
}

func TestEventScans(t *testing.T) {
	cases := []struct {
		name    string
		event   []byte
		targets string
	}{
		{"grant sample", variant(t, "eventbridge-grant.json", nil), "cn-hangzhou:vco-hz0partner0002"},
		{"revoke sample", variant(t, "eventbridge-revoke.json", nil), "cn-shanghai:vco-sh0rogue000002"},
		{"modify sample", variant(t, "eventbridge-modify-connection.json", nil), "cn-hangzhou:vco-hz0trusted0001"},
		{"create without id rescans the region's scope", variant(t, "eventbridge-create-without-id.json", nil),
			"cn-shanghai:vco-sh0rogue000002 cn-shanghai:vco-sh0stale000001"},
		{"create with the id in responseElements", variant(t, "eventbridge-create-without-id.json", func(_, d, _ map[string]any) {
			d["responseElements"] = map[string]any{"VpnConnectionId": "vco-sh0stale000001", "RequestId": "x"}
		}), "cn-shanghai:vco-sh0stale000001"},
		{"CreateVpnConnection with responseElements", variant(t, "eventbridge-modify-connection.json", func(_, d, p map[string]any) {
			d["eventName"] = "CreateVpnConnection"
			delete(p, "VpnConnectionId")
			d["responseElements"] = map[string]any{"VpnConnectionId": "vco-hz0new000000001"}
		}), "cn-hangzhou:vco-hz0new000000001"},
		{"delete is scanned", variant(t, "eventbridge-modify-connection.json", func(_, d, _ map[string]any) {
			d["eventName"] = "DeleteVpnConnection"
		}), "cn-hangzhou:vco-hz0trusted0001"},
		{"id from VpnId", variant(t, "eventbridge-modify-connection.json", func(_, d, p map[string]any) {
			d["eventName"] = "ModifyVpnAttachmentAttribute"
			delete(p, "VpnConnectionId")
			p["VpnId"] = "vco-hz0noauth00003"
		}), "cn-hangzhou:vco-hz0noauth00003"},
		{"ModifyGrant: no InstanceType, vco- id, region from acsRegion", variant(t, "eventbridge-grant.json", func(_, d, p map[string]any) {
			d["eventName"] = "ModifyGrantInstanceToTransitRouter"
			delete(p, "InstanceType")
			delete(p, "RegionId")
			d["acsRegion"] = "ap-southeast-1"
			p["InstanceId"] = "vco-sg0denied00001"
		}), "ap-southeast-1:vco-sg0denied00001"},
		{"region from aliyunregionid", variant(t, "eventbridge-revoke.json", func(ev, d, p map[string]any) {
			delete(p, "RegionId")
			delete(d, "acsRegion")
		}), "cn-shanghai:vco-sh0rogue000002"},
		{"RegionId wins over acsRegion", variant(t, "eventbridge-revoke.json", func(ev, d, p map[string]any) {
			d["acsRegion"] = "cn-hangzhou"
			ev["aliyunregionid"] = "cn-hangzhou"
		}), "cn-shanghai:vco-sh0rogue000002"},
		{"instance type in lower case", variant(t, "eventbridge-grant.json", func(_, _, p map[string]any) {
			p["InstanceType"] = "vpn"
		}), "cn-hangzhou:vco-hz0partner0002"},
		{"data as a JSON string", func() []byte {
			ev := sample(t, "eventbridge-grant.json")
			ev["data"] = string(mustJSON(t, ev["data"]))
			return mustJSON(t, ev)
		}(), "cn-hangzhou:vco-hz0partner0002"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			resp, err := r.invoke(t, tc.event)
			if err != nil {
				t.Fatal(err)
			}
			rep := report(t, resp)
			checkNoFindingsKey(t, resp)
			calls := r.scanner.calls()
			if len(calls) != 1 {
				t.Fatalf("scanner called %d times", len(calls))
			}
			req := calls[0]
			if got := targetStrings(req.Targets); got != tc.targets {
				t.Errorf("targets = %s, want %s", got, tc.targets)
			}
			if req.Trigger != "event" || req.DryRun || req.CollectFindings || req.ScanID != testScanID ||
				req.AccountID != testAccount || req.Credentials.SecurityToken != testToken {
				t.Errorf("request = %s dry %v collect %v scan %s account %s", req.Trigger, req.DryRun, req.CollectFindings, req.ScanID, req.AccountID)
			}
			if r.sinks.count() != 1 || r.sinks.opened[0].region != testRegion {
				t.Errorf("sinks = %d", r.sinks.count())
			}
			if rep.Trigger != "event" {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

func TestEventIgnored(t *testing.T) {
	cases := []struct {
		name   string
		event  []byte
		reason string // the whole reason, or a part of it after "~"
	}{
		{"failed call", variant(t, "eventbridge-failed-call.json", nil), "the call failed: Forbidden.RAM"},
		{"unrelated call", variant(t, "eventbridge-unrelated.json", nil), `~"CreateVpc"`},
		{"grant of a VPC", variant(t, "eventbridge-grant.json", func(_, _, p map[string]any) {
			p["InstanceType"] = "VPC"
			p["InstanceId"] = "vpc-bp1dev0000000001"
		}), `~"VPC", not VPN`},
		{"grant of a non-vco instance", variant(t, "eventbridge-grant.json", func(_, d, p map[string]any) {
			d["eventName"] = "ModifyGrantInstanceToTransitRouter"
			delete(p, "InstanceType")
			p["InstanceId"] = "vbr-bp1dev0000000001"
		}), `~"vbr-bp1dev0000000001" in requestParameters.InstanceId is not a VPN connection`},
		{"invalid connection id", variant(t, "eventbridge-modify-connection.json", func(_, _, p map[string]any) {
			p["VpnConnectionId"] = "vco-../../x"
		}), `~"vco-../../x" in requestParameters.VpnConnectionId`},
		{"connection id not a string", variant(t, "eventbridge-modify-connection.json", func(_, _, p map[string]any) {
			p["VpnConnectionId"] = 12345
		}), `~"12345"`},
		{"invalid region", variant(t, "eventbridge-modify-connection.json", func(_, _, p map[string]any) {
			p["RegionId"] = "evil.example.com"
		}), `~invalid region "evil.example.com" in requestParameters.RegionId`},
		{"invalid acsRegion", variant(t, "eventbridge-revoke.json", func(_, d, p map[string]any) {
			delete(p, "RegionId")
			d["acsRegion"] = "CN_SHANGHAI"
		}), `~"CN_SHANGHAI" in data.acsRegion`},
		{"no region at all", variant(t, "eventbridge-revoke.json", func(ev, d, p map[string]any) {
			delete(p, "RegionId")
			delete(d, "acsRegion")
			delete(ev, "aliyunregionid")
		}), "~no region"},
		{"modify without an id", variant(t, "eventbridge-modify-connection.json", func(_, _, p map[string]any) {
			delete(p, "VpnConnectionId")
		}), "~names no VPN connection"},
		{"connection outside scope", variant(t, "eventbridge-grant.json", func(_, _, p map[string]any) {
			p["RegionId"] = "ap-southeast-1"
			p["InstanceId"] = "vco-sg0owner000002"
		}), "ap-southeast-1:vco-sg0owner000002 is outside SCAN_TARGETS"},
		{"create in a region without scope", variant(t, "eventbridge-create-without-id.json", func(_, _, p map[string]any) {
			p["RegionId"] = "eu-central-1"
		}), "no target of SCAN_TARGETS is in eu-central-1"},
		{"failed call with a bad id is still just failed", variant(t, "eventbridge-failed-call.json", func(_, _, p map[string]any) {
			p["InstanceId"] = "nonsense"
		}), "the call failed: Forbidden.RAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			resp, err := r.invoke(t, tc.event)
			if err != nil {
				t.Fatal(err)
			}
			ig, ok := resp.(*Ignored)
			if !ok {
				t.Fatalf("response = %T %+v, want Ignored", resp, resp)
			}
			if part, partial := strings.CutPrefix(tc.reason, "~"); partial {
				if !strings.Contains(ig.Reason, part) {
					t.Errorf("reason = %q, want it to mention %q", ig.Reason, part)
				}
			} else if ig.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", ig.Reason, tc.reason)
			}
			var body map[string]any
			if err := json.Unmarshal(mustJSON(t, resp), &body); err != nil {
				t.Fatal(err)
			}
			if len(body) != 2 || body["ignored"] != true || body["reason"] != ig.Reason {
				t.Errorf("body = %v, want exactly {ignored: true, reason}", body)
			}
			if len(r.scanner.calls()) != 0 || r.sinks.count() != 0 {
				t.Error("an ignored event made a call")
			}
		})
	}
}

func TestEventInvalid(t *testing.T) {
	cases := []struct {
		name    string
		event   []byte
		mention []string
	}{
		{"data missing", variant(t, "eventbridge-grant.json", func(ev, _, _ map[string]any) { delete(ev, "data") }), []string{"data is missing"}},
		{"data null", []byte(`{"specversion":"1.0","type":"vpc:ActionTrail:ApiCall","id":"e1","data":null}`), []string{"data is missing"}},
		{"data a list", []byte(`{"specversion":"1.0","type":"vpc:ActionTrail:ApiCall","id":"e1","data":[1]}`), []string{"JSON object", "got a list"}},
		{"data a number", []byte(`{"specversion":"1.0","type":"vpc:ActionTrail:ApiCall","id":"e1","data":7}`), []string{"got a number"}},
		{"data a string of garbage", []byte(`{"specversion":"1.0","type":"vpc:ActionTrail:ApiCall","id":"e1","data":"hello"}`), []string{"string that does not hold"}},
		{"data a string of broken JSON", []byte(`{"specversion":"1.0","type":"vpc:ActionTrail:ApiCall","id":"e1","data":"{\"eventName\":"}`), []string{"data is truncated"}},
		{"data a string with trailing data", []byte(`{"specversion":"1.0","type":"vpc:ActionTrail:ApiCall","id":"e1","data":"{\"eventName\":\"CreateVpc\"} {}"}`), []string{"after the JSON object"}},
		{"eventName missing", variant(t, "eventbridge-grant.json", func(_, d, _ map[string]any) { delete(d, "eventName") }), []string{"data.eventName is missing"}},
		{"eventName not a string", variant(t, "eventbridge-grant.json", func(_, d, _ map[string]any) { d["eventName"] = 42 }), []string{`"eventName"`, "got a number"}},
		{"requestParameters not an object", variant(t, "eventbridge-grant.json", func(_, d, _ map[string]any) { d["requestParameters"] = "x" }), []string{`"requestParameters"`}},
		{"envelope id not a string", variant(t, "eventbridge-grant.json", func(ev, _, _ map[string]any) { ev["id"] = 1 }), []string{`"id"`, "got a number"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			_, err := r.invoke(t, tc.event)
			wantInvokeError(t, err, ErrInvalidEvent, tc.mention...)
			if len(r.scanner.calls()) != 0 {
				t.Error("scanned an invalid event")
			}
		})
	}
}

func TestEventWithoutScope(t *testing.T) {
	// With nothing in scope, a VPN change is out of scope like any other:
	// ignored, not an error FC would retry and dead-letter.
	r := newRig(t, func(o *Options) { o.Config.Targets = nil })
	resp, err := r.invoke(t, variant(t, "eventbridge-grant.json", nil))
	if ig, ok := resp.(*Ignored); !ok || err != nil || !strings.Contains(ig.Reason, "SCAN_TARGETS is empty") {
		t.Errorf("got %v, %v; want ignored because SCAN_TARGETS is empty", resp, err)
	}
	if len(r.scanner.calls()) != 0 {
		t.Error("scanned with an empty scope")
	}

	// What needs no scan is still answered.
	resp, err = r.invoke(t, variant(t, "eventbridge-unrelated.json", nil))
	if _, ok := resp.(*Ignored); !ok || err != nil {
		t.Errorf("got %v, %v", resp, err)
	}
}

func TestEventDeliveryFailed(t *testing.T) {
	r := newRig(t, nil)
	r.sinks.fail = true
	_, err := r.invoke(t, variant(t, "eventbridge-revoke.json", nil))
	wantInvokeError(t, err, ErrDeliveryFailed, "not delivered", "logstore findings does not exist")
	if !strings.Contains(r.logs.String(), `"report":{"scanId":"`+testScanID) {
		t.Errorf("report not logged:\n%s", r.logs.String())
	}
}

// A redelivered event rescans: the findings are the same judgements, with
// the same finding_uids, so a duplicate is harmless without dedupe state.
func TestEventRedeliveryGivesSameFindingUIDs(t *testing.T) {
	r := newRig(t, nil)
	ev := variant(t, "eventbridge-grant.json", nil)
	for range 2 {
		if _, err := r.invoke(t, ev); err != nil {
			t.Fatal(err)
		}
	}
	if r.sinks.count() != 2 {
		t.Fatalf("sinks = %d", r.sinks.count())
	}
	a, b := r.sinks.opened[0].findings, r.sinks.opened[1].findings
	if len(a) == 0 || len(a) != len(b) || a[0].FindingUID != b[0].FindingUID {
		t.Errorf("findings differ: %+v vs %+v", a, b)
	}
}
