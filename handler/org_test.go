package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/events"
	"vpnauthz/internal/accounts"
	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/config"
	"vpnauthz/internal/fanout"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
	"vpnauthz/internal/trail"
)

// Accounts of the organisation tests besides testAccount (the function's).
const (
	memberA    = "2000000000000001"
	memberB    = "2000000000000002"
	memberC    = "2000000000000003"
	memberGone = "2000000000000009" // listed, not joined
	outsider   = "3999999999999999"
)

// fakeDirectory is a ListDirectory.
type fakeDirectory struct {
	mu      sync.Mutex
	listing accounts.Listing
	err     error
	calls   []Invocation
}

func (d *fakeDirectory) List(_ context.Context, in Invocation) (accounts.Listing, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, in)
	return d.listing, d.err
}

func directoryOf(members ...string) *fakeDirectory {
	l := accounts.Listing{MasterAccountID: testAccount}
	for _, m := range append([]string{testAccount}, members...) {
		l.Members = append(l.Members, accounts.Member{ID: m, Status: "CreateSuccess", Joined: true})
	}
	l.Members = append(l.Members, accounts.Member{ID: memberGone, Status: "Removing"})
	return &fakeDirectory{listing: l}
}

// fakeMembers is a NewMembers; its credentials name the account, so a test
// can tell whose they are.
type fakeMembers struct {
	mu      sync.Mutex
	scanIDs []string
	err     error
}

type memberCreds struct{}

func (memberCreds) Credentials(_ context.Context, account string) (scan.Credentials, error) {
	return scan.Credentials{AccessKeyID: "STS.member-" + account, AccessKeySecret: "x", SecurityToken: "y"}, nil
}

func (m *fakeMembers) New(_ context.Context, _ Invocation, scanID string) (scan.MemberCredentials, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scanIDs = append(m.scanIDs, scanID)
	if m.err != nil {
		return nil, m.err
	}
	return memberCreds{}, nil
}

// fakeDispatch records the batches it is asked to start; a task id it saw
// before is already started, as FC answers a repeated task id.
type fakeDispatch struct {
	mu      sync.Mutex
	started map[string]bool
	calls   [][][]string
	scanIDs []string
	failAt  int // a batch that cannot be dispatched; 0: none
}

