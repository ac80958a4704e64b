package slssink_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/slsemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/testutil"
)

const (
	project  = "vpn-audit"
	logstore = "vpnauthz-findings"

	keyID     = "LTAI5tSinkTestKey"
	keySecret = "sink-test-secret-0123456789"
	stsKeyID  = "STS.NUgYrLnoC37mZZCNnAbez"
	stsSecret = "sts-secret-0123456789"
	stsToken  = "CAISzQJ1q6Ft5B2yfSjIr5bkGO3ztoxy"
)

var (
	plainCreds = scan.Credentials{AccessKeyID: keyID, AccessKeySecret: keySecret}
	stsCreds   = scan.Credentials{AccessKeyID: stsKeyID, AccessKeySecret: stsSecret, SecurityToken: stsToken}
)

func lines(b *testutil.Buffer) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

type env struct {
	emu    *slsemu.Server
	opts   slssink.Options
	stdout *testutil.Buffer
}

// newEnv starts an emulated Log Service holding the project and, when
// withLogstore, the logstore, and returns sink options pointing at it with
// short backoffs.
func newEnv(t *testing.T, withLogstore bool) *env {
	t.Helper()
	emu, err := slsemu.New(slsemu.Options{Credentials: []cred.Credential{
		{AccessKeyID: keyID, AccessKeySecret: keySecret},
		{AccessKeyID: stsKeyID, AccessKeySecret: stsSecret, SecurityToken: stsToken, Expires: time.Now().Add(time.Hour)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.CreateProject(project)
	if withLogstore {
		if err := emu.CreateLogStore(project, logstore); err != nil {
			t.Fatal(err)
		}
	}
	out := &testutil.Buffer{}
	return &env{
		emu:    emu,
		stdout: out,
		opts: slssink.Options{
			Endpoint:       endpoint.MustParse(emu.Endpoint()),
			Project:        project,
			Logstore:       logstore,
			Credentials:    plainCreds,
			Stdout:         out,
			RetryBase:      20 * time.Millisecond,
			RetryCap:       300 * time.Millisecond,
			RetryBudget:    10 * time.Second,
			AttemptTimeout: 5 * time.Second,
		},
	}
}

func (e *env) sink(t *testing.T) *slssink.Sink {
	t.Helper()
	s, err := slssink.New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// makeFindings returns n distinct findings with every field set, except the
// exception fields of the even ones, which stay empty as on most findings.
func makeFindings(n int) []finding.Finding {
	observed := time.Now().UTC().Add(-time.Minute).Truncate(time.Second).Format(time.RFC3339)
	out := make([]finding.Finding, n)
	for i := range out {
		conn := fmt.Sprintf("vco-%020d", i)
		cen := fmt.Sprintf("cen-%016d", i%7)
		f := finding.Finding{
			ScanID:                 "0f8e2c1a-scan",
			Trigger:                finding.TriggerTimer,
			RuleID:                 finding.RuleUntrustedAccount,
			Title:                  "Authorized to an untrusted account",
			Severity:               "high",
			Status:                 []string{finding.StatusPass, finding.StatusFail, finding.StatusSuppressed, finding.StatusError}[i%4],
			StatusDetail:           fmt.Sprintf("%s may be attached to %s of account 1999000011112222.", conn, cen),
			Region:                 "cn-hangzhou",
			OwnerAccountID:         "1210123456123456",
			VpnConnectionID:        conn,
			BindUID:                "1999000011112222",
			BindProduct:            "CEN",
			BindInstance:           cen,
			AuthorizationCreatedAt: "2026-01-02T03:04:05Z",
			AuthorizationAgeDays:   strconv.Itoa(i % 400),
			Remediation:            "RevokeInstanceFromTransitRouter CenId=" + cen + " InstanceId=" + conn,
			ObservedAt:             observed,
		}
		if i%2 == 1 {
			f.ExceptionReason = "partner migration, ticket NET-123"
			f.ExceptionExpires = "2027-01-31"
		}
		f.FindingUID = finding.UID(f.RuleID, f.OwnerAccountID, f.Region, f.VpnConnectionID, f.BindUID, f.BindInstance)
		out[i] = f
	}
	return out
}

func summaryFor(n int) *finding.ScanSummary {
	s := &finding.ScanSummary{
		ScanID: "0f8e2c1a-scan", Trigger: finding.TriggerTimer,
		StartedAt: time.Now().UTC().Format(time.RFC3339), DurationMs: 4321, Complete: true,
		Counts: finding.Counts{Connections: 11, Authorizations: n, APICalls: 23, APIRetries: 2, Throttled: 1},
	}
	for _, f := range makeFindings(n) {
		s.Counts.Add(&f)
	}
	return s
}

// run writes findings and closes the sink.
func run(ctx context.Context, t *testing.T, s *slssink.Sink, findings []finding.Finding, summary *finding.ScanSummary) scan.Delivery {
	t.Helper()
	for i := range findings {
		if err := s.Write(ctx, &findings[i]); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	return s.Close(ctx, summary)
}

func contentsOf(f *finding.Finding) map[string]string {
	m := map[string]string{}
	for i, v := range f.Values() {
		m[finding.Keys[i]] = v
	}
	return m
}

// checkStored compares what the emulator stored under the finding topic with
// what was written, every field of every finding, in order.
func checkStored(t *testing.T, emu *slsemu.Server, want []finding.Finding, source string) {
	t.Helper()
	got := emu.LogsByTopic(project, logstore, finding.TopicFinding)
	if len(got) != len(want) {
		t.Fatalf("%d finding logs stored, want %d", len(got), len(want))
	}
	for i, l := range got {
		f := &want[i]
		if !slices.Equal(l.Keys, finding.Keys) {
			t.Fatalf("log %d keys = %v, want %v", i, l.Keys, finding.Keys)
		}
		for k, v := range contentsOf(f) {
			if l.Contents[k] != v {
				t.Fatalf("log %d %s = %q, want %q", i, k, l.Contents[k], v)
			}
		}
		observed, _ := time.Parse(time.RFC3339, f.ObservedAt)
		if int64(l.Time) != observed.Unix() {
			t.Fatalf("log %d time %d, want observed_at %d", i, l.Time, observed.Unix())
		}
		if l.Source != source {
			t.Fatalf("log %d source %q, want %q", i, l.Source, source)
		}
	}
}

func storedSummary(t *testing.T, emu *slsemu.Server) slsemu.Log {
	t.Helper()
	logs := emu.LogsByTopic(project, logstore, finding.TopicScan)
	if len(logs) != 1 {
		t.Fatalf("%d summary logs stored, want 1", len(logs))
	}
	return logs[0]
}

// stdoutLines splits the sink's standard output into findings and summaries.
func stdoutLines(t *testing.T, out *testutil.Buffer) (findings []finding.Finding, summaries []map[string]string) {
	t.Helper()
	for _, line := range lines(out) {
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line is not a JSON object of strings: %v: %s", err, line)
		}
		if _, ok := m["findings_delivered"]; ok {
			summaries = append(summaries, m)
			continue
		}
		if len(m) != len(finding.Keys) {
			t.Fatalf("stdout finding has %d keys, want %d: %s", len(m), len(finding.Keys), line)
		}
		var f finding.Finding
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(&f); string(want) != line {
			t.Fatalf("stdout line is not the finding's JSON:\n%s\n%s", line, want)
		}
		findings = append(findings, f)
	}
	return findings, summaries
}

// checkAllOnStdout asserts that every finding and the summary reached
// standard output, nothing twice.
func checkAllOnStdout(t *testing.T, out *testutil.Buffer, want []finding.Finding) {
	t.Helper()
	got, summaries := stdoutLines(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d findings on stdout, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stdout finding %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(summaries) != 1 {
		t.Fatalf("%d summaries on stdout, want 1", len(summaries))
	}
	if summaries[0]["findings_delivered"] != "0" {
		t.Errorf("summary findings_delivered = %q, want 0", summaries[0]["findings_delivered"])
	}
}

func checkNoSecrets(t *testing.T, text string) {
	t.Helper()
	for _, secret := range []string{keySecret, stsSecret, stsToken} {
		if strings.Contains(text, secret) {
			t.Errorf("error text carries a credential: %s", text)
		}
	}
}

func TestDeliversFindingsAndSummary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		creds scan.Credentials
	}{
		{"access key", plainCreds},
		{"STS token", stsCreds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true)
			e.opts.Credentials = tc.creds
			e.opts.Source = "vpnauthz-test"
			s := e.sink(t)
			findings := makeFindings(300)
			summary := summaryFor(300)

			d := run(t.Context(), t, s, findings, summary)
			want := scan.Delivery{Sink: "sls", Project: project, Logstore: logstore, Delivered: true}
			if d != want {
				t.Fatalf("delivery = %+v, want %+v", d, want)
			}
			checkStored(t, e.emu, findings, "vpnauthz-test")
			if summary.Counts.FindingsDelivered != 300 {
				t.Errorf("summary FindingsDelivered = %d, want 300", summary.Counts.FindingsDelivered)
			}

			sum := storedSummary(t, e.emu)
			wantKeys := []string{"scan_id", "trigger", "started_at", "duration_ms", "complete", "connections",
				"connections_in_scope", "authorizations", "pass", "fail", "error", "suppressed", "api_calls", "api_retries",
				"throttled", "findings_delivered", "changes", "state_warning", "role", "accounts",
				"parent_scan_id", "batch", "batches"}
			if !slices.Equal(sum.Keys, wantKeys) {
				t.Errorf("summary keys = %v, want %v", sum.Keys, wantKeys)
			}
			for k, v := range map[string]string{
				"scan_id": "0f8e2c1a-scan", "trigger": "timer", "duration_ms": "4321", "complete": "true",
				"connections": "11", "authorizations": "300", "pass": "75", "fail": "75", "error": "75",
				"suppressed": "75", "api_calls": "23", "api_retries": "2", "throttled": "1",
				"findings_delivered": "300",
			} {
				if sum.Contents[k] != v {
					t.Errorf("summary %s = %q, want %q", k, sum.Contents[k], v)
				}
			}

			if lines := lines(e.stdout); len(lines) != 0 {
				t.Errorf("%d lines on stdout after a full delivery", len(lines))
			}
			st := s.Stats()
			if st.PutLogsCalls != 2 || st.Retries != 0 || st.Delivered != 300 || st.ToStdout != 0 {
				t.Errorf("stats = %+v, want 2 calls, 0 retries, 300 delivered", st)
			}
			if emu := e.emu.Stats(); emu.PutLogsCalls != 2 || emu.RawBytes != st.RawBytes || emu.WireBytes != st.WireBytes {
				t.Errorf("emulator saw %d calls, %d raw, %d wire bytes; sink counted %+v",
					emu.PutLogsCalls, emu.RawBytes, emu.WireBytes, st)
			}
			if st.WireBytes >= st.RawBytes {
				t.Errorf("wire bytes %d not below raw bytes %d: not compressed", st.WireBytes, st.RawBytes)
			}
		})
	}
}

func TestTenThousandFindingsInFourCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	// A retry after a timeout could store a batch twice: leave the emulator,
	// slow under the race detector, all the time it needs.
	e.opts.AttemptTimeout = time.Minute
	e.opts.RetryBudget = 2 * time.Minute
	s := e.sink(t)
	findings := makeFindings(10_000)

	d := run(t.Context(), t, s, findings, summaryFor(0))
	if !d.Delivered {
		t.Fatalf("not delivered: %s", d.Error)
	}
	checkStored(t, e.emu, findings, "vpnauthz")
	want := (10_000+slssink.MaxBatchLogs-1)/slssink.MaxBatchLogs + 1
	st := s.Stats()
	emu := e.emu.Stats()
	t.Logf("10,000 findings: %d PutLogs calls (minimum %d), %d raw bytes, %d wire bytes",
		st.PutLogsCalls, want, st.RawBytes, st.WireBytes)
	if st.PutLogsCalls != want || emu.PutLogsCalls != want || emu.PutLogsOK != want {
		t.Errorf("sink made %d calls, emulator saw %d (%d OK), want %d", st.PutLogsCalls, emu.PutLogsCalls, emu.PutLogsOK, want)
	}
	if emu.LogsStored != 10_001 {
		t.Errorf("emulator stored %d logs, want 10001", emu.LogsStored)
	}
}

func TestRidesOutTransientFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fault     func(*slsemu.Server)
		errorCode string
	}{
		{"server busy for 2s", func(s *slsemu.Server) { s.BusyFor(2 * time.Second) }, "ServerBusy"},
		{"write quota exceeded for 1s", func(s *slsemu.Server) { s.QuotaExceededFor(time.Second) }, "WriteQuotaExceed"},
		{"one internal error", func(s *slsemu.Server) {
			s.FailNextPutLogs(1, 500, "InternalServerError", "Internal server error message.")
		}, "InternalServerError"},
		{"one bad gateway", func(s *slsemu.Server) { s.FailNextPutLogs(1, 502, "BadGateway", "bad gateway") }, "BadGateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			e.opts.MaxBatchLogs = 100
			s := e.sink(t)
			findings := makeFindings(250)
			tc.fault(e.emu)

			d := run(t.Context(), t, s, findings, summaryFor(250))
			if !d.Delivered || d.Error != "" {
				t.Fatalf("delivery = %+v, want delivered", d)
			}
			checkStored(t, e.emu, findings, "vpnauthz")
			storedSummary(t, e.emu)
			st := s.Stats()
			emu := e.emu.Stats()
			if st.Retries == 0 || emu.ErrorsByCode[tc.errorCode] == 0 {
				t.Errorf("retries %d, emulator errors %v: the fault was not met", st.Retries, emu.ErrorsByCode)
			}
			// Every request is the sink's decision: the SDK does not retry
			// behind its back.
			if st.PutLogsCalls != 4+st.Retries || emu.PutLogsCalls != st.PutLogsCalls {
				t.Errorf("%d calls counted, %d retries, emulator saw %d; want 4 + retries everywhere",
					st.PutLogsCalls, st.Retries, emu.PutLogsCalls)
			}
			if len(lines(e.stdout)) != 0 {
				t.Error("findings on stdout although delivered")
			}
		})
	}
}

