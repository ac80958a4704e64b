package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vpnauthz/internal/finding"
)

const (
	owner     = "1250123456123456"
	ownerUID  = int64(1250123456123456)
	partner   = int64(1999000011112222)
	trusted   = int64(1210123456123456)
	connID    = "vco-p0w2jpkhi2eeop6q601"
	region    = "cn-hangzhou"
	cenTrust  = "cen-vv8h0t3klfpaae01"
	cenOther  = "cen-partner01"
	scanAcct  = "1777000000000001"
	nowString = "2026-06-15T12:00:00Z"
)

var now = mustTime(nowString)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// auth is an authorization that passes every rule of fullPolicy.
func auth() Authorization {
	return Authorization{
		VpnConnectionID: connID,
		AliUID:          ownerUID,
		BindUID:         trusted,
		BindProduct:     "CEN",
		BindInstance:    cenTrust,
		CreationTime:    now.Add(-10 * 24 * time.Hour).UnixMilli(),
	}
}

func fullPolicy() Policy {
	return Policy{
		TrustedAccountIDs:       []string{"1210123456123456"},
		TrustedCENIDs:           []string{cenTrust},
		MaxAuthorizationAgeDays: 365,
	}
}

func conn(as ...Authorization) Connection {
	return Connection{Region: region, ID: connID, AccountID: scanAcct, Authorizations: as}
}

// evalRule evaluates one authorization and returns the finding of one rule.
func evalRule(t *testing.T, p Policy, a Authorization, at time.Time, rule string) finding.Finding {
	t.Helper()
	for _, f := range p.Evaluate(conn(a), at) {
		if f.RuleID == rule {
			return f
		}
	}
	t.Fatalf("no finding for rule %s", rule)
	return finding.Finding{}
}

