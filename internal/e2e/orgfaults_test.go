package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcapiemu"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/rmemu"
	"vpnauthz/internal/finding"
)

// The organisation's faults, each on the built binary: what the scan stores
// must be exactly what the organisation holds, the function must not panic,
// and no secret — the invocation's or any member token STS issued — may
// appear in anything it wrote, answered or stored. Each test logs one row of
// the reliability table ("reliability |").

// startProxy is a loopback reverse proxy in front of an emulator. arrive is
// called as each request arrives (true: it answered the request itself);
// answered after the emulator answered, before the answer is passed on, so
// a test can act between two calls of the function without guessing when
// they happen. The Host header is kept, so signatures still verify.
func startProxy(t *testing.T, upstream string, arrive func(http.ResponseWriter, *http.Request) bool, answered func(*http.Request, *http.Response)) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	if answered != nil {
		rp.ModifyResponse = func(resp *http.Response) error {
			answered(resp.Request, resp)
			return nil
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrive != nil && arrive(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// acsAction is the OpenAPI action of a call: the V3 header, or the RPC
// query parameter.
func acsAction(r *http.Request) string {
	if a := r.Header.Get("x-acs-action"); a != "" {
		return a
	}
	return r.URL.Query().Get("Action")
}

// accessKeyOf is the access key id a call claims: from a V3 Authorization
// header, or the RPC query.
func accessKeyOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		_, params, _ := strings.Cut(h, " ")
		for part := range strings.SplitSeq(params, ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "Credential" {
				return v
			}
		}
		return ""
	}
	return r.URL.Query().Get("AccessKeyId")
}

// withDenied is want with the members given entering nothing: one ERROR
// each on the account, nothing of their connections.
func withDenied(want map[orgKey]string, uids ...string) map[orgKey]string {
	out := maps.Clone(want)
	for _, uid := range uids {
		for k := range out {
			if k.owner == uid {
				delete(out, k)
			}
		}
		out[orgKey{uid, "*", ruleRead}] = errored
	}
	return out
}

// outcome is one row of the reliability table.
type outcome struct {
	fault            string
	runs             int
	expected, stored int
	secrets, panics  int
}

// audit searches everything the functions wrote, the answers given and
// everything Log Service holds for the invocation's secrets and for every
// secret and token STS issued, and the functions' output for panics; it
// logs the table row.
func (o *orgCloud) audit(t *testing.T, row outcome, answers [][]byte, fns ...*function) {
	t.Helper()
	canaries := map[string]string{
		"the invocation's access key secret": o.Credentials.AccessKeySecret,
		"the invocation's STS token":         o.Credentials.SecurityToken,
	}
	issued := o.sts.Issued()
	for i, c := range issued {
		canaries[fmt.Sprintf("member %s's access key secret #%d", c.Account, i)] = c.AccessKeySecret
		canaries[fmt.Sprintf("member %s's STS token #%d", c.Account, i)] = c.SecurityToken
	}
	places := map[string][]byte{
		"answers":     bytes.Join(answers, []byte("\n")),
		"Log Service": storedText(o.cloud),
	}
	for i, f := range fns {
		out, errOut := f.stdout.Bytes(), f.stderr.Bytes()
		places[fmt.Sprintf("function %d stdout", i)] = out
		places[fmt.Sprintf("function %d stderr", i)] = errOut
		if p := panics(append(bytes.Clone(out), errOut...)); len(p) > 0 {
			row.panics += len(p)
			t.Errorf("function %d shows a panic: %q", i, p)
		}
	}
	for name, secret := range canaries {
		if secret == "" {
			continue
		}
		for place, data := range places {
			if n := bytes.Count(data, []byte(secret)); n > 0 {
				row.secrets += n
				t.Errorf("%s appears %d times in %s", name, n, place)
			}
		}
	}
	t.Logf("reliability | %s | runs %d | findings expected %d, stored %d | secrets found %d (of %d canaries, %d member tokens) | panics %d",
		row.fault, row.runs, row.expected, row.stored, row.secrets, len(canaries), len(issued), row.panics)
}

// answerOf is what an invocation answered, error included, for the search
// of secrets.
func answerOf(res fcemu.Result) []byte {
	b := bytes.Clone(res.Response)
	if res.Error != nil {
		b = append(b, "\n"+res.Error.ErrorType+" "+res.Error.ErrorMessage+"\n"...)
		b = append(b, res.Error.StackTrace...)
	}
	return b
}

// timerEvent is the daily timer's event.
var timerEvent = []byte(`{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"daily","payload":""}`)

// A member's token expires in the middle of the scan: its first listing's
// answer is held until the token the listing was signed with has expired.
// The scan goes on with a token renewed before the next call: no ERROR for
// the member, no call of it refused, its findings all there.
func TestOrganisationMemberTokenExpires(t *testing.T) {
	o := startOrg(t)
	const member = 3 // two regions: cn-hangzhou and cn-shanghai
	uid := orgMember(member)
	env := maps.Clone(o.env)
	env["ACCOUNTS"] = o.AccountID + "," + uid
	// Tokens live two seconds at most, whatever the function asks for.
	o.sts.SetTokenLifetime(2 * time.Second)
	tokenOf := func(key string) (cred.Credential, bool) {
		for _, c := range o.sts.Issued() {
			if c.AccessKeyID == key {
				return c, true
			}
		}
		return cred.Credential{}, false
	}
	var (
		once sync.Once
		held atomic.Bool
	)
	env["VPC_ENDPOINT"] = startProxy(t, o.VPC.URL(), nil, func(r *http.Request, resp *http.Response) {
		if acsAction(r) != "DescribeVpnConnections" || resp.StatusCode != http.StatusOK {
			return
		}
		tok, ok := tokenOf(accessKeyOf(r))
		if !ok || tok.Account != uid {
			return
		}
		once.Do(func() {
			// The answer reaches the function only once the token it
			// was signed with is over, as after a long, slow listing:
			// the wait is for the token's own end, the fault itself.
			time.Sleep(time.Until(tok.Expires) + 50*time.Millisecond)
			held.Store(true)
		})
	})
	f := startFunction(t, o.cloud, env)
	res := f.invoke(t, call{payload: timerEvent})
	r := asReport(t, res)
	if !held.Load() {
		t.Fatal("no listing of the member was held: the fault never happened")
	}
	stored := o.stored(r.ScanID)
	want := expectedOrg(o.AccountID, uid)
	diffVerdicts(t, "token expired mid-scan", orgVerdicts(t, stored), want)
	if !r.Complete || !r.Delivery.Delivered {
		t.Errorf("report complete %v, delivered %v", r.Complete, r.Delivery.Delivered)
	}
	var refused int
	for k, c := range o.VPC.Stats().ByKey {
		if k.Account == uid {
			refused += c.Errors
		}
	}
	if refused > 0 {
		t.Errorf("the VPC API refused %d calls of member %s: it was called with an expired token", refused, uid)
	}
	if n := o.sts.Stats().ByRoleAccount[uid]; n < 2 {
		t.Errorf("member %s was assumed into %d times: its token was never renewed", uid, n)
	}
	o.audit(t, outcome{fault: "member token expires mid-scan", runs: 1, expected: len(want), stored: len(stored)}, [][]byte{answerOf(res)}, f)
}

// A member leaves the directory between the listing and its scan: the
// directory's answer still names it, but by the time the function acts on
// it the member is gone and its role no longer trusts the scanner. That
// member is one ERROR naming the refusal; everyone else is scanned as
// usual. The next scan neither lists, scans nor trusts it.
func TestOrganisationMemberLeavesAfterListing(t *testing.T) {
	o := startOrg(t)
	const member = 4 // member 3's connection is granted to it
	uid := orgMember(member)
	env := maps.Clone(o.env)
	var left sync.Once
	env["RESOURCEMANAGER_ENDPOINT"] = startProxy(t, o.rm.URL(), nil, func(r *http.Request, resp *http.Response) {
		if acsAction(r) != "ListAccounts" || resp.StatusCode != http.StatusOK {
			return
		}
		left.Do(func() {
			if !o.rm.RemoveAccount(uid) {
				t.Errorf("member %s was not in the directory", uid)
			}
			o.sts.DenyRole(uid, orgRole)
		})
	})
	f := startFunction(t, o.cloud, env)
	res := f.invoke(t, call{payload: timerEvent})
	r := asReport(t, res)
	stored := o.stored(r.ScanID)
	want := withDenied(expectedOrg(), uid)
	diffVerdicts(t, "member left after the listing", orgVerdicts(t, stored), want)
	if !r.Complete || !r.Delivery.Delivered {
		t.Errorf("report complete %v, delivered %v: a member that cannot be entered is an ERROR, not an incomplete scan", r.Complete, r.Delivery.Delivered)
	}
	for _, s := range stored {
		if s["owner_account_id"] == uid && !(strings.Contains(s["status_detail"], "NoPermission") && strings.Contains(s["status_detail"], uid)) {
			t.Errorf("the member's ERROR does not name the refusal: %q", s["status_detail"])
		}
	}
	if n := o.sts.Stats().ByRoleAccount[uid]; n != 0 {
		t.Errorf("%d tokens issued for the member that left", n)
	}

	// The next scan: the member is no longer listed, so neither scanned nor
	// trusted — member 3's grant to it is now to an outsider.
	res2 := f.invoke(t, call{payload: timerEvent})
	r2 := asReport(t, res2)
	stored2 := o.stored(r2.ScanID)
	want2 := withDenied(expectedOrg(), uid)
	delete(want2, orgKey{uid, "*", ruleRead})
	want2[orgKey{orgMember(3), "vco-m03hz00000001", ruleAccount}] = fail
	diffVerdicts(t, "the scan after", orgVerdicts(t, stored2), want2)
	o.audit(t, outcome{fault: "member leaves between listing and scan", runs: 2, expected: len(want) + len(want2), stored: len(stored) + len(stored2)},
		[][]byte{answerOf(res), answerOf(res2)}, f)
}

// twoPages puts 95 members that never joined before the organisation's,
// so that ListAccounts (100 a page) answers in two pages and members 5 to
// 20 are on the second: a listing that lost page 2 would lose them.
func (o *orgCloud) twoPages(t *testing.T) {
	t.Helper()
	var accounts []rmemu.Account
	for i := range 95 {
		accounts = append(accounts, rmemu.Account{AccountId: fmt.Sprintf("22000000000000%02d", i), Status: "CreateFailed", Type: "ResourceAccount"})
	}
	for i := 1; i <= orgMembers; i++ {
		status := "CreateSuccess"
		if i%3 == 0 {
			status = "InviteSuccess"
		}
		accounts = append(accounts, rmemu.Account{AccountId: orgMember(i), Status: status, Type: "ResourceAccount"})
	}
	accounts = append(accounts, rmemu.Account{AccountId: orgLeaving, Status: "Removing", Type: "ResourceAccount"})
	if err := o.rm.SetAccounts(accounts); err != nil {
		t.Fatal(err)
	}
}

// ListAccounts' second page fails. Failing a few times, it is retried and
// the scan is the organisation's. Failing on every attempt, the listing is
// never used in part: without TRUST_ORGANIZATION the function's own account
// is scanned and one ERROR on it says why; with TRUST_ORGANIZATION nothing
// is scanned and the invocation fails (AccountsUnavailable) for FC to retry.
func TestOrganisationListingPageFails(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		o := startOrg(t)
		o.twoPages(t)
		o.rm.FailPage(2, 2, "InternalError")
		f := startFunction(t, o.cloud, o.env)
		res := f.invoke(t, call{payload: timerEvent})
		r := asReport(t, res)
		stored := o.stored(r.ScanID)
		want := expectedOrg()
		diffVerdicts(t, "page 2 failing twice", orgVerdicts(t, stored), want)
		if p := o.rm.Stats().Pages; p[1] != 1 || p[2] != 3 {
			t.Errorf("pages asked for %v, want page 1 once and page 2 three times", p)
		}
		o.audit(t, outcome{fault: "ListAccounts page 2 fails twice", runs: 1, expected: len(want), stored: len(stored)}, [][]byte{answerOf(res)}, f)
	})
	t.Run("keeps failing", func(t *testing.T) {
		t.Parallel()
		o := startOrg(t)
		o.twoPages(t)
		o.rm.FailPage(2, 1000, "InternalError")
		env := maps.Clone(o.env)
		delete(env, "TRUST_ORGANIZATION")
		f := startFunction(t, o.cloud, env)
		res := f.invoke(t, call{payload: timerEvent})
		r := asReport(t, res)
		stored := o.stored(r.ScanID)
		want := expectedOrg(o.AccountID)
		want[orgKey{o.AccountID, "*", ruleRead}] = errored
		diffVerdicts(t, "page 2 failing for good", orgVerdicts(t, stored), want)
		for _, s := range stored {
			if s["vpn_connection_id"] == "*" && !strings.Contains(s["status_detail"], "InternalError") {
				t.Errorf("the listing's ERROR does not name the cause: %q", s["status_detail"])
			}
		}
		var acc struct {
			Accounts struct {
				Scanned   int    `json:"scanned"`
				ListError string `json:"listError"`
			} `json:"accounts"`
		}
		if err := json.Unmarshal(res.Response, &acc); err != nil || acc.Accounts.Scanned != 1 || acc.Accounts.ListError == "" {
			t.Errorf("report accounts %+v (%v), want 1 scanned and the listing's error", acc.Accounts, err)
		}
		if !r.Complete || !r.Delivery.Delivered {
			t.Errorf("report complete %v, delivered %v", r.Complete, r.Delivery.Delivered)
		}
		if n := o.sts.Stats().AssumeRole; n != 0 {
			t.Errorf("%d AssumeRole calls from a listing that failed", n)
		}
		o.audit(t, outcome{fault: "ListAccounts page 2 fails for good", runs: 1, expected: len(want), stored: len(stored)}, [][]byte{answerOf(res)}, f)
	})
	t.Run("keeps failing, organisation trusted", func(t *testing.T) {
		t.Parallel()
		o := startOrg(t)
		o.twoPages(t)
		o.rm.FailPage(2, 1000, "InternalError")
		f := startFunction(t, o.cloud, o.env)
		res := f.invoke(t, call{payload: timerEvent})
		if res.Error == nil || res.Error.ErrorType != "AccountsUnavailable" || !strings.Contains(res.Error.ErrorMessage, "TRUST_ORGANIZATION") {
			t.Fatalf("answer %s %+v, want the error AccountsUnavailable", res.Response, res.Error)
		}
		logs := o.SLS.Logs(o.Project, o.Logstore)
		if len(logs) != 0 {
			t.Errorf("%d logs stored by an invocation that scanned nothing", len(logs))
		}
		if n := o.sts.Stats().AssumeRole; n != 0 {
			t.Errorf("%d AssumeRole calls from a listing that failed", n)
		}
		o.audit(t, outcome{fault: "ListAccounts page 2 fails for good, TRUST_ORGANIZATION", runs: 1, expected: 0, stored: len(logs)}, [][]byte{answerOf(res)}, f)
	})
}