func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		withLogstore bool
		creds        scan.Credentials
		setup        func(*slsemu.Server)
		errorHas     string
		wantCalls    func(st slssink.Stats) bool
	}{
		{
			name:         "service down",
			withLogstore: true,
			creds:        plainCreds,
			setup:        func(s *slsemu.Server) { s.SetDown(true) },
			errorHas:     "PutLogs to vpn-audit/vpnauthz-findings: ",
			// Only the first batch is tried, and retried until its budget ran out.
			wantCalls: func(st slssink.Stats) bool { return st.Retries > 0 && st.PutLogsCalls == st.Retries+1 },
		},
		{
			name:         "logstore missing",
			withLogstore: false,
			creds:        plainCreds,
			errorHas:     "PutLogs to vpn-audit/vpnauthz-findings: LogStoreNotExist (HTTP 404): ",
			wantCalls:    func(st slssink.Stats) bool { return st.PutLogsCalls == 1 && st.Retries == 0 },
		},
		{
			name:         "wrong token",
			withLogstore: true,
			creds:        scan.Credentials{AccessKeyID: stsKeyID, AccessKeySecret: stsSecret, SecurityToken: "CAISwrong"},
			errorHas:     "(HTTP 401): ",
			wantCalls:    func(st slssink.Stats) bool { return st.PutLogsCalls == 1 && st.Retries == 0 },
		},
		{
			name:         "bad secret",
			withLogstore: true,
			creds:        scan.Credentials{AccessKeyID: keyID, AccessKeySecret: "not-the-secret"},
			errorHas:     "SignatureNotMatch (HTTP 401): ",
			wantCalls:    func(st slssink.Stats) bool { return st.PutLogsCalls == 1 && st.Retries == 0 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.withLogstore)
			e.opts.Credentials = tc.creds
			e.opts.MaxBatchLogs = 100
			e.opts.RetryBudget = time.Second
			if tc.setup != nil {
				tc.setup(e.emu)
			}
			s := e.sink(t)
			findings := makeFindings(250)
			summary := summaryFor(250)

			d := run(t.Context(), t, s, findings, summary)
			if d.Delivered {
				t.Fatal("delivered = true")
			}
			if !strings.Contains(d.Error, tc.errorHas) {
				t.Errorf("error = %q, want it to contain %q", d.Error, tc.errorHas)
			}
			checkNoSecrets(t, d.Error)
			checkAllOnStdout(t, e.stdout, findings)
			if summary.Counts.FindingsDelivered != 0 {
				t.Errorf("FindingsDelivered = %d, want 0", summary.Counts.FindingsDelivered)
			}
			st := s.Stats()
			if !tc.wantCalls(st) || st.ToStdout != 250 || st.Delivered != 0 {
				t.Errorf("stats = %+v", st)
			}
			if n := len(e.emu.Logs(project, logstore)); n != 0 {
				t.Errorf("%d logs stored", n)
			}
		})
	}
}