func TestEnabledRules(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []string
	}{
		{"empty policy", Policy{}, []string{"untrusted-account", "unexpected-product"}},
		{"cen list", Policy{TrustedCENIDs: []string{cenTrust}}, []string{"untrusted-account", "unexpected-product", "untrusted-cen"}},
		{"max age", Policy{MaxAuthorizationAgeDays: 1}, []string{"untrusted-account", "unexpected-product", "stale-authorization"}},
		{"everything", fullPolicy(), []string{"untrusted-account", "unexpected-product", "untrusted-cen", "stale-authorization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.p.EnabledRules()); diff != "" {
				t.Errorf("EnabledRules mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRules(t *testing.T) {
	tests := []struct{ id, severity string }{
		{"untrusted-account", "high"},
		{"unexpected-product", "medium"},
		{"untrusted-cen", "medium"},
		{"stale-authorization", "low"},
	}
	rs := Rules()
	if len(rs) != len(tests) {
		t.Fatalf("Rules() has %d rules, want %d", len(rs), len(tests))
	}
	for i, tt := range tests {
		if rs[i].ID != tt.id || rs[i].Severity != tt.severity || rs[i].Title == "" {
			t.Errorf("Rules()[%d] = %+v, want id %s severity %s and a title", i, rs[i], tt.id, tt.severity)
		}
		if !KnownRule(tt.id) {
			t.Errorf("KnownRule(%q) = false", tt.id)
		}
	}
	if KnownRule("read-authorizations") {
		t.Error("read-authorizations is an exception-suppressible rule")
	}
	rs[0].ID = "changed"
	if Rules()[0].ID != "untrusted-account" {
		t.Error("Rules() shares its table with callers")
	}
}

func TestRuleEdges(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name       string
		policy     func(*Policy)
		auth       func(*Authorization)
		rule       string
		wantStatus string
		wantDetail string // substring of status_detail
	}{
		// untrusted-account
		{name: "owner binds itself", auth: func(a *Authorization) { a.BindUID = ownerUID }, rule: "untrusted-account", wantStatus: "PASS", wantDetail: "it is the owner"},
		{name: "trusted account", rule: "untrusted-account", wantStatus: "PASS", wantDetail: "it is a trusted account"},
		{
			name: "untrusted account", auth: func(a *Authorization) { a.BindUID = partner; a.BindInstance = cenOther },
			rule: "untrusted-account", wantStatus: "FAIL",
			wantDetail: "Account 1999000011112222 may attach vco-p0w2jpkhi2eeop6q601 to cen-partner01 through CEN; it is neither the owner 1250123456123456 nor a trusted account.",
		},
		{
			name: "no trusted list", policy: func(p *Policy) { p.TrustedAccountIDs = nil },
			rule: "untrusted-account", wantStatus: "FAIL", wantDetail: "neither the owner",
		},
		{
			name: "owner from scanning account when AliUid is zero", auth: func(a *Authorization) { a.AliUID = 0; a.BindUID = 1777000000000001 },
			rule: "untrusted-account", wantStatus: "PASS", wantDetail: "it is the owner",
		},
		// unexpected-product
		{name: "CEN", rule: "unexpected-product", wantStatus: "PASS"},
		{name: "VBR", auth: func(a *Authorization) { a.BindProduct = "VBR" }, rule: "unexpected-product", wantStatus: "FAIL", wantDetail: `only CEN is expected, not "VBR"`},
		{name: "lower-case cen is not CEN", auth: func(a *Authorization) { a.BindProduct = "cen" }, rule: "unexpected-product", wantStatus: "FAIL"},
		{name: "empty product", auth: func(a *Authorization) { a.BindProduct = "" }, rule: "unexpected-product", wantStatus: "FAIL", wantDetail: "through an unnamed product"},
		// untrusted-cen
		{name: "trusted CEN", rule: "untrusted-cen", wantStatus: "PASS", wantDetail: "it is a trusted CEN instance"},
		{name: "untrusted CEN", auth: func(a *Authorization) { a.BindInstance = cenOther }, rule: "untrusted-cen", wantStatus: "FAIL", wantDetail: "cen-partner01 through CEN; it is not among the trusted CEN instances."},
		// stale-authorization
		{name: "young", rule: "stale-authorization", wantStatus: "PASS", wantDetail: "10 days ago, within the 365 days allowed"},
		{name: "exactly max days", auth: func(a *Authorization) { a.CreationTime = now.Add(-365 * day).UnixMilli() }, rule: "stale-authorization", wantStatus: "PASS", wantDetail: "365 days ago"},
		{name: "max days and a bit, still 365 whole days", auth: func(a *Authorization) { a.CreationTime = now.Add(-366*day + time.Second).UnixMilli() }, rule: "stale-authorization", wantStatus: "PASS", wantDetail: "365 days ago"},
		{name: "max+1 days", auth: func(a *Authorization) { a.CreationTime = now.Add(-366 * day).UnixMilli() }, rule: "stale-authorization", wantStatus: "FAIL", wantDetail: "366 days ago, more than the 365 days allowed"},
		{name: "seconds are read as seconds", auth: func(a *Authorization) { a.CreationTime = now.Add(-400 * day).Unix() }, rule: "stale-authorization", wantStatus: "FAIL", wantDetail: "400 days ago"},
		{name: "unknown creation time", auth: func(a *Authorization) { a.CreationTime = 0 }, rule: "stale-authorization", wantStatus: "FAIL", wantDetail: "age is unknown"},
		{name: "created after now is age 0", auth: func(a *Authorization) { a.CreationTime = now.Add(time.Hour).UnixMilli() }, rule: "stale-authorization", wantStatus: "PASS", wantDetail: "0 days ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fullPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			a := auth()
			if tt.auth != nil {
				tt.auth(&a)
			}
			f := evalRule(t, p, a, now, tt.rule)
			if f.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s (detail %q)", f.Status, tt.wantStatus, f.StatusDetail)
			}
			if !strings.Contains(f.StatusDetail, tt.wantDetail) {
				t.Errorf("status_detail = %q, want it to contain %q", f.StatusDetail, tt.wantDetail)
			}
			if !strings.HasSuffix(f.StatusDetail, ".") {
				t.Errorf("status_detail %q is not a sentence", f.StatusDetail)
			}
			if (f.Remediation == "") != (f.Status == "PASS") {
				t.Errorf("status %s with remediation %q", f.Status, f.Remediation)
			}
		})
	}
}

