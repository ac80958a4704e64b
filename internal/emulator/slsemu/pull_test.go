package slsemu

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/pierrec/lz4/v4"
)

// appendNumbered appends n groups of one log each, "seq" = first.. to a
// shard and returns the cursors around them.
func appendNumbered(t *testing.T, s *Server, shard, first, n int) (begin, end string) {
	t.Helper()
	groups := make([]*sls.LogGroup, n)
	for i := range groups {
		groups[i] = group("t", "src", nil, entry(time.Now(), "seq", strconv.Itoa(first+i)))
	}
	begin, end, err := s.AppendGroups(testProject, testLogstore, shard, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return begin, end
}

// seqs gives the "seq" of every log in pulled groups.
func seqs(t *testing.T, gl *sls.LogGroupList) []string {
	t.Helper()
	var out []string
	for _, g := range gl.LogGroups {
		if g.GetTopic() != "t" || g.GetSource() != "src" {
			t.Errorf("group topic/source %q/%q", g.GetTopic(), g.GetSource())
		}
		for _, l := range g.Logs {
			for _, c := range l.Contents {
				if c.GetKey() == "seq" {
					out = append(out, c.GetValue())
				}
			}
		}
	}
	return out
}

func TestListShards(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, stsKeyID, stsSecret, stsToken)
	shards, err := c.ListShards(testProject, testLogstore)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 {
		t.Fatalf("%d shards, want 2", len(shards))
	}
	want := []struct{ begin, end string }{
		{"00000000000000000000000000000000", "80000000000000000000000000000000"},
		{"80000000000000000000000000000000", "ffffffffffffffffffffffffffffffff"},
	}
	for i, sh := range shards {
		if sh.ShardID != i || sh.Status != "readwrite" || sh.InclusiveBeginKey != want[i].begin ||
			sh.ExclusiveBeginKey != want[i].end || sh.CreateTime == 0 {
			t.Errorf("shard %d = %+v", i, *sh)
		}
	}
	if _, err := c.ListShards(testProject, "nope"); err == nil || !strings.Contains(err.Error(), "LogStoreNotExist") {
		t.Errorf("unknown logstore: %v", err)
	}
	if got := s.PullStats().ListShardsCalls; got != 1 {
		t.Errorf("ListShardsCalls = %d, want 1 (the refused call never reached the shards)", got)
	}
}

func TestGetCursor(t *testing.T) {
	now := time.Now().Truncate(time.Second) // requests are signed with the real time
	clock := now
	s := newTestServer(t, Options{Now: func() time.Time { return clock }})
	c := newClient(t, s, plainKeyID, plainSecret, "")

	begin, err := c.GetCursor(testProject, testLogstore, 1, "begin")
	if err != nil {
		t.Fatal(err)
	}
	end, err := c.GetCursor(testProject, testLogstore, 1, "end")
	if err != nil {
		t.Fatal(err)
	}
	if begin != end {
		t.Errorf("empty shard: begin %q != end %q", begin, end)
	}
	if raw, err := base64.StdEncoding.DecodeString(begin); err != nil {
		t.Errorf("cursor %q is not base64: %v", begin, err)
	} else if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		t.Errorf("cursor %q does not hold a number, as the real ones do: %v", begin, err)
	}

	b1, e1 := appendNumbered(t, s, 1, 0, 2) // at 10:00
	clock = now.Add(time.Minute)
	b2, e2 := appendNumbered(t, s, 1, 2, 3) // at 10:01
	if b1 != begin || e1 != b2 {
		t.Errorf("cursors do not chain: begin %s, first %s..%s, second %s..%s", begin, b1, e1, b2, e2)
	}
	for _, tc := range []struct{ from, want string }{
		{"begin", begin},
		{"end", e2},
		{strconv.FormatInt(now.Unix(), 10), b1},
		{strconv.FormatInt(now.Add(30*time.Second).Unix(), 10), b2},
		{strconv.FormatInt(now.Add(time.Hour).Unix(), 10), e2},
		{"0", b1},
	} {
		got, err := c.GetCursor(testProject, testLogstore, 1, tc.from)
		if err != nil || got != tc.want {
			t.Errorf("GetCursor(%s) = %q, %v; want %q", tc.from, got, err, tc.want)
		}
		direct, err := s.ShardCursor(testProject, testLogstore, 1, tc.from)
		if err != nil || direct != tc.want {
			t.Errorf("ShardCursor(%s) = %q, %v; want %q", tc.from, direct, err, tc.want)
		}
	}

	for _, tc := range []struct {
		shard  int
		from   string
		status int
		code   string
	}{
		{1, "yesterday", 400, "ParameterInvalid"},
		{1, "-5", 400, "ParameterInvalid"},
		{2, "begin", 404, "ShardNotExist"},
		{-1, "begin", 404, "ShardNotExist"},
	} {
		_, err := c.GetCursor(testProject, testLogstore, tc.shard, tc.from)
		assertSLSError(t, err, tc.status, tc.code)
	}
	if _, err := s.ShardCursor(testProject, testLogstore, 5, "begin"); err == nil || !strings.Contains(err.Error(), "Shard 5 does not exist") {
		t.Errorf("ShardCursor of a missing shard: %v", err)
	}
}

