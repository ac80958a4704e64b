package statestore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	//lint:ignore SA1019 the SDK's otsprotocol types are generated for this API and lack ProtoReflect
	"github.com/golang/protobuf/proto"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/retry"
)

// attempts is the stores' MaxAttempts in these tests.
const attempts = 3

var testCred = cred.Credential{
	AccessKeyID:     "STS.StateTestKey01",
	AccessKeySecret: "state-test-secret-01",
	SecurityToken:   "CAISstatetesttoken01",
}

var testLoc = Location{Instance: otsemu.DefaultInstance, Table: "vpnauthz_state"}

func startOTS(t *testing.T, opts otsemu.Options) *otsemu.Server {
	t.Helper()
	opts.Credentials = append(opts.Credentials, testCred)
	srv, err := otsemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func newStore(t *testing.T, srv *otsemu.Server, edit func(*Options)) *Store {
	t.Helper()
	opts := Options{
		Location:    testLoc,
		Endpoint:    srv.Endpoint(),
		Credentials: Credentials{AccessKeyID: testCred.AccessKeyID, AccessKeySecret: testCred.AccessKeySecret, SecurityToken: testCred.SecurityToken},
		Retry:       retry.Policy{MaxAttempts: attempts, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// setupStore starts an emulator with the table created.
func setupStore(t *testing.T, opts otsemu.Options) (*otsemu.Server, *Store) {
	t.Helper()
	srv := startOTS(t, opts)
	s := newStore(t, srv, nil)
	if _, err := s.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.ResetStats()
	return srv, s
}

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 123456789, time.UTC)

func record(account, region string, i int) lifecycle.Record {
	return lifecycle.Record{
		AccountID:    account,
		Region:       region,
		FindingUID:   fmt.Sprintf("vpnauthz:%s:%s:vco-%06d:untrusted-account:1999000011112222", account, region, i),
		ConnectionID: fmt.Sprintf("vco-%06d", i),
		RuleID:       "untrusted-account",
		Severity:     "high",
		BindUID:      "1999000011112222",
		BindInstance: "cen-x",
		Status:       "FAIL",
		Lifecycle:    lifecycle.LifecycleNew,
		FirstSeenAt:  t0,
		LastSeenAt:   t0,
		LastScanID:   "scan-1",
		Revision:     1,
	}
}

func creates(recs ...lifecycle.Record) []lifecycle.Write {
	out := make([]lifecycle.Write, len(recs))
	for i, r := range recs {
		out[i] = lifecycle.Write{Record: r}
	}
	return out
}

// mustWrite writes and fails the test on any error.
func mustWrite(t *testing.T, s *Store, writes []lifecycle.Write) {
	t.Helper()
	errs, err := s.Write(context.Background(), writes)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("write %d (%s): %v", i, writes[i].Record.FindingUID, e)
		}
	}
}

// countingTransport reports the rows of each BatchWriteRow request.
type countingTransport struct {
	base    http.RoundTripper
	onBatch func(rows int)
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/BatchWriteRow" {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var m otsprotocol.BatchWriteRowRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		rows := 0
		for _, tb := range m.Tables {
			rows += len(tb.Rows)
		}
		c.onBatch(rows)
	}
	return c.base.RoundTrip(req)
}

// dropFirstAnswer lets the first BatchWriteRow request after it is armed
// reach the server, then drops the answer as a broken connection would.
type dropFirstAnswer struct {
	base  http.RoundTripper
	armed atomic.Bool
	init  sync.Once
}

func (d *dropFirstAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	d.init.Do(func() { d.armed.Store(true) })
	if req.URL.Path != "/BatchWriteRow" || !d.armed.CompareAndSwap(true, false) {
		return d.base.RoundTrip(req)
	}
	resp, err := d.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, io.ErrUnexpectedEOF
}

// createForeign creates a table of another shape through the SDK.
func createForeign(t *testing.T, srv *otsemu.Server, name string) {
	t.Helper()
	c := tablestore.NewClientWithConfig(srv.Endpoint(), srv.Instance(), testCred.AccessKeyID, testCred.AccessKeySecret, testCred.SecurityToken, nil)
	meta := &tablestore.TableMeta{TableName: name}
	meta.AddPrimaryKeyColumn("id", tablestore.PrimaryKeyType_INTEGER)
	_, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta,
		TableOption: &tablestore.TableOption{TimeToAlive: -1, MaxVersion: 1}, ReservedThroughput: &tablestore.ReservedThroughput{}})
	if err != nil {
		t.Fatal(err)
	}
}
