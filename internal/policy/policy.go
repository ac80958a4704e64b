// Package policy judges the cross-account authorizations of IPsec-VPN
// connections against a trust policy. It is pure: no I/O, no clock of its own.
package policy

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"vpnauthz/internal/finding"
)

// Authorization is one cross-account authorization as the VPC API reports it.
type Authorization struct {
	VpnConnectionID string
	AliUID          int64 // owner of the VPN connection
	BindUID         int64 // the account that may attach the connection
	BindProduct     string
	BindInstance    string // the CEN instance
	CreationTime    int64  // epoch ms; below 1e11 taken as seconds
}

// Connection is one connection read without error.
type Connection struct {
	Region         string
	ID             string
	AccountID      string // the scanning account: owner when no authorization names one
	Authorizations []Authorization
}

// Policy is the trust policy.
type Policy struct {
	TrustedAccountIDs       []string
	TrustedCENIDs           []string
	MaxAuthorizationAgeDays int
	Exceptions              []Exception
}

// Exception turns a matching FAIL into SUPPRESSED until it expires.
type Exception struct {
	VpnConnectionID string   // a connection id or "*"
	BindUID         string   // optional
	BindInstance    string   // optional
	Rules           []string // optional: empty means every rule
	Reason          string
	Expires         time.Time // the last day the exception holds (UTC midnight of that date)
}

// secondsBelow is the CreationTime under which the value is taken as epoch
// seconds: 1e11 ms is March 1973, long before any authorization, while 1e11 s
// is far in the future.
const secondsBelow = 1e11

const dateLayout = "2006-01-02"

// Evaluate gives one finding per (enabled rule × authorization), or one PASS per
// enabled rule for a connection without authorizations. ScanID and Trigger are
// left for the caller to fill.
func (p *Policy) Evaluate(c Connection, now time.Time) []finding.Finding {
	now = now.UTC()
	// Formatted once: every finding of the connection shares it.
	observed := now.Format(time.RFC3339)
	enabled := p.enabled()
	if len(c.Authorizations) == 0 {
		out := make([]finding.Finding, 0, len(enabled))
		for _, r := range enabled {
			out = append(out, finding.Finding{
				FindingUID:      finding.UID(r.ID, c.AccountID, c.Region, c.ID, "", ""),
				RuleID:          r.ID,
				Title:           r.Title,
				Severity:        r.Severity,
				Status:          finding.StatusPass,
				StatusDetail:    fmt.Sprintf("%s in %s has no cross-account authorization.", c.ID, c.Region),
				Region:          c.Region,
				OwnerAccountID:  c.AccountID,
				VpnConnectionID: c.ID,
				ObservedAt:      observed,
			})
		}
		return out
	}

	out := make([]finding.Finding, 0, len(enabled)*len(c.Authorizations))
	for _, a := range c.Authorizations {
		g := newGrant(c, a, now)
		for _, r := range enabled {
			out = append(out, p.judge(r, &g, now, observed))
		}
	}
	return out
}

// grant is one authorization with the values every finding on it shares.
type grant struct {
	region, connection, owner  string
	bindUID, product, instance string
	created                    time.Time // zero when unknown
	ageDays                    int
	// created and ageDays as findings show them ("" when unknown),
	// formatted once for every rule's finding.
	createdText, ageDaysText string
}

func newGrant(c Connection, a Authorization, now time.Time) grant {
	g := grant{
		region:     c.Region,
		connection: c.ID,
		owner:      c.AccountID,
		bindUID:    strconv.FormatInt(a.BindUID, 10),
		product:    a.BindProduct,
		instance:   a.BindInstance,
	}
	if g.connection == "" {
		g.connection = a.VpnConnectionID
	}
	if a.AliUID != 0 {
		g.owner = strconv.FormatInt(a.AliUID, 10)
	}
	switch {
	case a.CreationTime <= 0:
		// Unknown: no creation time was reported.
	case a.CreationTime < secondsBelow:
		g.created = time.Unix(a.CreationTime, 0).UTC()
	default:
		g.created = time.UnixMilli(a.CreationTime).UTC()
	}
	if !g.created.IsZero() {
		// A creation time ahead of this clock is clock skew, not a negative age.
		g.ageDays = max(0, int(now.Sub(g.created)/(24*time.Hour)))
		g.createdText = g.created.Format(time.RFC3339)
		g.ageDaysText = strconv.Itoa(g.ageDays)
	}
	return g
}

// String is the evidence sentence shared by the rules: who may attach what to what.
func (g grant) String() string {
	product, instance := g.product, g.instance
	if product == "" {
		product = "an unnamed product"
	}
	if instance == "" {
		instance = "an unnamed instance"
	}
	return fmt.Sprintf("Account %s may attach %s to %s through %s", g.bindUID, g.connection, instance, product)
}