func TestPullLogsPagesToTheEnd(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, stsKeyID, stsSecret, stsToken)
	appendNumbered(t, s, 0, 100, 3) // before the window
	begin, end := appendNumbered(t, s, 0, 0, 5)
	appendNumbered(t, s, 0, 200, 2) // after it
	appendNumbered(t, s, 1, 300, 4) // another shard

	var got []string
	var counts []int
	cursor := begin
	for range 10 {
		gl, next, err := c.PullLogs(testProject, testLogstore, 0, cursor, end, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqs(t, gl)...)
		counts = append(counts, len(gl.LogGroups))
		if next == cursor {
			break
		}
		cursor = next
	}
	if strings.Join(got, ",") != "0,1,2,3,4" {
		t.Errorf("pulled %v, want 0..4", got)
	}
	if fmt.Sprint(counts) != "[2 2 1 0]" {
		t.Errorf("pages of %v groups, want [2 2 1 0]", counts)
	}
	if cursor != end {
		t.Errorf("stopped at %q, want the end cursor %q", cursor, end)
	}

	// Without an end cursor the read goes to the shard's end.
	gl, next, err := c.PullLogs(testProject, testLogstore, 0, begin, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seqs(t, gl), ","); got != "0,1,2,3,4,200,201" {
		t.Errorf("to the shard's end: %s", got)
	}
	if tail, _ := s.ShardCursor(testProject, testLogstore, 0, "end"); next != tail {
		t.Errorf("next %q, want the shard's end %q", next, tail)
	}

	// A start cursor past the end cursor reads nothing and stays.
	gl, next, err = c.PullLogs(testProject, testLogstore, 0, end, begin, 10)
	if err != nil || len(gl.LogGroups) != 0 || next != end {
		t.Errorf("start after end: %d groups, next %q, %v", len(gl.LogGroups), next, err)
	}

	st := s.PullStats()
	if st.PullLogsCalls != 6 || st.PullLogsOK != 6 || st.GroupsServed != 12 || st.LogsServed != 12 {
		t.Errorf("stats %+v", st)
	}
}

func TestPullLogsCompression(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	// Random values do not compress: the lz4 reply is a literal-only block.
	noise := make([]byte, 4096)
	_, _ = rand.Read(noise)
	g := group("t", "src", nil, entry(time.Now(), "seq", "0", "noise", hex.EncodeToString(noise)))
	repeated := group("t", "src", nil, entry(time.Now(), "seq", "1", "text", strings.Repeat("abc", 5000)))
	begin, end, err := s.AppendGroups(testProject, testLogstore, 0, g, repeated)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []int{sls.Compress_LZ4, sls.Compress_ZSTD} {
		gl, meta, err := c.PullLogsWithQuery(&sls.PullLogRequest{
			Project: testProject, Logstore: testLogstore, ShardID: 0,
			Cursor: begin, EndCursor: end, LogGroupMaxCount: 10, CompressType: ct,
		})
		if err != nil {
			t.Fatalf("compress type %d: %v", ct, err)
		}
		if got := strings.Join(seqs(t, gl), ","); got != "0,1" || meta.Count != 2 || meta.NextCursor != end {
			t.Errorf("compress type %d: seqs %s, meta %+v", ct, got, meta)
		}
		if meta.Netflow >= meta.RawSize {
			t.Errorf("compress type %d: %d bytes on the wire for %d raw", ct, meta.Netflow, meta.RawSize)
		}
	}
}

