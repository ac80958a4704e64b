package slssink_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
)

// makeChanges returns n distinct transitions with every field set.
func makeChanges(n int) []lifecycle.Change {
	observed := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Second)
	out := make([]lifecycle.Change, n)
	for i := range out {
		out[i] = lifecycle.Change{
			Change:            []string{lifecycle.ChangeOpened, lifecycle.ChangeResolved, lifecycle.ChangeReopened}[i%3],
			PreviousLifecycle: []string{"", lifecycle.LifecycleOpen, lifecycle.LifecycleResolved}[i%3],
			Lifecycle:         []string{lifecycle.LifecycleNew, lifecycle.LifecycleResolved, lifecycle.LifecycleReopened}[i%3],
			ResolvedReason:    []string{"", lifecycle.ReasonAuthorizationRemoved, ""}[i%3],
			FindingUID:        fmt.Sprintf("%032x", i),
			RuleID:            finding.RuleUntrustedAccount,
			Severity:          "high",
			OwnerAccountID:    "1210123456123456",
			Region:            "cn-hangzhou",
			VpnConnectionID:   fmt.Sprintf("vco-change%06d", i),
			BindUID:           "1999000011112222",
			BindInstance:      fmt.Sprintf("cen-%06d", i),
			FirstSeenAt:       observed.Add(-24 * time.Hour).Format(time.RFC3339),
			ObservedAt:        observed.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			ScanID:            "0f8e2c1a-scan",
			Trigger:           finding.TriggerTimer,
		}
	}
	return out
}

