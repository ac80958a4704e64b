// Package target parses and checks scan targets: "REGION:vco-…" for one IPsec-VPN
// connection and "REGION:*" for every connection in a region, each optionally
// prefixed with the account that owns it: "UID/REGION:vco-…", "UID/REGION:*".
package target

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// All is the connection id of a target that covers every connection of its region.
const All = "*"

// Target is one region and one connection id (or All), in one account.
//
// Account "" is the function's own account for an explicit connection; in a
// scope (SCAN_TARGETS, an HTTP or event scope), "REGION:*" without an account
// covers that region in every scanned account, as PRODUCT.md says. A target a
// scan reads always names its account, or "" for the function's own.
type Target struct {
	Region       string
	ConnectionID string
	Account      string // owner account UID; "" = the function's own account
}

// String gives the target in its configuration form, "[uid/]region:id".
func (t Target) String() string {
	if t.Account != "" {
		return t.Account + "/" + t.Region + ":" + t.ConnectionID
	}
	return t.Region + ":" + t.ConnectionID
}

// Wildcard reports whether t covers every connection of its region.
func (t Target) Wildcard() bool { return t.ConnectionID == All }

// maxRegionLen bounds a region id: the region becomes part of endpoint host
// names, so it must stay a short, plain DNS label sequence.
const maxRegionLen = 40

var (
	// Only lower-case words joined by hyphens: no dots, slashes, colons or
	// upper case, so a region can never steer a request to another host.
	regionPattern       = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+){1,4}$`)
	connectionIDPattern = regexp.MustCompile(`^vco-[a-z0-9]{4,64}$`)
	accountIDPattern    = regexp.MustCompile(`^[1-9][0-9]{3,19}$`)
)

// ValidAccountID reports whether s has the form of an Alibaba Cloud account
// UID: digits without a leading zero (UIDs are usually 16 digits long).
func ValidAccountID(s string) bool { return accountIDPattern.MatchString(s) }

// ValidRegion reports whether s has the form of a region id, like cn-hangzhou
// or ap-southeast-1.
func ValidRegion(s string) bool {
	return len(s) <= maxRegionLen && regionPattern.MatchString(s)
}

// ValidConnectionID reports whether s has the form of an IPsec-VPN connection
// id, like vco-p0w2jpkhi2eeop6q601.
func ValidConnectionID(s string) bool {
	return connectionIDPattern.MatchString(s)
}

// Error is one target entry that could not be parsed.
type Error struct {
	Entry  string // the entry as written
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%q: %s", e.Entry, e.Reason) }

// Reasons given for bad entries.
const (
	reasonForm    = "target must be [UID/]REGION:vco-… or [UID/]REGION:*"
	reasonAccount = "account must be a UID of digits, like 1234567890123456"
	reasonRegion  = "region must be lower-case letters and digits in hyphen-joined words, like cn-hangzhou, at most 40 characters"
	reasonID      = "connection id must look like vco-…"
)

// Parse parses one target, "[UID/]REGION:vco-…" or "[UID/]REGION:*".
func Parse(s string) (Target, error) {
	rest, account := s, ""
	if a, r, ok := strings.Cut(s, "/"); ok {
		if !ValidAccountID(a) {
			return Target{}, &Error{Entry: s, Reason: reasonAccount}
		}
		rest, account = r, a
	}
	region, id, ok := strings.Cut(rest, ":")
	if !ok {
		return Target{}, &Error{Entry: s, Reason: reasonForm}
	}
	if !ValidRegion(region) {
		return Target{}, &Error{Entry: s, Reason: reasonRegion}
	}
	if id != All && !ValidConnectionID(id) {
		return Target{}, &Error{Entry: s, Reason: reasonID}
	}
	return Target{Region: region, ConnectionID: id, Account: account}, nil
}

// ParseList parses targets separated by commas and/or white space, ignoring
// empty entries. It reports every bad entry at once, each as an *Error, so a
// user can fix them all in one go; on error it returns no targets.
func ParseList(s string) ([]Target, error) {
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	var (
		ts   []Target
		errs []error
	)
	for _, e := range entries {
		t, err := Parse(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ts = append(ts, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ts, nil
}

// Collapse removes duplicates and the explicit ids of regions that a
// "*" target of the same account already covers, and sorts by account, then
// region, then id ("*" first). It returns nil for an empty input.
func Collapse(ts []Target) []Target {
	if len(ts) == 0 {
		return nil
	}
	type accountRegion struct{ account, region string }
	wild := make(map[accountRegion]bool)
	for _, t := range ts {
		if t.Wildcard() {
			wild[accountRegion{t.Account, t.Region}] = true
		}
	}
	seen := make(map[Target]bool, len(ts))
	out := make([]Target, 0, len(ts))
	for _, t := range ts {
		if seen[t] || (!t.Wildcard() && wild[accountRegion{t.Account, t.Region}]) {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	slices.SortFunc(out, compare)
	return out
}

func compare(a, b Target) int {
	if c := cmp.Compare(a.Account, b.Account); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Region, b.Region); c != 0 {
		return c
	}
	return cmp.Compare(a.ConnectionID, b.ConnectionID)
}

// Covers reports whether scope allows scanning t: an explicit target is
// covered by the same target or by its region's "*"; a "*" target only by
// the same "*", since a scope of a few connections must not widen to a
// whole region. A "*" without an account covers the region in every account
// (whether the account is scanned at all is the caller's to check); anything
// else covers only its own account.
func Covers(scope []Target, t Target) bool {
	for _, s := range scope {
		if s.Region != t.Region || !s.coversAccount(t.Account) {
			continue
		}
		if s.Wildcard() || s.ConnectionID == t.ConnectionID {
			return true
		}
	}
	return false
}

func (s Target) coversAccount(account string) bool {
	return s.Account == account || (s.Account == "" && s.Wildcard())
}

// InRegion returns the targets of scope in region of the function's own
// account, in scope order.
func InRegion(scope []Target, region string) []Target { return InAccountRegion(scope, "", region) }

// InAccountRegion returns the targets of scope that cover region in account
// ("" for the function's own), in scope order, each naming that account.
func InAccountRegion(scope []Target, account, region string) []Target {
	var out []Target
	for _, s := range scope {
		if s.Region == region && s.coversAccount(account) {
			s.Account = account
			out = append(out, s)
		}
	}
	return out
}

// ForAccounts turns a scope into the targets a scan reads in the given
// accounts ("" is the function's own): every "*" without an account in each
// of them, and every target naming an account, or naming none (the function's
// own), when that account is among them. The result is collapsed.
func ForAccounts(scope []Target, accounts []string) []Target {
	in := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		in[a] = true
	}
	var out []Target
	for _, s := range scope {
		switch {
		case s.Account == "" && s.Wildcard():
			for _, a := range accounts {
				t := s
				t.Account = a
				out = append(out, t)
			}
		case in[s.Account]:
			out = append(out, s)
		}
	}
	return Collapse(out)
}

// Normalize writes the function's own account as "" in every target, so that
// "OWN/REGION:vco-…" and "REGION:vco-…" are the same target.
func Normalize(ts []Target, own string) []Target {
	if own == "" {
		return ts
	}
	out := make([]Target, len(ts))
	for i, t := range ts {
		if t.Account == own {
			t.Account = ""
		}
		out[i] = t
	}
	return out
}

// Accounts returns the distinct accounts of ts ("" for the function's own), sorted.
func Accounts(ts []Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Account)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Regions returns the distinct regions of ts, sorted.
func Regions(ts []Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Region)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