func (d *fakeDispatch) Dispatch(_ context.Context, _ Invocation, scanID string, batches [][]string) ([]fanout.Dispatched, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started == nil {
		d.started = map[string]bool{}
	}
	d.calls = append(d.calls, batches)
	d.scanIDs = append(d.scanIDs, scanID)
	out := make([]fanout.Dispatched, len(batches))
	var first error
	for i, b := range batches {
		id := fanout.TaskID(scanID, i+1)
		out[i] = fanout.Dispatched{Batch: i + 1, TaskID: id, Accounts: len(b)}
		switch {
		case i+1 == d.failAt:
			out[i].Err = fmt.Errorf("batch %d (task %s): InvokeFunction: 503 ServiceUnavailable", i+1, id)
			first = cmpOr(first, out[i].Err)
		case d.started[id]:
			out[i].AlreadyStarted = true
		default:
			d.started[id] = true
			out[i].RequestID = "req-" + id
		}
	}
	return out, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fakeTrail is a ReadTrail.
type fakeTrail struct {
	mu       sync.Mutex
	result   trailResult
	err      error
	calls    int
	deadline time.Time
}

type trailResult = struct {
	records, kept int
	ignored       map[actiontrail.Kind]int
	scans         [][3]string // account, region, connection
	complete      bool
}

func newFakeTrail() *fakeTrail {
	return &fakeTrail{result: trailResult{records: 3, kept: 1, complete: true,
		ignored: map[actiontrail.Kind]int{actiontrail.Failed: 1, actiontrail.Unrelated: 1},
		scans:   [][3]string{{testAccount, "cn-hangzhou", "vco-hz0partner0002"}}}}
}

func (f *fakeTrail) Read(ctx context.Context, _ Invocation, ev *events.SLSEvent) (trail.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.deadline, _ = ctx.Deadline()
	if f.err != nil {
		return trail.Result{}, f.err
	}
	res := trail.Result{Project: *ev.Source.ProjectName, Logstore: *ev.Source.LogstoreName, Shard: *ev.Source.ShardID,
		Records: f.result.records, Kept: f.result.kept, Ignored: f.result.ignored, Complete: f.result.complete}
	for _, s := range f.result.scans {
		res.Scans = append(res.Scans, trail.Scan{Account: s[0], Region: s[1], ConnectionID: s[2], Events: []string{"GrantInstanceToTransitRouter"}})
	}
	return res, nil
}

// fakeState is a lifecycle.Store that is never called by the fake scanner.
type fakeState struct{ lifecycle.Store }

// orgRig is a rig whose configuration is testScope plus the given
// environment, with fake organisation clients.
type orgRig struct {
	*rig
	dir     *fakeDirectory
	members *fakeMembers
	disp    *fakeDispatch
}

func newOrgRig(t *testing.T, env map[string]string, change func(*Options)) *orgRig {
	t.Helper()
	vars := map[string]string{config.EnvScanTargets: testScope, config.EnvHTTPAuthToken: testBearer}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &orgRig{dir: directoryOf(memberA, memberB, memberC), members: &fakeMembers{}, disp: &fakeDispatch{}}
	o.rig = newRig(t, func(opts *Options) {
		opts.Config = cfg
		opts.ListDirectory = o.dir.List
		opts.NewMembers = o.members.New
		opts.Dispatch = o.disp.Dispatch
		if change != nil {
			change(opts)
		}
	})
	return o
}

// fcInvocation is testInvocation as FC gives it: with the function's name.
func fcInvocation(requestID string) Invocation {
	in := invocationAs(testKeyID, testKeySecret, testToken, requestID)
	in.FunctionName = "vpnauthz"
	return in
}

func accountsOf(ts []target.Target) string {
	return strings.Join(target.Accounts(ts), ",")
}

func TestOrganisationTimerScansEveryAccount(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		accounts string // of the scan's targets, the own one as ""
		trusted  []int64
		listings int
		excluded []string
		members  bool
	}{
		{"ACCOUNTS unset", nil, "", nil, 0, nil, false},
		{"a list", map[string]string{"ACCOUNTS": memberA + "," + testAccount + " " + memberB}, "," + memberA + "," + memberB, nil, 0, nil, true},
		{"a list, one excluded", map[string]string{"ACCOUNTS": memberA + "," + memberB, "ACCOUNTS_EXCLUDE": memberB}, memberA, nil, 0, []string{memberB}, true},
		{"the directory", map[string]string{"ACCOUNTS": "resource-directory", "ACCOUNTS_EXCLUDE": memberC},
			"," + memberA + "," + memberB, nil, 1, []string{memberC}, true},
		{"the directory, trusted", map[string]string{"ACCOUNTS": "resource-directory", "ACCOUNTS_EXCLUDE": memberC, "TRUST_ORGANIZATION": "true"},
			"," + memberA + "," + memberB,
			[]int64{1234567890123456, 2000000000000001, 2000000000000002, 2000000000000003, 2000000000000009}, 1, []string{memberC}, true},
		{"own account, organisation trusted", map[string]string{"TRUST_ORGANIZATION": "true"}, "",
			[]int64{1234567890123456, 2000000000000001, 2000000000000002, 2000000000000003, 2000000000000009}, 1, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newOrgRig(t, tc.env, nil)
			resp, err := r.invoke(t, timerEvent(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			calls := r.scanner.calls()
			if len(calls) != 1 {
				t.Fatalf("%d scans", len(calls))
			}
			req := calls[0]
			if got := accountsOf(req.Targets); got != tc.accounts {
				t.Errorf("accounts scanned %q, want %q (targets %s)", got, tc.accounts, targetStrings(req.Targets))
			}
			// SCAN_TARGETS' cn-hangzhou:* reaches every account; its explicit
			// connections are the function's own.
			for _, a := range target.Accounts(req.Targets) {
				var in []string
				for _, tg := range req.Targets {
					if tg.Account == a {
						in = append(in, tg.Region+":"+tg.ConnectionID)
					}
				}
				want := []string{"cn-hangzhou:*"}
				if a == "" {
					want = []string{"ap-southeast-1:vco-sg0denied00001", "cn-hangzhou:*", "cn-shanghai:vco-sh0rogue000002", "cn-shanghai:vco-sh0stale000001"}
				}
				if !slices.Equal(in, want) {
					t.Errorf("account %q reads %v, want %v", a, in, want)
				}
			}
			if !slices.Equal(req.TrustedAccounts, tc.trusted) {
				t.Errorf("trusted %v, want %v", req.TrustedAccounts, tc.trusted)
			}
			if (req.Members != nil) != tc.members {
				t.Errorf("members %v, want them: %v", req.Members, tc.members)
			}
			if tc.members {
				c, _ := req.Members.Credentials(context.Background(), memberA)
				if c.AccessKeyID != "STS.member-"+memberA || r.members.scanIDs[0] != testScanID {
					t.Errorf("member credentials %s for scan %v", c.AccessKeyID, r.members.scanIDs)
				}
			}
			if len(r.dir.calls) != tc.listings {
				t.Errorf("%d listings, want %d", len(r.dir.calls), tc.listings)
			}
			if len(r.dir.calls) > 0 && r.dir.calls[0].Credentials.AccessKeySecret != testKeySecret {
				t.Errorf("the directory was listed without the invocation's credentials")
			}
			res := resp.(*ScanResult)
			if (res.Accounts != nil) != (tc.env != nil) {
				t.Fatalf("accounts report %+v", res.Accounts)
			}
			if res.Accounts != nil {
				if res.Accounts.Scanned != len(target.Accounts(req.Targets)) || !slices.Equal(res.Accounts.Excluded, tc.excluded) {
					t.Errorf("accounts report %+v", res.Accounts)
				}
				if tc.env["ACCOUNTS"] == "resource-directory" && (len(res.Accounts.NotJoined) != 1 || res.Accounts.NotJoined[0].Account != memberGone) {
					t.Errorf("not joined %+v, want %s", res.Accounts.NotJoined, memberGone)
				}
			}
		})
	}
}

// A failed listing of the directory is one ERROR finding on the function's
// own account, region and connection "*", and the own account is scanned.
func TestDirectoryListingFails(t *testing.T) {
	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry run %v", dry), func(t *testing.T) {
			r := newOrgRig(t, map[string]string{"ACCOUNTS": "resource-directory"}, nil)
			r.dir.err = errors.New("ListAccounts: NoPermission: not a management account")
			payload := ""
			if dry {
				payload = `{"dryRun":true}`
			}
			in := testInvocation()
			in.Collect = true
			resp, err := r.invokeAs(t, context.Background(), in, timerEvent(t, payload))
			if err != nil {
				t.Fatal(err)
			}
			calls := r.scanner.calls()
			if len(calls) != 1 || accountsOf(calls[0].Targets) != "" || calls[0].Members != nil {
				t.Fatalf("scans %+v, want the own account's", calls)
			}
			res := resp.(*ScanResult)
			if res.Accounts == nil || !strings.Contains(res.Accounts.ListError, "NoPermission") {
				t.Errorf("accounts report %+v", res.Accounts)
			}
			if res.Summary.Error != 1 || res.Summary.Pass != len(calls[0].Targets) {
				t.Errorf("summary %+v, want the listing's ERROR counted", res.Summary)
			}
			f := res.Findings[0]
			want := finding.UID(finding.RuleReadAuthorizations, testAccount, "*", "*", "", "")
			if f.Status != finding.StatusError || f.Region != "*" || f.VpnConnectionID != "*" || f.OwnerAccountID != testAccount ||
				f.FindingUID != want || f.ScanID != testScanID || f.Trigger != "timer" || !strings.Contains(f.StatusDetail, "NoPermission") {
				t.Errorf("listing finding %+v", f)
			}
			if dry {
				if r.sinks.count() != 0 {
					t.Error("a dry run opened a sink")
				}
				return
			}
			sink := r.sinks.opened[0]
			if len(sink.findings) != len(calls[0].Targets)+1 || sink.findings[0].FindingUID != want {
				t.Errorf("sink holds %d findings, the first %+v", len(sink.findings), sink.findings[0])
			}
			if res.Summary.FindingsDelivered != len(sink.findings) {
				t.Errorf("findings delivered %d, sink %d", res.Summary.FindingsDelivered, len(sink.findings))
			}
		})
	}
}