func TestEvaluateFullFinding(t *testing.T) {
	p := Policy{TrustedAccountIDs: []string{"1210123456123456"}}
	a := auth()
	a.BindUID = partner
	a.BindInstance = cenOther
	a.CreationTime = mustTime("2025-06-15T11:59:59Z").UnixMilli() + 999
	got := p.Evaluate(conn(a), now.In(time.FixedZone("UTC+8", 8*3600)))
	revoke := "Revoke the authorization with the CEN API RevokeInstanceFromTransitRouter (CenId=cen-partner01, CenOwnerId=1999000011112222, " +
		"InstanceId=vco-p0w2jpkhi2eeop6q601, InstanceType=VPN, RegionId=cn-hangzhou), after detaching any transit-router VPN attachment of the connection"
	want := []finding.Finding{
		{
			FindingUID:             finding.UID("untrusted-account", owner, region, connID, "1999000011112222", cenOther),
			RuleID:                 "untrusted-account",
			Title:                  "VPN connection authorized to an untrusted account",
			Severity:               "high",
			Status:                 "FAIL",
			StatusDetail:           "Account 1999000011112222 may attach vco-p0w2jpkhi2eeop6q601 to cen-partner01 through CEN; it is neither the owner 1250123456123456 nor a trusted account.",
			Region:                 region,
			OwnerAccountID:         owner,
			VpnConnectionID:        connID,
			BindUID:                "1999000011112222",
			BindProduct:            "CEN",
			BindInstance:           cenOther,
			AuthorizationCreatedAt: "2025-06-15T11:59:59Z",
			AuthorizationAgeDays:   "365",
			Remediation:            revoke + "; if the account is meant to attach it, add it to TRUSTED_ACCOUNT_IDS.",
			ObservedAt:             nowString,
		},
		{
			FindingUID:             finding.UID("unexpected-product", owner, region, connID, "1999000011112222", cenOther),
			RuleID:                 "unexpected-product",
			Title:                  "VPN connection authorized to a product other than CEN",
			Severity:               "medium",
			Status:                 "PASS",
			StatusDetail:           "Account 1999000011112222 may attach vco-p0w2jpkhi2eeop6q601 to cen-partner01 through CEN; CEN is the expected product.",
			Region:                 region,
			OwnerAccountID:         owner,
			VpnConnectionID:        connID,
			BindUID:                "1999000011112222",
			BindProduct:            "CEN",
			BindInstance:           cenOther,
			AuthorizationCreatedAt: "2025-06-15T11:59:59Z",
			AuthorizationAgeDays:   "365",
			ObservedAt:             nowString,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Evaluate mismatch (-want +got):\n%s", diff)
	}
}

func TestEvaluateOrderAndCount(t *testing.T) {
	p := fullPolicy()
	a1, a2 := auth(), auth()
	a2.BindUID = partner
	got := p.Evaluate(conn(a1, a2), now)
	var order []string
	for _, f := range got {
		order = append(order, f.BindUID+" "+f.RuleID)
	}
	want := []string{
		"1210123456123456 untrusted-account", "1210123456123456 unexpected-product",
		"1210123456123456 untrusted-cen", "1210123456123456 stale-authorization",
		"1999000011112222 untrusted-account", "1999000011112222 unexpected-product",
		"1999000011112222 untrusted-cen", "1999000011112222 stale-authorization",
	}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("finding order mismatch (-want +got):\n%s", diff)
	}
	for _, f := range got {
		if f.ScanID != "" || f.Trigger != "" {
			t.Errorf("scan id %q and trigger %q set; they are the caller's", f.ScanID, f.Trigger)
		}
	}
}

func TestEvaluateUnknownCreationTime(t *testing.T) {
	a := auth()
	a.CreationTime = 0
	for _, f := range (&Policy{}).Evaluate(conn(a), now) {
		if f.AuthorizationCreatedAt != "" || f.AuthorizationAgeDays != "" {
			t.Errorf("%s: created_at %q, age %q; want both empty", f.RuleID, f.AuthorizationCreatedAt, f.AuthorizationAgeDays)
		}
	}
}

