package target

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidRegion(t *testing.T) {
	tests := []struct {
		region string
		want   bool
	}{
		{"cn-hangzhou", true},
		{"ap-southeast-1", true},
		{"cn-hangzhou-finance", true},
		{"us-east-1", true},
		{"cn-shanghai-finance-1", true},
		{"a-b-c-d-e", false}, // first word too short
		{"aa-b-c-d-e", true},
		{"aa-b-c-d-e-f", false}, // five hyphen parts
		{"cn", false},
		{"cn-", false},
		{"-cn-hangzhou", false},
		{"cn--hangzhou", false},
		{"CN-hangzhou", false},
		{"cn-Hangzhou", false},
		{"cn-hangzhou.evil.com", false},
		{"cn-hangzhou/x", false},
		{"cn-hangzhou:1", false},
		{"cn_hangzhou", false},
		{"1n-hangzhou", false},
		{"", false},
		{"cn-hangzhou ", false},
		{"cn-hangzhou\n", false},
		{"ab-" + strings.Repeat("a", 37), true},  // 40 characters
		{"ab-" + strings.Repeat("a", 38), false}, // 41 characters
	}
	for _, tt := range tests {
		if got := ValidRegion(tt.region); got != tt.want {
			t.Errorf("ValidRegion(%q) = %v, want %v", tt.region, got, tt.want)
		}
	}
}

