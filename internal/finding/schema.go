package finding

import (
	"fmt"
	"reflect"
	"strings"
)

// Schema is the content keys of one kind of log, read once from the json tags
// of a struct whose fields are all strings. The struct is the only copy of the
// schema: its field order is the key order, its tags are the keys of both the
// SLS log and the JSON, so a new key is a new field and nothing else.
type Schema[T any] struct {
	keys  []string
	index []int // field index of each key
}

// NewSchema reads the schema of T. It panics when T is not a struct of string
// fields, each with a json tag naming it without options: such a type would
// give logs whose keys differ from its JSON, which no caller can handle.
func NewSchema[T any]() Schema[T] {
	keys, index := fieldsOf(reflect.TypeFor[T]())
	return Schema[T]{keys: keys, index: index}
}

func fieldsOf(t reflect.Type) (keys []string, index []int) {
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("finding: schema of %s: not a struct", t))
	}
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("json")
		switch {
		case f.Type.Kind() != reflect.String:
			panic(fmt.Sprintf("finding: schema of %s: field %s is %s, want string", t, f.Name, f.Type))
		case key == "" || key == "-" || strings.Contains(key, ","):
			panic(fmt.Sprintf("finding: schema of %s: field %s has json tag %q, want a plain key", t, f.Name, key))
		case seen[key]:
			panic(fmt.Sprintf("finding: schema of %s: key %s twice", t, key))
		}
		seen[key] = true
		keys = append(keys, key)
		index = append(index, i)
	}
	return keys, index
}

// Keys returns the keys in schema order. The slice is the caller's.
func (s Schema[T]) Keys() []string { return append([]string(nil), s.keys...) }

// Values returns v's values in the order of Keys.
func (s Schema[T]) Values(v *T) []string {
	rv := reflect.ValueOf(v).Elem()
	out := make([]string, len(s.index))
	for i, fi := range s.index {
		out[i] = rv.Field(fi).String()
	}
	return out
}
