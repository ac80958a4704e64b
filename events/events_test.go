package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// decodeStrict decodes a sample rejecting keys the type does not know, so a
// sample can't carry a field the types silently drop.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode into %T: %v", v, err)
	}
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEverySampleIsTested(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range timerSamples {
		known[s.file] = true
	}
	for _, s := range httpSamples {
		known[s.file] = true
	}
	for _, s := range cloudEventSamples {
		known[s.file] = true
	}
	known[slsSample] = true
	for _, f := range files {
		if !known[f] {
			t.Errorf("sample %s is not checked by this package's tests", f)
		}
	}
	if len(files) != len(known) {
		t.Errorf("%d samples on disk, %d checked", len(files), len(known))
	}
}

var timerSamples = []struct {
	file    string
	payload *ScanPayload // nil: empty payload
}{
	{"timer.json", nil},
	{"timer-payload.json", &ScanPayload{Targets: []string{"cn-hangzhou:vco-hz0partner0002"}}},
}

func TestTimerSamples(t *testing.T) {
	for _, tc := range timerSamples {
		t.Run(tc.file, func(t *testing.T) {
			var ev TimerEvent
			decodeStrict(t, readSample(t, tc.file), &ev)
			if ev.TriggerTime == nil || ev.TriggerName == nil || *ev.TriggerName == "" {
				t.Fatalf("triggerTime and triggerName must be set: %+v", ev)
			}
			if ev.Payload == nil {
				t.Fatal("a timer always sends payload, as a string")
			}
			if tc.payload == nil {
				if *ev.Payload != "" {
					t.Fatalf("payload = %q, want empty", *ev.Payload)
				}
				return
			}
			var p ScanPayload
			decodeStrict(t, []byte(*ev.Payload), &p)
			if strings.Join(p.Targets, ",") != strings.Join(tc.payload.Targets, ",") || p.DryRun != tc.payload.DryRun {
				t.Fatalf("payload = %+v, want %+v", p, *tc.payload)
			}
		})
	}
}

var httpSamples = []struct {
	file, method, path, body string
	auth                     bool
}{
	{"http-post-scans.json", "POST", "/scans", `{"targets":["cn-hangzhou:vco-hz0partner0002"]}`, true},
	{"http-get-health.json", "GET", "/health", "", false},
}

func TestHTTPSamples(t *testing.T) {
	for _, tc := range httpSamples {
		t.Run(tc.file, func(t *testing.T) {
			data := readSample(t, tc.file)
			var ev HTTPTriggerEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatal(err)
			}
			// The SDK type lacks requestContext.triggerId, which FC3 sends;
			// every other key must be known.
			var envelope map[string]json.RawMessage
			if err := json.Unmarshal(data, &envelope); err != nil {
				t.Fatal(err)
			}
			var rc map[string]json.RawMessage
			if err := json.Unmarshal(envelope["requestContext"], &rc); err != nil {
				t.Fatal(err)
			}
			if _, ok := rc["triggerId"]; !ok {
				t.Error("requestContext.triggerId missing: FC3 sends it")
			}
			delete(rc, "triggerId")
			envelope["requestContext"], _ = json.Marshal(rc)
			trimmed, _ := json.Marshal(envelope)
			decodeStrict(t, trimmed, &HTTPTriggerEvent{})

			if ev.Version == nil || *ev.Version != "v1" {
				t.Errorf("version = %v, want v1", ev.Version)
			}
			h := ev.TriggerContext.Http
			if h.Method == nil || *h.Method != tc.method || h.Path == nil || *h.Path != tc.path {
				t.Errorf("requestContext.http = %v %v, want %s %s", h.Method, h.Path, tc.method, tc.path)
			}
			if ev.RawPath == nil || *ev.RawPath != tc.path {
				t.Errorf("rawPath = %v, want %s", ev.RawPath, tc.path)
			}
			if ev.Body == nil || *ev.Body != tc.body {
				t.Errorf("body = %v, want %q", ev.Body, tc.body)
			}
			if ev.IsBase64Encoded == nil || *ev.IsBase64Encoded {
				t.Error("isBase64Encoded must be present and false")
			}
			if ev.Headers == nil {
				t.Fatal("headers missing")
			}
			_, hasAuth := (*ev.Headers)["Authorization"]
			if hasAuth != tc.auth {
				t.Errorf("Authorization present = %v, want %v", hasAuth, tc.auth)
			}
			if tc.auth && (*ev.Headers)["Authorization"] != "Bearer demo-token" {
				t.Errorf("Authorization = %q", (*ev.Headers)["Authorization"])
			}
			if tc.body != "" && (*ev.Headers)["Content-Type"] != "application/json" {
				t.Errorf("Content-Type = %q", (*ev.Headers)["Content-Type"])
			}
			for name, v := range map[string]*string{
				"accountId": ev.TriggerContext.AccountId, "requestId": ev.TriggerContext.RequestId,
				"time": ev.TriggerContext.Time, "timeEpoch": ev.TriggerContext.TimeEpoch,
			} {
				if v == nil || *v == "" {
					t.Errorf("requestContext.%s missing", name)
				}
			}
		})
	}
}

