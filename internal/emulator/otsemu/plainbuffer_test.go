package otsemu

import (
	"strings"
	"testing"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
)

// TestPlainBufferWithSDK: rows the SDK encodes decode here, and every
// corrupted byte of them is refused rather than misread.
func TestPlainBufferWithSDK(t *testing.T) {
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("p", "acct/region")
	k.AddPrimaryKeyColumn("n", int64(7))
	ch := &tablestore.PutRowChange{TableName: "t", PrimaryKey: k}
	ch.AddColumn("s", "value")
	ch.AddColumn("i", int64(3))
	b := ch.Serialize()
	rows, err := decodeRows(b)
	if err != nil || len(rows) != 1 || len(rows[0].pk) != 2 || len(rows[0].cells) != 2 {
		t.Fatalf("decode: %+v %v", rows, err)
	}
	if string(rows[0].pk[0].value.s) != "acct/region" || rows[0].pk[1].value.i != 7 || rows[0].cells[1].value.i != 3 {
		t.Errorf("decoded %+v", rows[0])
	}
	// Re-encoding gives the SDK's bytes back.
	w := newPBWriter()
	w.row(rows[0].pk, rows[0].cells)
	if w.String() != string(b) {
		t.Errorf("re-encoded %x, want %x", w.Bytes(), b)
	}
	for i := range b {
		bad := []byte(string(b))
		bad[i] ^= 0x40
		if _, err := decodeRows(bad); err == nil {
			t.Errorf("byte %d corrupted: decoded without error", i)
		} else if !strings.Contains(err.Error(), "malformed PlainBuffer") {
			t.Errorf("byte %d: %v", i, err)
		}
	}
}