func TestEvaluateNoAuthorizations(t *testing.T) {
	for _, p := range []Policy{{}, fullPolicy()} {
		got := p.Evaluate(conn(), now)
		rules := p.EnabledRules()
		if len(got) != len(rules) {
			t.Fatalf("%d findings for %d enabled rules", len(got), len(rules))
		}
		for i, f := range got {
			want := finding.Finding{
				FindingUID:      finding.UID(rules[i], scanAcct, region, connID, "", ""),
				RuleID:          rules[i],
				Title:           ruleByID(rules[i]).Title,
				Severity:        ruleByID(rules[i]).Severity,
				Status:          "PASS",
				StatusDetail:    "vco-p0w2jpkhi2eeop6q601 in cn-hangzhou has no cross-account authorization.",
				Region:          region,
				OwnerAccountID:  scanAcct,
				VpnConnectionID: connID,
				ObservedAt:      nowString,
			}
			if diff := cmp.Diff(want, f); diff != "" {
				t.Errorf("finding %d mismatch (-want +got):\n%s", i, diff)
			}
		}
	}
}

func TestExceptions(t *testing.T) {
	// The authorization under test fails untrusted-account and untrusted-cen
	// and passes the other two rules.
	a := auth()
	a.BindUID = partner
	a.BindInstance = cenOther
	ex := func(mod func(*Exception)) Exception {
		e := Exception{VpnConnectionID: connID, Reason: "partner migration, ticket NET-123", Expires: date("2026-06-15")}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	type want struct{ status, reason, expires, detail string }
	fail := want{status: "FAIL"}
	pass := want{status: "PASS"}
	suppressed := want{"SUPPRESSED", "partner migration, ticket NET-123", "2026-06-15", `; suppressed by the exception "partner migration, ticket NET-123" until 2026-06-15.`}
	tests := []struct {
		name       string
		exceptions []Exception
		at         time.Time
		want       map[string]want // by rule
	}{
		{
			name: "none",
			want: map[string]want{"untrusted-account": fail, "unexpected-product": pass, "untrusted-cen": fail, "stale-authorization": pass},
		},
		{
			name:       "live on its last day, every rule, never on PASS",
			exceptions: []Exception{ex(nil)},
			at:         mustTime("2026-06-15T23:59:59Z"),
			want:       map[string]want{"untrusted-account": suppressed, "unexpected-product": pass, "untrusted-cen": suppressed, "stale-authorization": pass},
		},
		{
			name:       "expired the day after",
			exceptions: []Exception{ex(nil)},
			at:         mustTime("2026-06-16T00:00:00Z"),
			want: map[string]want{
				"untrusted-account":  {"FAIL", "partner migration, ticket NET-123", "2026-06-15", `; the exception "partner migration, ticket NET-123" expired on 2026-06-15.`},
				"unexpected-product": pass,
			},
		},
		{
			name:       "rule-limited",
			exceptions: []Exception{ex(func(e *Exception) { e.Rules = []string{"untrusted-cen"} })},
			want:       map[string]want{"untrusted-account": fail, "untrusted-cen": suppressed},
		},
		{
			name:       "wildcard connection with bind_uid",
			exceptions: []Exception{ex(func(e *Exception) { e.VpnConnectionID = "*"; e.BindUID = "1999000011112222" })},
			want:       map[string]want{"untrusted-account": suppressed, "untrusted-cen": suppressed},
		},
		{
			name:       "other connection",
			exceptions: []Exception{ex(func(e *Exception) { e.VpnConnectionID = "vco-other0000000" })},
			want:       map[string]want{"untrusted-account": fail, "untrusted-cen": fail},
		},
		{
			name:       "other bind_uid",
			exceptions: []Exception{ex(func(e *Exception) { e.BindUID = "1210123456123456" })},
			want:       map[string]want{"untrusted-account": fail},
		},
		{
			name:       "matching bind_instance",
			exceptions: []Exception{ex(func(e *Exception) { e.BindInstance = cenOther })},
			want:       map[string]want{"untrusted-account": suppressed},
		},
		{
			name:       "other bind_instance",
			exceptions: []Exception{ex(func(e *Exception) { e.BindInstance = cenTrust })},
			want:       map[string]want{"untrusted-account": fail},
		},
		{
			name: "first live match wins",
			exceptions: []Exception{
				ex(func(e *Exception) { e.Reason = "expired one"; e.Expires = date("2026-01-01") }),
				ex(func(e *Exception) { e.Reason = "first"; e.Expires = date("2026-12-31") }),
				ex(func(e *Exception) { e.Reason = "second"; e.Expires = date("2027-12-31") }),
			},
			want: map[string]want{"untrusted-account": {"SUPPRESSED", "first", "2026-12-31", `suppressed by the exception "first" until 2026-12-31.`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fullPolicy()
			p.Exceptions = tt.exceptions
			at := tt.at
			if at.IsZero() {
				at = now
			}
			for rule, w := range tt.want {
				f := evalRule(t, p, a, at, rule)
				if f.Status != w.status || f.ExceptionReason != w.reason || f.ExceptionExpires != w.expires {
					t.Errorf("%s: status %s, reason %q, expires %q; want %s, %q, %q", rule, f.Status, f.ExceptionReason, f.ExceptionExpires, w.status, w.reason, w.expires)
				}
				if !strings.HasSuffix(f.StatusDetail, w.detail) {
					t.Errorf("%s: status_detail %q, want it to end with %q", rule, f.StatusDetail, w.detail)
				}
				if w.status == "SUPPRESSED" && !strings.Contains(f.Remediation, "RevokeInstanceFromTransitRouter") {
					t.Errorf("%s: suppressed finding without remediation", rule)
				}
			}
		})
	}
}

func TestFindingUID(t *testing.T) {
	p := fullPolicy()
	uid := func(c Connection, mod func(*Authorization)) string {
		t.Helper()
		a := auth()
		if mod != nil {
			mod(&a)
		}
		c.Authorizations = []Authorization{a}
		return p.Evaluate(c, now)[0].FindingUID
	}
	base := uid(conn(), nil)
	if again := uid(conn(), nil); again != base {
		t.Fatalf("same input gave uids %s and %s", base, again)
	}
	if later := p.Evaluate(conn(auth()), now.Add(48*time.Hour))[0].FindingUID; later != base {
		t.Errorf("uid changed with the observation time: %s vs %s", later, base)
	}
	changes := map[string]string{
		"owner":         uid(conn(), func(a *Authorization) { a.AliUID = 1 }),
		"region":        uid(Connection{Region: "cn-beijing", ID: connID, AccountID: scanAcct}, nil),
		"connection":    uid(Connection{Region: region, ID: "vco-other0000000", AccountID: scanAcct}, nil),
		"bind uid":      uid(conn(), func(a *Authorization) { a.BindUID = partner }),
		"bind instance": uid(conn(), func(a *Authorization) { a.BindInstance = cenOther }),
	}
	seen := map[string]string{base: "base"}
	for field, u := range changes {
		if len(u) != 32 {
			t.Errorf("uid %q is not 32 hex characters", u)
		}
		if prev, ok := seen[u]; ok {
			t.Errorf("changing %s gives the same uid as %s", field, prev)
		}
		seen[u] = field
	}
	fs := p.Evaluate(conn(auth()), now)
	if fs[0].FindingUID == fs[1].FindingUID {
		t.Error("two rules on one authorization share a uid")
	}
	want := finding.UID("untrusted-account", owner, region, connID, "1210123456123456", cenTrust)
	if base != want {
		t.Errorf("uid = %s, want %s", base, want)
	}
}

func TestErrorFinding(t *testing.T) {
	got := ErrorFinding(region, connID, scanAcct, "DescribeVpnCrossAccountAuthorizations failed: Forbidden.RAM (request id 1A2B).", now)
	want := finding.Finding{
		FindingUID:      finding.UID("read-authorizations", scanAcct, region, connID, "", ""),
		RuleID:          "read-authorizations",
		Title:           "Cross-account authorizations could not be read",
		Severity:        "high",
		Status:          "ERROR",
		StatusDetail:    "DescribeVpnCrossAccountAuthorizations failed: Forbidden.RAM (request id 1A2B).",
		Region:          region,
		OwnerAccountID:  scanAcct,
		VpnConnectionID: connID,
		Remediation: "Check that the function's role is allowed vpc:DescribeVpnCrossAccountAuthorizations " +
			"in cn-hangzhou and that vco-p0w2jpkhi2eeop6q601 exists there; the next scan retries.",
		ObservedAt: nowString,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ErrorFinding mismatch (-want +got):\n%s", diff)
	}
	if empty := ErrorFinding(region, connID, scanAcct, "", now); empty.StatusDetail == "" {
		t.Error("an ERROR finding without detail")
	}
}

// TestRuleTableComplete keeps every rule whole: a rule added to the table
// without a check or a fix would otherwise only fail when it first fails.
func TestRuleTableComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range append(Rules(), readRule) {
		if r.ID == "" || r.Title == "" || r.Remediation == nil {
			t.Errorf("rule %+v lacks an id, a title or a remediation", r)
		}
		switch r.Severity {
		case SeverityHigh, SeverityMedium, SeverityLow:
		default:
			t.Errorf("rule %s has severity %q", r.ID, r.Severity)
		}
		if r.ID != readRule.ID && r.Check == nil {
			t.Errorf("rule %s has no check", r.ID)
		}
		if seen[r.ID] {
			t.Errorf("rule %s is in the table twice", r.ID)
		}
		seen[r.ID] = true
	}
}

func TestDeleted(t *testing.T) {
	for _, p := range []Policy{{}, fullPolicy()} {
		got := p.Deleted(region, connID, scanAcct, now)
		rules := p.EnabledRules()
		if len(got) != len(rules) {
			t.Fatalf("%d findings for %d enabled rules", len(got), len(rules))
		}
		for i, f := range got {
			want := finding.Finding{
				FindingUID:      finding.UID(rules[i], scanAcct, region, connID, "", ""),
				RuleID:          rules[i],
				Title:           ruleByID(rules[i]).Title,
				Severity:        ruleByID(rules[i]).Severity,
				Status:          "PASS",
				StatusDetail:    "VPN connection vco-p0w2jpkhi2eeop6q601 no longer exists: nothing can attach it.",
				Region:          region,
				OwnerAccountID:  scanAcct,
				VpnConnectionID: connID,
				ObservedAt:      nowString,
			}
			if diff := cmp.Diff(want, f); diff != "" {
				t.Errorf("finding %d mismatch (-want +got):\n%s", i, diff)
			}
		}
	}
}

func TestWithTrusted(t *testing.T) {
	const member = "1310000000000001"
	base := Policy{TrustedAccountIDs: []string{"1210123456123456"}}
	a := auth()
	a.BindUID = 1310000000000001

	if f := evalRule(t, base, a, now, finding.RuleUntrustedAccount); f.Status != finding.StatusFail {
		t.Fatalf("before: %s %q, want FAIL", f.Status, f.StatusDetail)
	}
	org := base.WithTrusted(member, "1210123456123456")
	f := evalRule(t, org, a, now, finding.RuleUntrustedAccount)
	if f.Status != finding.StatusPass || !strings.HasSuffix(f.StatusDetail, "; it is a trusted account.") {
		t.Errorf("with the organisation trusted: %s %q, want PASS as a trusted account", f.Status, f.StatusDetail)
	}
	if got := org.TrustedAccountIDs; len(got) != 2 || got[0] != "1210123456123456" || got[1] != member {
		t.Errorf("trusted accounts %v, want the policy's then the extra one, once each", got)
	}
	// The shared policy is untouched, even when its slice has room to grow.
	roomy := Policy{TrustedAccountIDs: make([]string, 1, 8)}
	roomy.TrustedAccountIDs[0] = "1210123456123456"
	_ = roomy.WithTrusted(member)
	if len(base.TrustedAccountIDs) != 1 || len(roomy.TrustedAccountIDs) != 1 || roomy.TrustedAccountIDs[:2][1] != "" {
		t.Errorf("WithTrusted changed the policy it was called on: %v %v", base.TrustedAccountIDs, roomy.TrustedAccountIDs[:2])
	}
	if f := evalRule(t, base, a, now, finding.RuleUntrustedAccount); f.Status != finding.StatusFail {
		t.Errorf("the shared policy now trusts %s", member)
	}
	if got := base.WithTrusted(); len(got.TrustedAccountIDs) != 1 {
		t.Errorf("WithTrusted() = %v", got.TrustedAccountIDs)
	}
}
