package accounts

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{"", Spec{Mode: Own}, ""},
		{"  ", Spec{Mode: Own}, ""},
		{"resource-directory", Spec{Mode: Directory}, ""},
		{" Resource-Directory ", Spec{Mode: Directory}, ""},
		{"111, 222 333\n111", Spec{Mode: List, IDs: []string{"111", "222", "333"}}, ""},
		{"111,abc", Spec{}, `ACCOUNTS: "abc" is not an account UID`},
		{"111,resource-directory", Spec{}, "cannot be combined"},
		{"123456789012345678901", Spec{}, "not an account UID"},
	}
	for _, tt := range tests {
		got, err := ParseAccounts(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAccounts(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("ParseAccounts(%q) = %+v, %v", tt.in, got, err)
		}
	}
	if got, err := ParseExclude("5, 6"); err != nil || !cmp.Equal(got, []string{"5", "6"}) {
		t.Errorf("ParseExclude = %v, %v", got, err)
	}
	if _, err := ParseExclude("5;6"); err == nil || !strings.Contains(err.Error(), `ACCOUNTS_EXCLUDE: "5;6"`) {
		t.Errorf("ParseExclude bad err = %v", err)
	}
	for in, want := range map[string]bool{"": false, "true": true, "TRUE": true, "false": false, "1": true} {
		if got, err := ParseTrustOrganization(in); err != nil || got != want {
			t.Errorf("ParseTrustOrganization(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseTrustOrganization("yes please"); err == nil || !strings.Contains(err.Error(), `TRUST_ORGANIZATION "yes please"`) {
		t.Errorf("bad TRUST_ORGANIZATION err = %v", err)
	}
}

func TestResolve(t *testing.T) {
	const own = "100"
	listing := &Listing{MasterAccountID: own, Members: []Member{
		{ID: own, Status: "CreateSuccess", Joined: true},
		{ID: "200", Status: "CreateSuccess", Joined: true},
		{ID: "300", Status: "InviteSuccess", Joined: true},
		{ID: "400", Status: "CreateFailed"},
		{ID: "500", Status: "PromoteSuccess", Joined: true},
	}}
	tests := []struct {
		name     string
		spec     Spec
		listing  *Listing
		exclude  []string
		trustOrg bool
		want     Plan
		wantErr  string
	}{
		{name: "own account", spec: Spec{Mode: Own}, want: Plan{Targets: []Target{{ID: own, Own: true}}}},
		{name: "list with own in the middle", spec: Spec{Mode: List, IDs: []string{"200", own, "300"}}, exclude: []string{"300"},
			want: Plan{Targets: []Target{{ID: own, Own: true}, {ID: "200"}}, Excluded: []string{"300"}}},
		{name: "directory", spec: Spec{Mode: Directory}, listing: listing, exclude: []string{"500"},
			want: Plan{
				Targets:  []Target{{ID: own, Own: true, Management: true}, {ID: "200"}, {ID: "300"}},
				Excluded: []string{"500"},
				Skipped:  []Skipped{{ID: "400", Reason: "not a joined member (status CreateFailed)"}},
			}},
		{name: "directory trusted, excluded and failed members included", spec: Spec{Mode: Directory}, listing: listing, exclude: []string{"200"}, trustOrg: true,
			want: Plan{
				Targets:  []Target{{ID: own, Own: true, Management: true}, {ID: "300"}, {ID: "500"}},
				Excluded: []string{"200"},
				Skipped:  []Skipped{{ID: "400", Reason: "not a joined member (status CreateFailed)"}},
				Trusted:  []string{own, "200", "300", "400", "500"},
			}},
		{name: "delegated administrator", spec: Spec{Mode: Directory}, listing: &Listing{MasterAccountID: "900", Members: []Member{{ID: "900", Joined: true}, {ID: own, Joined: true}}},
			want: Plan{Targets: []Target{{ID: own, Own: true}, {ID: "900", Management: true}}}},
		{name: "directory without listing", spec: Spec{Mode: Directory}, wantErr: "not listed"},
		{name: "trust without listing", spec: Spec{Mode: Own}, trustOrg: true, wantErr: "not listed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.spec, own, tt.listing, tt.exclude, tt.trustOrg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
		})
	}
	if _, err := Resolve(Spec{}, "x", nil, nil, false); err == nil {
		t.Error("a bad own account was accepted")
	}
}
