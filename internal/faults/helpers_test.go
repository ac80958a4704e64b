package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/target"
	"vpnauthz/internal/vpcapi"
)

// Accounts and CEN instances of the generated inventories.
const (
	ownerAccount   = "1234567890123456"
	trustedAccount = "1210123456123456"
	partnerAccount = "1999000011112222"
	trustedCEN     = "cen-trusted000001"
	otherCEN       = "cen-unknown000001"
)

// testPolicy enables every rule, so that each authorization gives four
// findings with different verdicts.
var testPolicy = policy.Policy{
	TrustedAccountIDs:       []string{trustedAccount},
	TrustedCENIDs:           []string{trustedCEN},
	MaxAuthorizationAgeDays: 365,
}

// startCloud starts the emulated VPC API and Log Service on inv.
func startCloud(t *testing.T, inv *vpcemu.Inventory) *emulator.Cloud {
	t.Helper()
	c, err := emulator.Start(emulator.Options{Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// cloudCreds are the credentials both emulated services accept.
func cloudCreds(c *emulator.Cloud) scan.Credentials {
	return scan.Credentials{
		AccessKeyID:     c.Credentials.AccessKeyID,
		AccessKeySecret: c.Credentials.AccessKeySecret,
		SecurityToken:   c.Credentials.SecurityToken,
	}
}

// fastRetry keeps backoffs short: the point of these tests is what the
// retries achieve, not how long they wait.
var fastRetry = retry.Policy{MaxAttempts: 12, BaseDelay: 5 * time.Millisecond, MaxDelay: 80 * time.Millisecond}

// newScanner wires a scanner to the emulated VPC API the way the function
// does (vpcapi source factory on VPC_ENDPOINT), with a high rate and fast
// retries unless mod says otherwise.
func newScanner(t *testing.T, c *emulator.Cloud, mod func(*scan.Options)) *scan.Scanner {
	t.Helper()
	opts := scan.Options{
		Policy:      testPolicy,
		NewSource:   vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(c.VPC.URL())}),
		Rate:        500,
		Concurrency: 8,
		CallTimeout: 5 * time.Second,
		Retry:       fastRetry,
	}
	if mod != nil {
		mod(&opts)
	}
	return scan.New(opts)
}

// newSink opens the Log Service sink of one scan the way the function does,
// with its standard-output fallback going to stdout and short retries.
func newSink(t *testing.T, c *emulator.Cloud, creds scan.Credentials, stdout io.Writer) *slssink.Sink {
	t.Helper()
	s, err := slssink.New(slssink.Options{
		Endpoint:       endpoint.MustParse(c.SLS.Endpoint()),
		Project:        c.Project,
		Logstore:       c.Logstore,
		Credentials:    creds,
		Stdout:         stdout,
		RetryBase:      5 * time.Millisecond,
		RetryCap:       50 * time.Millisecond,
		RetryBudget:    2 * time.Second,
		AttemptTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scanRequest is a request for targets ("region:id" or "region:*").
func scanRequest(t *testing.T, creds scan.Credentials, targets ...string) scan.Request {
	t.Helper()
	ts := make([]target.Target, 0, len(targets))
	for _, s := range targets {
		tg, err := target.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	return scan.Request{
		Trigger:         finding.TriggerHTTP,
		Targets:         ts,
		Credentials:     creds,
		AccountID:       ownerAccount,
		CollectFindings: true,
	}
}

// runScan runs one scan to the emulated Log Service and returns its report.
func runScan(t *testing.T, s *scan.Scanner, c *emulator.Cloud, req scan.Request) scan.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := s.Run(ctx, req, newSink(t, c, req.Credentials, io.Discard))
	if err != nil {
		t.Fatalf("scan refused: %v", err)
	}
	return rep
}

// storedFindings are the finding logs Log Service holds for one scan.
func storedFindings(c *emulator.Cloud, scanID string) []map[string]string {
	var out []map[string]string
	for _, l := range c.SLS.LogsByTopic(c.Project, c.Logstore, finding.TopicFinding) {
		if l.Contents["scan_id"] == scanID {
			out = append(out, l.Contents)
		}
	}
	return out
}

// storedSummary is the scan summary log of one scan; it fails the test
// unless there is exactly one.
func storedSummary(t *testing.T, c *emulator.Cloud, scanID string) map[string]string {
	t.Helper()
	var out []map[string]string
	for _, l := range c.SLS.LogsByTopic(c.Project, c.Logstore, finding.TopicScan) {
		if l.Contents["scan_id"] == scanID {
			out = append(out, l.Contents)
		}
	}
	if len(out) != 1 {
		t.Fatalf("scan %s has %d summary logs in Log Service, want 1", scanID, len(out))
	}
	return out[0]
}

// verdicts is the set of (finding_uid, status) pairs of some findings.
type verdicts map[string]string

func verdictsOf(fs []finding.Finding) verdicts {
	out := verdicts{}
	for _, f := range fs {
		out[f.FindingUID] = f.Status
	}
	return out
}

// diff describes how got differs from want, "" when equal.
func (want verdicts) diff(got verdicts) string {
	var b bytes.Buffer
	n := 0
	for _, uid := range slices.Sorted(maps.Keys(want)) {
		if got[uid] != want[uid] && n < 10 {
			fmt.Fprintf(&b, "\n  %s: got %q, want %q", uid, got[uid], want[uid])
			n++
		}
	}
	for _, uid := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[uid]; !ok && n < 10 {
			fmt.Fprintf(&b, "\n  %s: got %q, want none", uid, got[uid])
			n++
		}
	}
	return b.String()
}

// byConnection groups findings by connection id.
func byConnection(fs []finding.Finding) map[string][]finding.Finding {
	out := map[string][]finding.Finding{}
	for _, f := range fs {
		out[f.VpnConnectionID] = append(out[f.VpnConnectionID], f)
	}
	return out
}

// countStatuses counts stored finding logs by status.
func countStatuses(logs []map[string]string) finding.Counts {
	var c finding.Counts
	for _, l := range logs {
		c.Add(&finding.Finding{Status: l["status"]})
	}
	return c
}

// connectionID is the id of the i-th generated connection of a region tag.
func connectionID(tag string, i int) string { return fmt.Sprintf("vco-%s%05d", tag, i) }

// uid parses an account id of the constants above.
func uid(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// grants are n authorizations with varied verdicts: trusted or partner
// accounts, trusted or other CENs, CEN or another product, young or old.
// No two of them bind the same account and instance.
func grants(t testing.TB, seed, n int, now time.Time) []vpcemu.Authorization {
	t.Helper()
	out := make([]vpcemu.Authorization, 0, n)
	for j := range n {
		k := seed*7 + j
		a := vpcemu.Authorization{
			BindUid:      uid(t, partnerAccount) + int64(k),
			BindProduct:  "CEN",
			BindInstance: trustedCEN,
			CreationTime: now.Add(-time.Duration(10+k%3*300) * 24 * time.Hour).UnixMilli(),
		}
		if j == 0 && k%2 == 0 {
			a.BindUid = uid(t, trustedAccount)
		}
		if k%3 == 2 {
			a.BindInstance = fmt.Sprintf("cen-partner%06d", k)
		}
		if k%11 == 5 {
			a.BindProduct = "VBR"
		}
		out = append(out, a)
	}
	return out
}
