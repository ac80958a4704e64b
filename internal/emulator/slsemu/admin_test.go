package slsemu

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/aliyun/aliyun-log-go-sdk/producer"
)

func TestProjectsAndLogstores(t *testing.T) {
	s := newTestServer(t, Options{Region: "cn-shanghai"})
	c := newClient(t, s, plainKeyID, plainSecret, "")

	if _, err := c.CreateProject("vpn-scan-2", "scanner findings"); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	_, err := c.CreateProject("vpn-scan-2", "again")
	assertSLSError(t, err, http.StatusBadRequest, "ProjectAlreadyExist")
	_, err = c.CreateProject("Bad_Name", "")
	assertSLSError(t, err, http.StatusBadRequest, "ParameterInvalid")

	p, err := c.GetProject("vpn-scan-2")
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if p.Name != "vpn-scan-2" || p.Description != "scanner findings" || p.Status != "Normal" || p.Region != "cn-shanghai" {
		t.Errorf("GetProject = %+v", p)
	}
	_, err = c.GetProject("missing-project")
	assertSLSError(t, err, http.StatusNotFound, "ProjectNotExist")
	names, err := c.ListProject()
	if err != nil || !reflect.DeepEqual(names, []string{"vpn-audit", "vpn-scan-2"}) {
		t.Errorf("ListProject = %v, %v", names, err)
	}

	if err := c.CreateLogStore("vpn-scan-2", "scan-findings", 90, 4, true, 16); err != nil {
		t.Fatalf("CreateLogStore: %v", err)
	}
	err = c.CreateLogStore("vpn-scan-2", "scan-findings", 90, 4, true, 16)
	assertSLSError(t, err, http.StatusBadRequest, "LogStoreAlreadyExist")
	err = c.CreateLogStore("missing-project", "scan-findings", 90, 4, true, 16)
	assertSLSError(t, err, http.StatusNotFound, "ProjectNotExist")
	err = c.CreateLogStore("vpn-scan-2", "x", 90, 4, true, 16)
	assertSLSError(t, err, http.StatusBadRequest, "ParameterInvalid")

	ls, err := c.GetLogStore("vpn-scan-2", "scan-findings")
	if err != nil {
		t.Fatalf("GetLogStore: %v", err)
	}
	if ls.Name != "scan-findings" || ls.TTL != 90 || ls.ShardCount != 4 || !ls.AutoSplit || ls.MaxSplitShard != 16 || ls.CreateTime == 0 {
		t.Errorf("GetLogStore = %+v", ls)
	}
	_, err = c.GetLogStore("vpn-scan-2", "other")
	assertSLSError(t, err, http.StatusNotFound, "LogStoreNotExist")
	stores, err := c.ListLogStore("vpn-scan-2")
	if err != nil || !reflect.DeepEqual(stores, []string{"scan-findings"}) {
		t.Errorf("ListLogStore = %v, %v", stores, err)
	}
	if err := c.PutLogs("vpn-scan-2", "scan-findings", group("t", "", nil, entry(time.Now(), "k", "v"))); err != nil {
		t.Errorf("PutLogs to the new logstore: %v", err)
	}
}

