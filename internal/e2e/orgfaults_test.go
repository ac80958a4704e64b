package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/rmemu"
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
		held time.Time
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
			// was signed with is over, as after a long, slow listing.
			time.Sleep(time.Until(tok.Expires) + 50*time.Millisecond)
			held = tok.Expires
		})
	})
	f := startFunction(t, o.cloud, env)
	res := f.invoke(t, call{payload: timerEvent})
	r := asReport(t, res)
	if held.IsZero() {
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
