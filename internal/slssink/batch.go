package slssink

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
)

// batch is the logs of one PutLogs request: findings, or lifecycle changes
// (a log group has one topic, so the two never share a batch). The
// sls.LogGroup is built only when the batch is sent, so a batch being filled
// costs the findings and nothing more.
type batch struct {
	findings []finding.Finding
	changes  []lifecycle.Change
	times    []uint32
	rawSize  int // protobuf size of the LogGroup's Logs fields
}

func (b *batch) len() int { return len(b.findings) + len(b.changes) }

// topic is the batch's log topic.
func (b *batch) topic() string {
	if len(b.changes) > 0 {
		return lifecycle.TopicChange
	}
	return finding.TopicFinding
}

func (b *batch) add(f *finding.Finding, t uint32, size int) {
	b.findings = append(b.findings, *f)
	b.times = append(b.times, t)
	b.rawSize += size
}

// batcher fills batches within the limits of one PutLogs request.
type batcher struct {
	maxLogs  int
	maxBytes int // for the logs, the LogGroup's other fields deducted
	cur      batch
	values   []string // scratch: the values of the finding being added
}

// addChange adds a lifecycle change, as add adds a finding.
func (b *batcher) addChange(c *lifecycle.Change, now time.Time) (full batch, ok bool) {
	t := timeOf(c.ObservedAt, now)
	size := logFieldSize(t, lifecycle.ChangeKeys, c.Values())
	if n := b.cur.len(); n > 0 && (n >= b.maxLogs || b.cur.rawSize+size > b.maxBytes) {
		full, ok = b.cur, true
		b.cur = batch{}
	}
	b.cur.changes = append(b.cur.changes, *c)
	b.cur.times = append(b.cur.times, t)
	b.cur.rawSize += size
	return full, ok
}

// add adds f, logged at its observation time or now. When f does not fit in
// the current batch, that batch is returned, full, and f starts the next one.
// A finding larger than the whole budget still goes, alone: Log Service has
// the last word on it, and a refusal sends it to standard output.
func (b *batcher) add(f *finding.Finding, now time.Time) (full batch, ok bool) {
	t := logTime(f, now)
	b.values = finding.FindingSchema.AppendValues(b.values[:0], f)
	size := logFieldSize(t, finding.Keys, b.values)
	if n := b.cur.len(); n > 0 && (n >= b.maxLogs || b.cur.rawSize+size > b.maxBytes) {
		full, ok = b.cur, true
		// The next batch will likely be as long: allocate it once.
		b.cur = batch{
			findings: make([]finding.Finding, 0, n),
			times:    make([]uint32, 0, n),
		}
	}
	b.cur.add(f, t, size)
	return full, ok
}

// take returns the current batch, possibly empty, and starts a new one.
func (b *batcher) take() batch {
	full := b.cur
	b.cur = batch{}
	return full
}

// logGroup builds the request body of the batch. A batch of findings has its
// logs, their contents and values each in one slice for the whole batch (a
// handful of allocations instead of two dozen per finding); the values are
// the findings' own strings.
func (b *batch) logGroup(source string) *sls.LogGroup {
	topic := b.topic()
	if len(b.changes) > 0 {
		lg := &sls.LogGroup{Topic: &topic, Source: &source, Logs: make([]*sls.Log, 0, len(b.changes))}
		for i := range b.changes {
			lg.Logs = append(lg.Logs, newLog(b.times[i], lifecycle.ChangeKeys, b.changes[i].Values()))
		}
		return lg
	}
	n, k := len(b.findings), len(finding.Keys)
	lg := &sls.LogGroup{
		Topic:  &topic,
		Source: &source,
		Logs:   make([]*sls.Log, n),
	}
	logs := make([]sls.Log, n)
	values := make([]string, 0, n*k)
	contents := make([]sls.LogContent, n*k)
	pointers := make([]*sls.LogContent, n*k)
	for i := range b.findings {
		values = finding.FindingSchema.AppendValues(values, &b.findings[i])
		for j := range k {
			c := &contents[i*k+j]
			c.Key, c.Value = &finding.Keys[j], &values[i*k+j]
			pointers[i*k+j] = c
		}
		logs[i] = sls.Log{Time: &b.times[i], Contents: pointers[i*k : (i+1)*k : (i+1)*k]}
		lg.Logs[i] = &logs[i]
	}
	return lg
}

func newLog(t uint32, keys, values []string) *sls.Log {
	contents := make([]*sls.LogContent, len(keys))
	for i := range keys {
		contents[i] = &sls.LogContent{Key: &keys[i], Value: &values[i]}
	}
	return &sls.Log{Time: &t, Contents: contents}
}

// logTime is the log time of a finding: its observation time, or now when
// that is missing or unreadable.
func logTime(f *finding.Finding, now time.Time) uint32 { return timeOf(f.ObservedAt, now) }

// timeOf is the log time of an observation time (RFC 3339), or now when it
// is missing or unreadable.
func timeOf(observedAt string, now time.Time) uint32 {
	if t, err := time.Parse(time.RFC3339, observedAt); err == nil && t.Unix() > 0 {
		return uint32(t.Unix())
	}
	return uint32(now.Unix())
}

// The sizes below are those of the protobuf encoding of log.proto (proto2):
// each present field costs a one-byte tag, a length-delimited field its
// varint length too. They let a batch track its size as it grows instead of
// marshalling it again for every finding.

func varintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func bytesField(n int) int { return 1 + varintLen(uint64(n)) + n }

// logFieldSize is the size a log adds to a LogGroup: its Logs field.
func logFieldSize(t uint32, keys, values []string) int {
	n := 1 + varintLen(uint64(t)) // Time
	for i := range keys {
		n += bytesField(bytesField(len(keys[i])) + bytesField(len(values[i]))) // Contents
	}
	return bytesField(n)
}

