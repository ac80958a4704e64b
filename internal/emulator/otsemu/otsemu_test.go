package otsemu

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"vpnauthz/internal/emulator/cred"
)

var (
	longKey = cred.Credential{AccessKeyID: "LTAIlongtermkey01", AccessKeySecret: "long-term-secret-01"}
	stsKey  = cred.Credential{AccessKeyID: "STS.emukey01", AccessKeySecret: "sts-secret-01", SecurityToken: "CAISemutoken01"}
)

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Credentials = append(opts.Credentials, longKey, stsKey)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// client is an SDK client that retries nothing, so every answer is seen.
func client(s *Server, c cred.Credential) *tablestore.TableStoreClient {
	cfg := tablestore.NewDefaultTableStoreConfig()
	cfg.RetryTimes = 0
	return tablestore.NewClientWithConfig(s.Endpoint(), s.Instance(), c.AccessKeyID, c.AccessKeySecret, c.SecurityToken, cfg)
}

func createTable(t *testing.T, c *tablestore.TableStoreClient, name string, ttl int) error {
	t.Helper()
	meta := &tablestore.TableMeta{TableName: name}
	meta.AddPrimaryKeyColumn("p", tablestore.PrimaryKeyType_STRING)
	meta.AddPrimaryKeyColumn("n", tablestore.PrimaryKeyType_INTEGER)
	_, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta,
		TableOption: &tablestore.TableOption{TimeToAlive: ttl, MaxVersion: 1}, ReservedThroughput: &tablestore.ReservedThroughput{}})
	return err
}

func pk(p string, n int64) *tablestore.PrimaryKey {
	k := &tablestore.PrimaryKey{}
	k.AddPrimaryKeyColumn("p", p)
	k.AddPrimaryKeyColumn("n", n)
	return k
}

// wantCode checks an SDK error's code and HTTP status.
func wantCode(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	var oe *tablestore.OtsError
	if !errors.As(err, &oe) || oe.Code != code || oe.HttpStatusCode != status {
		t.Errorf("%s: %v, want %s with HTTP %d", what, err, code, status)
	}
}

func TestTables(t *testing.T) {
	s := start(t, Options{})
	c := client(s, stsKey)
	if err := createTable(t, c, "t1", 86400*30); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "create twice", createTable(t, c, "t1", -1), CodeObjectAlreadyExist, 409)
	wantCode(t, "short TTL", createTable(t, c, "t2", 60), CodeParameterInvalid, 400)
	wantCode(t, "bad name", createTable(t, c, "9t", -1), CodeParameterInvalid, 400)
	desc, err := c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "t1"})
	if err != nil || desc.TableOption.TimeToAlive != 86400*30 || len(desc.TableMeta.SchemaEntry) != 2 || *desc.TableMeta.SchemaEntry[1].Name != "n" {
		t.Errorf("describe: %+v %v", desc, err)
	}
	_, err = c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "nope"})
	wantCode(t, "describe missing", err, CodeObjectNotExist, 404)
	list, err := c.ListTable()
	if err != nil || strings.Join(list.TableNames, ",") != "t1" {
		t.Errorf("list: %+v %v", list, err)
	}
	if _, err := c.DeleteTable(&tablestore.DeleteTableRequest{TableName: "t1"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Table("t1"); ok {
		t.Error("table survives DeleteTable")
	}
}

func TestRowsRoundTrip(t *testing.T) {
	s := start(t, Options{})
	c := client(s, longKey)
	if err := createTable(t, c, "t", -1); err != nil {
		t.Fatal(err)
	}
	ch := &tablestore.PutRowChange{TableName: "t", PrimaryKey: pk("a", 1)}
	ch.AddColumn("s", "héllo")
	ch.AddColumn("i", int64(-42))
	ch.AddColumn("b", true)
	ch.AddColumn("f", 1.5)
	ch.AddColumn("x", []byte{0, 1, 2})
	ch.SetCondition(tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST)
	if _, err := c.PutRow(&tablestore.PutRowRequest{PutRowChange: ch}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutRow(&tablestore.PutRowRequest{PutRowChange: ch})
	wantCode(t, "put twice expecting no row", err, CodeConditionCheckFail, 403)

	got, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{TableName: "t", PrimaryKey: pk("a", 1), MaxVersion: 1}})
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	for _, col := range got.Columns {
		vals[col.ColumnName] = col.Value
		if col.Timestamp == 0 {
			t.Errorf("column %s has no version", col.ColumnName)
		}
	}
	if vals["s"] != "héllo" || vals["i"] != int64(-42) || vals["b"] != true || vals["f"] != 1.5 || !bytes.Equal(vals["x"].([]byte), []byte{0, 1, 2}) {
		t.Errorf("row read back: %v", vals)
	}
	none, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{TableName: "t", PrimaryKey: pk("a", 2), MaxVersion: 1}})
	if err != nil || len(none.Columns) != 0 {
		t.Errorf("missing row: %+v %v", none, err)
	}
	bad := &tablestore.PutRowChange{TableName: "t", PrimaryKey: &tablestore.PrimaryKey{}}
	bad.PrimaryKey.AddPrimaryKeyColumn("p", "a")
	bad.AddColumn("s", "x")
	bad.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
	_, err = c.PutRow(&tablestore.PutRowRequest{PutRowChange: bad})
	wantCode(t, "short primary key", err, CodeParameterInvalid, 400)
}