var cloudEventSamples = []struct {
	file, eventName, region string
	param, id               string // the requestParameters key naming the connection, and its value
	errorCode               string
	noResponse              bool
}{
	{"eventbridge-grant.json", "GrantInstanceToTransitRouter", "cn-hangzhou", "InstanceId", "vco-hz0partner0002", "", false},
	{"eventbridge-revoke.json", "RevokeInstanceFromTransitRouter", "cn-shanghai", "InstanceId", "vco-sh0rogue000002", "", false},
	{"eventbridge-modify-connection.json", "ModifyVpnConnectionAttribute", "cn-hangzhou", "VpnConnectionId", "vco-hz0trusted0001", "", false},
	{"eventbridge-create-without-id.json", "CreateVpnAttachment", "cn-shanghai", "", "", "", true},
	{"eventbridge-failed-call.json", "GrantInstanceToTransitRouter", "cn-hangzhou", "InstanceId", "vco-hz0noauth00003", "Forbidden.RAM", true},
	{"eventbridge-unrelated.json", "CreateVpc", "cn-hangzhou", "", "", "", false},
}

func TestCloudEventSamples(t *testing.T) {
	for _, tc := range cloudEventSamples {
		t.Run(tc.file, func(t *testing.T) {
			var ev CloudEvent
			decodeStrict(t, readSample(t, tc.file), &ev)
			for name, v := range map[string]string{
				"id": ev.ID, "source": ev.Source, "type": ev.Type, "time": ev.Time, "subject": ev.Subject,
				"datacontenttype": ev.DataContentType, "aliyunaccountid": ev.AliyunAccountID,
				"aliyunpublishtime": ev.AliyunPublishTime, "aliyuneventbusname": ev.AliyunEventBusName,
				"aliyunregionid": ev.AliyunRegionID, "aliyunpublishaddr": ev.AliyunPublishAddr,
			} {
				if v == "" {
					t.Errorf("%s is empty", name)
				}
			}
			if ev.SpecVersion != "1.0" {
				t.Errorf("specversion = %q", ev.SpecVersion)
			}
			if !strings.HasSuffix(ev.Type, ":ActionTrail:ApiCall") {
				t.Errorf("type = %q, want an ActionTrail ApiCall", ev.Type)
			}
			if ev.AliyunRegionID != tc.region {
				t.Errorf("aliyunregionid = %q, want %q", ev.AliyunRegionID, tc.region)
			}

			var rec ActionTrailRecord
			decodeStrict(t, ev.Data, &rec)
			if rec.EventName != tc.eventName || rec.AcsRegion != tc.region || rec.EventType != "ApiCall" || rec.EventRW != "Write" {
				t.Errorf("record = %s %s %s %s", rec.EventName, rec.AcsRegion, rec.EventType, rec.EventRW)
			}
			if rec.EventID == "" || rec.RequestID == "" || rec.EventTime == "" || rec.ServiceName == "" {
				t.Error("eventId, requestId, eventTime and serviceName must be set")
			}
			if rec.UserIdentity.AccountID != ev.AliyunAccountID || rec.UserIdentity.Type == "" || rec.UserIdentity.PrincipalID == "" {
				t.Errorf("userIdentity = %+v", rec.UserIdentity)
			}
			if rec.RequestParameters["RegionId"] != tc.region {
				t.Errorf("requestParameters.RegionId = %v, want %s", rec.RequestParameters["RegionId"], tc.region)
			}
			if tc.param != "" && rec.RequestParameters[tc.param] != tc.id {
				t.Errorf("requestParameters.%s = %v, want %s", tc.param, rec.RequestParameters[tc.param], tc.id)
			}
			if rec.ErrorCode != tc.errorCode {
				t.Errorf("errorCode = %q, want %q", rec.ErrorCode, tc.errorCode)
			}
			if tc.errorCode != "" && rec.ErrorMessage == "" {
				t.Error("a failed call carries an errorMessage")
			}
			if (rec.ResponseElements == nil) != tc.noResponse {
				t.Errorf("responseElements present = %v, want %v", rec.ResponseElements != nil, !tc.noResponse)
			}
		})
	}
}

