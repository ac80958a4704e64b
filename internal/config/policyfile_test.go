package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vpnauthz/internal/policy"
)

func TestParsePolicyValid(t *testing.T) {
	jan31 := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		yaml string
		want policy.Policy
	}{
		{"empty", "", policy.Policy{}},
		{"comments only", "# nothing yet\n", policy.Policy{}},
		{"null document", "---\n~\n", policy.Policy{}},
		{"null values", "trusted_account_ids:\ntrusted_cen_ids: ~\nmax_authorization_age_days:\nexceptions: null\n", policy.Policy{}},
		{
			name: "UIDs as numbers and strings",
			yaml: "trusted_account_ids: [1210123456123456, \"1310123456123456\", '7']\n",
			want: policy.Policy{TrustedAccountIDs: []string{"1210123456123456", "1310123456123456", "7"}},
		},
		{
			name: "block lists",
			yaml: "trusted_cen_ids:\n  - cen-aaaa1111\n  - cen-bbbb2222\n  - cen-aaaa1111\n",
			want: policy.Policy{TrustedCENIDs: []string{"cen-aaaa1111", "cen-bbbb2222"}},
		},
		{"age as a string", "max_authorization_age_days: \"30\"\n", policy.Policy{MaxAuthorizationAgeDays: 30}},
		{"age zero", "max_authorization_age_days: 0\n", policy.Policy{}},
		{
			name: "wildcard with rules",
			yaml: "exceptions:\n  - vpn_connection_id: \"*\"\n    rules: [stale-authorization]\n    reason: re-grant planned\n    expires: 2027-01-31\n",
			want: policy.Policy{Exceptions: []policy.Exception{{VpnConnectionID: "*", Rules: []string{"stale-authorization"}, Reason: "re-grant planned", Expires: jan31}}},
		},
		{
			name: "wildcard with bind_uid as a number",
			yaml: "exceptions:\n  - {vpn_connection_id: '*', bind_uid: 1999000011112222, reason: partner, expires: '2027-01-31'}\n",
			want: policy.Policy{Exceptions: []policy.Exception{{VpnConnectionID: "*", BindUID: "1999000011112222", Reason: "partner", Expires: jan31}}},
		},
		{
			name: "aliases",
			yaml: "exceptions:\n  - &e {vpn_connection_id: vco-abcd1234, reason: ' spaced ', expires: 2027-01-31}\n  - *e\n",
			want: policy.Policy{Exceptions: []policy.Exception{
				{VpnConnectionID: "vco-abcd1234", Reason: "spaced", Expires: jan31},
				{VpnConnectionID: "vco-abcd1234", Reason: "spaced", Expires: jan31},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePolicy mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePolicyInvalid(t *testing.T) {
	exc := func(fields string) string {
		return "exceptions:\n  - vpn_connection_id: vco-abcd1234\n    reason: r\n    expires: 2027-01-31\n" + fields
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"syntax", "trusted_account_ids: [1\n", []string{"not valid YAML: line 1: did not find expected ',' or ']'"}},
		{"tab indentation", "exceptions:\n\t- x\n", []string{"not valid YAML: line 2: found character that cannot start any token"}},
		{"two documents", "max_authorization_age_days: 1\n---\nmax_authorization_age_days: 2\n", []string{"line 2: the policy file must hold exactly one YAML document"}},
		{"not a mapping", "- a\n", []string{"line 1: must be a mapping of keys to values"}},
		{"unknown key", "trusted_accounts: [1]\n", []string{"trusted_accounts (line 1): unknown key; the keys are trusted_account_ids, trusted_cen_ids, max_authorization_age_days, exceptions"}},
		{"repeated key", "max_authorization_age_days: 1\nmax_authorization_age_days: 2\n", []string{"max_authorization_age_days (line 2): given twice (first on line 1)"}},
		{"list not a list", "trusted_account_ids: 1210123456123456\n", []string{"trusted_account_ids (line 1): must be a list, like [a, b]"}},
		{"uid float", "trusted_account_ids: [1.2e15]\n", []string{`trusted_account_ids[0] (line 1): "1.2e15": account UID must be 1 to 20 decimal digits without a leading zero`}},
		{"uid a mapping", "trusted_account_ids: [{a: 1}]\n", []string{"trusted_account_ids[0] (line 1): must be a single value, not a list or mapping"}},
		{"cen id", "trusted_cen_ids: [cen-UPPER1]\n", []string{`trusted_cen_ids[0] (line 1): "cen-UPPER1": CEN instance id must look like cen-… (lower-case letters and digits)`}},
		{"age hex", "max_authorization_age_days: 0x10\n", []string{`max_authorization_age_days (line 1): "0x10": must be a whole number of days from 0 (rule off) to 36500`}},
		{"age too big", "max_authorization_age_days: 36501\n", []string{`max_authorization_age_days (line 1): "36501": must be a whole number of days from 0 (rule off) to 36500`}},
		{"age a list", "max_authorization_age_days: [1]\n", []string{"max_authorization_age_days (line 1): must be a single value, not a list or mapping"}},
		{"exceptions a mapping", "exceptions: {a: b}\n", []string{"exceptions (line 1): must be a list, like [a, b]"}},
		{"exception a string", "exceptions: [vco-abcd1234]\n", []string{"exceptions[0] (line 1): must be a mapping of keys to values"}},
		{"expires with a time", exc("")[:len(exc(""))-len("2027-01-31\n")] + "2027-01-31T00:00:00Z\n", []string{`exceptions[0].expires (line 4): "2027-01-31T00:00:00Z": must be a date, YYYY-MM-DD`}},
		{"expires not a day", strings.Replace(exc(""), "2027-01-31", "2027-02-30", 1), []string{`exceptions[0].expires (line 4): "2027-02-30": must be a date, YYYY-MM-DD`}},
		{"reason blank", strings.Replace(exc(""), "reason: r", "reason: '  '", 1), []string{"exceptions[0].reason (line 2): required: say why the exception exists, e.g. a ticket"}},
		{"bind_uid text", exc("    bind_uid: partner\n"), []string{`exceptions[0].bind_uid (line 5): "partner": account UID must be 1 to 20 decimal digits without a leading zero`}},
		{"bind_instance not cen", exc("    bind_instance: tr-abcd1234\n"), []string{`exceptions[0].bind_instance (line 5): "tr-abcd1234": CEN instance id must look like cen-… (lower-case letters and digits)`}},
		{"rules not a list", exc("    rules: untrusted-account\n"), []string{"exceptions[0].rules (line 5): must be a list, like [a, b]"}},
		{"error rule", exc("    rules: [read-authorizations]\n"), []string{`exceptions[0].rules[0] (line 5): "read-authorizations": an ERROR finding cannot be suppressed; fix the read instead`}},
		{"unknown exception key", exc("    note: x\n"), []string{"exceptions[0].note (line 5): unknown key; the keys are vpn_connection_id, bind_uid, bind_instance, rules, reason, expires"}},
		{
			name: "wildcard with empty rules silences everything",
			yaml: "exceptions:\n  - vpn_connection_id: '*'\n    rules: []\n    reason: r\n    expires: 2027-01-31\n",
			want: []string{"exceptions[0] (line 2): an exception for every connection must name bind_uid, bind_instance or rules; otherwise it would suppress every finding"},
		},
		{
			name: "missing required keys",
			yaml: "exceptions:\n  - bind_uid: \"1999000011112222\"\n",
			want: []string{
				`exceptions[0].vpn_connection_id (line 2): required: a connection id like vco-… or "*" for every connection`,
				"exceptions[0].reason (line 2): required: say why the exception exists, e.g. a ticket",
				"exceptions[0].expires (line 2): required: the last day the exception holds, YYYY-MM-DD",
			},
		},
		{"too large", "# " + strings.Repeat("x", 1<<20) + "\n", []string{"the policy file is larger than 1048576 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParsePolicy = %+v, want an error", got)
			}
			var msgs []string
			for _, e := range unjoin(err) {
				msgs = append(msgs, e.Error())
			}
			if diff := cmp.Diff(tt.want, msgs); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(policy.Policy{}, got); diff != "" {
				t.Errorf("a policy returned along with an error:\n%s", diff)
			}
		})
	}
}

func TestExamplePolicyFile(t *testing.T) {
	data, err := os.ReadFile("../../policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		t.Fatalf("the example policy does not parse: %v", err)
	}
	if len(p.TrustedAccountIDs) == 0 || len(p.TrustedCENIDs) == 0 || p.MaxAuthorizationAgeDays == 0 || len(p.Exceptions) < 2 {
		t.Errorf("the example policy does not show every setting: %+v", p)
	}
	if slices.ContainsFunc(p.Exceptions, func(e policy.Exception) bool { return e.VpnConnectionID == "*" }) == false {
		t.Error("the example policy does not show a wildcard exception")
	}
}

var (
	fuzzUID  = regexp.MustCompile(`^[0-9]{1,20}$`)
	fuzzCEN  = regexp.MustCompile(`^cen-[a-z0-9]{4,64}$`)
	fuzzConn = regexp.MustCompile(`^(\*|vco-[a-z0-9]{4,64})$`)
)

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"",
		"trusted_account_ids: [1210123456123456, \"1310123456123456\"]\ntrusted_cen_ids: [cen-vv8h0t3klfpaae01]\nmax_authorization_age_days: 365\n",
		"exceptions:\n  - vpn_connection_id: vco-p0w2jpkhi2eeop6q601\n    bind_uid: \"1999000011112222\"\n    bind_instance: cen-partner01\n    rules: [untrusted-account]\n    reason: \"partner migration\"\n    expires: 2027-01-31\n",
		"exceptions:\n  - {vpn_connection_id: '*', reason: x, expires: 2027-01-31}\n",
		"a: &a [*a]\n",
		"trusted_account_ids: [&x 1, *x, *x]\n",
		"max_authorization_age_days: 99999999999999999999\n",
		"exceptions: [{rules: [read-authorizations]}]\n",
		"- - - -\n",
		"{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		for _, u := range p.TrustedAccountIDs {
			if !fuzzUID.MatchString(u) {
				t.Fatalf("accepted trusted account %q", u)
			}
		}
		for _, c := range p.TrustedCENIDs {
			if !fuzzCEN.MatchString(c) {
				t.Fatalf("accepted trusted CEN %q", c)
			}
		}
		if p.MaxAuthorizationAgeDays < 0 || p.MaxAuthorizationAgeDays > 36500 {
			t.Fatalf("accepted max age %d", p.MaxAuthorizationAgeDays)
		}
		for i, e := range p.Exceptions {
			switch {
			case !fuzzConn.MatchString(e.VpnConnectionID):
				t.Fatalf("exception %d: accepted connection %q", i, e.VpnConnectionID)
			case e.BindUID != "" && !fuzzUID.MatchString(e.BindUID):
				t.Fatalf("exception %d: accepted bind_uid %q", i, e.BindUID)
			case e.BindInstance != "" && !fuzzCEN.MatchString(e.BindInstance):
				t.Fatalf("exception %d: accepted bind_instance %q", i, e.BindInstance)
			case strings.TrimSpace(e.Reason) == "":
				t.Fatalf("exception %d: accepted without a reason", i)
			case e.Expires.IsZero() || e.Expires.Location() != time.UTC || !e.Expires.Equal(e.Expires.Truncate(24*time.Hour)):
				t.Fatalf("exception %d: accepted expiry %v", i, e.Expires)
			case e.VpnConnectionID == "*" && e.BindUID == "" && e.BindInstance == "" && len(e.Rules) == 0:
				t.Fatalf("exception %d: accepted a wildcard that silences everything", i)
			}
			for _, r := range e.Rules {
				if !policy.KnownRule(r) {
					t.Fatalf("exception %d: accepted rule %q", i, r)
				}
			}
		}
	})
}

