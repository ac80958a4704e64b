package otsemu

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	//lint:ignore SA1019 the SDK's otsprotocol types are generated for this API and lack ProtoReflect
	"github.com/golang/protobuf/proto"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
)

type handlerFunc func(s *Server, body []byte) (proto.Message, *apiError)

var operations = map[string]handlerFunc{
	OpCreateTable:   (*Server).createTable,
	OpDescribeTable: (*Server).describeTable,
	OpListTable:     (*Server).listTable,
	OpDeleteTable:   (*Server).deleteTable,
	OpGetRange:      (*Server).getRange,
	OpGetRow:        (*Server).getRow,
	OpPutRow:        (*Server).putRow,
	OpBatchWriteRow: (*Server).batchWriteRow,
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.reqSeq++
	reqID := fmt.Sprintf("0005%012x-otsemu", s.reqSeq)
	s.mu.Unlock()

	resp, e := s.handle(r)
	if e != nil {
		s.mu.Lock()
		s.stats.ErrorsByCode[e.code]++
		s.mu.Unlock()
		body, _ := proto.Marshal(&otsprotocol.Error{Code: &e.code, Message: &e.message})
		writeBody(w, reqID, e.status, body)
		return
	}
	var body []byte
	if resp != nil {
		var err error
		if body, err = proto.Marshal(resp); err != nil {
			e := errorf(CodeInternalError, "encode the answer: %v", err)
			body, _ = proto.Marshal(&otsprotocol.Error{Code: &e.code, Message: &e.message})
			writeBody(w, reqID, e.status, body)
			return
		}
	}
	writeBody(w, reqID, http.StatusOK, body)
}

func writeBody(w http.ResponseWriter, reqID string, status int, body []byte) {
	sum := md5.Sum(body)
	h := w.Header()
	h.Set("x-ots-requestid", reqID)
	h.Set("x-ots-contenttype", "protocol buffer")
	h.Set("x-ots-contentmd5", base64.StdEncoding.EncodeToString(sum[:]))
	h.Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) handle(r *http.Request) (proto.Message, *apiError) {
	if r.Method != http.MethodPost {
		return nil, errorf(CodeMethodNotAllowed, "OTSMethodNotAllowedOnly POST method for requests is supported.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, errorf(CodeParameterInvalid, "Read the request body: %v.", err)
	}
	if len(body) > maxBodyBytes {
		return nil, errorf(CodeBodyTooLarge, "The size of POST data is too large.")
	}
	op := strings.TrimPrefix(r.URL.Path, "/")
	h, ok := operations[op]
	if !ok {
		return nil, errorf(CodeParameterInvalid, "Unsupported operation: '%s'.", op)
	}
	s.mu.Lock()
	s.stats.Calls[op]++
	s.mu.Unlock()
	if e := s.authenticate(r, body); e != nil {
		return nil, e
	}
	s.mu.Lock()
	code, rest := takeFault(s.faults, op)
	s.faults = rest
	s.mu.Unlock()
	if code != "" {
		return nil, codeError(code)
	}
	return h(s, body)
}

func decode(body []byte, m proto.Message) *apiError {
	if err := proto.Unmarshal(body, m); err != nil {
		return errorf(CodeParameterInvalid, "Invalid request body: %v.", err)
	}
	return nil
}

// tableLocked returns the table or OTSObjectNotExist; callers hold s.mu.
func (s *Server) tableLocked(name string) (*table, *apiError) {
	t, ok := s.tables[name]
	if !ok {
		return nil, errorf(CodeObjectNotExist, "Requested table does not exist.")
	}
	return t, nil
}

func consumed(read, write int32) *otsprotocol.ConsumedCapacity {
	return &otsprotocol.ConsumedCapacity{CapacityUnit: &otsprotocol.CapacityUnit{Read: &read, Write: &write}}
}

func (s *Server) createTable(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.CreateTableRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := newTable(&req, s.now())
	if e != nil {
		return nil, e
	}
	if _, exists := s.tables[t.name]; exists {
		return nil, errorf(CodeObjectAlreadyExist, "Requested table already exists.")
	}
	s.tables[t.name] = t
	return &otsprotocol.CreateTableResponse{}, nil
}

func (s *Server) describeTable(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.DescribeTableRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.tableLocked(req.GetTableName())
	if e != nil {
		return nil, e
	}
	return t.describe(), nil
}

func (s *Server) listTable(body []byte) (proto.Message, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.tables))
	for n := range s.tables {
		names = append(names, n)
	}
	slices.Sort(names)
	return &otsprotocol.ListTableResponse{TableNames: names}, nil
}

func (s *Server) deleteTable(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.DeleteTableRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.tableLocked(req.GetTableName()); e != nil {
		return nil, e
	}
	delete(s.tables, req.GetTableName())
	return &otsprotocol.DeleteTableResponse{}, nil
}