// Under TRUST_ORGANIZATION a failed listing stops the scan: judging without
// the members would call every grant to them untrusted.
func TestDirectoryListingFailsTrusted(t *testing.T) {
	r := newOrgRig(t, map[string]string{"TRUST_ORGANIZATION": "true"}, nil)
	r.dir.err = errors.New("ListAccounts: ServiceUnavailable")
	_, err := r.invoke(t, timerEvent(t, nil))
	wantInvokeError(t, err, ErrAccountsUnavailable, "TRUST_ORGANIZATION", "ServiceUnavailable")
	if n := len(r.scanner.calls()); n != 0 {
		t.Errorf("%d scans", n)
	}
}

func TestOrganisationNeedsAccountID(t *testing.T) {
	r := newOrgRig(t, map[string]string{"ACCOUNTS": memberA}, nil)
	in := testInvocation()
	in.AccountID = ""
	_, err := r.invokeAs(t, context.Background(), in, timerEvent(t, nil))
	wantInvokeError(t, err, ErrInvalidContext, "account id", "ACCOUNTS")
}

func TestMemberCredentialsUnavailable(t *testing.T) {
	r := newOrgRig(t, map[string]string{"ACCOUNTS": memberA}, nil)
	r.members.err = &config.Error{Variable: config.EnvSTSEndpoint, Reason: "bad"}
	_, err := r.invoke(t, timerEvent(t, nil))
	wantInvokeError(t, err, ErrInvalidConfiguration, "STS_ENDPOINT")
	r.members.err = errors.New("assume: neither STS_ENDPOINT nor a region")
	_, err = r.invoke(t, timerEvent(t, nil))
	wantInvokeError(t, err, ErrScanFailed, "member accounts", "neither STS_ENDPOINT")
	if n := len(r.scanner.calls()); n != 0 {
		t.Errorf("%d scans", n)
	}
	noMembers := newOrgRig(t, map[string]string{"ACCOUNTS": memberA}, func(o *Options) { o.NewMembers = nil })
	_, err = noMembers.invoke(t, timerEvent(t, nil))
	wantInvokeError(t, err, ErrScanFailed, "other accounts")
}

