package slssink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
)

// testFinding returns a finding whose every field is set and distinct.
func testFinding(i int) finding.Finding {
	conn := fmt.Sprintf("vco-%024d", i)
	f := finding.Finding{
		ScanID:                 "scan-0001",
		Trigger:                finding.TriggerTimer,
		RuleID:                 finding.RuleUntrustedAccount,
		Title:                  "Connection authorized to an untrusted account",
		Severity:               "high",
		Status:                 finding.StatusFail,
		StatusDetail:           fmt.Sprintf("%s may be attached to cen-x%d of account 1999000011112222, which is not trusted.", conn, i),
		Region:                 "cn-hangzhou",
		OwnerAccountID:         "1210123456123456",
		VpnConnectionID:        conn,
		BindUID:                "1999000011112222",
		BindProduct:            "CEN",
		BindInstance:           fmt.Sprintf("cen-x%d", i),
		AuthorizationCreatedAt: "2026-01-02T03:04:05Z",
		AuthorizationAgeDays:   "30",
		Remediation:            "RevokeInstanceFromTransitRouter CenId=cen-x OwnerId=1210123456123456 InstanceId=" + conn + " InstanceType=VPN RegionId=cn-hangzhou",
		ExceptionReason:        "",
		ExceptionExpires:       "",
		ObservedAt:             time.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	f.FindingUID = finding.UID(f.RuleID, f.OwnerAccountID, f.Region, f.VpnConnectionID, f.BindUID, f.BindInstance)
	return f
}

// compactFinding is a PASS finding of a connection without authorizations:
// small enough that 4096 of them fit in one request.
func compactFinding(i int) finding.Finding {
	f := finding.Finding{
		ScanID: "scan-0001", Trigger: finding.TriggerTimer, RuleID: finding.RuleUntrustedAccount,
		Title: "Authorized to an untrusted account", Severity: "high", Status: finding.StatusPass,
		StatusDetail: "No cross-account authorization.", Region: "cn-hangzhou",
		OwnerAccountID: "1210123456123456", VpnConnectionID: fmt.Sprintf("vco-%024d", i),
		ObservedAt: time.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	f.FindingUID = finding.UID(f.RuleID, f.OwnerAccountID, f.Region, f.VpnConnectionID, "", "")
	return f
}

func fill(t *testing.T, b *batcher, n int, mk func(int) finding.Finding) []batch {
	t.Helper()
	var out []batch
	now := time.Now()
	for i := range n {
		f := mk(i)
		if full, ok := b.add(&f, now); ok {
			out = append(out, full)
		}
	}
	if last := b.take(); last.len() > 0 {
		out = append(out, last)
	}
	return out
}

func lens(bs []batch) []int {
	var n []int
	for _, b := range bs {
		n = append(n, b.len())
	}
	return n
}

func TestBatchCountBoundaries(t *testing.T) {
	for _, tc := range []struct {
		findings int
		want     []int
	}{
		{1, []int{1}},
		{4095, []int{4095}},
		{4096, []int{4096}},
		{4097, []int{4096, 1}},
		{10000, []int{4096, 4096, 1808}},
	} {
		t.Run(fmt.Sprint(tc.findings), func(t *testing.T) {
			b := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
			got := lens(fill(t, &b, tc.findings, compactFinding))
			if !slices.Equal(got, tc.want) {
				t.Errorf("batch sizes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBatchSizeBudget(t *testing.T) {
	// 100 KiB of detail per finding: 28 fit in 2.9 MB, far below 4096 logs.
	big := func(i int) finding.Finding {
		f := testFinding(i)
		f.StatusDetail = strings.Repeat("x", 100<<10)
		return f
	}
	const source = "vpnauthz"
	overhead := groupOverhead(finding.TopicFinding, source)
	b := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes - overhead}
	batches := fill(t, &b, 60, big)
	if got, want := lens(batches), []int{28, 28, 4}; !slices.Equal(got, want) {
		t.Errorf("batch sizes = %v, want %v", got, want)
	}
	for i, bt := range batches {
		lg := bt.logGroup(source)
		raw, err := proto.Marshal(lg)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > DefaultMaxBatchBytes {
			t.Errorf("batch %d: %d raw bytes, over the %d budget", i, len(raw), DefaultMaxBatchBytes)
		}
		if got := bt.rawSize + overhead; got != len(raw) {
			t.Errorf("batch %d: tracked size %d, marshalled %d", i, got, len(raw))
		}
	}
}

func TestBatchSizeTrackingIsExact(t *testing.T) {
	// Sizes around varint boundaries: 127/128 bytes, 16383/16384 bytes.
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 70000} {
		f := testFinding(n)
		f.StatusDetail = strings.Repeat("d", n)
		f.ExceptionReason = strings.Repeat("r", n/2)
		b := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
		b.add(&f, time.Now())
		bt := b.take()
		lg := bt.logGroup("src")
		if got, want := bt.rawSize+groupOverhead(finding.TopicFinding, "src"), lg.Size(); got != want {
			t.Errorf("detail of %d bytes: tracked %d, protobuf %d", n, got, want)
		}
	}
}

func TestLogGroupContents(t *testing.T) {
	f := testFinding(7)
	f.ExceptionReason = "" // empty values are sent too
	b := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
	b.add(&f, time.Now())
	bt := b.take()
	lg := bt.logGroup("vpnauthz")
	if lg.GetTopic() != finding.TopicFinding || lg.GetSource() != "vpnauthz" || len(lg.Logs) != 1 {
		t.Fatalf("topic %q source %q logs %d", lg.GetTopic(), lg.GetSource(), len(lg.Logs))
	}
	log := lg.Logs[0]
	observed, _ := time.Parse(time.RFC3339, f.ObservedAt)
	if got := int64(log.GetTime()); got != observed.Unix() {
		t.Errorf("log time %d, want observed_at %d", got, observed.Unix())
	}
	var keys, values []string
	for _, c := range log.Contents {
		keys = append(keys, c.GetKey())
		values = append(values, c.GetValue())
	}
	if !slices.Equal(keys, finding.Keys) {
		t.Errorf("keys = %v, want %v", keys, finding.Keys)
	}
	if !slices.Equal(values, f.Values()) {
		t.Errorf("values = %v, want %v", values, f.Values())
	}
}

func TestLogTimeFallsBackToNow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, observed := range []string{"", "yesterday", "2026-13-40T00:00:00Z"} {
		f := finding.Finding{ObservedAt: observed}
		if got := logTime(&f, now); got != uint32(now.Unix()) {
			t.Errorf("observed_at %q: time %d, want now %d", observed, got, now.Unix())
		}
	}
}

func TestJSONLinesAreTheFindings(t *testing.T) {
	findings := []finding.Finding{testFinding(1), testFinding(2), {Status: finding.StatusError, StatusDetail: "quote \" and\nnewline"}}
	var out bytes.Buffer
	if err := writeJSONLines(&out, &batch{findings: findings}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(findings) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(findings), out.String())
	}
	for i, line := range lines {
		want, _ := json.Marshal(&findings[i])
		if line != string(want) {
			t.Errorf("line %d = %s\nwant %s", i, line, want)
		}
		if keys := jsonKeys(t, line); !slices.Equal(keys, finding.Keys) {
			t.Errorf("line %d keys = %v, want %v", i, keys, finding.Keys)
		}
	}
}

// jsonKeys returns the keys of a JSON object in the order they appear.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.(string); !ok {
			t.Errorf("%s: value %v is not a string", tok, v)
		}
	}
	return keys
}