func TestGetRangeOrderAndPaging(t *testing.T) {
	s := start(t, Options{MaxRowsPerPage: 4})
	c := client(s, longKey)
	if err := createTable(t, c, "t", -1); err != nil {
		t.Fatal(err)
	}
	req := &tablestore.BatchWriteRowRequest{}
	for _, p := range []string{"b", "a", "c"} {
		for _, n := range []int64{10, -3, 2} {
			ch := &tablestore.PutRowChange{TableName: "t", PrimaryKey: pk(p, n)}
			ch.AddColumn("v", p)
			ch.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
			req.AddRowChange(ch)
		}
	}
	if _, err := c.BatchWriteRow(req); err != nil {
		t.Fatal(err)
	}
	start := &tablestore.PrimaryKey{}
	start.AddPrimaryKeyColumn("p", "b")
	start.AddPrimaryKeyColumnWithMinValue("n")
	end := &tablestore.PrimaryKey{}
	end.AddPrimaryKeyColumnWithMaxValue("p")
	end.AddPrimaryKeyColumnWithMaxValue("n")
	var got []string
	calls := 0
	for start != nil {
		resp, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &tablestore.RangeRowQueryCriteria{
			TableName: "t", StartPrimaryKey: start, EndPrimaryKey: end, MaxVersion: 1}})
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, r := range resp.Rows {
			got = append(got, r.PrimaryKey.PrimaryKeys[0].Value.(string)+":"+strconv.FormatInt(r.PrimaryKey.PrimaryKeys[1].Value.(int64), 10))
		}
		start = resp.NextStartPrimaryKey
	}
	if want := "b:-3 b:2 b:10 c:-3 c:2 c:10"; strings.Join(got, " ") != want || calls != 2 {
		t.Errorf("rows %v in %d calls, want %s in 2", got, calls, want)
	}
	_, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &tablestore.RangeRowQueryCriteria{
		TableName: "t", StartPrimaryKey: end, EndPrimaryKey: pk("a", 1), MaxVersion: 1}})
	wantCode(t, "reversed range", err, CodeParameterInvalid, 400)
}

