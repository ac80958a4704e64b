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
	"vpnauthz/internal/target"
)

// payloadKeys are the keys a ScanPayload may have, spelled exactly: the
// decoder would otherwise accept any letter case.
var payloadKeys = []string{"targets", "dryRun"}

// parsedPayload is a decoded ScanPayload and whether it named targets.
type parsedPayload struct {
	events.ScanPayload
	targetsGiven bool
}

// parsePayload decodes a timer payload or POST /scans body strictly: one JSON
// object, only the keys targets and dryRun, each of its type, nothing after
// it. Empty input is an empty payload. Errors name the field and what was
// wrong with it.
func parsePayload(data []byte) (parsedPayload, error) {
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
	var unknown []string
	for k := range obj {
		if !slices.Contains(payloadKeys, k) {
			unknown = append(unknown, quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		noun := "field"
		if len(unknown) > 1 {
			noun = "fields"
		}
		return p, fmt.Errorf("unknown %s %s (allowed: targets, dryRun)", noun, limitList(unknown))
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
	return p, nil
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

// resolveTargets gives the targets of a scan: the requested ones, each valid
// and inside scope, or scope itself when none were requested.
func resolveTargets(scope []target.Target, p parsedPayload) ([]target.Target, *targetError) {
	if !p.targetsGiven {
		if len(scope) == 0 {
			return nil, &targetError{targetsNone, "no targets: none were requested and SCAN_TARGETS is empty"}
		}
		return scope, nil
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
	ts = target.Collapse(ts)
	var outside []string
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