func TestValidConnectionID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"vco-p0w2jpkhi2eeop6q601", true},
		{"vco-abcd", true},
		{"vco-abc", false},
		{"vco-" + strings.Repeat("a", 64), true},
		{"vco-" + strings.Repeat("a", 65), false},
		{"vco-ABCD", false},
		{"vpn-abcd1234", false},
		{"vco_abcd1234", false},
		{"vco-abcd-1234", false},
		{"vco-abcd.com", false},
		{"*", false},
		{"", false},
		{" vco-abcd1234", false},
	}
	for _, tt := range tests {
		if got := ValidConnectionID(tt.id); got != tt.want {
			t.Errorf("ValidConnectionID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{in: "cn-hangzhou:vco-p0w2jpkhi2eeop6q601", want: Target{Region: "cn-hangzhou", ConnectionID: "vco-p0w2jpkhi2eeop6q601"}},
		{in: "ap-southeast-1:*", want: Target{Region: "ap-southeast-1", ConnectionID: All}},
		{in: "cn-hangzhou:vpn-1", wantErr: `"cn-hangzhou:vpn-1": connection id must look like vco-…`},
		{in: "cn-hangzhou", wantErr: `"cn-hangzhou": target must be [UID/]REGION:vco-… or [UID/]REGION:*`},
		{in: "", wantErr: `"": target must be [UID/]REGION:vco-… or [UID/]REGION:*`},
		{in: "cn-hangzhou:", wantErr: `"cn-hangzhou:": connection id must look like vco-…`},
		{in: ":vco-abcd1234", wantErr: `":vco-abcd1234": region must be`},
		{in: "evil.com:vco-abcd1234", wantErr: `"evil.com:vco-abcd1234": region must be`},
		{in: "CN-HANGZHOU:*", wantErr: `"CN-HANGZHOU:*": region must be`},
		{in: "cn-hangzhou:vco-abcd1234:x", wantErr: `connection id must look like vco-…`},
		{in: "cn-hangzhou:**", wantErr: `connection id must look like vco-…`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				var te *Error
				if !errors.As(err, &te) || te.Entry != tt.in {
					t.Fatalf("Parse(%q) error = %#v, want *Error with Entry %q", tt.in, err, tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Target
	}{
		{"empty", "", nil},
		{"only separators", " , ,\n\t,", nil},
		{"commas", "cn-hangzhou:vco-aaaa1111,cn-beijing:*", []Target{{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-beijing", ConnectionID: "*"}}},
		{"white space", "cn-hangzhou:vco-aaaa1111\n\tcn-beijing:*  ", []Target{{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-beijing", ConnectionID: "*"}}},
		{"mixed and empty entries", ",cn-hangzhou:vco-aaaa1111 ,, cn-beijing:*,", []Target{{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-beijing", ConnectionID: "*"}}},
		{"duplicates kept in order", "cn-beijing:* cn-beijing:*", []Target{{Region: "cn-beijing", ConnectionID: "*"}, {Region: "cn-beijing", ConnectionID: "*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList(tt.in)
			if err != nil {
				t.Fatalf("ParseList(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseList(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseListReportsEveryBadEntry(t *testing.T) {
	got, err := ParseList("cn-hangzhou:vpn-1, cn-beijing:*, Bad:*,nocolon cn-hangzhou:vco-aaaa1111")
	if err == nil {
		t.Fatalf("ParseList = %v, want an error", got)
	}
	if got != nil {
		t.Errorf("ParseList returned targets %v along with an error", got)
	}
	var entries []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var te *Error
		if !errors.As(e, &te) {
			t.Fatalf("error %v is not a *Error", e)
		}
		entries = append(entries, te.Entry)
	}
	want := []string{"cn-hangzhou:vpn-1", "Bad:*", "nocolon"}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("bad entries mismatch (-want +got):\n%s", diff)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), `"`+w+`"`) {
			t.Errorf("error %q does not quote %q", err, w)
		}
	}
}

func TestCollapse(t *testing.T) {
	tests := []struct {
		name string
		in   []Target
		want []Target
	}{
		{"nil", nil, nil},
		{
			name: "duplicates",
			in:   []Target{{Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}, {Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}},
			want: []Target{{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}},
		},
		{
			name: "wildcard subsumes ids of its region only",
			in: []Target{
				{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-beijing", ConnectionID: "vco-cccc3333"},
				{Region: "cn-hangzhou", ConnectionID: "*"}, {Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}, {Region: "cn-hangzhou", ConnectionID: "*"},
			},
			want: []Target{{Region: "cn-beijing", ConnectionID: "vco-cccc3333"}, {Region: "cn-hangzhou", ConnectionID: "*"}},
		},
		{
			name: "sorted by region then id",
			in:   []Target{{Region: "us-east-1", ConnectionID: "vco-zzzz9999"}, {Region: "ap-southeast-1", ConnectionID: "*"}, {Region: "us-east-1", ConnectionID: "vco-aaaa1111"}, {Region: "cn-beijing", ConnectionID: "vco-cccc3333"}},
			want: []Target{{Region: "ap-southeast-1", ConnectionID: "*"}, {Region: "cn-beijing", ConnectionID: "vco-cccc3333"}, {Region: "us-east-1", ConnectionID: "vco-aaaa1111"}, {Region: "us-east-1", ConnectionID: "vco-zzzz9999"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Target(nil), tt.in...)
			got := Collapse(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Collapse mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tt.in); diff != "" {
				t.Errorf("Collapse modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	scope := []Target{{Region: "cn-hangzhou", ConnectionID: "*"}, {Region: "cn-beijing", ConnectionID: "vco-aaaa1111"}}
	tests := []struct {
		t    Target
		want bool
	}{
		{Target{Region: "cn-hangzhou", ConnectionID: "vco-zzzz9999"}, true},
		{Target{Region: "cn-hangzhou", ConnectionID: "*"}, true},
		{Target{Region: "cn-beijing", ConnectionID: "vco-aaaa1111"}, true},
		{Target{Region: "cn-beijing", ConnectionID: "vco-bbbb2222"}, false},
		{Target{Region: "cn-beijing", ConnectionID: "*"}, false}, // a few ids do not make the whole region
		{Target{Region: "cn-shanghai", ConnectionID: "vco-aaaa1111"}, false},
		{Target{Region: "cn-shanghai", ConnectionID: "*"}, false},
	}
	for _, tt := range tests {
		if got := Covers(scope, tt.t); got != tt.want {
			t.Errorf("Covers(%v, %v) = %v, want %v", scope, tt.t, got, tt.want)
		}
	}
	if Covers(nil, Target{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}) {
		t.Error("an empty scope covers a target")
	}
}

func TestInRegionAndRegions(t *testing.T) {
	scope := []Target{{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-beijing", ConnectionID: "*"}, {Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}}
	if diff := cmp.Diff([]Target{{Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}}, InRegion(scope, "cn-hangzhou")); diff != "" {
		t.Errorf("InRegion(cn-hangzhou) mismatch (-want +got):\n%s", diff)
	}
	if got := InRegion(scope, "us-east-1"); len(got) != 0 {
		t.Errorf("InRegion(us-east-1) = %v, want none", got)
	}
	if diff := cmp.Diff([]string{"cn-beijing", "cn-hangzhou"}, Regions(scope)); diff != "" {
		t.Errorf("Regions mismatch (-want +got):\n%s", diff)
	}
	if got := Regions(nil); len(got) != 0 {
		t.Errorf("Regions(nil) = %v, want none", got)
	}
}

func TestAccounts(t *testing.T) {
	const own, member, other = "", "1111222233334444", "5555666677778888"
	scope, err := ParseList("cn-hangzhou:* cn-beijing:vco-aaaa1111 1111222233334444/cn-shanghai:vco-bbbb2222 5555666677778888/us-east-1:*")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := scope[2].String(), "1111222233334444/cn-shanghai:vco-bbbb2222"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	covers := []struct {
		t    Target
		want bool
	}{
		{Target{Account: member, Region: "cn-hangzhou", ConnectionID: "vco-zzzz9999"}, true}, // "*" covers every account
		{Target{Account: member, Region: "cn-hangzhou", ConnectionID: All}, true},
		{Target{Account: own, Region: "cn-beijing", ConnectionID: "vco-aaaa1111"}, true},
		{Target{Account: member, Region: "cn-beijing", ConnectionID: "vco-aaaa1111"}, false}, // an id alone is the own account's
		{Target{Account: member, Region: "cn-shanghai", ConnectionID: "vco-bbbb2222"}, true},
		{Target{Account: own, Region: "cn-shanghai", ConnectionID: "vco-bbbb2222"}, false},
		{Target{Account: other, Region: "us-east-1", ConnectionID: "vco-cccc3333"}, true},
		{Target{Account: member, Region: "us-east-1", ConnectionID: "vco-cccc3333"}, false},
	}
	for _, tt := range covers {
		if got := Covers(scope, tt.t); got != tt.want {
			t.Errorf("Covers(%v) = %v, want %v", tt.t, got, tt.want)
		}
	}
	got := ForAccounts(scope, []string{own, member})
	want := []Target{
		{Region: "cn-beijing", ConnectionID: "vco-aaaa1111"},
		{Region: "cn-hangzhou", ConnectionID: All},
		{Account: member, Region: "cn-hangzhou", ConnectionID: All},
		{Account: member, Region: "cn-shanghai", ConnectionID: "vco-bbbb2222"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ForAccounts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{own, member}, Accounts(got)); diff != "" {
		t.Errorf("Accounts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Target{{Account: member, Region: "cn-hangzhou", ConnectionID: All}}, InAccountRegion(scope, member, "cn-hangzhou")); diff != "" {
		t.Errorf("InRegion(member) mismatch (-want +got):\n%s", diff)
	}
	norm := Normalize([]Target{{Account: "9999888877776666", Region: "cn-hangzhou", ConnectionID: All}, {Account: member, Region: "cn-hangzhou", ConnectionID: All}}, "9999888877776666")
	if norm[0].Account != "" || norm[1].Account != member {
		t.Errorf("Normalize = %v, want the own account as \"\" and the member kept", norm)
	}
	for _, bad := range []string{"0123/cn-hangzhou:*", "abc/cn-hangzhou:*", "/cn-hangzhou:*", "12/cn-hangzhou:*", "1234/1234/cn-hangzhou:*"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted a bad account", bad)
		}
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"",
		"cn-hangzhou:vco-p0w2jpkhi2eeop6q601",
		"cn-hangzhou:*, ap-southeast-1:vco-abcd1234\nus-east-1:*",
		"cn-hangzhou:vpn-1",
		"evil.example.com:vco-abcd1234",
		"cn-hangzhou:vco-abcd1234:extra",
		",,, \t\n",
		"cn-hangzhou\u00a0:*",
		"1234567890123456/cn-hangzhou:vco-abcd1234 1234567890123456/us-east-1:*",
		"0123/cn-hangzhou:*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseList(s)
		if err != nil {
			if ts != nil {
				t.Fatalf("ParseList(%q) returned targets with an error", s)
			}
			return
		}
		for _, tg := range ts {
			if !ValidRegion(tg.Region) {
				t.Fatalf("ParseList(%q) accepted region %q", s, tg.Region)
			}
			if !tg.Wildcard() && !ValidConnectionID(tg.ConnectionID) {
				t.Fatalf("ParseList(%q) accepted connection id %q", s, tg.ConnectionID)
			}
			back, err := Parse(tg.String())
			if err != nil || back != tg {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tg.String(), back, err, tg)
			}
		}
		for _, tg := range Collapse(ts) {
			if !Covers(ts, tg) {
				t.Fatalf("collapsed target %v is not covered by its input %v", tg, ts)
			}
		}
	})
}
