package resourcedir

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"vpnauthz/internal/endpoint"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/rmemu"
	"vpnauthz/internal/retry"
)

const (
	masterUID = "1000000000000000"
	ak        = "STS.managementFunctionKey"
	secret    = "managementSecret012345"
	token     = "CAISmanagementToken"
	memberAK  = "STS.memberFunctionKey"
)

var statuses = []string{"CreateSuccess", "InviteSuccess", "PromoteSuccess", "CreateFailed", "Removing", "CreateVerifying"}

func directory(n int) []rmemu.Account {
	out := make([]rmemu.Account, n)
	for i := range out {
		out[i] = rmemu.Account{AccountId: fmt.Sprintf("2%015d", i), Status: statuses[i%len(statuses)]}
	}
	return out
}

func newRM(t *testing.T, members int) *rmemu.Server {
	t.Helper()
	s, err := rmemu.New(rmemu.Options{
		MasterAccountID: masterUID,
		Accounts:        directory(members),
		Credentials: []cred.Credential{
			{AccessKeyID: ak, AccessKeySecret: secret, SecurityToken: token, Account: masterUID},
			{AccessKeyID: memberAK, AccessKeySecret: secret, SecurityToken: token, Account: "2000000000000001"},
			{AccessKeyID: "STS.outsider", AccessKeySecret: secret, SecurityToken: token, Account: "9000000000000009"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func opts(s *rmemu.Server, key string) Options {
	return Options{
		Endpoint:    endpoint.MustParse(s.URL()),
		Credentials: cloudapi.Credentials{AccessKeyID: key, AccessKeySecret: secret, SecurityToken: token},
		Retry:       retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	}
}

func TestListsTwoThousandAccountsInTwentyPages(t *testing.T) {
	s := newRM(t, 1999) // + the management account = 2,000
	dir, err := List(context.Background(), opts(s, ak))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if dir.MasterAccountID != masterUID || dir.ID != "rd-emu001" {
		t.Errorf("directory = %s managed by %s", dir.ID, dir.MasterAccountID)
	}
	if len(dir.Accounts) != 2000 {
		t.Fatalf("%d accounts, want 2000", len(dir.Accounts))
	}
	if dir.Accounts[0].ID != masterUID || dir.Accounts[0].Type != "CloudAccount" || !dir.Accounts[0].Joined() {
		t.Errorf("first account = %+v, want the management account", dir.Accounts[0])
	}
	joined := 0
	for _, a := range dir.Accounts {
		if a.Joined() {
			joined++
		}
	}
	want := 1 // the management account
	for _, a := range directory(1999) {
		if JoinedStatus(a.Status) {
			want++
		}
	}
	if joined != want {
		t.Errorf("%d joined, want %d", joined, want)
	}
	st := s.Stats()
	if st.ListAccounts != 20 || st.GetResourceDirectory != 1 || len(st.Pages) != 20 || st.Pages[20] != 1 {
		t.Errorf("stats = %+v, want 20 ListAccounts calls, one per page", st)
	}
}

func TestAFailingPage(t *testing.T) {
	s := newRM(t, 1999)
	s.FailPage(7, 1, "ServiceUnavailable")
	dir, err := List(context.Background(), opts(s, ak))
	if err != nil || len(dir.Accounts) != 2000 {
		t.Fatalf("a page failing once: %v, %d accounts; want it retried", err, len(dir.Accounts))
	}
	if n := s.Stats().Pages[7]; n != 2 {
		t.Errorf("page 7 asked %d times, want 2", n)
	}

	s.FailPage(7, 10, "InternalError")
	_, err = List(context.Background(), opts(s, ak))
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) || ae.Code != "InternalError" || !strings.Contains(err.Error(), "page 7 of 20") {
		t.Fatalf("err = %v, want InternalError naming page 7 of 20", err)
	}
}

// TestThrottledRetriedFinalNot counts the calls that reach the emulator: a
// throttled page is asked again past MaxAttempts (throttling gets more
// attempts), a refusal is asked once.
func TestThrottledRetriedFinalNot(t *testing.T) {
	s := newRM(t, 250)
	s.FailPage(2, 4, "Throttling.User")
	dir, err := List(context.Background(), opts(s, ak))
	if err != nil || len(dir.Accounts) != 251 {
		t.Fatalf("page 2 throttled 4 times: %v, %d accounts; want it retried", err, len(dir.Accounts))
	}
	if n := s.Stats().Pages[2]; n != 5 {
		t.Errorf("page 2 asked %d times, want 5", n)
	}

	before := s.Stats()
	_, err = List(context.Background(), opts(s, memberAK))
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) || ae.Code != "NoPermission.ResourceDirectory.MemberAccount" {
		t.Fatalf("err = %v, want the member's refusal", err)
	}
	after := s.Stats()
	if n := after.ByCode[ae.Code] - before.ByCode[ae.Code]; n != 1 {
		t.Errorf("the refusal was asked %d times, want once", n)
	}
}

func TestOnlyTheManagementAccountLists(t *testing.T) {
	s := newRM(t, 5)
	tests := []struct {
		key, code string
	}{
		{memberAK, "NoPermission.ResourceDirectory.MemberAccount"},
		{"STS.outsider", "ResourceDirectoryNotInUse"},
		{"STS.unknown", "InvalidAccessKeyId.NotFound"},
	}
	for _, tt := range tests {
		_, err := List(context.Background(), opts(s, tt.key))
		var ae *cloudapi.APIError
		if !errors.As(err, &ae) || ae.Code != tt.code {
			t.Errorf("List as %s: %v, want %s", tt.key, err, tt.code)
		}
	}
}

func TestMemberRemovedBetweenListings(t *testing.T) {
	s := newRM(t, 3)
	before, err := List(context.Background(), opts(s, ak))
	if err != nil {
		t.Fatal(err)
	}
	if !s.RemoveAccount("2000000000000001") {
		t.Fatal("RemoveAccount")
	}
	after, err := List(context.Background(), opts(s, ak))
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Accounts) != 4 || len(after.Accounts) != 3 {
		t.Errorf("accounts before %d, after %d; want 4 then 3", len(before.Accounts), len(after.Accounts))
	}
}

func TestBadEndpoint(t *testing.T) {
	_, err := List(context.Background(), Options{Endpoint: endpoint.Endpoint{Scheme: "http", Host: "resourcemanager.aliyuncs.com"}})
	if err == nil || !strings.Contains(err.Error(), "RESOURCEMANAGER_ENDPOINT") {
		t.Fatalf("err = %v", err)
	}
}

func TestJoinedStatus(t *testing.T) {
	for status, want := range map[string]bool{"CreateSuccess": true, "InviteSuccess": true, "PromoteSuccess": true,
		"CreateFailed": false, "Removing": false, "PromoteVerifying": false, "": false} {
		if got := JoinedStatus(status); got != want {
			t.Errorf("JoinedStatus(%q) = %v", status, got)
		}
	}
}
