package otsemu

import (
	"bytes"
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
)

type pkColumn struct {
	name string
	typ  otsprotocol.PrimaryKeyType
}

// storedRow is one row: its primary key values in schema order and its
// attribute columns, one version each, sorted by name.
type storedRow struct {
	key       string
	pk        []value
	cols      []cell
	writtenMs int64 // version of the newest cell: what TimeToLive is judged on
}

type table struct {
	name        string
	pk          []pkColumn
	ttl         int32 // seconds, -1 forever
	maxVersions int32
	deviation   int64
	createdAt   time.Time
	rows        map[string]*storedRow
	sorted      []*storedRow // rows in primary key order; rebuilt when dirty
	dirty       bool
}

var tableNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)

const minTTL = 86400 // the service refuses a TimeToLive under one day

func newTable(req *otsprotocol.CreateTableRequest, now time.Time) (*table, *apiError) {
	meta := req.GetTableMeta()
	if meta == nil {
		return nil, errorf(CodeParameterInvalid, "TableMeta is required.")
	}
	name := meta.GetTableName()
	if !tableNamePattern.MatchString(name) {
		return nil, errorf(CodeParameterInvalid, "Invalid table name: '%s'.", name)
	}
	if n := len(meta.GetPrimaryKey()); n < 1 || n > 4 {
		return nil, errorf(CodeParameterInvalid, "The number of primary key columns must be in range: [1, 4].")
	}
	t := &table{name: name, ttl: -1, maxVersions: 1, createdAt: now, rows: map[string]*storedRow{}}
	seen := map[string]bool{}
	for _, c := range meta.GetPrimaryKey() {
		switch {
		case c.GetName() == "" || seen[c.GetName()]:
			return nil, errorf(CodeParameterInvalid, "Invalid or duplicated primary key name: '%s'.", c.GetName())
		case c.Option != nil:
			return nil, errorf(CodeParameterInvalid, "emulator: primary key options (auto-increment) are not supported.")
		}
		switch c.GetType() {
		case otsprotocol.PrimaryKeyType_INTEGER, otsprotocol.PrimaryKeyType_STRING, otsprotocol.PrimaryKeyType_BINARY:
		default:
			return nil, errorf(CodeParameterInvalid, "Invalid primary key type of '%s'.", c.GetName())
		}
		seen[c.GetName()] = true
		t.pk = append(t.pk, pkColumn{name: c.GetName(), typ: c.GetType()})
	}
	if opts := req.GetTableOptions(); opts != nil {
		if opts.TimeToLive != nil {
			t.ttl = opts.GetTimeToLive()
		}
		if opts.MaxVersions != nil {
			t.maxVersions = opts.GetMaxVersions()
		}
		t.deviation = opts.GetDeviationCellVersionInSec()
	}
	if t.ttl != -1 && t.ttl < minTTL {
		return nil, errorf(CodeParameterInvalid, "TimeToLive must be -1 or at least %d seconds, got %d.", minTTL, t.ttl)
	}
	if t.maxVersions < 1 {
		return nil, errorf(CodeParameterInvalid, "MaxVersions must be at least 1, got %d.", t.maxVersions)
	}
	if t.deviation == 0 {
		t.deviation = 86400
	}
	return t, nil
}

func (t *table) describe() *otsprotocol.DescribeTableResponse {
	meta := &otsprotocol.TableMeta{TableName: &t.name}
	for _, c := range t.pk {
		meta.PrimaryKey = append(meta.PrimaryKey, &otsprotocol.PrimaryKeySchema{Name: ptr(c.name), Type: c.typ.Enum()})
	}
	zero := int32(0)
	return &otsprotocol.DescribeTableResponse{
		TableMeta: meta,
		ReservedThroughputDetails: &otsprotocol.ReservedThroughputDetails{
			CapacityUnit:     &otsprotocol.CapacityUnit{Read: &zero, Write: &zero},
			LastIncreaseTime: ptr(t.createdAt.Unix()),
		},
		TableOptions: &otsprotocol.TableOptions{
			TimeToLive:                ptr(t.ttl),
			MaxVersions:               ptr(t.maxVersions),
			DeviationCellVersionInSec: ptr(t.deviation),
			AllowUpdate:               ptr(true),
		},
		TableStatus: otsprotocol.TableStatus_ACTIVE.Enum(),
	}
}

func ptr[T any](v T) *T { return &v }

// primaryKey checks the primary key cells of a row against the schema; with
// bounds, INF_MIN and INF_MAX are allowed (range ends).
func (t *table) primaryKey(cells []cell, bounds bool) ([]value, *apiError) {
	if len(cells) != len(t.pk) {
		return nil, errorf(CodeParameterInvalid, "Validate PK size fail. Input: %d, Meta: %d.", len(cells), len(t.pk))
	}
	out := make([]value, len(cells))
	for i, c := range cells {
		col := t.pk[i]
		if c.name != col.name {
			return nil, errorf(CodeParameterInvalid, "Validate PK name fail. Input: %s, Meta: %s.", c.name, col.name)
		}
		if !c.hasValue {
			return nil, errorf(CodeParameterInvalid, "The value of primary key column '%s' is missing.", c.name)
		}
		v := c.value
		switch {
		case bounds && (v.kind == vtInfMin || v.kind == vtInfMax):
		case v.kind == vtInteger && col.typ == otsprotocol.PrimaryKeyType_INTEGER,
			v.kind == vtString && col.typ == otsprotocol.PrimaryKeyType_STRING,
			v.kind == vtBlob && col.typ == otsprotocol.PrimaryKeyType_BINARY:
		default:
			return nil, errorf(CodeParameterInvalid, "Validate PK type fail. Input: %s, Meta: %s.", kindName(v.kind), col.typ)
		}
		out[i] = v
	}
	return out, nil
}

