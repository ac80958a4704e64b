package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"vpnauthz/events"
	"vpnauthz/internal/config"
	"vpnauthz/internal/target"
)

// payloadKeys are the keys a ScanPayload may have, spelled exactly: the
// decoder would otherwise accept any letter case. workerKeys only a timer
// payload may have: a coordinator's batch.
var (
	payloadKeys = []string{"targets", "dryRun"}
	workerKeys  = []string{"scanId", "batch", "batches", "accounts"}
)

// Bounds of a worker payload.
const (
	maxParentScanID = 128
	maxBatches      = 100000
)

// parsedPayload is a decoded ScanPayload and whether it named targets.
type parsedPayload struct {
	events.ScanPayload
	targetsGiven bool
}

// parsePayload decodes a timer payload or POST /scans body strictly: one JSON
// object, only the keys targets and dryRun (and, for a timer's worker
// payload, scanId, batch, batches and accounts), each of its type, nothing
// after it. Empty input is an empty payload. Errors name the field and what
// was wrong with it.
func parsePayload(data []byte, worker bool) (parsedPayload, error) {
	var p parsedPayload
	if len(bytes.TrimSpace(data)) == 0 {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return p, errors.New(describeJSONError("", err))
	}
	if err := trailing(dec); err != nil {
		return p, err
	}
	allowed := payloadKeys
	if worker {
		allowed = append(slices.Clip(payloadKeys), workerKeys...)
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		noun := "field"
		if len(unknown) > 1 {
			noun = "fields"
		}
		return p, fmt.Errorf("unknown %s %s (allowed: %s)", noun, limitList(unknown), strings.Join(allowed, ", "))
	}
	if raw, ok := obj["targets"]; ok && !isNull(raw) {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return p, fmt.Errorf(`field "targets" must be a list of strings like "cn-hangzhou:vco-…", got %s`, jsonKind(raw))
		}
		p.Targets = make([]string, 0, len(items))
		for i, item := range items {
			var s string
			if err := json.Unmarshal(item, &s); err != nil {
				return p, fmt.Errorf(`field "targets[%d]" must be a string, got %s`, i, jsonKind(item))
			}
			p.Targets = append(p.Targets, s)
		}
		p.targetsGiven = true
	}
	if raw, ok := obj["dryRun"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &p.DryRun); err != nil {
			return p, fmt.Errorf(`field "dryRun" must be true or false, got %s`, jsonKind(raw))
		}
	}
	if worker {
		if err := parseWorker(obj, &p); err != nil {
			return p, err
		}
	}
	return p, nil
}

// parseWorker reads the fields of a coordinator's batch: all four or none.
func parseWorker(obj map[string]json.RawMessage, p *parsedPayload) error {
	var given, missing []string
	for _, k := range workerKeys {
		if raw, ok := obj[k]; ok && !isNull(raw) {
			given = append(given, k)
		} else {
			missing = append(missing, k)
		}
	}
	if len(given) == 0 {
		return nil
	}
	if len(missing) > 0 {
		return fmt.Errorf("a worker payload needs scanId, batch, batches and accounts; %s missing", strings.Join(missing, ", "))
	}
	if p.targetsGiven {
		return errors.New(`a worker payload names accounts, not targets: it scans SCAN_TARGETS in them; remove "targets"`)
	}
	if err := json.Unmarshal(obj["scanId"], &p.ScanID); err != nil {
		return fmt.Errorf(`field "scanId" must be a string, got %s`, jsonKind(obj["scanId"]))
	}
	if p.ScanID == "" || len(p.ScanID) > maxParentScanID || strings.ContainsFunc(p.ScanID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return fmt.Errorf(`field "scanId" %s must be 1 to %d letters, digits, '-' or '_'`, quote(p.ScanID), maxParentScanID)
	}
	for _, f := range []struct {
		key string
		to  *int
	}{{"batch", &p.Batch}, {"batches", &p.Batches}} {
		if err := json.Unmarshal(obj[f.key], f.to); err != nil || *f.to < 1 || *f.to > maxBatches {
			return fmt.Errorf(`field %q must be a whole number from 1 to %d, got %s`, f.key, maxBatches, jsonValue(obj[f.key]))
		}
	}
	if p.Batch > p.Batches {
		return fmt.Errorf(`field "batch" %d is beyond "batches" %d`, p.Batch, p.Batches)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(obj["accounts"], &items); err != nil {
		return fmt.Errorf(`field "accounts" must be a list of account UIDs, got %s`, jsonKind(obj["accounts"]))
	}
	if len(items) == 0 {
		return errors.New(`field "accounts" is an empty list: a batch scans at least one account`)
	}
	seen := map[string]bool{}
	for i, item := range items {
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			return fmt.Errorf(`field "accounts[%d]" must be a string, got %s`, i, jsonKind(item))
		}
		if !target.ValidAccountID(s) {
			return fmt.Errorf(`field "accounts[%d]" %s is not an account UID`, i, quote(s))
		}
		if !seen[s] {
			seen[s] = true
			p.Accounts = append(p.Accounts, s)
		}
	}
	return nil
}