// startFanoutVia is startFanout with FC_ENDPOINT on a proxy in front of the
// emulated FC OpenAPI, whose arrive hook sees each InvokeFunction first.
func startFanoutVia(t *testing.T, o *orgCloud, perInvocation int, arrive func(http.ResponseWriter, *http.Request) bool) *orgFanout {
	t.Helper()
	env := maps.Clone(o.env)
	env["FANOUT_ACCOUNTS_PER_INVOCATION"] = strconv.Itoa(perInvocation)
	addr := reserveAddr(t)
	env["FC_ENDPOINT"] = startProxy(t, "http://"+addr, arrive, nil)
	fx := &orgFanout{orgCloud: o, f: startFunction(t, o.cloud, env)}
	own := o.Credentials
	own.Account = o.AccountID
	var err error
	fx.fc, err = fcapiemu.New(fcapiemu.Options{Addr: addr, Credentials: []cred.Credential{own}, Runtime: fx.f.rt,
		Invocation: fcemu.Invocation{AccessKeyID: o.Credentials.AccessKeyID, AccessKeySecret: o.Credentials.AccessKeySecret,
			SecurityToken: o.Credentials.SecurityToken, Region: o.Region, AccountID: o.AccountID, Timeout: time.Minute},
		DeliveryTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.fc.Close)
	return fx
}

// invokeAs delivers the coordinator's timer event as FC does on the given
// attempt of one async invocation: the request id is kept across retries.
func (fx *orgFanout) invokeAs(t *testing.T, requestID string, retry int) fcemu.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := fx.f.rt.Invoke(ctx, fcemu.Invocation{
		RequestID: requestID, RetryCount: retry, Payload: timerEvent,
		AccessKeyID: fx.Credentials.AccessKeyID, AccessKeySecret: fx.Credentials.AccessKeySecret, SecurityToken: fx.Credentials.SecurityToken,
		Region: fx.Region, AccountID: fx.AccountID, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.fc.WaitIdle(ctx); err != nil {
		t.Fatalf("the workers did not finish: %v", err)
	}
	return res
}

// orgResult is the README's organisation query ("Scanning an organisation")
// over the stored summaries of one fanned-out scan: per batch the latest
// summary, summed. SLS's max_by(x, __time__) may pick either of two
// summaries of one second; Log Service's order of arrival stands in for
// the time here, and the test checks that such summaries agree.
type orgResult struct {
	summaries int            // worker summaries stored for the scan
	latest    map[string]int // the latest summary of each batch, by position in the store
	accounts  int
	counts    summary
	scans     map[string]bool // scan ids of the latest summaries
}

func (o *orgCloud) orgQuery(t *testing.T, parent string) orgResult {
	t.Helper()
	logs := o.SLS.LogsByTopic(o.Project, o.Logstore, finding.TopicScan)
	res := orgResult{latest: map[string]int{}, scans: map[string]bool{}}
	for i, l := range logs {
		c := l.Contents
		if c["parent_scan_id"] != parent {
			continue
		}
		res.summaries++
		if j, ok := res.latest[c["batch"]]; ok {
			prev := logs[j].Contents
			for _, k := range []string{"accounts", "connections", "pass", "fail", "error", "suppressed"} {
				if prev[k] != c[k] {
					t.Errorf("batch %s: two summaries disagree on %s (%s, %s): the query's pick between them would matter", c["batch"], k, prev[k], c[k])
				}
			}
			if l.Time < logs[j].Time {
				continue
			}
		}
		res.latest[c["batch"]] = i
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Errorf("summary value %q is not a number", s)
		}
		return n
	}
	for _, i := range res.latest {
		c := logs[i].Contents
		res.accounts += num(c["accounts"])
		res.counts.Pass += num(c["pass"])
		res.counts.Fail += num(c["fail"])
		res.counts.Error += num(c["error"])
		res.counts.Suppressed += num(c["suppressed"])
		res.scans[c["scan_id"]] = true
	}
	return res
}

// findingsOf is every stored finding of the given scans.
func (o *orgCloud) findingsOf(scans map[string]bool) []map[string]string {
	var out []map[string]string
	for _, l := range o.SLS.LogsByTopic(o.Project, o.Logstore, finding.TopicFinding) {
		if scans[l.Contents["scan_id"]] {
			out = append(out, l.Contents)
		}
	}
	return out
}

// A worker fails once: Log Service refuses its first PutLogs for good, so
// its findings go to standard output and it answers DeliveryFailed; FC
// retries it and the retry stores them. Then FC delivers batch 1 once more
// after it succeeded (at least once): batch 1 has two summaries.
// The README's query, latest summary per batch, counts every batch once:
// 4 batches, the organisation's 20 accounts, the expected counts; the
// findings of the scans it names are exactly the organisation's.
func TestOrganisationWorkerRetried(t *testing.T) {
	o := startOrg(t)
	fx := startFanout(t, o, 6)
	// The function takes one invocation at a time: the coordinator's
	// summary is the first PutLogs, the first worker's findings the second.
	var puts atomic.Int32
	o.SLS.SetArrivalHook(func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/logstores/") && puts.Add(1) == 2 {
			o.SLS.FailNextPutLogs(1, http.StatusUnauthorized, "Unauthorized", "The security token you provided has expired.")
		}
	})
	a := fx.coordinate(t, "1-coordinator-worker-retry")
	if a.Fanout.Dispatched != 4 {
		t.Fatalf("coordinator %+v", a.Fanout)
	}
	st := fx.fc.Stats()
	if st.Deliveries != 5 || st.Retries != 1 || st.Succeeded != 4 || st.Failed != 0 {
		t.Errorf("FC stats %+v, want 4 batches, one of them delivered twice", st)
	}
	var retried fcapiemu.Task
	for _, task := range fx.fc.Tasks() {
		if task.Attempts == 2 {
			retried = task
		}
	}
	if retried.ID == "" || len(retried.Errors) != 1 || !strings.HasPrefix(retried.Errors[0], "DeliveryFailed") {
		t.Fatalf("no task failed with DeliveryFailed and was retried: %+v", fx.fc.Tasks())
	}
	want := expectedOrg()
	q := o.orgQuery(t, a.ScanID)
	stored := o.findingsOf(q.scans)
	diffVerdicts(t, "the retried worker's scan", orgVerdicts(t, stored), want)
	if q.summaries != 4 || len(q.latest) != 4 {
		t.Errorf("%d worker summaries of %d batches, want 4 of 4: the failed attempt's summary went to standard output", q.summaries, len(q.latest))
	}
	// The failed attempt's findings went to standard output, not to Log Service.
	if !bytes.Contains(fx.f.stdout.Bytes(), []byte(`"parent_scan_id":"`+a.ScanID+`"`)) {
		t.Error("the failed attempt's summary is not on standard output")
	}

	// FC hands batch 1 (the own account and five members) over once more:
	// a delivery after success, as an at-least-once queue may.
	var first fcapiemu.Task
	for _, task := range fx.fc.Tasks() {
		if strings.HasSuffix(task.ID, "-1") {
			first = task
		}
	}
	t.Logf("task %s failed once (%s); task %s delivered again", retried.ID, retried.Errors[0], first.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	again, err := fx.f.rt.Invoke(ctx, fcemu.Invocation{RequestID: first.RequestID, RetryCount: first.Attempts, Payload: first.Payload,
		AccessKeyID: o.Credentials.AccessKeyID, AccessKeySecret: o.Credentials.AccessKeySecret, SecurityToken: o.Credentials.SecurityToken,
		Region: o.Region, AccountID: o.AccountID, Timeout: time.Minute})
	if err != nil || again.Error != nil {
		t.Fatalf("the repeated delivery: %v %+v", err, again.Error)
	}
	q = o.orgQuery(t, a.ScanID)
	if q.summaries != 5 {
		t.Errorf("%d worker summaries, want 5: the repeated batch wrote a second", q.summaries)
	}
	wantCounts := countStatuses(stored)
	if len(q.latest) != 4 || q.accounts != orgMembers || q.counts != wantCounts {
		t.Errorf("organisation query: %d batches, %d accounts, %+v; want 4 batches, %d accounts, %+v", len(q.latest), q.accounts, q.counts, orgMembers, wantCounts)
	}
	latest := o.findingsOf(q.scans)
	diffVerdicts(t, "the scans the query names", orgVerdicts(t, latest), want)
	// Every stored worker finding, the repeated batch's twice, says the same.
	var all []map[string]string
	for _, l := range o.SLS.LogsByTopic(o.Project, o.Logstore, finding.TopicFinding) {
		if l.Contents["scan_id"] != a.ScanID {
			all = append(all, l.Contents)
		}
	}
	if got := uidStatus(all); !maps.Equal(got, uidStatus(latest)) {
		t.Errorf("the repeated batch's findings differ from its first: %d vs %d", len(got), len(uidStatus(latest)))
	}
	if len(all) <= len(latest) {
		t.Error("the repeated delivery stored no findings")
	}
	o.audit(t, outcome{fault: "worker fails once (PutLogs refused), FC retries; batch delivered again", runs: 7,
		expected: len(want), stored: len(latest)}, [][]byte{answerOf(again)}, fx.f)
}