func kindName(k byte) string {
	switch k {
	case vtInteger:
		return "INTEGER"
	case vtDouble:
		return "DOUBLE"
	case vtBoolean:
		return "BOOLEAN"
	case vtString:
		return "STRING"
	case vtBlob:
		return "BINARY"
	case vtInfMin:
		return "INF_MIN"
	case vtInfMax:
		return "INF_MAX"
	}
	return "AUTO_INCREMENT"
}

func keyOf(pk []value) string {
	var b strings.Builder
	for _, v := range pk {
		s := v.String()
		if v.kind == vtString || v.kind == vtBlob {
			s = string(v.s)
		}
		b.WriteByte(v.kind)
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String()
}

// compareValues orders values of one primary key column: INF_MIN first,
// INF_MAX last, integers by value, strings and blobs bytewise.
func compareValues(a, b value) int {
	rank := func(v value) int {
		switch v.kind {
		case vtInfMin:
			return -1
		case vtInfMax:
			return 1
		}
		return 0
	}
	if ra, rb := rank(a), rank(b); ra != 0 || rb != 0 {
		return cmp.Compare(ra, rb)
	}
	if a.kind == vtInteger {
		return cmp.Compare(a.i, b.i)
	}
	return bytes.Compare(a.s, b.s)
}

func comparePK(a, b []value) int {
	for i := range a {
		if c := compareValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

func (t *table) ordered() []*storedRow {
	if t.dirty || len(t.sorted) != len(t.rows) {
		t.sorted = t.sorted[:0]
		for _, r := range t.rows {
			t.sorted = append(t.sorted, r)
		}
		slices.SortFunc(t.sorted, func(a, b *storedRow) int { return comparePK(a.pk, b.pk) })
		t.dirty = false
	}
	return t.sorted
}

// visible tells whether a row is still alive at now under the table's TTL.
func (t *table) visible(r *storedRow, now time.Time) bool {
	return r != nil && (t.ttl < 0 || r.writtenMs >= now.UnixMilli()-int64(t.ttl)*1000)
}

// lookup returns the live row with the key, or nil.
func (t *table) lookup(pk []value, now time.Time) *storedRow {
	r := t.rows[keyOf(pk)]
	if !t.visible(r, now) {
		return nil
	}
	return r
}

// put replaces the row with the given attribute columns.
func (t *table) put(pk []value, cols []cell, now time.Time) *apiError {
	nowMs := now.UnixMilli()
	r := &storedRow{key: keyOf(pk), pk: pk, writtenMs: nowMs}
	byName := map[string]int{}
	for _, c := range cols {
		switch {
		case c.name == "":
			return errorf(CodeParameterInvalid, "The name of an attribute column is empty.")
		case !c.hasValue || c.hasOp:
			return errorf(CodeParameterInvalid, "The attribute column '%s' of a put has no value or an update type.", c.name)
		case c.value.kind == vtInfMin || c.value.kind == vtInfMax || c.value.kind == vtAutoIncrement:
			return errorf(CodeParameterInvalid, "Invalid value type of attribute column '%s'.", c.name)
		}
		if !c.hasTS {
			c.ts, c.hasTS = nowMs, true
		} else if d := (c.ts - nowMs) / 1000; d > t.deviation || -d > t.deviation {
			return errorf(CodeParameterInvalid, "The timestamp of column '%s' deviates more than %d seconds from now.", c.name, t.deviation)
		}
		if i, dup := byName[c.name]; dup {
			r.cols[i] = c
			continue
		}
		byName[c.name] = len(r.cols)
		r.cols = append(r.cols, c)
	}
	r.writtenMs = 0
	for _, c := range r.cols {
		r.writtenMs = max(r.writtenMs, c.ts)
	}
	if len(r.cols) == 0 {
		r.writtenMs = nowMs
	}
	slices.SortFunc(r.cols, func(a, b cell) int { return strings.Compare(a.name, b.name) })
	// The sorted view holds row pointers: a replaced row must be sorted in
	// again, or range reads would keep answering its first version.
	t.dirty = true
	t.rows[r.key] = r
	return nil
}

func (t *table) delete(pk []value) {
	k := keyOf(pk)
	if _, ok := t.rows[k]; ok {
		delete(t.rows, k)
		t.dirty = true
	}
}

// pkCells are the primary key of a row as PlainBuffer cells.
func (t *table) pkCells(pk []value) []cell {
	out := make([]cell, len(pk))
	for i, v := range pk {
		out[i] = cell{name: t.pk[i].name, value: v, hasValue: true}
	}
	return out
}

// encodeRow writes a row with the columns asked for (all when none).
func (t *table) encodeRow(w *pbWriter, r *storedRow, columns []string) {
	cols := r.cols
	if len(columns) > 0 {
		cols = nil
		for _, c := range r.cols {
			if slices.Contains(columns, c.name) {
				cols = append(cols, c)
			}
		}
	}
	w.row(t.pkCells(r.pk), cols)
}

func (r *storedRow) column(name string) (cell, bool) {
	i, ok := slices.BinarySearchFunc(r.cols, name, func(c cell, n string) int { return strings.Compare(c.name, n) })
	if !ok {
		return cell{}, false
	}
	return r.cols[i], true
}
