package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/events"
)

// How a trail writes an event into its logstore. The Simple Log Service
// documentation of ActionTrail log fields ("Log fields", help topic
// sls/log-fields-25) lists __topic__ (fixed as actiontrail_audit_event),
// "event" ("the event in JSON format") and event.eventName,
// event.userIdentity.accountId, event.recipientAccountId,
// event.requestParameters, event.requestParameterJson and so on. The
// published Log Service trigger samples that read these logs json-decode
// the "event" key of actiontrail_audit_event logs, which makes the event.*
// names the JSON keys the index reads inside "event". Since the page can
// also be read as listing flattened keys, a log without "event" is read
// from event.* keys (objects given as JSON strings are decoded; a missing
// requestParameters is taken from requestParameterJson).

// parseLog reads the ActionTrail record of one log.
func parseLog(l *sls.Log) (events.ActionTrailRecord, error) {
	contents := make(map[string]string, len(l.Contents))
	keys := make([]string, 0, len(l.Contents))
	for _, c := range l.Contents {
		k := c.GetKey()
		if _, dup := contents[k]; dup {
			continue // the first value of a key counts
		}
		contents[k] = c.GetValue()
		keys = append(keys, k)
	}
	if v, ok := contents["event"]; ok {
		return decodeEvent(v)
	}
	return flattened(contents, keys)
}

// decodeEvent decodes the JSON record under the "event" key.
func decodeEvent(v string) (events.ActionTrailRecord, error) {
	var rec events.ActionTrailRecord
	d := strings.TrimSpace(v)
	if d == "" || d[0] != '{' {
		return rec, fmt.Errorf("event is not a JSON object: %s", quote(d))
	}
	if err := decodeStrictEnd([]byte(d), &rec); err != nil {
		return rec, fmt.Errorf("event: %s", describe(err))
	}
	if rec.EventName == "" {
		return rec, errors.New("event.eventName is missing")
	}
	return rec, nil
}

// objectFields are the parts of a record that are objects; flattened logs
// may hold them as JSON strings.
var objectFields = map[string]bool{
	"userIdentity": true, "requestParameters": true, "responseElements": true,
	"additionalEventData": true, "referencedResources": true, "eventAttributes": true,
}

// flattened rebuilds a record from event.* keys.
func flattened(contents map[string]string, keys []string) (events.ActionTrailRecord, error) {
	var rec events.ActionTrailRecord
	root := map[string]any{}
	found := false
	for _, k := range keys {
		path, ok := strings.CutPrefix(k, "event.")
		if !ok || path == "" {
			continue
		}
		found = true
		v := contents[k]
		var value any = v
		if objectFields[path] || path == "requestParameterJson" {
			if t := strings.TrimSpace(v); strings.HasPrefix(t, "{") {
				var obj map[string]any
				if err := decodeStrictEnd([]byte(t), &obj); err != nil {
					return rec, fmt.Errorf("%s: %s", k, describe(err))
				}
				value = obj
			}
		}
		if err := setPath(root, strings.Split(path, "."), value); err != nil {
			return rec, fmt.Errorf("%s: %w", k, err)
		}
	}
	if !found {
		shown := slices.Clone(keys)
		slices.Sort(shown)
		if len(shown) > 10 {
			shown = append(shown[:10], fmt.Sprintf("and %d more", len(keys)-10))
		}
		return rec, fmt.Errorf("no ActionTrail event in the log: no key event or event.* (keys: %s)", quote(strings.Join(shown, ", ")))
	}
	if pj, ok := root["requestParameterJson"]; ok {
		if _, has := root["requestParameters"]; !has {
			if _, isObj := pj.(map[string]any); isObj {
				root["requestParameters"] = pj
			}
		}
		delete(root, "requestParameterJson")
	}
	b, err := json.Marshal(root)
	if err != nil {
		return rec, fmt.Errorf("event.* keys: %w", err)
	}
	if err := decodeStrictEnd(b, &rec); err != nil {
		return rec, fmt.Errorf("event.* keys: %s", describe(err))
	}
	if rec.EventName == "" {
		return rec, errors.New("event.eventName is missing")
	}
	return rec, nil
}

// setPath puts value at path in m, making the objects on the way.
func setPath(m map[string]any, path []string, value any) error {
	for i, p := range path {
		if p == "" {
			return errors.New("empty name in the key")
		}
		if i == len(path)-1 {
			if _, ok := m[p].(map[string]any); ok {
				return fmt.Errorf("%s is both a value and an object", quote(p))
			}
			m[p] = value
			return nil
		}
		next, ok := m[p]
		if !ok {
			child := map[string]any{}
			m[p] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is both a value and an object", quote(p))
		}
		m = child
	}
	return nil
}

// decodeStrictEnd decodes one JSON value, numbers kept as written, and
// refuses anything after it.
func decodeStrictEnd(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// describe says what is wrong with JSON without repeating the input.
func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "the JSON is truncated"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the value"
		}
		return fmt.Sprintf("%s must be %s, got a JSON %s", quote(field), typ.Type, typ.Value)
	}
	return err.Error()
}

// maxQuoted bounds how much of a log a message repeats.
const maxQuoted = 80

func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
