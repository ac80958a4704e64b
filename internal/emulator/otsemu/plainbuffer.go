package otsemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// PlainBuffer is Tablestore's row encoding: a little-endian header, then rows
// of tagged cells, each cell and row closed by a CRC-8 checksum. The SDK's
// encoder and decoder are unexported, so the subset the emulator needs is
// written here and checked against the SDK over the wire.

const (
	pbHeader = 0x75

	tagRowPK           = 0x1
	tagRowData         = 0x2
	tagCell            = 0x3
	tagCellName        = 0x4
	tagCellValue       = 0x5
	tagCellType        = 0x6
	tagCellTimestamp   = 0x7
	tagDeleteRowMarker = 0x8
	tagRowChecksum     = 0x9
	tagCellChecksum    = 0xA

	vtInteger       = 0x0
	vtDouble        = 0x1
	vtBoolean       = 0x2
	vtString        = 0x3
	vtBlob          = 0x7
	vtInfMin        = 0x9
	vtInfMax        = 0xa
	vtAutoIncrement = 0xb
)

var crc8Table = func() (t [256]byte) {
	for i := range t {
		x := byte(i)
		for range 8 {
			if x&0x80 != 0 {
				x = x<<1 ^ 0x07
			} else {
				x <<= 1
			}
		}
		t[i] = x
	}
	return t
}()

func crc8(crc byte, b ...byte) byte {
	for _, c := range b {
		crc = crc8Table[crc^c]
	}
	return crc
}