func TestFailureAfterSomeBatchesKeepsEveryFinding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.opts.MaxBatchLogs = 100
	s := e.sink(t)
	findings := makeFindings(250)
	summary := summaryFor(250)
	// The second batch is refused for good: the first stays delivered, the
	// second and third and the summary go to stdout.
	ctx := t.Context()
	for i := range 150 {
		if err := s.Write(ctx, &findings[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The first batch was handed over when the 101st finding came; wait for
	// it to be stored, then break the logstore for the second.
	deadline := time.Now().Add(5 * time.Second)
	for e.emu.Stats().PutLogsOK < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	e.emu.FailNextPutLogs(1, 400, "PostBodyInvalid", "Protobuffer content cannot be parsed.")
	d := run(ctx, t, s, findings[150:], summary)

	if d.Delivered || !strings.Contains(d.Error, "PostBodyInvalid (HTTP 400)") {
		t.Fatalf("delivery = %+v", d)
	}
	checkStored(t, e.emu, findings[:100], "vpnauthz")
	got, summaries := stdoutLines(t, e.stdout)
	if len(got) != 150 || got[0] != findings[100] || got[149] != findings[249] {
		t.Fatalf("%d findings on stdout, want findings 100..249", len(got))
	}
	if len(summaries) != 1 || summaries[0]["findings_delivered"] != "100" {
		t.Errorf("summaries on stdout: %v, want one with findings_delivered 100", summaries)
	}
	if st := s.Stats(); st.Delivered != 100 || st.ToStdout != 150 || st.PutLogsCalls != 2 {
		t.Errorf("stats = %+v, want 2 calls, 100 delivered, 150 on stdout", st)
	}
}

func TestDeadlineShorterThanOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.opts.MaxBatchLogs = 100
	e.opts.RetryBudget = 0 // the default, far longer than the deadline
	e.opts.RetryCap = 0
	e.emu.SetDown(true)
	s := e.sink(t)
	findings := makeFindings(250)

	const budget = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	start := time.Now()
	d := run(ctx, t, s, findings, summaryFor(250))
	elapsed := time.Since(start)

	if elapsed >= budget {
		t.Errorf("returned after %v, deadline was %v", elapsed, budget)
	}
	if d.Delivered || d.Error == "" {
		t.Fatalf("delivery = %+v, want a failure", d)
	}
	checkAllOnStdout(t, e.stdout, findings)
}

func TestBackAfterOutageWithinBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.emu.SetDown(true)
	s := e.sink(t)
	findings := makeFindings(20)
	time.AfterFunc(700*time.Millisecond, func() { e.emu.SetDown(false) })

	d := run(t.Context(), t, s, findings, summaryFor(20))
	if !d.Delivered {
		t.Fatalf("not delivered: %s", d.Error)
	}
	checkStored(t, e.emu, findings, "vpnauthz")
	if st := s.Stats(); st.Retries == 0 {
		t.Errorf("stats = %+v, want retries", st)
	}
}

