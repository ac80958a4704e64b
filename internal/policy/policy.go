// Package policy judges the cross-account authorizations of IPsec-VPN
// connections against a trust policy. It is pure: no I/O, no clock of its own.
package policy

import (
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

// Evaluate gives one finding per (enabled rule × authorization), or one PASS per
// enabled rule for a connection without authorizations. ScanID and Trigger are
// left for the caller to fill.
func (p *Policy) Evaluate(c Connection, now time.Time) []finding.Finding {
	panic("not implemented")
}

// ErrorFinding is the one finding of a connection that could not be read.
func ErrorFinding(region, connectionID, ownerAccountID, detail string, now time.Time) finding.Finding {
	panic("not implemented")
}