func TestIndex(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")

	_, err := c.GetIndex(testProject, testLogstore)
	assertSLSError(t, err, http.StatusNotFound, "IndexConfigNotExist")
	err = c.UpdateIndex(testProject, testLogstore, *sls.CreateDefaultIndex())
	assertSLSError(t, err, http.StatusNotFound, "IndexConfigNotExist")
	if _, ok := s.Index(testProject, testLogstore); ok {
		t.Fatal("Index reports a configuration before any was created")
	}

	index := sls.Index{
		Keys: map[string]sls.IndexKey{
			"severity":          {Token: []string{" "}, Type: "text"},
			"vpn_connection_id": {Token: []string{" "}, Type: "text", DocValue: true},
		},
		Line: sls.CreateDefaultIndex().Line,
	}
	if err := c.CreateIndex(testProject, testLogstore, index); err != nil {
		t.Fatalf("CreateIndex: %v", err)
	}
	assertSLSError(t, c.CreateIndex(testProject, testLogstore, index), http.StatusBadRequest, "IndexAlreadyExist")

	got, err := c.GetIndex(testProject, testLogstore)
	if err != nil {
		t.Fatalf("GetIndex: %v", err)
	}
	if !reflect.DeepEqual(*got, index) {
		t.Errorf("GetIndex = %+v, want %+v", *got, index)
	}
	stored, ok := s.Index(testProject, testLogstore)
	sent, _ := json.Marshal(index)
	if !ok || string(stored) != string(sent) {
		t.Errorf("Index() = %s, want %s", stored, sent)
	}

	index.Keys["region"] = sls.IndexKey{Token: []string{" "}, Type: "text"}
	if err := c.UpdateIndex(testProject, testLogstore, index); err != nil {
		t.Fatalf("UpdateIndex: %v", err)
	}
	got, err = c.GetIndex(testProject, testLogstore)
	if err != nil || len(got.Keys) != 3 {
		t.Errorf("after UpdateIndex GetIndex = %+v, %v", got, err)
	}
	assertSLSError(t, c.CreateIndexString(testProject, testLogstore, "{not json"), http.StatusBadRequest, "ParameterInvalid")
}

