package finding

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// jsonKeys returns the keys of one JSON object in the order they are written.
func jsonKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", data)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading %s: %v", data, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reading %s: %v", data, err)
		}
	}
	return keys
}

// TestFindingSchema is the one place the finding log's schema is checked: the
// documented keys, in order, are those of Keys, of the JSON, and of Values.
func TestFindingSchema(t *testing.T) {
	documented := []string{
		"finding_uid", "scan_id", "trigger", "rule_id", "title", "severity", "status",
		"status_detail", "region", "owner_account_id", "vpn_connection_id", "bind_uid",
		"bind_product", "bind_instance", "authorization_created_at", "authorization_age_days",
		"remediation", "exception_reason", "exception_expires", "observed_at",
		"first_seen_at", "lifecycle",
	}
	if !slices.Equal(Keys, documented) {
		t.Errorf("Keys = %v, want %v", Keys, documented)
	}

	// Every field a value of its own, so a misplaced one shows.
	var f Finding
	rv := reflect.ValueOf(&f).Elem()
	for i := range rv.NumField() {
		rv.Field(i).SetString(fmt.Sprintf("v%d", i))
	}
	data, err := json.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	if keys := jsonKeys(t, data); !slices.Equal(keys, Keys) {
		t.Errorf("JSON keys = %v, want %v", keys, Keys)
	}
	var byKey map[string]string
	if err := json.Unmarshal(data, &byKey); err != nil {
		t.Fatal(err)
	}
	values := f.Values()
	if len(values) != len(Keys) {
		t.Fatalf("%d values for %d keys", len(values), len(Keys))
	}
	for i, k := range Keys {
		if values[i] != byKey[k] {
			t.Errorf("Values()[%d] = %q, JSON %s = %q", i, values[i], k, byKey[k])
		}
	}

	// An empty finding still has every key: a log's shape never depends on its values.
	data, err = json.Marshal(&Finding{})
	if err != nil {
		t.Fatal(err)
	}
	if keys := jsonKeys(t, data); !slices.Equal(keys, Keys) {
		t.Errorf("empty finding's JSON keys = %v, want %v", keys, Keys)
	}

	k := FindingSchema.Keys()
	k[0] = "changed"
	if FindingSchema.Keys()[0] != "finding_uid" {
		t.Error("Keys() shares the schema's slice with callers")
	}
}

// otherLog stands for a second kind of log: the schema is not the finding's alone.
type otherLog struct {
	Change string `json:"change"`
	RuleID string `json:"rule_id"`
}

func TestSchemaOfAnotherLog(t *testing.T) {
	s := NewSchema[otherLog]()
	if got, want := s.Keys(), []string{"change", "rule_id"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
	if got, want := s.Values(&otherLog{Change: "opened", RuleID: RuleUntrustedCEN}), []string{"opened", "untrusted-cen"}; !slices.Equal(got, want) {
		t.Errorf("Values() = %v, want %v", got, want)
	}
	// AppendValues keeps what dst held, so one slice serves many logs.
	dst := s.AppendValues([]string{"x"}, &otherLog{Change: "opened", RuleID: RuleUntrustedCEN})
	dst = s.AppendValues(dst, &otherLog{Change: "closed"})
	if want := []string{"x", "opened", "untrusted-cen", "closed", ""}; !slices.Equal(dst, want) {
		t.Errorf("AppendValues = %v, want %v", dst, want)
	}
}

func TestNewSchemaRejects(t *testing.T) {
	type (
		notString struct {
			A string `json:"a"`
			N int    `json:"n"`
		}
		noTag struct {
			A string `json:"a"`
			B string
		}
		omitEmpty struct {
			A string `json:"a,omitempty"`
		}
		skipped struct {
			A string `json:"-"`
		}
	)
	tests := []struct {
		name string
		new  func()
		want string
	}{
		{"not a struct", func() { NewSchema[string]() }, "string: not a struct"},
		{"a field not a string", func() { NewSchema[notString]() }, "field N is int, want string"},
		{"a field without a tag", func() { NewSchema[noTag]() }, `field B has json tag "", want a plain key`},
		{"omitempty", func() { NewSchema[omitEmpty]() }, `field A has json tag "a,omitempty"`},
		{"skipped field", func() { NewSchema[skipped]() }, `field A has json tag "-"`},
		{"a key twice", func() {
			// Built at run time: a literal type with a repeated tag does not pass vet.
			fieldsOf(reflect.StructOf([]reflect.StructField{
				{Name: "A", Type: reflect.TypeFor[string](), Tag: `json:"a"`},
				{Name: "B", Type: reflect.TypeFor[string](), Tag: `json:"a"`},
			}))
		}, "key a twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic %q, want it to contain %q", msg, tt.want)
				}
			}()
			tt.new()
		})
	}
}

func BenchmarkValues(b *testing.B) {
	f := Finding{FindingUID: "0123456789abcdef0123456789abcdef", RuleID: RuleUntrustedAccount, Status: StatusFail}
	for b.Loop() {
		_ = f.Values()
	}
}

func BenchmarkAppendValues(b *testing.B) {
	f := Finding{FindingUID: "0123456789abcdef0123456789abcdef", RuleID: RuleUntrustedAccount, Status: StatusFail}
	dst := make([]string, 0, len(Keys))
	for b.Loop() {
		dst = FindingSchema.AppendValues(dst[:0], &f)
	}
}
