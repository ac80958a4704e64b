// Package accounts decides which accounts a scan covers, from ACCOUNTS,
// ACCOUNTS_EXCLUDE and TRUST_ORGANIZATION and, for "resource-directory",
// the directory's listing. It makes no calls.
package accounts

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DirectoryKeyword is the ACCOUNTS value for every member of the directory.
const DirectoryKeyword = "resource-directory"

// Mode is how ACCOUNTS names the accounts.
type Mode int

const (
	Own       Mode = iota // empty: the function's own account only
	List                  // a list of account UIDs
	Directory             // every joined member of the Resource Directory
)

func (m Mode) String() string {
	switch m {
	case Own:
		return "own"
	case List:
		return "list"
	case Directory:
		return DirectoryKeyword
	}
	return "Mode(?)"
}

// Spec is a parsed ACCOUNTS value.
type Spec struct {
	Mode Mode
	IDs  []string // List only, in the order given, without repeats
}

var (
	uidPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
	separators = func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }
)

// ParseAccounts reads ACCOUNTS.
func ParseAccounts(value string) (Spec, error) {
	fields := strings.FieldsFunc(value, separators)
	if len(fields) == 0 {
		return Spec{Mode: Own}, nil
	}
	if len(fields) == 1 && strings.EqualFold(fields[0], DirectoryKeyword) {
		return Spec{Mode: Directory}, nil
	}
	ids, err := parseUIDs("ACCOUNTS", fields)
	if err != nil {
		return Spec{}, err
	}
	return Spec{Mode: List, IDs: ids}, nil
}

// ParseExclude reads ACCOUNTS_EXCLUDE: UIDs never scanned.
func ParseExclude(value string) ([]string, error) {
	return parseUIDs("ACCOUNTS_EXCLUDE", strings.FieldsFunc(value, separators))
}

// ParseTrustOrganization reads TRUST_ORGANIZATION ("" is false).
func ParseTrustOrganization(value string) (bool, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("TRUST_ORGANIZATION %q: want true or false", value)
	}
	return b, nil
}

func parseUIDs(variable string, fields []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range fields {
		if strings.EqualFold(f, DirectoryKeyword) {
			return nil, fmt.Errorf("%s: %q cannot be combined with account UIDs", variable, DirectoryKeyword)
		}
		if !uidPattern.MatchString(f) {
			return nil, fmt.Errorf("%s: %q is not an account UID (decimal digits)", variable, f)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// Member is an account the directory lists.
type Member struct {
	ID     string
	Status string // ListAccounts Status
	Joined bool   // in a state that can be scanned
}

// Listing is what the directory said: its management account and members.
type Listing struct {
	MasterAccountID string
	Members         []Member
}

// Target is an account to scan.
type Target struct {
	ID string
	// Own: the function's own account, scanned with the invocation's own
	// credentials; every other account is entered with AssumeRole.
	Own bool
	// Management: the directory's management account. PRODUCT says it is
	// never assumed into; it is Own when the function runs in it.
	Management bool
}

// Skipped is a listed member that is not scanned, and why.
type Skipped struct {
	ID, Reason string
}

// Plan is the accounts of one scan.
type Plan struct {
	Targets  []Target  // the function's own account first, then in listing order
	Excluded []string  // named or listed, and in ACCOUNTS_EXCLUDE
	Skipped  []Skipped // listed but not in a joined state
	// Trusted are the accounts TRUST_ORGANIZATION adds to the trusted
	// accounts: every member listed, excluded and not joined ones included.
	Trusted []string
}

// Resolve makes the plan. listing is required for Directory mode and for
// TRUST_ORGANIZATION, and ignored otherwise.
func Resolve(spec Spec, own string, listing *Listing, exclude []string, trustOrganization bool) (Plan, error) {
	if !uidPattern.MatchString(own) {
		return Plan{}, fmt.Errorf("the function's own account %q is not an account UID", own)
	}
	if (spec.Mode == Directory || trustOrganization) && listing == nil {
		return Plan{}, errors.New("the resource directory was not listed (needed for ACCOUNTS=resource-directory and TRUST_ORGANIZATION)")
	}
	excluded := map[string]bool{}
	for _, id := range exclude {
		excluded[id] = true
	}
	master := ""
	if listing != nil {
		master = listing.MasterAccountID
	}
	var plan Plan
	added := map[string]bool{}
	add := func(id string) {
		if added[id] {
			return
		}
		added[id] = true
		if excluded[id] {
			plan.Excluded = append(plan.Excluded, id)
			return
		}
		plan.Targets = append(plan.Targets, Target{ID: id, Own: id == own, Management: master != "" && id == master})
	}
	switch spec.Mode {
	case Own:
		add(own)
	case List:
		for _, id := range spec.IDs {
			add(id)
		}
	case Directory:
		for _, m := range listing.Members {
			if added[m.ID] {
				continue
			}
			if !m.Joined {
				added[m.ID] = true
				plan.Skipped = append(plan.Skipped, Skipped{ID: m.ID, Reason: "not a joined member (status " + m.Status + ")"})
				continue
			}
			add(m.ID)
		}
	default:
		return Plan{}, fmt.Errorf("unknown accounts mode %v", spec.Mode)
	}
	// The own account leads: it needs no AssumeRole.
	for i, t := range plan.Targets {
		if t.Own && i > 0 {
			copy(plan.Targets[1:i+1], plan.Targets[:i])
			plan.Targets[0] = t
			break
		}
	}
	if trustOrganization {
		seen := map[string]bool{}
		for _, m := range listing.Members {
			if !seen[m.ID] {
				seen[m.ID] = true
				plan.Trusted = append(plan.Trusted, m.ID)
			}
		}
		if master != "" && !seen[master] {
			plan.Trusted = append(plan.Trusted, master)
		}
	}
	return plan, nil
}