// jsonValue shows a short JSON value as written, a long one by its kind.
func jsonValue(raw json.RawMessage) string {
	v := strings.TrimSpace(string(raw))
	if len(v) <= 20 {
		return v
	}
	return jsonKind(raw)
}

// errTrailing is data after the one JSON value a document may hold.
var errTrailing = errors.New("unexpected data after the JSON object")

// trailing reports data after the first JSON value of dec.
func trailing(dec *json.Decoder) error {
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errTrailing
	}
	return nil
}

// decodeJSON decodes the one JSON value of data into v. Unlike
// json.Unmarshal, whose every malformed input is a *json.SyntaxError, it
// tells apart by type an empty document (io.EOF), a truncated one
// (io.ErrUnexpectedEOF), a malformed one (*json.SyntaxError) and data after
// the value (errTrailing), so that messages never depend on the decoder's
// wording.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	return trailing(dec)
}

// describeJSONError turns a decoding error into a sentence naming the field
// and the kind of value found, without repeating the input. what names the
// decoded document; empty leaves the subject to the caller's prefix.
func describeJSONError(what string, err error) string {
	subject := what + " "
	of := " of " + what
	if what == "" {
		subject, of = "", ""
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Sprintf("%sempty", isPrefix(subject))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%struncated JSON", isPrefix(subject))
	case errors.Is(err, errTrailing):
		if subject == "" {
			return err.Error()
		}
		return fmt.Sprintf("%shas %s", subject, err)
	case errors.As(err, &syntax):
		return fmt.Sprintf("%snot valid JSON: %s (at byte %d)", isPrefix(subject), strings.TrimPrefix(syntax.Error(), "json: "), syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("%smust be %s, got %s", subject, describeType(typ.Type), article(typ.Value))
		}
		return fmt.Sprintf("field %q%s must be %s, got %s", typ.Field, of, describeType(typ.Type), article(typ.Value))
	default:
		return fmt.Sprintf("%s%s", subject, strings.TrimPrefix(err.Error(), "json: "))
	}
}

// isPrefix gives "X is " for a subject "X ", nothing for none.
func isPrefix(subject string) string {
	if subject == "" {
		return ""
	}
	return subject + "is "
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Name() == "RawMessage" {
			return "a JSON value"
		}
		return "a list"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return t.String()
	}
}

// article turns the decoder's value kind ("string", "number 5", "array")
// into words.
func article(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	switch kind {
	case "array":
		return "a list"
	case "object":
		return "an object"
	case "string", "number":
		return "a " + kind
	case "bool":
		return "true or false"
	default:
		return kind
	}
}

// jsonKind names the kind of a valid JSON value.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// maxQuoted bounds how much of a caller's value an error message repeats:
// enough to recognise it, never a 64 KiB echo.
const maxQuoted = 80

// quote gives s as a Go-quoted string, cut to maxQuoted bytes.
func quote(s string) string {
	c, cut := clip(s)
	if cut {
		return strconv.Quote(c) + "…"
	}
	return strconv.Quote(c)
}

// truncate cuts a caller's value for logs and messages.
func truncate(s string) string {
	c, cut := clip(s)
	if cut {
		return c + "…"
	}
	return c
}