func crc8U32(crc byte, v uint32) byte {
	return crc8(crc, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func crc8U64(crc byte, v uint64) byte {
	for range 8 {
		crc = crc8(crc, byte(v))
		v >>= 8
	}
	return crc
}

// value is one cell or primary key value.
type value struct {
	kind byte // vt*
	i    int64
	f    float64
	b    bool
	s    []byte // string or blob
}

func (v value) checksum(crc byte) byte {
	switch v.kind {
	case vtInteger:
		return crc8U64(crc8(crc, vtInteger), uint64(v.i))
	case vtDouble:
		return crc8U64(crc8(crc, vtDouble), math.Float64bits(v.f))
	case vtBoolean:
		b := byte(0)
		if v.b {
			b = 1
		}
		return crc8(crc, vtBoolean, b)
	case vtString, vtBlob:
		return crc8(crc8U32(crc8(crc, v.kind), uint32(len(v.s))), v.s...)
	}
	return crc8(crc, v.kind) // INF_MIN, INF_MAX, AUTO_INCREMENT
}

func (v value) String() string {
	switch v.kind {
	case vtInteger:
		return fmt.Sprint(v.i)
	case vtDouble:
		return fmt.Sprint(v.f)
	case vtBoolean:
		return fmt.Sprint(v.b)
	case vtString:
		return string(v.s)
	case vtBlob:
		return fmt.Sprintf("%x", v.s)
	case vtInfMin:
		return "INF_MIN"
	case vtInfMax:
		return "INF_MAX"
	}
	return "AUTO_INCREMENT"
}

// cell is a PlainBuffer cell: a primary key column or an attribute column.
type cell struct {
	name     string
	value    value
	hasValue bool
	op       byte // cell type of an update: delete one/all versions, increment
	hasOp    bool
	ts       int64 // ms
	hasTS    bool
}

func (c cell) checksum() byte {
	crc := crc8(0, []byte(c.name)...)
	if c.hasValue {
		crc = c.value.checksum(crc)
	}
	if c.hasTS {
		crc = crc8U64(crc, uint64(c.ts))
	}
	if c.hasOp {
		crc = crc8(crc, c.op)
	}
	return crc
}

// pbRow is one decoded row.
type pbRow struct {
	pk      []cell
	cells   []cell
	deleted bool
}

var errPlainBuffer = errors.New("malformed PlainBuffer")

type pbReader struct {
	b   []byte
	off int
	err error
}

func (r *pbReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w at byte %d: %s", errPlainBuffer, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *pbReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *pbReader) peek() (byte, bool) {
	if r.err != nil || r.off >= len(r.b) {
		return 0, false
	}
	return r.b[r.off], true
}

func (r *pbReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b)-r.off < n {
		r.fail("unexpected end")
		return nil
	}
	out := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return out
}

func (r *pbReader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *pbReader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// decodeRows reads a PlainBuffer holding one or more rows and checks every
// checksum, as the service does.
func decodeRows(b []byte) ([]pbRow, error) {
	r := &pbReader{b: b}
	if h := r.u32(); r.err == nil && h != pbHeader {
		r.fail("header %#x, want %#x", h, pbHeader)
	}
	var rows []pbRow
	for r.err == nil && r.off < len(r.b) {
		rows = append(rows, r.row())
	}
	if r.err == nil && len(rows) == 0 {
		r.fail("no row")
	}
	return rows, r.err
}

func (r *pbReader) row() pbRow {
	var row pbRow
	if t := r.byte(); t != tagRowPK {
		r.fail("tag %#x, want the primary key tag", t)
		return row
	}
	row.pk = r.cells()
	if t, ok := r.peek(); ok && t == tagRowData {
		r.off++
		row.cells = r.cells()
	}
	if t, ok := r.peek(); ok && t == tagDeleteRowMarker {
		r.off++
		row.deleted = true
	}
	if t := r.byte(); t != tagRowChecksum {
		r.fail("tag %#x, want the row checksum", t)
		return row
	}
	got := r.byte()
	crc := byte(0)
	for _, c := range row.pk {
		crc = crc8(crc, c.checksum())
	}
	for _, c := range row.cells {
		crc = crc8(crc, c.checksum())
	}
	del := byte(0)
	if row.deleted {
		del = 1
	}
	if want := crc8(crc, del); r.err == nil && got != want {
		r.fail("row checksum %#x, want %#x", got, want)
	}
	return row
}

func (r *pbReader) cells() []cell {
	var out []cell
	for {
		t, ok := r.peek()
		if !ok || t != tagCell {
			return out
		}
		r.off++
		out = append(out, r.cell())
		if r.err != nil {
			return out
		}
	}
}

func (r *pbReader) cell() cell {
	var c cell
	if t := r.byte(); t != tagCellName {
		r.fail("tag %#x, want a cell name", t)
		return c
	}
	c.name = string(r.bytes(int(r.u32())))
	t := r.byte()
	if t == tagCellValue {
		c.value, c.hasValue = r.value(), true
		t = r.byte()
	}
	if t == tagCellType {
		c.op, c.hasOp = r.byte(), true
		t = r.byte()
	}
	if t == tagCellTimestamp {
		c.ts, c.hasTS = int64(r.u64()), true
		t = r.byte()
	}
	if t != tagCellChecksum {
		r.fail("tag %#x, want the cell checksum of %q", t, c.name)
		return c
	}
	if got, want := r.byte(), c.checksum(); r.err == nil && got != want {
		r.fail("cell %q checksum %#x, want %#x", c.name, got, want)
	}
	return c
}

func (r *pbReader) value() value {
	size := int(r.u32())
	start := r.off
	v := value{kind: r.byte()}
	switch v.kind {
	case vtInteger:
		v.i = int64(r.u64())
	case vtDouble:
		v.f = math.Float64frombits(r.u64())
	case vtBoolean:
		v.b = r.byte() != 0
	case vtString, vtBlob:
		v.s = r.bytes(int(r.u32()))
	case vtInfMin, vtInfMax, vtAutoIncrement:
	default:
		r.fail("unknown value type %#x", v.kind)
	}
	if r.err == nil && r.off-start != size {
		r.fail("value of %d bytes, its prefix says %d", r.off-start, size)
	}
	return v
}

// decodeVariant reads a value without its length prefix, as column
// conditions carry it.
func decodeVariant(b []byte) (value, error) {
	prefixed := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
	r := &pbReader{b: append(prefixed, b...)}
	v := r.value()
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes after the value", len(r.b)-r.off)
	}
	return v, r.err
}

// pbWriter encodes rows for responses.
type pbWriter struct{ bytes.Buffer }

func newPBWriter() *pbWriter {
	w := &pbWriter{}
	w.u32(pbHeader)
	return w
}

func (w *pbWriter) u32(v uint32) { w.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *pbWriter) u64(v uint64) { w.Write(binary.LittleEndian.AppendUint64(nil, v)) }

func (w *pbWriter) row(pk, cells []cell) {
	w.WriteByte(tagRowPK)
	crc := byte(0)
	for _, c := range pk {
		w.cell(c)
		crc = crc8(crc, c.checksum())
	}
	if len(cells) > 0 {
		w.WriteByte(tagRowData)
		for _, c := range cells {
			w.cell(c)
			crc = crc8(crc, c.checksum())
		}
	}
	w.WriteByte(tagRowChecksum)
	w.WriteByte(crc8(crc, 0))
}

func (w *pbWriter) cell(c cell) {
	w.WriteByte(tagCell)
	w.WriteByte(tagCellName)
	w.u32(uint32(len(c.name)))
	w.WriteString(c.name)
	if c.hasValue {
		w.WriteByte(tagCellValue)
		w.value(c.value)
	}
	if c.hasOp {
		w.WriteByte(tagCellType)
		w.WriteByte(c.op)
	}
	if c.hasTS {
		w.WriteByte(tagCellTimestamp)
		w.u64(uint64(c.ts))
	}
	w.WriteByte(tagCellChecksum)
	w.WriteByte(c.checksum())
}

func (w *pbWriter) value(v value) {
	switch v.kind {
	case vtInteger:
		w.u32(9)
		w.WriteByte(vtInteger)
		w.u64(uint64(v.i))
	case vtDouble:
		w.u32(9)
		w.WriteByte(vtDouble)
		w.u64(math.Float64bits(v.f))
	case vtBoolean:
		w.u32(2)
		w.WriteByte(vtBoolean)
		if v.b {
			w.WriteByte(1)
		} else {
			w.WriteByte(0)
		}
	case vtString, vtBlob:
		w.u32(uint32(5 + len(v.s)))
		w.WriteByte(v.kind)
		w.u32(uint32(len(v.s)))
		w.Write(v.s)
	default:
		w.u32(1)
		w.WriteByte(v.kind)
	}
}