var wantSummaryKeys = []string{
	"scan_id", "trigger", "started_at", "duration_ms", "complete", "connections",
	"connections_in_scope", "authorizations", "pass", "fail", "error", "suppressed",
	"api_calls", "api_retries", "throttled", "findings_delivered", "changes",
	"state_warning", "role", "accounts", "parent_scan_id", "batch", "batches",
}

func testSummary() *finding.ScanSummary {
	return &finding.ScanSummary{
		ScanID: "scan-0001", Trigger: finding.TriggerHTTP, StartedAt: "2026-05-01T10:00:00Z",
		DurationMs: 1234, Complete: true,
		Counts: finding.Counts{Connections: 3, ConnectionsInScope: 4, Authorizations: 5, Pass: 6, Fail: 2, Error: 1,
			Suppressed: 1, APICalls: 9, APIRetries: 2, Throttled: 1, FindingsDelivered: 10,
			Changes: 3, StateWarning: "lifecycle: read the state of 1000 in cn-hangzhou: OTSServerUnavailable"},
		Role: finding.RoleWorker, Accounts: 2, ParentScanID: "scan-0000", Batch: 2, Batches: 7,
	}
}

func TestSummaryLog(t *testing.T) {
	s := testSummary()
	log := newLog(1, summaryKeys, summaryValues(s))
	got := map[string]string{}
	var keys []string
	for _, c := range log.Contents {
		keys = append(keys, c.GetKey())
		got[c.GetKey()] = c.GetValue()
	}
	if !slices.Equal(keys, wantSummaryKeys) {
		t.Errorf("keys = %v, want %v", keys, wantSummaryKeys)
	}
	want := map[string]string{
		"scan_id": "scan-0001", "trigger": "http", "started_at": "2026-05-01T10:00:00Z",
		"duration_ms": "1234", "complete": "true", "connections": "3", "authorizations": "5",
		"pass": "6", "fail": "2", "error": "1", "suppressed": "1", "api_calls": "9",
		"api_retries": "2", "throttled": "1", "findings_delivered": "10",
		"connections_in_scope": "4", "changes": "3", "role": "worker", "accounts": "2",
		"parent_scan_id": "scan-0000", "batch": "2", "batches": "7",
		"state_warning": "lifecycle: read the state of 1000 in cn-hangzhou: OTSServerUnavailable",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	s.Complete = false
	if v := summaryValues(s)[slices.Index(summaryKeys, "complete")]; v != "false" {
		t.Errorf("complete = %q, want false", v)
	}
	// A scan on its own: the fan-out keys are there, empty.
	alone := &finding.ScanSummary{ScanID: "x", Accounts: 1}
	for k, want := range map[string]string{"role": "", "parent_scan_id": "", "batch": "", "batches": "", "accounts": "1", "state_warning": "", "changes": "0"} {
		if v := summaryValues(alone)[slices.Index(summaryKeys, k)]; v != want {
			t.Errorf("scan on its own: %s = %q, want %q", k, v, want)
		}
	}

	var out bytes.Buffer
	if err := writeSummaryLine(&out, testSummary()); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(out.String(), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("summary is not one line: %q", out.String())
	}
	if keys := jsonKeys(t, line); !slices.Equal(keys, wantSummaryKeys) {
		t.Errorf("summary line keys = %v, want %v", keys, wantSummaryKeys)
	}
	var decoded map[string]string
	if err := json.Unmarshal([]byte(line), &decoded); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if decoded[k] != v {
			t.Errorf("line %s = %q, want %q", k, decoded[k], v)
		}
	}
}

func TestSDKTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		sdk  string
		dial string
	}{
		{in: "https://cn-hangzhou.log.aliyuncs.com", sdk: "https://cn-hangzhou.log.aliyuncs.com"},
		{in: "cn-hangzhou-intranet.log.aliyuncs.com:443", sdk: "https://cn-hangzhou-intranet.log.aliyuncs.com:443"},
		{in: "http://127.0.0.1:8080", sdk: "http://127.0.0.1:8080", dial: "127.0.0.1:8080"},
		{in: "127.0.0.1:8080", sdk: "http://127.0.0.1:8080", dial: "127.0.0.1:8080"},
		{in: "http://127.3.4.5:9", sdk: "http://127.3.4.5:9", dial: "127.3.4.5:9"},
		{in: "http://localhost:8080", sdk: "http://localhost:8080", dial: "localhost:8080"},
		{in: "http://[::1]:8080", sdk: "http://localhost:8080", dial: "[::1]:8080"},
		{in: "http://127.0.0.1", sdk: "http://127.0.0.1:80", dial: "127.0.0.1:80"},
		{in: "https://127.0.0.1", sdk: "https://127.0.0.1:443", dial: "127.0.0.1:443"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sdk, dial := sdkTarget(endpoint.MustParse(tc.in))
			if sdk != tc.sdk || dial != tc.dial {
				t.Errorf("got sdk %q dial %q, want %q %q", sdk, dial, tc.sdk, tc.dial)
			}
		})
	}
	if _, err := newClients(endpoint.Endpoint{}, plainCredsForUnit); err == nil {
		t.Error("a client without an endpoint was made")
	}
}

var plainCredsForUnit = scan.Credentials{AccessKeyID: "k", AccessKeySecret: "s"}

