package policy

import (
	"fmt"
	"slices"

	"vpnauthz/internal/finding"
)

// Rule is one rule a policy judges authorizations by: everything about it,
// from its id to the fix it suggests, is in this one value.
type Rule struct {
	ID       string
	Title    string
	Severity string
	// Enabled reports whether a policy judges by the rule; nil means always.
	Enabled func(p *Policy) bool
	// Check judges one authorization and gives the evidence, without a final period.
	Check func(p *Policy, g grant) (fail bool, detail string)
	// Remediation is the fix offered with a FAIL (and kept on a SUPPRESSED).
	Remediation func(g grant) string
}

// Severities of findings.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
	SeverityLow    = "low"
)

// rules is the rule table, in the order findings of one authorization are given.
var rules = []Rule{
	{
		ID:       finding.RuleUntrustedAccount,
		Title:    "VPN connection authorized to an untrusted account",
		Severity: SeverityHigh,
		Check: func(p *Policy, g grant) (bool, string) {
			switch {
			case g.bindUID == g.owner:
				return false, g.String() + "; it is the owner"
			case slices.Contains(p.TrustedAccountIDs, g.bindUID):
				return false, g.String() + "; it is a trusted account"
			}
			return true, fmt.Sprintf("%s; it is neither the owner %s nor a trusted account", g, g.owner)
		},
		Remediation: func(g grant) string {
			return revoke(g) + "; if the account is meant to attach it, add it to TRUSTED_ACCOUNT_IDS."
		},
	},
	{
		ID:       finding.RuleUnexpectedProduct,
		Title:    "VPN connection authorized to a product other than CEN",
		Severity: SeverityMedium,
		Check: func(_ *Policy, g grant) (bool, string) {
			if g.product == "CEN" {
				return false, g.String() + "; CEN is the expected product"
			}
			return true, fmt.Sprintf("%s; only CEN is expected, not %q", g, g.product)
		},
		Remediation: func(g grant) string { return revoke(g) + "." },
	},
	{
		ID:       finding.RuleUntrustedCEN,
		Title:    "VPN connection authorized to an untrusted CEN instance",
		Severity: SeverityMedium,
		// Without a list of trusted CEN instances every instance would fail.
		Enabled: func(p *Policy) bool { return len(p.TrustedCENIDs) > 0 },
		Check: func(p *Policy, g grant) (bool, string) {
			if slices.Contains(p.TrustedCENIDs, g.instance) {
				return false, g.String() + "; it is a trusted CEN instance"
			}
			return true, g.String() + "; it is not among the trusted CEN instances"
		},
		Remediation: func(g grant) string {
			return revoke(g) + "; if the CEN instance is meant to attach it, add it to TRUSTED_CEN_IDS."
		},
	},
	{
		ID:       finding.RuleStaleAuthorization,
		Title:    "Cross-account authorization older than the allowed age",
		Severity: SeverityLow,
		Enabled:  func(p *Policy) bool { return p.MaxAuthorizationAgeDays > 0 },
		Check: func(p *Policy, g grant) (bool, string) {
			maxDays := p.MaxAuthorizationAgeDays
			if g.created.IsZero() {
				return true, fmt.Sprintf("%s; the authorization has no creation time, so its age is unknown and not shown to be within %d days", g, maxDays)
			}
			created := g.createdText
			if g.ageDays > maxDays {
				return true, fmt.Sprintf("%s; the authorization was created %s, %d days ago, more than the %d days allowed", g, created, g.ageDays, maxDays)
			}
			return false, fmt.Sprintf("%s; the authorization was created %s, %d days ago, within the %d days allowed", g, created, g.ageDays, maxDays)
		},
		Remediation: func(g grant) string {
			return revoke(g) + "; if it is still needed, grant it again so its age restarts."
		},
	},
}

// readRule gives the ERROR finding of a connection whose authorizations could
// not be read. It is outside the table: it judges no authorization, and an
// exception never suppresses it.
var readRule = Rule{
	ID:       finding.RuleReadAuthorizations,
	Title:    "Cross-account authorizations could not be read",
	Severity: SeverityHigh,
	Remediation: func(g grant) string {
		return fmt.Sprintf("Check that the function's role is allowed vpc:DescribeVpnCrossAccountAuthorizations "+
			"in %s and that %s exists there; the next scan retries.", g.region, g.connection)
	},
}

// revoke is the fix every FAIL shares: the call that takes the authorization back.
func revoke(g grant) string {
	return fmt.Sprintf("Revoke the authorization with the CEN API RevokeInstanceFromTransitRouter "+
		"(CenId=%s, CenOwnerId=%s, InstanceId=%s, InstanceType=VPN, RegionId=%s), "+
		"after detaching any transit-router VPN attachment of the connection",
		g.instance, g.bindUID, g.connection, g.region)
}

// Rules returns the rules an authorization can be judged by, in table order.
// These are the rules an exception may name; read-authorizations is not
// among them because an ERROR is never suppressed.
func Rules() []Rule { return slices.Clone(rules) }

// KnownRule reports whether id is one of Rules.
func KnownRule(id string) bool {
	return slices.ContainsFunc(rules, func(r Rule) bool { return r.ID == id })
}

// enabled returns the rules p judges by, in table order.
func (p *Policy) enabled() []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		if r.Enabled == nil || r.Enabled(p) {
			out = append(out, r)
		}
	}
	return out
}

// EnabledRules returns the ids of the rules p judges by, in table order:
// untrusted-cen only with a list of trusted CEN instances, stale-authorization
// only with a maximum age.
func (p *Policy) EnabledRules() []string {
	var ids []string
	for _, r := range p.enabled() {
		ids = append(ids, r.ID)
	}
	return ids
}

// ruleByID returns the rule with the id, or a Rule with only the id.
func ruleByID(id string) Rule {
	if i := slices.IndexFunc(rules, func(r Rule) bool { return r.ID == id }); i >= 0 {
		return rules[i]
	}
	return Rule{ID: id}
}