func TestPullLogsRefusals(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	begin, end := appendNumbered(t, s, 0, 0, 2)
	other, _ := appendNumbered(t, s, 1, 0, 1)

	for _, tc := range []struct {
		name          string
		shard         int
		cursor, until string
		count         int
		want          string
	}{
		{"cursor of another shard", 0, other, end, 10, "InvalidCursor"},
		{"end cursor of another shard", 1, other, end, 10, "InvalidCursor"},
		{"cursor not base64", 0, "%%%", end, 10, "InvalidCursor"},
		{"cursor not a number", 0, base64.StdEncoding.EncodeToString([]byte("abc")), end, 10, "InvalidCursor"},
		{"count 0", 0, begin, end, 0, "ParameterInvalid"},
		{"count over 1000", 0, begin, end, 1001, "ParameterInvalid"},
		{"missing shard", 7, begin, end, 10, "ShardNotExist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.PullLogs(testProject, testLogstore, tc.shard, tc.cursor, tc.until, tc.count)
			assertSLSError(t, err, map[string]int{"InvalidCursor": 400, "ParameterInvalid": 400, "ShardNotExist": 404}[tc.want], tc.want)
		})
	}
	if _, _, err := c.PullLogs(testProject, "nope", 0, begin, end, 10); err == nil || !strings.Contains(err.Error(), "LogStoreNotExist") {
		t.Errorf("unknown logstore: %v", err)
	}

	// A wrong secret is refused before anything is read.
	bad := newClient(t, s, plainKeyID, "wrong-secret", "")
	before := s.PullStats()
	_, _, err := bad.PullLogs(testProject, testLogstore, 0, begin, end, 10)
	assertSLSError(t, err, http.StatusUnauthorized, "SignatureNotMatch")
	if after := s.PullStats(); after != before {
		t.Errorf("a refused signature was counted: %+v → %+v", before, after)
	}
	expired := newClient(t, s, stsKeyID, stsSecret, "not-the-token")
	_, _, err = expired.PullLogs(testProject, testLogstore, 0, begin, end, 10)
	assertSLSError(t, err, http.StatusUnauthorized, "Unauthorized")
}

func TestPullLogsFaults(t *testing.T) {
	noServerRetries(t)
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	begin, end := appendNumbered(t, s, 0, 0, 1)

	s.FailNextPullLogs(2, http.StatusInternalServerError, "InternalServerError", "boom")
	s.FailNextPullLogs(1, http.StatusUnauthorized, "Unauthorized", "The security token you provided has expired.")
	for _, want := range []struct {
		status int
		code   string
	}{{500, "InternalServerError"}, {500, "InternalServerError"}, {401, "Unauthorized"}} {
		_, _, err := c.PullLogs(testProject, testLogstore, 0, begin, end, 10)
		assertSLSError(t, err, want.status, want.code)
	}
	// Other calls are not affected by PullLogs faults.
	if _, err := c.GetCursor(testProject, testLogstore, 0, "begin"); err != nil {
		t.Fatal(err)
	}
	gl, next, err := c.PullLogs(testProject, testLogstore, 0, begin, end, 10)
	if err != nil || len(gl.LogGroups) != 1 || next != end {
		t.Fatalf("after the faults: %v groups, %q, %v", gl, next, err)
	}
	st := s.PullStats()
	if st.PullLogsCalls != 4 || st.PullLogsOK != 1 || st.GetCursorCalls != 1 {
		t.Errorf("stats %+v", st)
	}
	if got := s.Stats().ErrorsByCode; got["InternalServerError"] != 2 || got["Unauthorized"] != 1 {
		t.Errorf("errors by code %v", got)
	}
}