func TestClassify(t *testing.T) {
	const op = "PutLogs to p/ls"
	transportErr := &url.Error{Op: "Post", URL: "http://p.127.0.0.1:1/logstores/ls", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name   string
		err    error
		answer *sls.Error
		retry  bool
		text   string
	}{
		{"busy", &sls.Error{HTTPCode: 503, Code: "ServerBusy", Message: "The server is busy, please try again later."}, nil, true,
			"PutLogs to p/ls: ServerBusy (HTTP 503): The server is busy, please try again later."},
		{"internal", &sls.Error{HTTPCode: 500, Code: "InternalServerError", Message: "Internal server error message."}, nil, true,
			"PutLogs to p/ls: InternalServerError (HTTP 500): Internal server error message."},
		{"quota", &sls.Error{HTTPCode: 403, Code: "WriteQuotaExceed", Message: "Write quota is exceeded."}, nil, true,
			"PutLogs to p/ls: WriteQuotaExceed (HTTP 403): Write quota is exceeded."},
		{"shard quota", &sls.Error{HTTPCode: 403, Code: "ShardWriteQuotaExceed", Message: "Shard write quota is exceeded."}, nil, true,
			"PutLogs to p/ls: ShardWriteQuotaExceed (HTTP 403): Shard write quota is exceeded."},
		{"forbidden", &sls.Error{HTTPCode: 403, Code: "Unauthorized", Message: "denied by policy"}, nil, false,
			"PutLogs to p/ls: Unauthorized (HTTP 403): denied by policy"},
		{"bad signature", &sls.Error{HTTPCode: 401, Code: "SignatureNotMatch", Message: "Signature x is not matched."}, nil, false,
			"PutLogs to p/ls: SignatureNotMatch (HTTP 401): Signature x is not matched."},
		{"no logstore", &sls.Error{HTTPCode: 404, Code: "LogStoreNotExist", Message: "logstore ls does not exist"}, nil, false,
			"PutLogs to p/ls: LogStoreNotExist (HTTP 404): logstore ls does not exist"},
		{"too large", &sls.Error{HTTPCode: 400, Code: "PostBodyTooLarge", Message: "too large"}, nil, false,
			"PutLogs to p/ls: PostBodyTooLarge (HTTP 400): too large"},
		{"refused", sls.NewClientError(transportErr), nil, true,
			`PutLogs to p/ls: Post "http://p.127.0.0.1:1/logstores/ls": connect: connection refused`},
		{"raw transport error", transportErr, nil, true,
			`PutLogs to p/ls: Post "http://p.127.0.0.1:1/logstores/ls": connect: connection refused`},
		{"5xx hidden behind the SDK's retry timeout",
			sls.NewClientError(errors.New("stopped retrying err: ...: context deadline exceeded")),
			&sls.Error{HTTPCode: 503, Code: "ServerBusy", Message: "busy"}, true,
			"PutLogs to p/ls: ServerBusy (HTTP 503): busy"},
		{"gateway without JSON, seen", sls.NewClientError(errors.New("x")), &sls.Error{HTTPCode: 502, Message: "<html>bad gateway</html>"}, true,
			"PutLogs to p/ls: HTTP 502: <html>bad gateway</html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := classify(op, tc.err, tc.answer)
			if retry := cloudapi.Classify(e) != cloudapi.Final; retry != tc.retry {
				t.Errorf("retried = %v, want %v", retry, tc.retry)
			}
			if !strings.HasPrefix(e.Error(), tc.text) {
				t.Errorf("text = %q, want %q", e.Error(), tc.text)
			}
		})
	}
}

func TestIndexCoversEveryKey(t *testing.T) {
	idx := Index()
	for _, k := range append(slices.Clone(finding.Keys), wantSummaryKeys...) {
		key, ok := idx.Keys[k]
		if !ok {
			t.Errorf("no index for %s", k)
			continue
		}
		if !key.DocValue {
			t.Errorf("%s: doc_value off, SQL analytics would not work", k)
		}
	}
	if idx.Line == nil || len(idx.Line.Token) == 0 {
		t.Error("no full-text index")
	}
	if tok := idx.Keys["vpn_connection_id"].Token; slices.Contains(tok, "-") {
		t.Errorf("connection ids are split at '-': %q", tok)
	}
}