// TestDeliversChangeLogs: transitions written between the findings reach
// Log Service in log groups of their own, topic vpnauthz-change, every key
// in ChangeKeys' order, logged at their observation time; the findings and
// the summary are as without them.
func TestDeliversChangeLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.opts.MaxBatchLogs = 10
	s := e.sink(t)
	findings := makeFindings(25)
	changes := makeChanges(23)
	ctx := t.Context()
	for i := range max(len(findings), len(changes)) {
		if i < len(findings) {
			if err := s.Write(ctx, &findings[i]); err != nil {
				t.Fatal(err)
			}
		}
		if i < len(changes) {
			if err := s.WriteChange(ctx, &changes[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	summary := summaryFor(25)
	summary.Counts.Changes = len(changes)
	d := s.Close(ctx, summary)
	if !d.Delivered || d.Error != "" {
		t.Fatalf("delivery = %+v", d)
	}
	checkStored(t, e.emu, findings, "vpnauthz")

	got := e.emu.LogsByTopic(project, logstore, lifecycle.TopicChange)
	if len(got) != len(changes) {
		t.Fatalf("%d change logs stored, want %d", len(got), len(changes))
	}
	for i, l := range got {
		c := &changes[i]
		if !slices.Equal(l.Keys, lifecycle.ChangeKeys) {
			t.Fatalf("change log %d keys = %v, want %v", i, l.Keys, lifecycle.ChangeKeys)
		}
		for j, k := range lifecycle.ChangeKeys {
			if l.Contents[k] != c.Values()[j] {
				t.Errorf("change log %d %s = %q, want %q", i, k, l.Contents[k], c.Values()[j])
			}
		}
		observed, _ := time.Parse(time.RFC3339, c.ObservedAt)
		if int64(l.Time) != observed.Unix() {
			t.Errorf("change log %d time %d, want observed_at %d", i, l.Time, observed.Unix())
		}
	}
	// A log group has one topic: findings 3 batches of 10, changes 3, the summary 1.
	st := s.Stats()
	if st.PutLogsCalls != 3+3+1 || st.Delivered != 25 || st.ChangesDelivered != 23 || st.ToStdout+st.ChangesToStdout != 0 {
		t.Errorf("stats = %+v, want 7 calls, 25 findings and 23 changes delivered", st)
	}
	sum := storedSummary(t, e.emu)
	if sum.Contents["findings_delivered"] != "25" || sum.Contents["changes"] != "23" {
		t.Errorf("summary findings_delivered %q changes %q, want 25 (findings only) and 23",
			sum.Contents["findings_delivered"], sum.Contents["changes"])
	}
	if lines := lines(e.stdout); len(lines) != 0 {
		t.Errorf("%d lines on stdout after a full delivery", len(lines))
	}
	if err := s.WriteChange(ctx, &changes[0]); err == nil {
		t.Error("WriteChange after Close accepted")
	}
}

// TestChangeLogsFallBackToStdout: when Log Service refuses the change logs,
// delivery fails, and every change is on standard output as one JSON line
// with the change log's keys, beside the findings.
func TestChangeLogsFallBackToStdout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.opts.RetryBudget = 300 * time.Millisecond
	e.emu.SetDown(true)
	s := e.sink(t)
	findings := makeFindings(4)
	changes := makeChanges(5)
	ctx := t.Context()
	for i := range changes {
		if i < len(findings) {
			if err := s.Write(ctx, &findings[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.WriteChange(ctx, &changes[i]); err != nil {
			t.Fatal(err)
		}
	}
	d := s.Close(ctx, summaryFor(4))
	if d.Delivered || d.Error == "" {
		t.Fatalf("delivery = %+v, want a failure", d)
	}
	var gotChanges []lifecycle.Change
	nFindings, nSummaries := 0, 0
	for _, line := range lines(e.stdout) {
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line is not a JSON object of strings: %v: %s", err, line)
		}
		switch _, isChange := m["change"]; {
		case isChange:
			if keys := jsonKeysOf(t, line); !slices.Equal(keys, lifecycle.ChangeKeys) {
				t.Errorf("change line keys = %v, want %v", keys, lifecycle.ChangeKeys)
			}
			var c lifecycle.Change
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				t.Fatal(err)
			}
			gotChanges = append(gotChanges, c)
		case m["findings_delivered"] != "":
			nSummaries++
		default:
			nFindings++
		}
	}
	if !slices.Equal(gotChanges, changes) || nFindings != 4 || nSummaries != 1 {
		t.Errorf("stdout: %d changes (equal: %v), %d findings, %d summaries; want 5, 4, 1",
			len(gotChanges), slices.Equal(gotChanges, changes), nFindings, nSummaries)
	}
	if st := s.Stats(); st.ChangesToStdout != 5 || st.ChangesDelivered != 0 || st.ToStdout != 4 {
		t.Errorf("stats = %+v", st)
	}
}

// TestCoordinatorSummary: a coordinator writes no finding; the same Sink
// closed at once sends its summary alone, saying what was dispatched.
func TestCoordinatorSummary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	s := e.sink(t)
	d := s.Close(t.Context(), &finding.ScanSummary{
		ScanID: "0193f2a4-coord", Trigger: finding.TriggerTimer, StartedAt: time.Now().UTC().Format(time.RFC3339),
		DurationMs: 812, Complete: true, Role: finding.RoleCoordinator, Accounts: 120, Batches: 3,
	})
	if !d.Delivered {
		t.Fatalf("delivery = %+v", d)
	}
	if n := len(e.emu.LogsByTopic(project, logstore, finding.TopicFinding)); n != 0 {
		t.Errorf("%d findings stored by a coordinator", n)
	}
	sum := storedSummary(t, e.emu)
	for k, want := range map[string]string{
		"role": "coordinator", "accounts": "120", "batches": "3", "batch": "", "parent_scan_id": "",
		"scan_id": "0193f2a4-coord", "findings_delivered": "0", "connections": "0",
	} {
		if got, ok := sum.Contents[k]; !ok || got != want {
			t.Errorf("coordinator summary %s = %q (present %v), want %q", k, got, ok, want)
		}
	}
	if st := s.Stats(); st.PutLogsCalls != 1 {
		t.Errorf("%d PutLogs calls, want the summary's one", st.PutLogsCalls)
	}
}

// jsonKeysOf returns the keys of one JSON object in the order written.
func jsonKeysOf(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