// clip cuts s to at most maxQuoted bytes, on a UTF-8 boundary, and says
// whether it cut.
func clip(s string) (string, bool) {
	if len(s) <= maxQuoted {
		return s, false
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not the first byte of a character
		cut--
	}
	return s[:cut], true
}

// maxListed bounds how many items an error message lists.
const maxListed = 10

func limitList(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:maxListed], ", "), len(items)-maxListed)
}

func keyList(m map[string]json.RawMessage) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, quote(k))
	}
	if len(keys) == 0 {
		return "(none)"
	}
	slices.Sort(keys)
	return "[" + limitList(keys) + "]"
}

// targetProblem says why requested targets can't be scanned.
type targetProblem int

const (
	targetsInvalid    targetProblem = iota // a target does not parse
	targetsEmpty                           // "targets": [] — a request for nothing
	targetsOutOfScope                      // valid, but SCAN_TARGETS does not cover them
	targetsNone                            // none requested and none configured
)

type targetError struct {
	problem targetProblem
	msg     string
}

func (e *targetError) Error() string { return e.msg }

// resolveTargets gives the targets of a scan: the requested ones, each valid,
// inside the configured scope and in a scanned account, or the whole scope in
// every scanned account when none were requested. A requested "REGION:*"
// covers that region in every scanned account, as in SCAN_TARGETS.
func resolveTargets(cfg *config.Config, o *org, p parsedPayload) ([]target.Target, *targetError) {
	scope := o.scope(cfg)
	if !p.targetsGiven {
		if len(scope) == 0 {
			return nil, &targetError{targetsNone, "no targets: none were requested and SCAN_TARGETS is empty"}
		}
		ts := o.targets(cfg)
		if len(ts) == 0 {
			return nil, &targetError{targetsNone, "no targets: SCAN_TARGETS names no account that is scanned"}
		}
		return ts, nil
	}
	if len(p.Targets) == 0 {
		return nil, &targetError{targetsEmpty, `field "targets" is an empty list: omit it to scan SCAN_TARGETS`}
	}
	var (
		ts      []target.Target
		invalid []string
	)
	for _, s := range p.Targets {
		t, err := target.Parse(s)
		if err != nil {
			reason := err.Error()
			var te *target.Error
			if errors.As(err, &te) {
				reason = te.Reason
			}
			invalid = append(invalid, fmt.Sprintf("%s (%s)", quote(s), reason))
			continue
		}
		ts = append(ts, t)
	}
	if len(invalid) > 0 {
		noun := "target"
		if len(invalid) > 1 {
			noun = "targets"
		}
		return nil, &targetError{targetsInvalid, fmt.Sprintf("invalid %s in field \"targets\": %s", noun, strings.Join(limitItems(invalid), "; "))}
	}
	ts = target.Collapse(target.Normalize(ts, o.own))
	var outside, otherAccounts []string
	first := ""
	for _, t := range ts {
		if t.Account != "" && !o.covers(t.Account) {
			if first == "" {
				first = t.Account
			}
			otherAccounts = append(otherAccounts, t.String())
		}
	}
	if len(otherAccounts) > 0 {
		return nil, &targetError{targetsOutOfScope, fmt.Sprintf("targets in accounts that are not scanned (%s): %s",
			o.outsideReason(first), limitList(otherAccounts))}
	}
	ts = target.ForAccounts(ts, o.order)
	if len(ts) == 0 {
		return nil, &targetError{targetsOutOfScope, "no account is scanned: the function's own account is in ACCOUNTS_EXCLUDE and ACCOUNTS names no other"}
	}
	for _, t := range ts {
		if !target.Covers(scope, t) {
			outside = append(outside, t.String())
		}
	}
	if len(outside) > 0 {
		configured := "SCAN_TARGETS"
		if len(scope) == 0 {
			configured = "SCAN_TARGETS, which is empty"
		}
		return nil, &targetError{targetsOutOfScope, fmt.Sprintf("targets outside the configured scope (%s): %s", configured, limitList(outside))}
	}
	return ts, nil
}

func limitItems(items []string) []string {
	if len(items) <= maxListed {
		return items
	}
	return append(slices.Clip(items[:maxListed]), fmt.Sprintf("and %d more", len(items)-maxListed))
}
