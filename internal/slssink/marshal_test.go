package slssink

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"

	"vpnauthz/internal/lifecycle"
)

// TestMarshalIsLogGroup: the batch's own encoding is byte for byte what the
// SDK's PutLogs sent for its LogGroup, for findings of every size around the
// varint boundaries and for change batches.
func TestMarshalIsLogGroup(t *testing.T) {
	b := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 70000} {
		f := testFinding(n)
		f.StatusDetail = strings.Repeat("d", n)
		f.ExceptionReason = strings.Repeat("r", n/2)
		b.add(&f, time.Now())
	}
	for i := range 100 {
		f := testFinding(i)
		b.add(&f, time.Now())
	}
	bt := b.take()
	check := func(name string, bt batch) {
		t.Helper()
		for _, source := range []string{"vpnauthz", "", strings.Repeat("s", 200)} {
			want, err := proto.Marshal(bt.logGroup(source))
			if err != nil {
				t.Fatal(err)
			}
			got := bt.marshal(source)
			if !bytes.Equal(got, want) {
				t.Errorf("%s, source %q: %d bytes, LogGroup %d bytes, not the same", name, source, len(got), len(want))
			}
			if source == "vpnauthz" && len(got) != bt.rawSize+groupOverhead(bt.topic(), source) {
				t.Errorf("%s: %d bytes, tracked %d", name, len(got), bt.rawSize+groupOverhead(bt.topic(), source))
			}
		}
	}
	check("findings", bt)

	cb := batcher{maxLogs: MaxBatchLogs, maxBytes: DefaultMaxBatchBytes}
	for i := range 10 {
		c := lifecycle.Change{FindingUID: strings.Repeat("u", i*40), ObservedAt: time.Now().UTC().Format(time.RFC3339)}
		cb.addChange(&c, time.Now())
	}
	check("changes", cb.take())
}
