package slsemu

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The shard read path: ListShards, GetCursor and PullLogs (PullData), as
// the Go SDK calls them:
//
//	GET /logstores/{ls}/shards
//	GET /logstores/{ls}/shards/{id}?type=cursor&from=begin|end|<unix seconds>
//	GET /logstores/{ls}/shards/{id}?type=logs&cursor=…&count=…[&end_cursor=…]
//
// Each shard is a sequence of log groups. A cursor names a position in it
// (0 = before the first group, len = after the last): base64 of a decimal
// number, as the real service's cursors are, offset per shard so that a
// cursor of one shard is refused by another. PullLogs returns the groups
// from cursor up to end_cursor (or the end), at most count of them, and the
// cursor after the last group returned; at the end that is the end cursor
// itself and no group is returned.
//
// Only groups appended with AppendGroups are served: PutLogs keeps its logs
// for Logs and GetLogs and does not copy them into shards, so that the
// findings sink's benchmarks do not pay for a read path they never use.

const (
	maxPullCount = 1000 // log groups per PullLogs, as documented
	cursorBase   = 1_600_000_000_000_000_000
	cursorStride = 1_000_000_000_000_000 // per shard; positions stay below it
)

// PullStats counts the read-path calls that passed the signature check.
type PullStats struct {
	ListShardsCalls int
	GetCursorCalls  int
	PullLogsCalls   int // whatever their outcome, injected faults included
	PullLogsOK      int
	GroupsServed    int // log groups returned by PullLogs
	LogsServed      int
}

type pullState struct {
	shards   map[string][]*shardData // project + "/" + logstore → by shard id
	failNext []apiError
	stats    PullStats
}

type shardData struct {
	groups []storedGroup
}

type storedGroup struct {
	group    *sls.LogGroup
	received time.Time // server time of arrival, what GetCursor(from=time) looks at
}

// binaryReply is a 200 with a body that is not JSON.
type binaryReply struct {
	header http.Header
	body   []byte
}

func (b *binaryReply) write(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.body)
}

// AppendGroups appends log groups to a shard, as a writer such as an
// ActionTrail trail would, and returns the shard's cursors before and after
// them: the beginCursor and endCursor of the Log Service trigger event that
// announces them. The groups are copied; their logs are not validated, so a
// test can store what PutLogs would refuse.
func (s *Server) AppendGroups(projectName, logstoreName string, shard int, groups ...*sls.LogGroup) (begin, end string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sd, e := s.shardLocked(projectName, logstoreName, shard)
	if e != nil {
		return "", "", fmt.Errorf("append to %s/%s shard %d: %s", projectName, logstoreName, shard, e.message)
	}
	begin = encodeCursor(shard, len(sd.groups))
	now := s.now()
	for _, g := range groups {
		sd.groups = append(sd.groups, storedGroup{group: proto.Clone(g).(*sls.LogGroup), received: now})
	}
	return begin, encodeCursor(shard, len(sd.groups)), nil
}

// ShardCursor is GetCursor without a request: from is "begin", "end" or
// unix seconds.
func (s *Server) ShardCursor(projectName, logstoreName string, shard int, from string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.cursorLocked(projectName, logstoreName, shard, from)
	if e != nil {
		return "", fmt.Errorf("cursor of %s/%s shard %d: %s", projectName, logstoreName, shard, e.message)
	}
	return c, nil
}

// FailNextPullLogs answers the next n PullLogs requests with the given
// error, after their signature was checked and before the shard is read.
func (s *Server) FailNextPullLogs(n int, httpStatus int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.pull.failNext = append(s.pull.failNext, apiError{status: httpStatus, code: code, message: message})
	}
}

// PullStats returns a copy of the read-path counters.
func (s *Server) PullStats() PullStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pull.stats
}

// shardLocked returns a shard of an existing logstore, creating its data on
// first use.
func (s *Server) shardLocked(projectName, logstoreName string, shard int) (*shardData, *apiError) {
	if _, ok := s.projects[projectName]; !ok {
		return nil, errorf(http.StatusNotFound, "ProjectNotExist", "The Project does not exist : %s", projectName)
	}
	ls := s.logstoreLocked(projectName, logstoreName)
	if ls == nil {
		return nil, errorf(http.StatusNotFound, "LogStoreNotExist", "logstore %s does not exist", logstoreName)
	}
	if shard < 0 || shard >= ls.shardCount {
		return nil, errorf(http.StatusNotFound, "ShardNotExist", "Shard %d does not exist", shard)
	}
	if s.pull.shards == nil {
		s.pull.shards = map[string][]*shardData{}
	}
	key := projectName + "/" + logstoreName
	list := s.pull.shards[key]
	for len(list) < ls.shardCount {
		list = append(list, &shardData{})
	}
	s.pull.shards[key] = list
	return list[shard], nil
}