func TestPullLogsRaw(t *testing.T) {
	s := newTestServer(t, Options{})
	begin, end := appendNumbered(t, s, 0, 0, 1)
	uri := func(q string) string { return "/logstores/" + testLogstore + "/shards/0?" + q }
	for _, tc := range []struct {
		name, uri, encoding, code string
	}{
		{"no cursor", uri("type=logs&count=10"), "lz4", "ParameterInvalid"},
		{"unknown type", uri("type=histogram"), "lz4", "ParameterInvalid"},
		{"shard not a number", "/logstores/" + testLogstore + "/shards/x?type=cursor&from=begin", "", "ParameterInvalid"},
		{"no from", uri("type=cursor"), "", "ParameterInvalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := s.doRaw(t, rawCall{method: http.MethodGet, uri: tc.uri,
				headers: map[string]string{"x-log-bodyrawsize": "0", "Accept-Encoding": tc.encoding}})
			if reply.status != http.StatusBadRequest || reply.ErrorCode != tc.code {
				t.Errorf("got %d %s %q, want 400 %s", reply.status, reply.ErrorCode, reply.ErrorMessage, tc.code)
			}
		})
	}

	// Without an encoding the SDK knows (here the gzip Go's transport adds)
	// the body is the plain LogGroupList and carries no x-log-compresstype;
	// the API reference's type=log works as the SDK's type=logs does.
	reply := s.doRaw(t, rawCall{method: http.MethodGet,
		uri:     uri("type=log&count=10&cursor=" + begin + "&end_cursor=" + end),
		headers: map[string]string{"x-log-bodyrawsize": "0"},
	})
	if reply.status != http.StatusOK {
		t.Fatalf("status %d %s", reply.status, reply.ErrorMessage)
	}
	var gl sls.LogGroupList
	if err := proto.Unmarshal(reply.body, &gl); err != nil || len(gl.LogGroups) != 1 {
		t.Errorf("plain body: %d groups, %v", len(gl.LogGroups), err)
	}
}

func TestAppendGroupsErrors(t *testing.T) {
	s := newTestServer(t, Options{})
	if _, _, err := s.AppendGroups("nope", testLogstore, 0); err == nil || !strings.Contains(err.Error(), "Project does not exist") {
		t.Errorf("unknown project: %v", err)
	}
	if _, _, err := s.AppendGroups(testProject, "nope", 0); err == nil || !strings.Contains(err.Error(), "logstore nope does not exist") {
		t.Errorf("unknown logstore: %v", err)
	}
	if _, _, err := s.AppendGroups(testProject, testLogstore, 2); err == nil || !strings.Contains(err.Error(), "Shard 2 does not exist") {
		t.Errorf("shard out of range: %v", err)
	}
	// The stored group is a copy: changing the caller's afterwards changes nothing.
	g := group("t", "src", nil, entry(time.Now(), "seq", "1"))
	begin, end, err := s.AppendGroups(testProject, testLogstore, 0, g)
	if err != nil {
		t.Fatal(err)
	}
	g.Logs[0].Contents[0].Value = proto.String("changed")
	c := newClient(t, s, plainKeyID, plainSecret, "")
	gl, _, err := c.PullLogs(testProject, testLogstore, 0, begin, end, 1)
	if err != nil || strings.Join(seqs(t, gl), ",") != "1" {
		t.Errorf("pulled %v, %v", gl, err)
	}
}

func TestActionTrailLog(t *testing.T) {
	at := time.Unix(1772359200, 0)
	g := ActionTrailGroup(ActionTrailLog(at, `{"eventName":"DeleteVpnConnection"}`),
		LogOf(at, map[string]string{"event.eventName": "CreateVpc", "__topic__x": "y"}))
	if g.GetTopic() != "actiontrail_audit_event" || len(g.Logs) != 2 {
		t.Fatalf("group %+v", g)
	}
	l := g.Logs[0]
	if l.GetTime() != 1772359200 || len(l.Contents) != 1 || l.Contents[0].GetKey() != "event" ||
		l.Contents[0].GetValue() != `{"eventName":"DeleteVpnConnection"}` {
		t.Errorf("log %+v", l)
	}
	if k := g.Logs[1].Contents; k[0].GetKey() != "__topic__x" || k[1].GetKey() != "event.eventName" {
		t.Errorf("keys not in order: %+v", k)
	}
}

// An incompressible reply still goes out as an lz4 block the SDK can read.
func TestLZ4Incompressible(t *testing.T) {
	s := newTestServer(t, Options{})
	for _, n := range []int{1, 14, 15, 16, 269, 270, 271, 5000} {
		raw := make([]byte, n)
		_, _ = rand.Read(raw)
		for _, block := range [][]byte{literalBlock(raw), mustCompress(t, s, raw)} {
			out := make([]byte, n)
			got, err := lz4.UncompressBlock(block, out)
			if err != nil || got != n || !bytes.Equal(out, raw) {
				t.Errorf("%d bytes: uncompressed %d, %v", n, got, err)
			}
		}
	}
}

func mustCompress(t *testing.T, s *Server, raw []byte) []byte {
	t.Helper()
	b, e := s.compress("lz4", raw)
	if e != nil {
		t.Fatal(e.message)
	}
	return b
}
