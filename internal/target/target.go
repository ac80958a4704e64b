// Package target parses and checks scan targets: "REGION:vco-…" for one IPsec-VPN
// connection and "REGION:*" for every connection in a region.
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

// Target is one region and one connection id (or All).
type Target struct {
	Region       string
	ConnectionID string
}

// String gives the target in its configuration form, "region:id".
func (t Target) String() string { return t.Region + ":" + t.ConnectionID }

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
)

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
	reasonForm   = "target must be REGION:vco-… or REGION:*"
	reasonRegion = "region must be lower-case letters and digits in hyphen-joined words, like cn-hangzhou, at most 40 characters"
	reasonID     = "connection id must look like vco-…"
)

// Parse parses one target, "REGION:vco-…" or "REGION:*".
func Parse(s string) (Target, error) {
	region, id, ok := strings.Cut(s, ":")
	if !ok {
		return Target{}, &Error{Entry: s, Reason: reasonForm}
	}
	if !ValidRegion(region) {
		return Target{}, &Error{Entry: s, Reason: reasonRegion}
	}
	if id != All && !ValidConnectionID(id) {
		return Target{}, &Error{Entry: s, Reason: reasonID}
	}
	return Target{Region: region, ConnectionID: id}, nil
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
// REGION:* target already covers, and sorts by region, then id ("*" first).
// It returns nil for an empty input.
func Collapse(ts []Target) []Target {
	if len(ts) == 0 {
		return nil
	}
	wild := make(map[string]bool)
	for _, t := range ts {
		if t.Wildcard() {
			wild[t.Region] = true
		}
	}
	seen := make(map[Target]bool, len(ts))
	out := make([]Target, 0, len(ts))
	for _, t := range ts {
		if seen[t] || (!t.Wildcard() && wild[t.Region]) {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	slices.SortFunc(out, compare)
	return out
}

func compare(a, b Target) int {
	if c := cmp.Compare(a.Region, b.Region); c != 0 {
		return c
	}
	return cmp.Compare(a.ConnectionID, b.ConnectionID)
}

// Covers reports whether scope allows scanning t: an explicit target is
// covered by the same target or by its region's "*"; a "*" target only by
// the same "*", since a scope of a few connections must not widen to a
// whole region.
func Covers(scope []Target, t Target) bool {
	for _, s := range scope {
		if s.Region != t.Region {
			continue
		}
		if s.Wildcard() || s.ConnectionID == t.ConnectionID {
			return true
		}
	}
	return false
}

// InRegion returns the targets of scope in region, in scope order.
func InRegion(scope []Target, region string) []Target {
	var out []Target
	for _, s := range scope {
		if s.Region == region {
			out = append(out, s)
		}
	}
	return out
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