// oneKey decodes a PlainBuffer holding exactly one primary key.
func (t *table) oneKey(b []byte, what string, bounds bool) ([]value, *apiError) {
	rows, err := decodeRows(b)
	if err != nil {
		return nil, errorf(CodeParameterInvalid, "Invalid %s: %v.", what, err)
	}
	if len(rows) != 1 || len(rows[0].cells) != 0 {
		return nil, errorf(CodeParameterInvalid, "Invalid %s: want one primary key and no attribute column.", what)
	}
	return t.primaryKey(rows[0].pk, bounds)
}

func checkVersions(maxVersions *int32, timeRange *otsprotocol.TimeRange) *apiError {
	switch {
	case maxVersions == nil && timeRange == nil:
		return errorf(CodeParameterInvalid, "Neither MaxVersions nor TimeRange is set.")
	case maxVersions != nil && *maxVersions < 1:
		return errorf(CodeParameterInvalid, "MaxVersions must be at least 1, got %d.", *maxVersions)
	case timeRange != nil:
		return errorf(CodeParameterInvalid, "emulator: TimeRange is not supported; use MaxVersions.")
	}
	return nil
}

func (s *Server) getRange(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.GetRangeRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkVersions(req.MaxVersions, req.TimeRange); e != nil {
		return nil, e
	}
	switch {
	case req.GetDirection() != otsprotocol.Direction_FORWARD:
		return nil, errorf(CodeParameterInvalid, "emulator: only FORWARD ranges are supported.")
	case len(req.Filter) > 0:
		return nil, errorf(CodeParameterInvalid, "emulator: GetRange filters are not supported.")
	case req.Limit != nil && req.GetLimit() <= 0:
		return nil, errorf(CodeParameterInvalid, "The limit must be greater than 0, got %d.", req.GetLimit())
	case req.GetDataBlockTypeHint() != otsprotocol.DataBlockType_DBT_PLAIN_BUFFER:
		return nil, errorf(CodeParameterInvalid, "emulator: only PlainBuffer rows are supported.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.tableLocked(req.GetTableName())
	if e != nil {
		return nil, e
	}
	start, e := t.oneKey(req.InclusiveStartPrimaryKey, "inclusive start primary key", true)
	if e != nil {
		return nil, e
	}
	end, e := t.oneKey(req.ExclusiveEndPrimaryKey, "exclusive end primary key", true)
	if e != nil {
		return nil, e
	}
	if comparePK(start, end) >= 0 {
		return nil, errorf(CodeParameterInvalid, "Begin key must less than end key in FORWARD.")
	}
	limit := s.opts.MaxRowsPerPage
	if req.Limit != nil {
		limit = min(limit, int(req.GetLimit()))
	}
	now := s.now()
	rows := t.ordered()
	i, _ := slices.BinarySearchFunc(rows, start, func(r *storedRow, k []value) int { return comparePK(r.pk, k) })
	w := newPBWriter()
	n := 0
	resp := &otsprotocol.GetRangeResponse{DataBlockType: otsprotocol.DataBlockType_DBT_PLAIN_BUFFER.Enum(),
		CompressType: otsprotocol.CompressType_CPT_NONE.Enum()}
	for ; i < len(rows) && comparePK(rows[i].pk, end) < 0; i++ {
		if !t.visible(rows[i], now) {
			continue
		}
		if n == limit {
			next := newPBWriter()
			next.row(t.pkCells(rows[i].pk), nil)
			resp.NextStartPrimaryKey = next.Bytes()
			break
		}
		t.encodeRow(w, rows[i], req.ColumnsToGet)
		n++
	}
	if n > 0 {
		resp.Rows = w.Bytes()
	} else {
		resp.Rows = []byte{}
	}
	s.stats.RowsRead += n
	resp.Consumed = consumed(int32(1+len(resp.Rows)/4096), 0)
	return resp, nil
}

func (s *Server) getRow(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.GetRowRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkVersions(req.MaxVersions, req.TimeRange); e != nil {
		return nil, e
	}
	if len(req.Filter) > 0 {
		return nil, errorf(CodeParameterInvalid, "emulator: GetRow filters are not supported.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.tableLocked(req.GetTableName())
	if e != nil {
		return nil, e
	}
	pk, e := t.oneKey(req.PrimaryKey, "primary key", false)
	if e != nil {
		return nil, e
	}
	resp := &otsprotocol.GetRowResponse{Consumed: consumed(1, 0), Row: []byte{}}
	if r := t.lookup(pk, s.now()); r != nil {
		w := newPBWriter()
		t.encodeRow(w, r, req.ColumnsToGet)
		resp.Row = w.Bytes()
		s.stats.RowsRead++
	}
	return resp, nil
}

// applyRow applies one row change under its condition; callers hold s.mu.
func (s *Server) applyRow(t *table, typ otsprotocol.OperationType, change []byte, cond *otsprotocol.Condition) ([]value, *apiError) {
	rows, err := decodeRows(change)
	if err != nil {
		return nil, errorf(CodeParameterInvalid, "Invalid row change: %v.", err)
	}
	if len(rows) != 1 {
		return nil, errorf(CodeParameterInvalid, "Invalid row change: %d rows, want 1.", len(rows))
	}
	row := rows[0]
	pk, e := t.primaryKey(row.pk, false)
	if e != nil {
		return nil, e
	}
	now := s.now()
	switch typ {
	case otsprotocol.OperationType_PUT:
		if row.deleted {
			return nil, errorf(CodeParameterInvalid, "A put row change carries a delete marker.")
		}
	case otsprotocol.OperationType_DELETE:
		if !row.deleted || len(row.cells) > 0 {
			return nil, errorf(CodeParameterInvalid, "A delete row change must be a primary key with a delete marker.")
		}
	default:
		return nil, errorf(CodeParameterInvalid, "emulator: row operation %s is not supported.", typ)
	}
	if e := checkCondition(cond, t.lookup(pk, now)); e != nil {
		return nil, e
	}
	if typ == otsprotocol.OperationType_DELETE {
		t.delete(pk)
		return pk, nil
	}
	if e := t.put(pk, row.cells, now); e != nil {
		return nil, e
	}
	s.stats.RowsWritten++
	return pk, nil
}

func (s *Server) putRow(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.PutRowRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.TransactionId != nil {
		return nil, errorf(CodeParameterInvalid, "emulator: transactions are not supported.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.tableLocked(req.GetTableName())
	if e != nil {
		return nil, e
	}
	pk, e := s.applyRow(t, otsprotocol.OperationType_PUT, req.Row, req.Condition)
	if e != nil {
		return nil, e
	}
	resp := &otsprotocol.PutRowResponse{Consumed: consumed(0, 1)}
	if req.GetReturnContent().GetReturnType() == otsprotocol.ReturnType_RT_PK {
		w := newPBWriter()
		w.row(t.pkCells(pk), nil)
		resp.Row = w.Bytes()
	}
	return resp, nil
}

func (s *Server) batchWriteRow(body []byte) (proto.Message, *apiError) {
	var req otsprotocol.BatchWriteRowRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.GetIsAtomic() || req.TransactionId != nil {
		return nil, errorf(CodeParameterInvalid, "emulator: atomic batches and transactions are not supported.")
	}
	total := 0
	for _, tr := range req.Tables {
		total += len(tr.Rows)
	}
	if total == 0 {
		return nil, errorf(CodeParameterInvalid, "No row in the BatchWriteRow request.")
	}
	if total > MaxBatchWriteRows {
		return nil, errorf(CodeParameterInvalid, "Rows count exceeds the upper limit: %d.", MaxBatchWriteRows)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seenTables := map[string]bool{}
	for _, tr := range req.Tables {
		if seenTables[tr.GetTableName()] {
			return nil, errorf(CodeParameterInvalid, "The table '%s' appears twice in the request.", tr.GetTableName())
		}
		seenTables[tr.GetTableName()] = true
		t, e := s.tableLocked(tr.GetTableName())
		if e != nil {
			return nil, e
		}
		// Two changes of one row in a request are refused as a whole, as the
		// service does, before anything is applied.
		keys := map[string]bool{}
		for _, rr := range tr.Rows {
			rows, err := decodeRows(rr.RowChange)
			if err != nil || len(rows) != 1 {
				continue // reported on the row below
			}
			pk, e := t.primaryKey(rows[0].pk, false)
			if e != nil {
				continue
			}
			k := keyOf(pk)
			if keys[k] {
				return nil, errorf(CodeParameterInvalid, "The input parameter is invalid: duplicated primary key in one request.")
			}
			keys[k] = true
		}
	}
	resp := &otsprotocol.BatchWriteRowResponse{}
	for _, tr := range req.Tables {
		t := s.tables[tr.GetTableName()]
		out := &otsprotocol.TableInBatchWriteRowResponse{TableName: ptr(tr.GetTableName())}
		for _, rr := range tr.Rows {
			var e *apiError
			if code, rest := takeFault(s.rowFaults, OpBatchWriteRow); code != "" {
				s.rowFaults = rest
				e = codeError(code)
			} else {
				_, e = s.applyRow(t, rr.GetType(), rr.RowChange, rr.Condition)
			}
			if e != nil {
				s.stats.ErrorsByCode[e.code]++
				out.Rows = append(out.Rows, &otsprotocol.RowInBatchWriteRowResponse{IsOk: ptr(false),
					Error: &otsprotocol.Error{Code: ptr(e.code), Message: ptr(e.message)}})
				continue
			}
			out.Rows = append(out.Rows, &otsprotocol.RowInBatchWriteRowResponse{IsOk: ptr(true), Consumed: consumed(0, 1)})
		}
		resp.Tables = append(resp.Tables, out)
	}
	return resp, nil
}
