package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"vpnauthz/internal/policy"
	"vpnauthz/internal/target"
)

// PolicyError is one problem in a policy file, at a place like
// "exceptions[2].expires".
type PolicyError struct {
	Field  string // empty for the file as a whole
	Line   int    // 0 when unknown
	Reason string
}

func (e *PolicyError) Error() string {
	switch {
	case e.Field != "" && e.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", e.Field, e.Line, e.Reason)
	case e.Field != "":
		return e.Field + ": " + e.Reason
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return e.Reason
}

// Keys of the policy file.
var (
	policyKeys    = []string{"trusted_account_ids", "trusted_cen_ids", "max_authorization_age_days", "exceptions"}
	exceptionKeys = []string{"vpn_connection_id", "bind_uid", "bind_instance", "rules", "reason", "expires"}
)

// ParsePolicy parses a policy file. It is strict: an unknown key, a value of
// the wrong kind or an invalid id is an error, since a typo in a trust policy
// would otherwise silently widen or narrow what it trusts. Every problem is
// reported, as *PolicyError values joined with errors.Join.
//
// The document is walked as a node tree rather than decoded into structs so
// that every error can name its place and line, and so that account UIDs may
// be written as YAML numbers or strings alike.
func ParsePolicy(data []byte) (policy.Policy, error) {
	if len(data) > maxPolicyFileSize {
		return policy.Policy{}, &PolicyError{Reason: fmt.Sprintf("the policy file is larger than %d bytes", maxPolicyFileSize)}
	}
	root, err := decodeDocument(data)
	if err != nil {
		return policy.Policy{}, err
	}
	pp := &policyParser{}
	p := pp.policy(root)
	if len(pp.errs) > 0 {
		return policy.Policy{}, errors.Join(pp.errs...)
	}
	return p, nil
}

// decodeDocument gives the root node of the one YAML document in data, or
// nil for an empty document.
func decodeDocument(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The file is user input: a parser failure must be an error, not a crash.
		if r := recover(); r != nil {
			root, err = nil, &PolicyError{Reason: fmt.Sprintf("not valid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &PolicyError{Reason: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, &PolicyError{Line: next.Line, Reason: "the policy file must hold exactly one YAML document"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// Limits on the walk: aliases let a small file name a value many times, and
// a long list of bad values would bury the first problems.
const (
	maxPolicyValues = 100000
	maxPolicyErrors = 50
)

type policyParser struct {
	errs    []error
	values  int
	stopped bool
}

// more counts one value about to be walked and says whether to go on.
func (pp *policyParser) more(n *yaml.Node) bool {
	if pp.stopped {
		return false
	}
	pp.values++
	switch {
	case pp.values > maxPolicyValues:
		pp.fail(n, "", "more than %d values once aliases are expanded", maxPolicyValues)
	case len(pp.errs) >= maxPolicyErrors:
		pp.fail(n, "", "too many problems; fix these first")
	default:
		return true
	}
	pp.stopped = true
	return false
}

func (pp *policyParser) fail(n *yaml.Node, field, format string, args ...any) {
	e := &PolicyError{Field: field, Reason: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	pp.errs = append(pp.errs, e)
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// fields walks a mapping, rejecting unknown and repeated keys.
func (pp *policyParser) fields(n *yaml.Node, field string, known []string, visit func(key string, value *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		pp.fail(n, field, "must be a mapping of keys to values")
		return false
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content) && pp.more(n.Content[i]); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			pp.fail(k, field, "a key must be a plain name")
			continue
		}
		name := join(field, k.Value)
		if !contains(known, k.Value) {
			pp.fail(k, name, "unknown key; the keys are %s", strings.Join(known, ", "))
			continue
		}
		if line, ok := seen[k.Value]; ok {
			pp.fail(k, name, "given twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		visit(k.Value, v)
	}
	return true
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// scalar gives a single value as text; a null gives "".
func (pp *policyParser) scalar(n *yaml.Node, field string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		pp.fail(n, field, "must be a single value, not a list or mapping")
		return "", false
	}
	return n.Value, true
}

// list calls each for the values of a sequence; a null is an empty list.
func (pp *policyParser) list(n *yaml.Node, field string, each func(i int, v *yaml.Node)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		pp.fail(n, field, "must be a list, like [a, b]")
		return
	}
	for i, v := range n.Content {
		if !pp.more(v) {
			return
		}
		each(i, resolve(v))
	}
}

// ids reads a list of ids, each checked against check, dropping repeats.
func (pp *policyParser) ids(n *yaml.Node, field string, check func(string) bool, reason string) []string {
	var out []string
	pp.list(n, field, func(i int, v *yaml.Node) {
		f := fmt.Sprintf("%s[%d]", field, i)
		s, ok := pp.scalar(v, f)
		switch {
		case !ok:
		case !check(s):
			pp.fail(v, f, "%q: %s", s, reason)
		case !contains(out, s):
			out = append(out, s)
		}
	})
	return out
}

func validAccountID(s string) bool { return accountIDPattern.MatchString(s) }
func validCENID(s string) bool     { return cenIDPattern.MatchString(s) }

func (pp *policyParser) policy(root *yaml.Node) policy.Policy {
	var p policy.Policy
	root = resolve(root)
	if isNull(root) {
		return p
	}
	pp.fields(root, "", policyKeys, func(key string, v *yaml.Node) {
		switch key {
		case "trusted_account_ids":
			p.TrustedAccountIDs = pp.ids(v, key, validAccountID, reasonAccountID)
		case "trusted_cen_ids":
			p.TrustedCENIDs = pp.ids(v, key, validCENID, reasonCENID)
		case "max_authorization_age_days":
			s, ok := pp.scalar(v, key)
			if !ok || s == "" {
				return
			}
			n, ok := parseDays(s)
			if !ok {
				pp.fail(v, key, "%q: %s", s, reasonMaxAge)
				return
			}
			p.MaxAuthorizationAgeDays = n
		case "exceptions":
			pp.list(v, key, func(i int, e *yaml.Node) {
				if ex, ok := pp.exception(e, fmt.Sprintf("exceptions[%d]", i)); ok {
					p.Exceptions = append(p.Exceptions, ex)
				}
			})
		}
	})
	return p
}

// parseDays accepts only plain decimal digits: YAML would also read 0x10 or
// 1_000 as numbers, which no one means in a day count.
func parseDays(s string) (int, bool) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n, n <= MaxAuthorizationAgeDays
}

func (pp *policyParser) exception(n *yaml.Node, field string) (policy.Exception, bool) {
	var (
		e       policy.Exception
		expires string
	)
	before := len(pp.errs)
	if !pp.fields(n, field, exceptionKeys, func(key string, v *yaml.Node) {
		f := join(field, key)
		if key == "rules" {
			pp.list(v, f, func(i int, r *yaml.Node) {
				rf := fmt.Sprintf("%s[%d]", f, i)
				s, ok := pp.scalar(r, rf)
				switch {
				case !ok:
				case s == "read-authorizations":
					pp.fail(r, rf, "%q: an ERROR finding cannot be suppressed; fix the read instead", s)
				case !policy.KnownRule(s):
					pp.fail(r, rf, "%q: unknown rule; the rules are %s", s, ruleList())
				case !contains(e.Rules, s):
					e.Rules = append(e.Rules, s)
				}
			})
			return
		}
		s, ok := pp.scalar(v, f)
		if !ok {
			return
		}
		switch key {
		case "vpn_connection_id":
			if s != "" && s != target.All && !target.ValidConnectionID(s) {
				pp.fail(v, f, "%q: must be a connection id like vco-… or \"*\"", s)
			}
			e.VpnConnectionID = s
		case "bind_uid":
			if s != "" && !validAccountID(s) {
				pp.fail(v, f, "%q: %s", s, reasonAccountID)
			}
			e.BindUID = s
		case "bind_instance":
			if s != "" && !validCENID(s) {
				pp.fail(v, f, "%q: %s", s, reasonCENID)
			}
			e.BindInstance = s
		case "reason":
			e.Reason = strings.TrimSpace(s)
		case "expires":
			expires = s
			if s == "" {
				return
			}
			t, err := time.Parse(time.DateOnly, s)
			if err != nil {
				pp.fail(v, f, "%q: must be a date, YYYY-MM-DD", s)
				return
			}
			e.Expires = t
		}
	}) || pp.stopped {
		return e, false
	}

	if e.VpnConnectionID == "" {
		pp.fail(n, join(field, "vpn_connection_id"), "required: a connection id like vco-… or \"*\" for every connection")
	}
	if e.Reason == "" {
		pp.fail(n, join(field, "reason"), "required: say why the exception exists, e.g. a ticket")
	}
	if expires == "" {
		pp.fail(n, join(field, "expires"), "required: the last day the exception holds, YYYY-MM-DD")
	}
	if e.VpnConnectionID == target.All && e.BindUID == "" && e.BindInstance == "" && len(e.Rules) == 0 {
		pp.fail(n, field, "an exception for every connection must name bind_uid, bind_instance or rules; otherwise it would suppress every finding")
	}
	return e, len(pp.errs) == before
}

func ruleList() string {
	var ids []string
	for _, r := range policy.Rules() {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ", ")
}