func encodeCursor(shard, pos int) string {
	n := int64(cursorBase) + int64(shard)*cursorStride + int64(pos)
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatInt(n, 10)))
}

// decodeCursor gives the position a cursor names in a shard of n groups.
func decodeCursor(cursor string, shard, n int) (int, *apiError) {
	invalid := errorf(http.StatusBadRequest, "InvalidCursor", "this cursor is invalid: %s", clipValue(cursor))
	raw, err := base64.StdEncoding.DecodeString(cursor)
	if err != nil {
		return 0, invalid
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, invalid
	}
	pos := v - int64(cursorBase) - int64(shard)*cursorStride
	if pos < 0 || pos >= cursorStride {
		return 0, invalid // another shard's, or made up
	}
	// A cursor past the end (of groups not yet written) reads as the end.
	return int(min(pos, int64(n))), nil
}

func clipValue(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

type shardReply struct {
	ShardID           int    `json:"shardID"`
	Status            string `json:"status"`
	InclusiveBeginKey string `json:"inclusiveBeginKey"`
	ExclusiveEndKey   string `json:"exclusiveEndKey"`
	CreateTime        int64  `json:"createTime"`
}

// listShards splits the 128-bit hash key range evenly, as a new logstore's
// shards are.
func (s *Server) listShards(req *request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pull.stats.ListShardsCalls++
	ls := s.logstoreLocked(req.project, req.logstore)
	n := ls.shardCount
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	key := func(i int) string {
		if i == n {
			return "ffffffffffffffffffffffffffffffff"
		}
		k := new(big.Int).Mul(space, big.NewInt(int64(i)))
		k.Div(k, big.NewInt(int64(n)))
		return fmt.Sprintf("%032x", k)
	}
	out := make([]shardReply, n)
	for i := range n {
		out[i] = shardReply{
			ShardID:           i,
			Status:            "readwrite",
			InclusiveBeginKey: key(i),
			ExclusiveEndKey:   key(i + 1),
			CreateTime:        ls.created.Unix(),
		}
	}
	return out, nil
}

// readShard serves GetCursor and PullLogs.
func (s *Server) readShard(req *request) (any, *apiError) {
	r := req.http
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	shard, err := strconv.Atoi(parts[3])
	q := r.URL.Query()
	typ := q.Get("type")
	if typ == "logs" || typ == "log" {
		s.mu.Lock()
		s.pull.stats.PullLogsCalls++
		s.mu.Unlock()
	}
	if err != nil {
		return nil, parameterInvalid("shard %s is not a number", clipValue(parts[3]))
	}
	switch typ {
	case "cursor":
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pull.stats.GetCursorCalls++
		from := q.Get("from")
		if from == "" {
			return nil, parameterInvalid("the query parameter from is required: begin, end or unix seconds")
		}
		c, e := s.cursorLocked(req.project, req.logstore, shard, from)
		if e != nil {
			return nil, e
		}
		return map[string]string{"cursor": c}, nil
	case "logs", "log": // the SDK sends "logs"; the API reference writes "log"
		return s.pullLogs(req, shard, q)
	}
	return nil, parameterInvalid("type %s is unsupported on a shard: cursor or logs", clipValue(typ))
}

func (s *Server) cursorLocked(projectName, logstoreName string, shard int, from string) (string, *apiError) {
	sd, e := s.shardLocked(projectName, logstoreName, shard)
	if e != nil {
		return "", e
	}
	switch from {
	case "begin":
		return encodeCursor(shard, 0), nil
	case "end":
		return encodeCursor(shard, len(sd.groups)), nil
	}
	sec, err := strconv.ParseInt(from, 10, 64)
	if err != nil || sec < 0 {
		return "", parameterInvalid("from %s is invalid: begin, end or unix seconds", clipValue(from))
	}
	t := time.Unix(sec, 0)
	pos := len(sd.groups)
	for i, g := range sd.groups {
		if !g.received.Before(t) {
			pos = i
			break
		}
	}
	return encodeCursor(shard, pos), nil
}

func (s *Server) pullLogs(req *request, shard int, q map[string][]string) (any, *apiError) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	s.mu.Lock()
	if len(s.pull.failNext) > 0 {
		e := s.pull.failNext[0]
		s.pull.failNext = s.pull.failNext[1:]
		s.mu.Unlock()
		return nil, &e
	}
	s.mu.Unlock()

	cursor := get("cursor")
	if cursor == "" {
		return nil, parameterInvalid("the query parameter cursor is required")
	}
	count, err := strconv.Atoi(get("count"))
	if err != nil || count < 1 || count > maxPullCount {
		return nil, parameterInvalid("count %s is invalid: 1 to %d log groups", clipValue(get("count")), maxPullCount)
	}
	// lz4 (the SDK's default), zstd and deflate are compressed; anything
	// else, such as the gzip Go's transport adds on its own, gets the plain
	// LogGroupList without x-log-compresstype.
	encoding := req.http.Header.Get("Accept-Encoding")
	switch encoding {
	case "lz4", "zstd", "deflate":
	default:
		encoding = ""
	}

	s.mu.Lock()
	sd, e := s.shardLocked(req.project, req.logstore, shard)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	n := len(sd.groups)
	from, e := decodeCursor(cursor, shard, n)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	to := n
	if ec := get("end_cursor"); ec != "" {
		if to, e = decodeCursor(ec, shard, n); e != nil {
			s.mu.Unlock()
			return nil, e
		}
	}
	// A cursor at or after end_cursor reads nothing and stays where it is.
	upto := from
	if to > from {
		upto = min(from+count, to)
	}
	list := &sls.LogGroupList{}
	logs := 0
	for _, g := range sd.groups[from:upto] {
		list.LogGroups = append(list.LogGroups, g.group)
		logs += len(g.group.Logs)
	}
	s.pull.stats.PullLogsOK++
	s.pull.stats.GroupsServed += len(list.LogGroups)
	s.pull.stats.LogsServed += logs
	raw, err := proto.Marshal(list) // under the lock: the groups are shared
	s.mu.Unlock()
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "InternalServerError", "encode log groups: %v", err)
	}

	h := http.Header{}
	h.Set("Content-Type", protobufMediaType)
	h.Set("x-log-cursor", encodeCursor(shard, upto))
	h.Set("x-log-count", strconv.Itoa(len(list.LogGroups)))
	h.Set("x-log-bodyrawsize", strconv.Itoa(len(raw)))
	body := raw
	if len(raw) > 0 {
		var e *apiError
		if body, e = s.compress(encoding, raw); e != nil {
			return nil, e
		}
		if encoding != "" {
			h.Set("x-log-compresstype", encoding)
		}
	}
	return &binaryReply{header: h, body: body}, nil
}