// groupOverhead is what a LogGroup costs besides its logs.
func groupOverhead(topic, source string) int {
	return bytesField(len(topic)) + bytesField(len(source))
}

// writeJSONLines writes each finding (or change) as one line of JSON, its
// own encoding, so that a reader of the function's log sees exactly the SLS
// keys.
func writeJSONLines(w io.Writer, b *batch) error {
	bw := bufio.NewWriter(w)
	for i := range b.findings {
		line, err := json.Marshal(&b.findings[i])
		if err != nil {
			return err
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	for i := range b.changes {
		line, err := json.Marshal(&b.changes[i])
		if err != nil {
			return err
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// summaryKeys are the content keys of the scan summary log, in order.
// Every key is always present: the fan-out keys are empty for a scan on its
// own, and a worker's batch and batches are empty for a coordinator's batch.
var summaryKeys = []string{
	"scan_id", "trigger", "started_at", "duration_ms", "complete", "connections",
	"connections_in_scope", "authorizations", "pass", "fail", "error", "suppressed",
	"api_calls", "api_retries", "throttled", "findings_delivered", "changes",
	"state_warning", "role", "accounts", "parent_scan_id", "batch", "batches",
}

// summaryValues returns the summary's values in the order of summaryKeys.
func summaryValues(s *finding.ScanSummary) []string {
	c := &s.Counts
	return []string{
		s.ScanID, s.Trigger, s.StartedAt, strconv.FormatInt(s.DurationMs, 10),
		strconv.FormatBool(s.Complete), strconv.Itoa(c.Connections),
		strconv.Itoa(c.ConnectionsInScope),
		strconv.Itoa(c.Authorizations), strconv.Itoa(c.Pass), strconv.Itoa(c.Fail),
		strconv.Itoa(c.Error), strconv.Itoa(c.Suppressed), strconv.Itoa(c.APICalls),
		strconv.Itoa(c.APIRetries), strconv.Itoa(c.Throttled),
		strconv.Itoa(c.FindingsDelivered), strconv.Itoa(c.Changes), c.StateWarning,
		s.Role, strconv.Itoa(s.Accounts), s.ParentScanID, positive(s.Batch), positive(s.Batches),
	}
}

// positive formats n, or "" when it is not set.
func positive(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// orderedJSON encodes keys and values as one JSON object, keys in the given
// order (a map would sort them).
func orderedJSON(keys, values []string) ([]byte, error) {
	buf := []byte{'{'}
	for i := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		k, err := json.Marshal(keys[i])
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(values[i])
		if err != nil {
			return nil, err
		}
		buf = append(buf, k...)
		buf = append(buf, ':')
		buf = append(buf, v...)
	}
	return append(buf, '}'), nil
}

// writeSummaryLine writes the summary as one JSON line with the keys of the
// summary log.
func writeSummaryLine(w io.Writer, s *finding.ScanSummary) error {
	line, err := orderedJSON(summaryKeys, summaryValues(s))
	if err != nil {
		return fmt.Errorf("encoding the scan summary: %w", err)
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

// marshal encodes the batch as the protobuf of its LogGroup, the bytes
// proto.Marshal(b.logGroup(source)) gives (TestMarshalIsLogGroup), straight
// from the findings into one buffer of the size the batch tracked: building
// the LogGroup first costs about five times the encoding in short-lived
// Log, LogContent and pointer objects (some 15 MB for a batch of 4096
// findings), which a scan held while each batch was sent.
func (b *batch) marshal(source string) []byte {
	topic := b.topic()
	buf := make([]byte, 0, b.rawSize+groupOverhead(topic, source))
	if len(b.changes) > 0 {
		for i := range b.changes {
			buf = appendLog(buf, b.times[i], lifecycle.ChangeKeys, b.changes[i].Values())
		}
	} else {
		values := make([]string, 0, len(finding.Keys))
		for i := range b.findings {
			values = finding.FindingSchema.AppendValues(values[:0], &b.findings[i])
			buf = appendLog(buf, b.times[i], finding.Keys, values)
		}
	}
	// LogGroup: Logs = 1 (above), Topic = 3, Source = 4.
	buf = appendBytesField(buf, 3<<3|2, topic)
	return appendBytesField(buf, 4<<3|2, source)
}

// appendLog appends a LogGroup's Logs field (1): a Log of Time (1, varint)
// and Contents (2), each Content a Key (1) and a Value (2).
func appendLog(buf []byte, t uint32, keys, values []string) []byte {
	n := 1 + varintLen(uint64(t))
	for i := range keys {
		n += bytesField(bytesField(len(keys[i])) + bytesField(len(values[i])))
	}
	buf = append(buf, 1<<3|2)
	buf = appendVarint(buf, uint64(n))
	buf = append(buf, 1<<3) // field 1, wire type 0 (varint)
	buf = appendVarint(buf, uint64(t))
	for i := range keys {
		buf = append(buf, 2<<3|2)
		buf = appendVarint(buf, uint64(bytesField(len(keys[i]))+bytesField(len(values[i]))))
		buf = appendBytesField(buf, 1<<3|2, keys[i])
		buf = appendBytesField(buf, 2<<3|2, values[i])
	}
	return buf
}

func appendBytesField(buf []byte, tag byte, s string) []byte {
	buf = append(buf, tag)
	buf = appendVarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendVarint(buf []byte, x uint64) []byte {
	for x >= 0x80 {
		buf = append(buf, byte(x)|0x80)
		x >>= 7
	}
	return append(buf, byte(x))
}
