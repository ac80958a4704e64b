package finding

import (
	"fmt"
	"reflect"
	"strings"
	"unsafe"
)

// Schema is the content keys of one kind of log, read once from the json tags
// of a struct whose fields are all strings. The struct is the only copy of the
// schema: its field order is the key order, its tags are the keys of both the
// SLS log and the JSON, so a new key is a new field and nothing else.
type Schema[T any] struct {
	keys   []string
	index  []int     // field index of each key
	offset []uintptr // byte offset of each key's field in T
}

// NewSchema reads the schema of T. It panics when T is not a struct of string
// fields, each with a json tag naming it without options: such a type would
// give logs whose keys differ from its JSON, which no caller can handle.
func NewSchema[T any]() Schema[T] {
	t := reflect.TypeFor[T]()
	keys, index := fieldsOf(t)
	offset := make([]uintptr, len(index))
	for i, fi := range index {
		offset[i] = t.Field(fi).Offset
	}
	return Schema[T]{keys: keys, index: index, offset: offset}
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
	return s.AppendValues(make([]string, 0, len(s.offset)), v)
}

// AppendValues appends v's values, in the order of Keys, to dst: a writer of
// many logs fills one slice for all of them. The strings are v's own, not
// copies.
func (s Schema[T]) AppendValues(dst []string, v *T) []string {
	// Every field is a string (NewSchema checks), so each is read at its
	// offset directly: reflect.Value.Field costs more than the rest of a
	// finding's encoding.
	p := unsafe.Pointer(v)
	for _, off := range s.offset {
		dst = append(dst, *(*string)(unsafe.Add(p, off)))
	}
	return dst
}