// TestGetRangeAfterReplace: a range read after a row was replaced answers
// the row as it now is (a range read once kept answering the first version).
func TestGetRangeAfterReplace(t *testing.T) {
	s := start(t, Options{})
	c := client(s, longKey)
	if err := createTable(t, c, "t", -1); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		start, end := &tablestore.PrimaryKey{}, &tablestore.PrimaryKey{}
		start.AddPrimaryKeyColumn("p", "a")
		start.AddPrimaryKeyColumnWithMinValue("n")
		end.AddPrimaryKeyColumn("p", "a")
		end.AddPrimaryKeyColumnWithMaxValue("n")
		resp, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &tablestore.RangeRowQueryCriteria{
			TableName: "t", StartPrimaryKey: start, EndPrimaryKey: end, MaxVersion: 1}})
		if err != nil || len(resp.Rows) != 1 || len(resp.Rows[0].Columns) != 1 {
			t.Fatalf("GetRange: %+v %v", resp, err)
		}
		return resp.Rows[0].Columns[0].Value.(string)
	}
	for _, v := range []string{"first", "second", "third"} {
		ch := &tablestore.PutRowChange{TableName: "t", PrimaryKey: pk("a", 1)}
		ch.AddColumn("v", v)
		ch.SetCondition(tablestore.RowExistenceExpectation_IGNORE)
		if _, err := c.PutRow(&tablestore.PutRowRequest{PutRowChange: ch}); err != nil {
			t.Fatal(err)
		}
		if got := read(); got != v {
			t.Errorf("range read after writing %q: %q", v, got)
		}
	}
}

