package statestore

import (
	"fmt"
	"regexp"
	"strings"
)

// EnvStateStore is the variable naming where finding state lives.
const EnvStateStore = "STATE_STORE"

// Location is a Tablestore instance and table.
type Location struct {
	Instance string
	Table    string
}

// String is the location as STATE_STORE spells it.
func (l Location) String() string { return "tablestore://" + l.Instance + "/" + l.Table }

// IsZero tells a stateless configuration.
func (l Location) IsZero() bool { return l == Location{} }

var (
	// Instance names: a letter first, then letters, digits and hyphens, 3 to
	// 16 characters, not ending with a hyphen.
	instancePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{1,14}[A-Za-z0-9]$`)
	tablePattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)
)

// ParseStateStore reads STATE_STORE: empty is stateless (the zero Location),
// else tablestore://INSTANCE/TABLE. Errors name the variable and the value,
// except a value holding credentials, which is never echoed.
func ParseStateStore(value string) (Location, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return Location{}, nil
	}
	bad := func(reason string) error {
		return fmt.Errorf("%s %q: %s; want tablestore://INSTANCE/TABLE", EnvStateStore, clip(value), reason)
	}
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return Location{}, bad("no scheme")
	}
	if scheme != "tablestore" {
		return Location{}, bad(fmt.Sprintf("scheme %q is not supported", clip(scheme)))
	}
	if strings.Contains(rest, "@") {
		return Location{}, fmt.Errorf("%s holds a user or password (value not shown): want tablestore://INSTANCE/TABLE; the store is reached with the function's credentials", EnvStateStore)
	}
	if strings.ContainsAny(rest, "?#") {
		return Location{}, bad("a query or fragment is not allowed")
	}
	instance, tbl, ok := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case !ok || tbl == "":
		return Location{}, bad("no table")
	case !instancePattern.MatchString(instance):
		return Location{}, bad(fmt.Sprintf("instance %q is not a Tablestore instance name (a letter, then letters, digits or hyphens, 3 to 16 characters)", clip(instance)))
	case !tablePattern.MatchString(tbl):
		return Location{}, bad(fmt.Sprintf("table %q is not a Tablestore table name (letters, digits and underscores, not starting with a digit)", clip(tbl)))
	}
	return Location{Instance: instance, Table: tbl}, nil
}

// clip keeps error messages short whatever a variable holds.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