func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	for i := range 2 {
		if err := slssink.Setup(t.Context(), e.opts); err != nil {
			t.Fatalf("Setup #%d: %v", i+1, err)
		}
	}
	raw, ok := e.emu.Index(project, logstore)
	if !ok {
		t.Fatal("no index stored")
	}
	var index struct {
		Keys map[string]struct {
			Type     string   `json:"type"`
			Token    []string `json:"token"`
			DocValue bool     `json:"doc_value"`
		} `json:"keys"`
		Line *struct {
			Token []string `json:"token"`
		} `json:"line"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	summaryKeys := []string{"duration_ms", "complete", "connections", "authorizations", "pass", "fail",
		"error", "suppressed", "api_calls", "api_retries", "throttled", "findings_delivered", "started_at",
		"connections_in_scope", "changes", "state_warning", "role", "accounts", "parent_scan_id", "batch", "batches"}
	for _, k := range append(slices.Clone(finding.Keys), summaryKeys...) {
		key, ok := index.Keys[k]
		if !ok {
			t.Errorf("index has no field %s", k)
			continue
		}
		if !key.DocValue || (key.Type != "text" && key.Type != "long") {
			t.Errorf("field %s: type %q doc_value %v", k, key.Type, key.DocValue)
		}
	}
	if index.Line == nil || len(index.Line.Token) == 0 {
		t.Error("no full-text index")
	}

	// The logstore Setup made takes findings.
	findings := makeFindings(3)
	if d := run(t.Context(), t, e.sink(t), findings, summaryFor(3)); !d.Delivered {
		t.Fatalf("delivery after setup: %s", d.Error)
	}
	checkStored(t, e.emu, findings, "vpnauthz")
}

func TestSetupReportsErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.opts.Project = "no-such-project"
	err := slssink.Setup(t.Context(), e.opts)
	if err == nil || !strings.Contains(err.Error(), "ProjectNotExist (HTTP 404)") {
		t.Fatalf("err = %v, want ProjectNotExist", err)
	}
}

func TestNewClientReachesEmulator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c, err := slssink.NewClient(endpoint.MustParse(e.emu.Endpoint()), stsCreds)
	if err != nil {
		t.Fatal(err)
	}
	stores, err := c.ListLogStore(project)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(stores, logstore) {
		t.Errorf("logstores = %v, want %s among them", stores, logstore)
	}
}