// The coordinator fails part-way: InvokeFunction of batch 3 fails on every
// attempt, so the coordinator answers DispatchFailed after starting
// batches 1, 2 and 4. FC retries it with the same request id: the started
// batches' task ids are refused (409), batch 3 starts, no batch runs twice,
// one coordinator summary, and the workers' findings are the organisation's.
func TestOrganisationCoordinatorRetried(t *testing.T) {
	o := startOrg(t)
	var failing atomic.Bool
	failing.Store(true)
	var refused atomic.Int32
	fx := startFanoutVia(t, o, 6, func(w http.ResponseWriter, r *http.Request) bool {
		if !failing.Load() || !strings.HasSuffix(r.Header.Get("x-fc-async-task-id"), "-3") {
			return false
		}
		refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-fc-request-id", "1-refused")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"Code":"InternalServerError","Message":"an internal error has occurred. Please retry.","RequestId":"1-refused"}`))
		return true
	})
	const requestID = "1-coordinator-partial"
	first := fx.invokeAs(t, requestID, 0)
	if first.Error == nil || first.Error.ErrorType != "DispatchFailed" || !strings.Contains(first.Error.ErrorMessage, "started 3 of 4 batches") {
		t.Fatalf("first attempt: %s %+v, want DispatchFailed after 3 of 4 batches", first.Response, first.Error)
	}
	if n := refused.Load(); n < 2 {
		t.Errorf("batch 3 was tried %d times: a failed InvokeFunction is retried", n)
	}
	failing.Store(false)
	second := fx.invokeAs(t, requestID, 1)
	var a coordinatorAnswer
	a.report = asReport(t, second)
	if err := json.Unmarshal(second.Response, &a); err != nil {
		t.Fatal(err)
	}
	if a.Fanout.Batches != 4 || a.Fanout.Dispatched != 1 || a.Fanout.AlreadyStarted != 3 {
		t.Errorf("retried coordinator %+v, want batch 3 dispatched and 3 already started", a.Fanout)
	}
	st := fx.fc.Stats()
	if st.Async != 4 || st.Duplicates != 3 || st.Deliveries != 4 || st.Succeeded != 4 {
		t.Errorf("FC stats %+v, want 4 tasks each delivered once, 3 repeats refused", st)
	}
	if logs := o.storedSummary(a.ScanID); len(logs) != 1 || logs[0].Contents["role"] != "coordinator" {
		t.Errorf("%d coordinator summaries, want 1 (the failed attempt wrote none)", len(logs))
	}
	q := o.orgQuery(t, a.ScanID)
	want := expectedOrg()
	stored := o.findingsOf(q.scans)
	diffVerdicts(t, "workers after a retried coordinator", orgVerdicts(t, stored), want)
	if q.summaries != 4 || len(q.latest) != 4 || q.accounts != orgMembers {
		t.Errorf("%d worker summaries of %d batches, %d accounts; want 4, 4, %d", q.summaries, len(q.latest), q.accounts, orgMembers)
	}
	o.audit(t, outcome{fault: "coordinator fails part-way (batch 3's InvokeFunction), FC retries it", runs: 2 + 4,
		expected: len(want), stored: len(stored)}, [][]byte{answerOf(first), answerOf(second)}, fx.f)
}