// compress encodes a reply body as Accept-Encoding asked: an lz4 block
// (what the SDK decodes with UncompressBlock), a zstd frame, zlib, or none.
func (s *Server) compress(encoding string, raw []byte) ([]byte, *apiError) {
	fail := func(err error) *apiError {
		return errorf(http.StatusInternalServerError, "InternalServerError", "compress reply: %v", err)
	}
	switch encoding {
	case "lz4":
		buf := make([]byte, lz4.CompressBlockBound(len(raw)))
		var c lz4.Compressor
		n, err := c.CompressBlock(raw, buf)
		if err != nil {
			return nil, fail(err)
		}
		if n == 0 { // incompressible: a block of literals only
			return literalBlock(raw), nil
		}
		return buf[:n], nil
	case "zstd":
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fail(err)
		}
		defer enc.Close()
		return enc.EncodeAll(raw, nil), nil
	case "deflate":
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		if _, err := zw.Write(raw); err != nil {
			return nil, fail(err)
		}
		if err := zw.Close(); err != nil {
			return nil, fail(err)
		}
		return b.Bytes(), nil
	}
	return raw, nil
}

// literalBlock is an lz4 block holding src as one run of literals.
func literalBlock(src []byte) []byte {
	var out []byte
	n := len(src)
	if n < 15 {
		out = append(out, byte(n<<4))
	} else {
		out = append(out, 0xF0)
		rest := n - 15
		for rest >= 255 {
			out = append(out, 255)
			rest -= 255
		}
		out = append(out, byte(rest))
	}
	return append(out, src...)
}