func (p *Policy) judge(r Rule, gp *grant, now time.Time, observed string) finding.Finding {
	g := *gp
	f := finding.Finding{
		FindingUID:      finding.UID(r.ID, g.owner, g.region, g.connection, g.bindUID, g.instance),
		RuleID:          r.ID,
		Title:           r.Title,
		Severity:        r.Severity,
		Region:          g.region,
		OwnerAccountID:  g.owner,
		VpnConnectionID: g.connection,
		BindUID:         g.bindUID,
		BindProduct:     g.product,
		BindInstance:    g.instance,
		ObservedAt:      observed,
	}
	if !g.created.IsZero() {
		f.AuthorizationCreatedAt = g.createdText
		f.AuthorizationAgeDays = g.ageDaysText
	}

	fail, detail := r.Check(p, g)
	if !fail {
		f.Status = finding.StatusPass
		f.StatusDetail = detail + "."
		return f
	}
	f.Status = finding.StatusFail
	f.Remediation = r.Remediation(g)
	live, expired := p.exception(r.ID, g, now)
	switch {
	case live != nil:
		f.Status = finding.StatusSuppressed
		f.ExceptionReason = live.Reason
		f.ExceptionExpires = live.Expires.Format(dateLayout)
		detail += fmt.Sprintf("; suppressed by the exception %q until %s", live.Reason, f.ExceptionExpires)
	case expired != nil:
		f.ExceptionReason = expired.Reason
		f.ExceptionExpires = expired.Expires.Format(dateLayout)
		detail += fmt.Sprintf("; the exception %q expired on %s", expired.Reason, f.ExceptionExpires)
	}
	f.StatusDetail = detail + "."
	return f
}

// exception finds the first live exception in file order that matches, or
// else the first expired one, so its detail can say that it ran out.
func (p *Policy) exception(rule string, g grant, now time.Time) (live, expired *Exception) {
	for i := range p.Exceptions {
		e := &p.Exceptions[i]
		if !e.matches(rule, g) {
			continue
		}
		if e.liveAt(now) {
			return e, nil
		}
		if expired == nil {
			expired = e
		}
	}
	return nil, expired
}

func (e *Exception) matches(rule string, g grant) bool {
	return (e.VpnConnectionID == "*" || e.VpnConnectionID == g.connection) &&
		(e.BindUID == "" || e.BindUID == g.bindUID) &&
		(e.BindInstance == "" || e.BindInstance == g.instance) &&
		(len(e.Rules) == 0 || slices.Contains(e.Rules, rule))
}

// liveAt reports whether e still holds at now: the expiry date is the last
// day it holds, so it ends 24 hours after that date's midnight.
func (e *Exception) liveAt(now time.Time) bool {
	return now.Before(e.Expires.Add(24 * time.Hour))
}

// WithTrusted returns a copy of p that also trusts the given accounts (for
// one scan: TRUST_ORGANIZATION makes every member of the Resource Directory
// trusted). p itself, shared by concurrent scans, is left as it is.
func (p Policy) WithTrusted(accounts ...string) Policy {
	if len(accounts) == 0 {
		return p
	}
	trusted := make([]string, 0, len(p.TrustedAccountIDs)+len(accounts))
	trusted = append(trusted, p.TrustedAccountIDs...)
	for _, a := range accounts {
		if !slices.Contains(trusted, a) {
			trusted = append(trusted, a)
		}
	}
	p.TrustedAccountIDs = trusted
	return p
}

// Deleted gives the findings of a connection that no longer exists: one
// PASS per enabled rule, with empty bind fields, as for a connection without
// authorizations. A deleted connection holds no authorization, so nothing can
// attach it; it is not an error that needs anyone's attention.
func (p *Policy) Deleted(region, connectionID, ownerAccountID string, now time.Time) []finding.Finding {
	out := p.Evaluate(Connection{Region: region, ID: connectionID, AccountID: ownerAccountID}, now)
	for i := range out {
		out[i].StatusDetail = DeletedDetail(connectionID)
	}
	return out
}

// DeletedDetail is the status detail of the findings of a deleted connection.
func DeletedDetail(connectionID string) string {
	return fmt.Sprintf("VPN connection %s no longer exists: nothing can attach it.", connectionID)
}

// ErrorFinding is the one finding of a connection that could not be read.
func ErrorFinding(region, connectionID, ownerAccountID, detail string, now time.Time) finding.Finding {
	if detail == "" {
		detail = "The cross-account authorizations of " + connectionID + " could not be read."
	}
	return finding.Finding{
		FindingUID:      finding.UID(readRule.ID, ownerAccountID, region, connectionID, "", ""),
		RuleID:          readRule.ID,
		Title:           readRule.Title,
		Severity:        readRule.Severity,
		Status:          finding.StatusError,
		StatusDetail:    detail,
		Region:          region,
		OwnerAccountID:  ownerAccountID,
		VpnConnectionID: connectionID,
		Remediation:     readRule.Remediation(grant{region: region, connection: connectionID}),
		ObservedAt:      now.UTC().Format(time.RFC3339),
	}
}