func TestBatchConditions(t *testing.T) {
	s := start(t, Options{})
	c := client(s, stsKey)
	if err := createTable(t, c, "t", -1); err != nil {
		t.Fatal(err)
	}
	put := func(n int64, rev int64, exist tablestore.RowExistenceExpectation, cond tablestore.ColumnFilter) *tablestore.PutRowChange {
		ch := &tablestore.PutRowChange{TableName: "t", PrimaryKey: pk("a", n)}
		ch.AddColumn("rev", rev)
		ch.SetCondition(exist)
		if cond != nil {
			ch.SetColumnCondition(cond)
		}
		return ch
	}
	eq := func(v int64, ifMissing bool) *tablestore.SingleColumnCondition {
		c := tablestore.NewSingleColumnCondition("rev", tablestore.CT_EQUAL, v)
		c.FilterIfMissing = ifMissing
		return c
	}
	req := &tablestore.BatchWriteRowRequest{}
	req.AddRowChange(put(1, 1, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST, nil))
	req.AddRowChange(put(2, 1, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST, nil))
	if _, err := c.BatchWriteRow(req); err != nil {
		t.Fatal(err)
	}
	or := tablestore.NewCompositeColumnCondition(tablestore.LO_OR)
	or.AddFilter(eq(7, true))
	or.AddFilter(eq(1, true))
	not := tablestore.NewCompositeColumnCondition(tablestore.LO_NOT)
	not.AddFilter(eq(1, true))
	cases := []struct {
		ch     *tablestore.PutRowChange
		wantOK bool
	}{
		{put(1, 2, tablestore.RowExistenceExpectation_EXPECT_EXIST, eq(1, true)), true},
		{put(2, 2, tablestore.RowExistenceExpectation_EXPECT_EXIST, eq(9, true)), false},
		{put(3, 1, tablestore.RowExistenceExpectation_EXPECT_EXIST, nil), false},
		{put(4, 1, tablestore.RowExistenceExpectation_IGNORE, eq(5, false)), true}, // missing column passes
		{put(5, 1, tablestore.RowExistenceExpectation_IGNORE, eq(5, true)), false},
		{put(2, 3, tablestore.RowExistenceExpectation_EXPECT_EXIST, or), true},
		{put(4, 3, tablestore.RowExistenceExpectation_EXPECT_EXIST, not), false},
	}
	for i, cs := range cases {
		req = &tablestore.BatchWriteRowRequest{}
		req.AddRowChange(cs.ch)
		resp, err := c.BatchWriteRow(req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.TableToRowsResult["t"][0]
		if r.IsSucceed != cases[i].wantOK {
			t.Errorf("row %d: succeeded %v, want %v (%+v)", i, r.IsSucceed, cases[i].wantOK, r.Error)
		}
		if !r.IsSucceed && r.Error.Code != CodeConditionCheckFail {
			t.Errorf("row %d: %+v, want %s", i, r.Error, CodeConditionCheckFail)
		}
	}

	big := &tablestore.BatchWriteRowRequest{}
	for n := range int64(MaxBatchWriteRows + 1) {
		big.AddRowChange(put(100+n, 1, tablestore.RowExistenceExpectation_IGNORE, nil))
	}
	_, err := c.BatchWriteRow(big)
	wantCode(t, "201 rows", err, CodeParameterInvalid, 400)
	dup := &tablestore.BatchWriteRowRequest{}
	dup.AddRowChange(put(1, 1, tablestore.RowExistenceExpectation_IGNORE, nil))
	dup.AddRowChange(put(1, 1, tablestore.RowExistenceExpectation_IGNORE, nil))
	_, err = c.BatchWriteRow(dup)
	wantCode(t, "one row twice", err, CodeParameterInvalid, 400)
	missing := &tablestore.BatchWriteRowRequest{}
	ch := put(1, 1, tablestore.RowExistenceExpectation_IGNORE, nil)
	ch.TableName = "nope"
	missing.AddRowChange(ch)
	_, err = c.BatchWriteRow(missing)
	wantCode(t, "missing table", err, CodeObjectNotExist, 404)
}

func TestAuth(t *testing.T) {
	s := start(t, Options{})
	expired := cred.Credential{AccessKeyID: "STS.expired01", AccessKeySecret: "expired-secret", SecurityToken: "CAISexpired", Expires: time.Now().Add(-time.Minute)}
	s.Credentials().Add(expired)
	cases := []struct {
		name string
		c    cred.Credential
		inst string
		want string
	}{
		{"long-term key", longKey, "", ""},
		{"sts key", stsKey, "", ""},
		{"wrong secret", cred.Credential{AccessKeyID: stsKey.AccessKeyID, AccessKeySecret: "nope", SecurityToken: stsKey.SecurityToken}, "", "Signature mismatch."},
		{"unknown key", cred.Credential{AccessKeyID: "LTAInobody", AccessKeySecret: "x"}, "", "The AccessKeyID does not exist."},
		{"missing token", cred.Credential{AccessKeyID: stsKey.AccessKeyID, AccessKeySecret: stsKey.AccessKeySecret}, "", "security token you provided is invalid"},
		{"wrong token", cred.Credential{AccessKeyID: stsKey.AccessKeyID, AccessKeySecret: stsKey.AccessKeySecret, SecurityToken: "CAISother"}, "", "security token you provided is invalid"},
		{"expired token", expired, "", "has expired"},
		{"other instance", longKey, "someoneelse", "The instance is not found."},
	}
	for _, c := range cases {
		cl := client(s, c.c)
		if c.inst != "" {
			cfg := tablestore.NewDefaultTableStoreConfig()
			cfg.RetryTimes = 0
			cl = tablestore.NewClientWithConfig(s.Endpoint(), c.inst, c.c.AccessKeyID, c.c.AccessKeySecret, c.c.SecurityToken, cfg)
		}
		_, err := cl.ListTable()
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		wantCode(t, c.name, err, CodeAuthFailed, 403)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}

	resp, err := http.Post(s.Endpoint()+"/ListTable", "application/x-protobuf", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unsigned request: HTTP %d, want 400 (missing headers)", resp.StatusCode)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, Options{})
	c := client(s, longKey)
	s.FailNext(OpCreateTable, 1, CodeServerUnavailable)
	wantCode(t, "scripted fault", createTable(t, c, "t", -1), CodeServerUnavailable, 503)
	if err := createTable(t, c, "t", -1); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
	s.FailNext("", 2, CodeServerBusy)
	_, err := c.ListTable()
	wantCode(t, "any op 1", err, CodeServerBusy, 503)
	_, err = c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "t"})
	wantCode(t, "any op 2", err, CodeServerBusy, 503)

	s.SetDown(true)
	c = client(s, longKey) // a new connection: one kept alive would see EOF instead
	if _, err := c.ListTable(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("down: %v", err)
	}
	s.SetDown(false)
	if _, err := c.ListTable(); err != nil {
		t.Errorf("up again: %v", err)
	}
	st := s.Stats()
	if st.Calls[OpCreateTable] != 2 || st.Calls[OpListTable] != 2 || st.ErrorsByCode[CodeServerBusy] != 2 {
		t.Errorf("stats %+v", st)
	}
}