func TestStateStoreReachesTheScan(t *testing.T) {
	st := fakeState{}
	opened := 0
	r := newOrgRig(t, nil, func(o *Options) {
		o.NewState = func(_ context.Context, in Invocation) (lifecycle.Store, error) {
			opened++
			if in.Credentials.AccessKeySecret != testKeySecret {
				t.Error("the state store was opened without the invocation's credentials")
			}
			return st, nil
		}
	})
	if _, err := r.invoke(t, timerEvent(t, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.invoke(t, timerEvent(t, `{"dryRun":true}`)); err != nil {
		t.Fatal(err)
	}
	calls := r.scanner.calls()
	if calls[0].State != st || calls[1].State != nil || opened != 1 {
		t.Errorf("state %v then %v (opened %d): want the store, then none for the dry run", calls[0].State, calls[1].State, opened)
	}
	failing := newOrgRig(t, nil, func(o *Options) {
		o.NewState = func(context.Context, Invocation) (lifecycle.Store, error) {
			return nil, errors.New("state store tablestore://i/t: no access key")
		}
	})
	_, err := failing.invoke(t, timerEvent(t, nil))
	wantInvokeError(t, err, ErrScanFailed, "state store", "no access key")
}

// orgEnv is an organisation of four accounts with one excluded: three are
// scanned.
var orgEnv = map[string]string{"ACCOUNTS": "resource-directory", "ACCOUNTS_EXCLUDE": memberC, "FANOUT_ACCOUNTS_PER_INVOCATION": "2"}

func TestCoordinatorDispatchesBatches(t *testing.T) {
	r := newOrgRig(t, orgEnv, nil)
	const requestID = "1-coordinator-request"
	resp, err := r.invokeAs(t, context.Background(), fcInvocation(requestID), timerEvent(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.scanner.calls()); n != 0 {
		t.Fatalf("the coordinator scanned %d times", n)
	}
	wantID := coordinatorScanID(requestID)
	if len(r.disp.calls) != 1 || r.disp.scanIDs[0] != wantID {
		t.Fatalf("dispatches %v for scans %v, want one for %s", r.disp.calls, r.disp.scanIDs, wantID)
	}
	if got, want := r.disp.calls[0], [][]string{{testAccount, memberA}, {memberB}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	res := resp.(*ScanResult)
	fr := res.Fanout
	if fr == nil || fr.Role != RoleCoordinator || fr.Accounts != 3 || fr.Batches != 2 || fr.Dispatched != 2 || fr.AlreadyStarted != 0 || len(fr.Tasks) != 2 {
		t.Fatalf("fanout report %+v", fr)
	}
	if fr.Tasks[1].TaskID != fanout.TaskID(wantID, 2) || fr.Tasks[1].Accounts != 1 || fr.Tasks[1].RequestID == "" {
		t.Errorf("task %+v", fr.Tasks[1])
	}
	if res.ScanID != wantID || res.Trigger != "timer" || !res.Complete || !res.Delivery.Delivered || res.Summary.Findings() != 0 {
		t.Errorf("coordinator report %+v", res.Report)
	}
	if r.sinks.count() != 1 || len(r.sinks.opened[0].findings) != 0 {
		t.Errorf("sinks %d, want one with the summary only", r.sinks.count())
	}
	out, _ := json.Marshal(resp)
	for _, k := range []string{`"fanout":{"role":"coordinator","accounts":3,"batches":2,"dispatched":2,"alreadyStarted":0`, `"accounts":{"scanned":3`} {
		if !strings.Contains(string(out), k) {
			t.Errorf("answer %s does not hold %s", out, k)
		}
	}

	// FC retries the coordinator with the same request id: the same task
	// ids, every batch already started.
	resp, err = r.invokeAs(t, context.Background(), fcInvocation(requestID), timerEvent(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	fr = resp.(*ScanResult).Fanout
	if r.disp.scanIDs[1] != wantID || fr.Dispatched != 0 || fr.AlreadyStarted != 2 {
		t.Errorf("retry: scan %s, report %+v", r.disp.scanIDs[1], fr)
	}
	// Another firing of the timer is another scan.
	if _, err := r.invokeAs(t, context.Background(), fcInvocation("1-next-day"), timerEvent(t, nil)); err != nil {
		t.Fatal(err)
	}
	if r.disp.scanIDs[2] == wantID {
		t.Error("another request id gave the same coordinator scan id")
	}
}

func TestCoordinatorDispatchFails(t *testing.T) {
	r := newOrgRig(t, orgEnv, nil)
	r.disp.failAt = 2
	_, err := r.invokeAs(t, context.Background(), fcInvocation("1-req"), timerEvent(t, nil))
	wantInvokeError(t, err, ErrDispatchFailed, "started 1 of 2 batches", "ServiceUnavailable")
	if len(r.sinks.opened) != 1 || r.scanner.calls() != nil {
		t.Errorf("sinks %d, scans %d", len(r.sinks.opened), len(r.scanner.calls()))
	}
	// The retry starts the missing batch only.
	r.disp.failAt = 0
	resp, err := r.invokeAs(t, context.Background(), fcInvocation("1-req"), timerEvent(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if fr := resp.(*ScanResult).Fanout; fr.Dispatched != 1 || fr.AlreadyStarted != 1 {
		t.Errorf("retry report %+v", fr)
	}

	undelivered := newOrgRig(t, orgEnv, nil)
	undelivered.sinks.fail = true
	_, err = undelivered.invokeAs(t, context.Background(), fcInvocation("1-req"), timerEvent(t, nil))
	wantInvokeError(t, err, ErrDeliveryFailed, "summary of coordinator")

	noSink := newOrgRig(t, orgEnv, nil)
	noSink.sinks.openErr = &config.Error{Variable: "SLS_PROJECT", Reason: "must be set"}
	_, err = noSink.invokeAs(t, context.Background(), fcInvocation("1-req"), timerEvent(t, nil))
	wantInvokeError(t, err, ErrInvalidConfiguration, "SLS_PROJECT")
	if len(noSink.disp.calls) != 0 {
		t.Error("dispatched with nowhere to deliver")
	}
}

// A scan fans out only when it can and should: over the threshold, of the
// whole scope, delivering, with a function to invoke.
func TestWhenNotToFanOut(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		in      Invocation
		payload string
	}{
		{"at the threshold", map[string]string{"ACCOUNTS": "resource-directory", "ACCOUNTS_EXCLUDE": memberC, "FANOUT_ACCOUNTS_PER_INVOCATION": "3"}, fcInvocation("r"), ""},
		{"no function name", orgEnv, testInvocation(), ""},
		{"a dry run", orgEnv, fcInvocation("r"), `{"dryRun":true}`},
		{"targets named", orgEnv, fcInvocation("r"), `{"targets":["cn-hangzhou:*"]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newOrgRig(t, tc.env, nil)
			if _, err := r.invokeAs(t, context.Background(), tc.in, timerEvent(t, tc.payload)); err != nil {
				t.Fatal(err)
			}
			calls := r.scanner.calls()
			if len(r.disp.calls) != 0 || len(calls) != 1 || accountsOf(calls[0].Targets) != ","+memberA+","+memberB {
				t.Errorf("dispatches %d, scans %+v", len(r.disp.calls), calls)
			}
		})
	}
}

func workerPayload(t testing.TB, scanID string, batch, batches int, accts ...string) []byte {
	if accts == nil {
		accts = []string{}
	}
	return mustJSON(t, map[string]any{"scanId": scanID, "batch": batch, "batches": batches, "accounts": accts})
}

func TestWorkerScansItsBatch(t *testing.T) {
	for _, form := range []string{"event", "timer payload"} {
		t.Run(form, func(t *testing.T) {
			r := newOrgRig(t, map[string]string{"ACCOUNTS": "resource-directory", "TRUST_ORGANIZATION": "true"}, nil)
			ev := workerPayload(t, "c0ffee", 2, 3, memberB, testAccount)
			if form == "timer payload" {
				ev = timerEvent(t, string(ev))
			}
			resp, err := r.invoke(t, ev)
			if err != nil {
				t.Fatal(err)
			}
			calls := r.scanner.calls()
			if len(calls) != 1 {
				t.Fatalf("%d scans", len(calls))
			}
			req := calls[0]
			if accountsOf(req.Targets) != ","+memberB || req.Members == nil || req.Trigger != "timer" || req.ScanID != testScanID {
				t.Errorf("request targets %s trigger %s scan %s", targetStrings(req.Targets), req.Trigger, req.ScanID)
			}
			if req.Batch == nil || *req.Batch != (scan.Batch{ParentScanID: "c0ffee", Batch: 2, Batches: 3}) {
				t.Errorf("batch %+v", req.Batch)
			}
			if len(req.TrustedAccounts) != 5 || len(r.dir.calls) != 1 {
				t.Errorf("trusted %v after %d listings", req.TrustedAccounts, len(r.dir.calls))
			}
			b := resp.(*ScanResult).Batch
			if b == nil || *b != (BatchReport{ParentScanID: "c0ffee", Batch: 2, Batches: 3, Accounts: 2}) {
				t.Errorf("batch report %+v", b)
			}
		})
	}
	// Without TRUST_ORGANIZATION a worker needs no listing.
	r := newOrgRig(t, map[string]string{"ACCOUNTS": "resource-directory"}, nil)
	if _, err := r.invoke(t, workerPayload(t, "c0ffee", 1, 1, memberA)); err != nil {
		t.Fatal(err)
	}
	if len(r.dir.calls) != 0 {
		t.Errorf("%d listings", len(r.dir.calls))
	}
}

func TestWorkerPayloadErrors(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		event   []byte
		typ     string
		mention []string
	}{
		{"excluded account", map[string]string{"ACCOUNTS": "resource-directory", "ACCOUNTS_EXCLUDE": memberA}, workerPayload(t, "s1", 1, 1, memberA, memberB),
			ErrInvalidPayload, []string{memberA + " (in ACCOUNTS_EXCLUDE)"}},
		{"not in the list", map[string]string{"ACCOUNTS": memberA}, workerPayload(t, "s1", 1, 1, outsider),
			ErrInvalidPayload, []string{outsider + " (not in ACCOUNTS)"}},
		{"ACCOUNTS unset", nil, workerPayload(t, "s1", 1, 1, memberA), ErrInvalidPayload, []string{"ACCOUNTS is unset"}},
		{"batch beyond batches", nil, workerPayload(t, "s1", 3, 2, memberA), ErrInvalidPayload, []string{`"batch" 3 is beyond "batches" 2`}},
		{"batch zero", nil, workerPayload(t, "s1", 0, 2, memberA), ErrInvalidPayload, []string{`field "batch" must be a whole number`}},
		{"no accounts", nil, workerPayload(t, "s1", 1, 2), ErrInvalidPayload, []string{`"accounts" is an empty list`}},
		{"bad account", nil, workerPayload(t, "s1", 1, 2, "12ab"), ErrInvalidPayload, []string{`"accounts[0]" "12ab" is not an account UID`}},
		{"bad scan id", nil, workerPayload(t, "s 1", 1, 2, memberA), ErrInvalidPayload, []string{`"scanId" "s 1" must be`}},
		{"partial", nil, mustJSON(t, map[string]any{"scanId": "s1", "accounts": []string{memberA}}), ErrInvalidPayload, []string{"batch, batches missing"}},
		{"partial in a timer payload", nil, timerEvent(t, `{"batch":1}`), ErrInvalidPayload, []string{"scanId, batches, accounts missing"}},
		{"targets too", nil, timerEvent(t, `{"scanId":"s1","batch":1,"batches":1,"accounts":["`+memberA+`"],"targets":["cn-hangzhou:*"]}`),
			ErrInvalidPayload, []string{"names accounts, not targets"}},
		{"unknown field", nil, timerEvent(t, `{"scanId":"s1","batch":1,"batches":1,"accounts":["`+memberA+`"],"extra":1}`),
			ErrInvalidPayload, []string{`unknown field "extra"`, "scanId, batch, batches, accounts"}},
		{"listing fails under TRUST_ORGANIZATION", map[string]string{"TRUST_ORGANIZATION": "true"}, workerPayload(t, "s1", 1, 1, testAccount),
			ErrAccountsUnavailable, []string{"listing them failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newOrgRig(t, tc.env, nil)
			r.dir.err = errors.New("ListAccounts: down")
			_, err := r.invoke(t, tc.event)
			wantInvokeError(t, err, tc.typ, tc.mention...)
			if n := len(r.scanner.calls()); n != 0 {
				t.Errorf("%d scans", n)
			}
		})
	}
}

// POST /scans takes no worker fields, and a target in an account that is
// not scanned is out of scope.
func TestHTTPOrganisationScope(t *testing.T) {
	env := map[string]string{"ACCOUNTS": memberA + " " + testAccount}
	cases := []struct {
		body     string
		status   int
		accounts string
		mention  string
	}{
		{`{"targets":["` + memberA + `/cn-hangzhou:vco-aaaa1111"]}`, 200, memberA, ""},
		{`{"targets":["` + testAccount + `/cn-shanghai:vco-sh0rogue000002"]}`, 200, "", ""},
		{`{"targets":["cn-hangzhou:*"]}`, 200, "," + memberA, ""},
		{`{"targets":["` + outsider + `/cn-hangzhou:*"]}`, 403, "", "outside ACCOUNTS"},
		{`{"targets":["` + memberA + `/cn-shanghai:vco-sh0rogue000002"]}`, 403, "", "outside the configured scope"},
		{`{"scanId":"s","batch":1,"batches":1,"accounts":["` + memberA + `"]}`, 400, "", "unknown fields"},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			r := newOrgRig(t, env, nil)
			resp, err := r.invoke(t, postScans(t, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			h := resp.(*HTTPResult)
			if h.StatusCode != tc.status || !strings.Contains(h.Body, tc.mention) {
				t.Fatalf("status %d %s, want %d mentioning %q", h.StatusCode, h.Body, tc.status, tc.mention)
			}
			if tc.status != 200 {
				return
			}
			calls := r.scanner.calls()
			if len(calls) != 1 || accountsOf(calls[0].Targets) != tc.accounts {
				t.Errorf("scans %+v, want accounts %q", calls, tc.accounts)
			}
			if !strings.Contains(h.Body, `"accounts":{"scanned":`) {
				t.Errorf("body %s has no accounts report", h.Body)
			}
		})
	}
}

// postScans is the sample POST /scans event with the given body.
func postScans(t testing.TB, body string) []byte {
	t.Helper()
	ev := sample(t, "http-post-scans.json")
	ev["body"] = body
	ev["isBase64Encoded"] = false
	delete(obj(t, ev, "headers"), "Content-Length")
	return mustJSON(t, ev)
}

// eventFrom is the sample grant event with its record naming account.
func eventFrom(t testing.TB, account string) []byte {
	t.Helper()
	ev := sample(t, "eventbridge-grant.json")
	data := obj(t, ev, "data")
	data["recipientAccountId"] = account
	obj(t, ev, "data", "userIdentity")["accountId"] = account
	return mustJSON(t, ev)
}

func TestEventsFromMemberAccounts(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		account string
		want    string // the scan's targets, or "ignored: reason"
	}{
		{"own account", nil, testAccount, "cn-hangzhou:vco-hz0partner0002"},
		{"another account, ACCOUNTS unset", nil, memberA, "ignored: account " + memberA + " is outside ACCOUNTS"},
		{"a listed member", map[string]string{"ACCOUNTS": memberA}, memberA, memberA + "/cn-hangzhou:vco-hz0partner0002"},
		{"not in the list", map[string]string{"ACCOUNTS": memberA}, memberB, "ignored: account " + memberB + " is outside ACCOUNTS"},
		{"a directory member", map[string]string{"ACCOUNTS": "resource-directory"}, memberB, memberB + "/cn-hangzhou:vco-hz0partner0002"},
		{"excluded", map[string]string{"ACCOUNTS": "resource-directory", "ACCOUNTS_EXCLUDE": memberB}, memberB, "ignored: account " + memberB + " is in ACCOUNTS_EXCLUDE"},
		{"not joined", map[string]string{"ACCOUNTS": "resource-directory"}, memberGone, "ignored: account " + memberGone + " is outside ACCOUNTS"},
		{"not in the directory", map[string]string{"ACCOUNTS": "resource-directory"}, outsider, "ignored: account " + outsider + " is outside ACCOUNTS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newOrgRig(t, tc.env, nil)
			resp, err := r.invoke(t, eventFrom(t, tc.account))
			if err != nil {
				t.Fatal(err)
			}
			calls := r.scanner.calls()
			if reason, ok := strings.CutPrefix(tc.want, "ignored: "); ok {
				ig, isIgnored := resp.(*Ignored)
				if !isIgnored || ig.Reason != reason || len(calls) != 0 {
					t.Errorf("answer %+v after %d scans, want ignored: %s", resp, len(calls), reason)
				}
				return
			}
			if len(calls) != 1 || targetStrings(calls[0].Targets) != tc.want {
				t.Fatalf("scans %+v, want %s", calls, tc.want)
			}
			if (calls[0].Members != nil) != (tc.account != testAccount) {
				t.Errorf("members %v for account %s", calls[0].Members, tc.account)
			}
		})
	}
	// A directory that cannot be listed cannot vouch for a member.
	r := newOrgRig(t, map[string]string{"ACCOUNTS": "resource-directory"}, nil)
	r.dir.err = errors.New("ListAccounts: Throttling")
	resp, err := r.invoke(t, eventFrom(t, memberA))
	if err != nil {
		t.Fatal(err)
	}
	if ig, ok := resp.(*Ignored); !ok || !strings.Contains(ig.Reason, "could not be listed") {
		t.Errorf("answer %+v", resp)
	}
}
