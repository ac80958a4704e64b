package trail

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/emulator/slsemu"
)

func TestParseLog(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name     string
		log      *sls.Log
		event    string // eventName wanted
		region   string // requestParameters.RegionId wanted
		account  string // userIdentity.accountId wanted
		errorMsg string // wanted in the error instead
	}{
		{"event as JSON", slsemu.ActionTrailLog(now, `{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou"},"userIdentity":{"accountId":"1"}}`),
			"DeleteVpnConnection", "cn-hangzhou", "1", ""},
		{"numbers kept as written", slsemu.ActionTrailLog(now, `{"eventName":"X","eventVersion":1,"isGlobal":false,"requestParameters":{"RegionId":12345678901234567890}}`),
			"X", "12345678901234567890", "", ""},
		{"event wins over flattened keys", slsemu.LogOf(now, map[string]string{"event": `{"eventName":"A"}`, "event.eventName": "B"}),
			"A", "", "", ""},
		{"flattened keys", slsemu.LogOf(now, map[string]string{"event.eventName": "B", "event.requestParameters.RegionId": "cn-shanghai", "event.userIdentity.accountId": "2", "__topic__x": "y"}),
			"B", "cn-shanghai", "2", ""},
		{"flattened objects as JSON strings", slsemu.LogOf(now, map[string]string{"event.eventName": "C", "event.requestParameters": `{"RegionId":"cn-beijing"}`, "event.userIdentity": `{"accountId":"3"}`}),
			"C", "cn-beijing", "3", ""},
		{"requestParameterJson when requestParameters is absent", slsemu.LogOf(now, map[string]string{"event.eventName": "D", "event.requestParameterJson": `{"RegionId":"ap-southeast-1"}`}),
			"D", "ap-southeast-1", "", ""},
		{"requestParameterJson not an object is dropped", slsemu.LogOf(now, map[string]string{"event.eventName": "D", "event.requestParameterJson": `RegionId=x`}),
			"D", "", "", ""},
		{"event not JSON", slsemu.ActionTrailLog(now, "hello"), "", "", "", `event is not a JSON object: "hello"`},
		{"event a JSON list", slsemu.ActionTrailLog(now, "[1]"), "", "", "", "event is not a JSON object"},
		{"event truncated", slsemu.ActionTrailLog(now, `{"eventName":`), "", "", "", "event: the JSON is truncated"},
		{"event with trailing data", slsemu.ActionTrailLog(now, `{"eventName":"A"} {}`), "", "", "", "data after the JSON object"},
		{"event with a syntax error", slsemu.ActionTrailLog(now, `{"eventName" "A"}`), "", "", "", "event: invalid JSON at byte"},
		{"eventName not a string", slsemu.ActionTrailLog(now, `{"eventName":42}`), "", "", "", `"eventName" must be string, got a JSON number`},
		{"requestParameters a string", slsemu.ActionTrailLog(now, `{"eventName":"A","requestParameters":"x"}`), "", "", "", `"requestParameters"`},
		{"no eventName", slsemu.ActionTrailLog(now, `{"acsRegion":"cn-hangzhou"}`), "", "", "", "event.eventName is missing"},
		{"flattened without eventName", slsemu.LogOf(now, map[string]string{"event.acsRegion": "cn-hangzhou"}), "", "", "", "event.eventName is missing"},
		{"no event at all", slsemu.LogOf(now, map[string]string{"content": "x", "level": "info"}), "", "", "", `no key event or event.* (keys: "content, level")`},
		{"no keys", &sls.Log{}, "", "", "", "no ActionTrail event in the log"},
		{"flattened value and object at once", slsemu.LogOf(now, map[string]string{"event.eventName": "A", "event.userIdentity": "x", "event.userIdentity.accountId": "1"}),
			"", "", "", `"userIdentity" is both a value and an object`},
		{"flattened object string that is not JSON", slsemu.LogOf(now, map[string]string{"event.eventName": "A", "event.userIdentity": "{oops"}),
			"", "", "", "event.userIdentity: invalid JSON"},
		{"flattened empty name", slsemu.LogOf(now, map[string]string{"event.eventName": "A", "event.x..y": "1"}), "", "", "", "empty name in the key"},
		{"flattened type clash", slsemu.LogOf(now, map[string]string{"event.eventName": "A", "event.userIdentity": "plain"}), "", "", "", `"userIdentity" must be`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := parseLog(tc.log)
			if tc.errorMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorMsg) {
					t.Fatalf("error %v, want %q", err, tc.errorMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			region, _ := actiontrail.Param(rec.RequestParameters, "RegionId")
			if rec.EventName != tc.event || region != tc.region || rec.UserIdentity.AccountID != tc.account {
				t.Errorf("got %s %s %s, want %s %s %s", rec.EventName, region, rec.UserIdentity.AccountID, tc.event, tc.region, tc.account)
			}
		})
	}
}

// A duplicated key counts once: its first value.
func TestParseLogDuplicateKeys(t *testing.T) {
	l := slsemu.ActionTrailLog(time.Now(), `{"eventName":"First"}`)
	l.Contents = append(l.Contents, slsemu.ActionTrailLog(time.Now(), `{"eventName":"Second"}`).Contents...)
	rec, err := parseLog(l)
	if err != nil || rec.EventName != "First" {
		t.Errorf("got %q, %v", rec.EventName, err)
	}
}

// A long bad value is cut in the message.
func TestParseLogErrorsAreShort(t *testing.T) {
	long := strings.Repeat("x", 10000)
	for _, l := range []*sls.Log{
		slsemu.ActionTrailLog(time.Now(), long),
		slsemu.LogOf(time.Now(), map[string]string{long: "1", "b": "2"}),
		slsemu.ActionTrailLog(time.Now(), `{"eventName":"`+long),
	} {
		_, err := parseLog(l)
		if err == nil || len(err.Error()) > 200 {
			t.Errorf("error of %d bytes: %.300v", len(err.Error()), err)
		}
	}
}

// FuzzParseLog: any log, given as lines "key<TAB>value" (a line without a
// tab is the value of "event"), gives a record with an eventName or a short
// error, never a panic; and whatever it gives, Extract decides without
// panicking either.
func FuzzParseLog(f *testing.F) {
	f.Add([]byte(`{"eventName":"DeleteVpnConnection","requestParameters":{"RegionId":"cn-hangzhou","VpnConnectionId":"vco-a"}}`))
	f.Add([]byte("event.eventName\tCreateVpnConnection\nevent.requestParameters.RegionId\tcn-hangzhou\nevent.responseElements\t{\"VpnConnectionId\":\"vco-b\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &sls.Log{}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, "\t")
			if !ok {
				k, v = "event", line
			}
			kk, vv := k, v
			l.Contents = append(l.Contents, &sls.LogContent{Key: &kk, Value: &vv})
		}
		rec, err := parseLog(l)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			if utf8.ValidString(string(data)) && !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not UTF-8: %q", err)
			}
			return
		}
		if rec.EventName == "" {
			t.Fatal("a record without eventName")
		}
		req, ig := actiontrail.Extract(&rec, actiontrail.Origin{Record: "event"})
		if (ig == nil) == (req.Region == "") {
			t.Fatalf("request %+v, ignored %+v", req, ig)
		}
	})
}