func TestParsePolicyLimits(t *testing.T) {
	var many strings.Builder
	many.WriteString("trusted_account_ids: [")
	for i := range 60 {
		many.WriteString("bad" + strings.Repeat("x", i%3) + ", ")
	}
	many.WriteString("]\n")

	// 400 aliases of an exception whose rules are an alias of a 400-entry list.
	var fan strings.Builder
	fan.WriteString("exceptions:\n  - &e\n    vpn_connection_id: vco-abcd1234\n    reason: r\n    expires: 2027-01-31\n    rules: &r [")
	fan.WriteString(strings.Repeat("untrusted-cen, ", 400))
	fan.WriteString("]\n")
	fan.WriteString(strings.Repeat("  - *e\n", 400))

	tests := []struct {
		name, yaml string
		wantErrs   int
		wantLast   string
	}{
		{"many bad values", many.String(), maxPolicyErrors + 1, "line 1: too many problems; fix these first"},
		{"alias fan-out", fan.String(), 1, "more than 100000 values once aliases are expanded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.yaml))
			if err == nil {
				t.Fatal("ParsePolicy accepted the policy")
			}
			errs := unjoin(err)
			if len(errs) != tt.wantErrs {
				t.Errorf("%d errors, want %d", len(errs), tt.wantErrs)
			}
			if last := errs[len(errs)-1].Error(); !strings.HasSuffix(last, tt.wantLast) {
				t.Errorf("last error %q, want it to end with %q", last, tt.wantLast)
			}
		})
	}
}