func TestGrantSampleNamesTheCEN(t *testing.T) {
	var ev CloudEvent
	decodeStrict(t, readSample(t, "eventbridge-grant.json"), &ev)
	var rec ActionTrailRecord
	decodeStrict(t, ev.Data, &rec)
	want := map[string]string{"CenId": "cen-partner00001", "CenOwnerId": "1999000011112222", "InstanceType": "VPN"}
	for k, v := range want {
		if rec.RequestParameters[k] != v {
			t.Errorf("requestParameters.%s = %v, want %s", k, rec.RequestParameters[k], v)
		}
	}
}

func TestScanPayloadJSON(t *testing.T) {
	got, err := json.Marshal(ScanPayload{Targets: []string{"cn-shanghai:*"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"targets":["cn-shanghai:*"],"dryRun":true}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

const slsSample = "sls-trail.json"

// The Log Service trigger sample has the shape of the documented event:
// every key the SDK type knows, none it does not, cursors as the service
// writes them (base64 of a number) and the region's internal endpoint.
func TestSLSSample(t *testing.T) {
	var ev SLSEvent
	decodeStrict(t, readSample(t, slsSample), &ev)
	if ev.CursorTime == nil || ev.JobName == nil || *ev.JobName == "" || ev.TaskID == nil || *ev.TaskID == "" || ev.Parameter == nil {
		t.Errorf("cursorTime, jobName, taskId and parameter must be set: %+v", ev)
	}
	src := ev.Source
	if src == nil || src.Endpoint == nil || src.ProjectName == nil || src.LogstoreName == nil ||
		src.ShardID == nil || src.BeginCursor == nil || src.EndCursor == nil {
		t.Fatalf("source incomplete: %+v", src)
	}
	if *src.Endpoint != "http://cn-hangzhou-intranet.log.aliyuncs.com" {
		t.Errorf("endpoint = %q", *src.Endpoint)
	}
	if !strings.HasPrefix(*src.LogstoreName, "actiontrail_") {
		t.Errorf("logstore %q: a trail names its logstore actiontrail_<trail name>", *src.LogstoreName)
	}
	for _, c := range []string{*src.BeginCursor, *src.EndCursor} {
		raw, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			t.Errorf("cursor %q: %v", c, err)
			continue
		}
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			t.Errorf("cursor %q does not hold a number: %v", c, err)
		}
	}
	if *src.BeginCursor == *src.EndCursor {
		t.Error("a trigger fires for new logs: the cursors differ")
	}
}