func TestGetLogs(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	tags := map[string]string{"host": "fc-1"}
	if err := c.PutLogs(testProject, testLogstore, group("finding", "10.1.1.1", tags,
		entry(base, "severity", "high", "region", "cn-hangzhou", "detail", "grant to account 1234"),
		entry(base.Add(time.Second), "severity", "low", "region", "cn-hangzhou", "detail", "ok"),
		entry(base.Add(2*time.Second), "severity", "high", "region", "cn-beijing", "detail", "grant-to-other"),
	)); err != nil {
		t.Fatal(err)
	}
	if err := c.PutLogs(testProject, testLogstore, group("summary", "10.1.1.1", nil,
		entry(base.Add(3*time.Second), "scanned", "3", "severity", "none"),
	)); err != nil {
		t.Fatal(err)
	}
	from, to := base.Unix(), base.Add(time.Minute).Unix()

	tests := []struct {
		name     string
		topic    string
		from, to int64
		query    string
		lines    int64
		offset   int64
		reverse  bool
		want     []string // detail or scanned values, in order
	}{
		{name: "everything", query: "*", want: []string{"grant to account 1234", "ok", "grant-to-other", "3"}},
		{name: "empty query", query: "", want: []string{"grant to account 1234", "ok", "grant-to-other", "3"}},
		{name: "field", query: "severity: high", want: []string{"grant to account 1234", "grant-to-other"}},
		{name: "two fields", query: "severity:high and region:cn-hangzhou", want: []string{"grant to account 1234"}},
		{name: "case-insensitive and", query: "severity:HIGH AND region: cn-beijing", want: []string{"grant-to-other"}},
		{name: "topic field", query: "__topic__: summary", want: []string{"3"}},
		{name: "tag field", query: "__tag__:host: fc-1 and severity: low", want: []string{"ok"}},
		{name: "topic parameter", topic: "finding", query: "*", want: []string{"grant to account 1234", "ok", "grant-to-other"}},
		{name: "token in a value", query: "detail: account", want: []string{"grant to account 1234"}},
		{name: "phrase", query: `detail: "to account"`, want: []string{"grant to account 1234"}},
		{name: "prefix", query: "region: cn-*", want: []string{"grant to account 1234", "ok", "grant-to-other"}},
		{name: "bare word", query: "1234", want: []string{"grant to account 1234"}},
		{name: "no match", query: "severity: medium", want: nil},
		{name: "time range excludes the end", to: base.Add(2 * time.Second).Unix(), query: "*", want: []string{"grant to account 1234", "ok"}},
		{name: "lines and offset", query: "*", lines: 2, offset: 1, want: []string{"ok", "grant-to-other"}},
		{name: "reverse", query: "severity: high", reverse: true, want: []string{"grant-to-other", "grant to account 1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e := from, to
			if tt.from != 0 {
				f = tt.from
			}
			if tt.to != 0 {
				e = tt.to
			}
			resp, err := c.GetLogs(testProject, testLogstore, tt.topic, f, e, tt.query, tt.lines, tt.offset, tt.reverse)
			if err != nil {
				t.Fatalf("GetLogs: %v", err)
			}
			if !resp.IsComplete() || resp.Count != int64(len(tt.want)) {
				t.Errorf("progress %q count %d, want Complete %d", resp.Progress, resp.Count, len(tt.want))
			}
			var got []string
			for _, row := range resp.Logs {
				v := row["detail"]
				if row["__topic__"] == "summary" {
					v = row["scanned"]
				}
				got = append(got, v)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	resp, err := c.GetLogs(testProject, testLogstore, "", from, to, "severity: low", 0, 0, false)
	if err != nil || len(resp.Logs) != 1 {
		t.Fatalf("GetLogs: %v %+v", err, resp)
	}
	want := map[string]string{
		"__time__": strconv.FormatInt(base.Add(time.Second).Unix(), 10), "__topic__": "finding", "__source__": "10.1.1.1",
		"__tag__:host": "fc-1", "severity": "low", "region": "cn-hangzhou", "detail": "ok",
	}
	if !reflect.DeepEqual(resp.Logs[0], want) {
		t.Errorf("row %v, want %v", resp.Logs[0], want)
	}

	_, err = c.GetLogs(testProject, testLogstore, "", from, to, "* | select count(*)", 0, 0, false)
	assertSLSError(t, err, http.StatusBadRequest, "ParameterInvalid")
	_, err = c.GetLogs(testProject, "nosuchstore", "", from, to, "*", 0, 0, false)
	assertSLSError(t, err, http.StatusNotFound, "LogStoreNotExist")
}

type countingCallback struct{ ok, failed chan *producer.Result }

func (c countingCallback) Success(r *producer.Result) { c.ok <- r }
func (c countingCallback) Fail(r *producer.Result)    { c.failed <- r }

func TestProducerDelivers(t *testing.T) {
	s := newTestServer(t, Options{})
	cfg := producer.GetDefaultProducerConfig()
	cfg.Endpoint = s.Endpoint()
	cfg.CredentialsProvider = sls.NewStaticCredentialsProvider(stsKeyID, stsSecret, stsToken)
	cfg.HTTPClient = redirectingClient(t, s.Addr(), nil)
	cfg.LingerMs = 100
	cfg.Retries = 0
	cfg.AllowLogLevel = "warn"
	// With several io workers the SDK's Client fills its zero timeouts from
	// each worker at once, a data race inside the SDK; one worker avoids it.
	cfg.MaxIoWorkerCount = 1
	// Its metrics goroutine reads the producer while SafeClose writes it.
	cfg.DisableRuntimeMetrics = true
	p, err := producer.NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	cb := countingCallback{ok: make(chan *producer.Result, 10), failed: make(chan *producer.Result, 10)}
	now := time.Now()
	for i := range 5 {
		l := producer.GenerateLog(uint32(now.Unix()), map[string]string{"n": strconv.Itoa(i)})
		if err := p.SendLogWithCallBack(testProject, testLogstore, "produced", "scanner", l, cb); err != nil {
			t.Fatal(err)
		}
	}
	hashKey := "00000000000000000000000000000001"
	if err := p.HashSendLogWithCallBack(testProject, testLogstore, hashKey, "hashed", "scanner",
		producer.GenerateLog(uint32(now.Unix()), map[string]string{"n": "h"}), cb); err != nil {
		t.Fatal(err)
	}
	p.SafeClose()
	if len(cb.failed) != 0 {
		r := <-cb.failed
		t.Fatalf("producer batch failed: %s %s", r.GetErrorCode(), r.GetErrorMessage())
	}
	if len(cb.ok) != 6 {
		t.Errorf("%d success callbacks, want 6 (one per log)", len(cb.ok))
	}
	if got := len(s.LogsByTopic(testProject, testLogstore, "produced")); got != 5 {
		t.Errorf("stored %d produced logs, want 5", got)
	}
	if got := len(s.LogsByTopic(testProject, testLogstore, "hashed")); got != 1 {
		t.Errorf("stored %d hashed logs, want 1", got)
	}
}
