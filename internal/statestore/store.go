// Package statestore keeps the finding lifecycle's records in a Tablestore
// table through the Tablestore Go SDK: it implements lifecycle.Store.
//
// Table design. The primary key is (partition STRING, finding_uid STRING)
// with partition = "ACCOUNT/REGION". Tablestore distributes rows by the first
// primary key column and keeps them sorted by the whole key, so every record
// of one account and region sits in one partition, contiguous: Load is one
// GetRange from (p, INF_MIN) to (p, INF_MAX), paged by NextStartPrimaryKey
// only past 5,000 rows or 4 MB. Distinct (account, region) pairs spread over
// partitions, and a scan reads and writes each pair once, so no partition is
// hotter than its own inventory. Keying by account alone would put every
// region of a large account in one partition, and a hash prefix would buy
// spread the access pattern does not need at the cost of readable keys.
//
// Writes are PutRow changes in BatchWriteRow requests of at most 200 rows,
// each conditional on the revision the lifecycle computed it from; a row is
// replaced whole, so no column of an older state survives a newer one.
package statestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/retry"
)

// Primary key and attribute columns.
const (
	colPartition      = "partition"
	colFindingUID     = "finding_uid"
	colConnectionID   = "connection_id"
	colRuleID         = "rule_id"
	colSeverity       = "severity"
	colBindUID        = "bind_uid"
	colBindInstance   = "bind_instance"
	colStatus         = "status"
	colLifecycle      = "lifecycle"
	colFirstSeenAt    = "first_seen_at"
	colLastSeenAt     = "last_seen_at"
	colLastScanID     = "last_scan_id"
	colResolvedAt     = "resolved_at"
	colResolvedReason = "resolved_reason"
	colRevision       = "revision"
	// colWriteID holds a token unique to the Write call that stored the row,
	// so that a write whose answer was lost can tell, when its retry meets a
	// changed revision, whether the change was its own.
	colWriteID = "write_id"
)

// Defaults of Options.
const (
	// DefaultTTL keeps a row 400 days after its last write. Tablestore expires
	// data by the version (write time) of its cells, for every row alike: a
	// row is rewritten whole, all cells with one new version, on every write.
	// An open (FAIL or SUPPRESSED) finding is rewritten by every scan that
	// sees it — its last_seen_at and last_scan_id move — so it never gets
	// near the TTL while it is scanned; a resolved row is no longer rewritten
	// and ages out 400 days after its resolution. A finding whose connection
	// is no longer scanned at all (its region dropped from the targets)
	// expires too, open or not, 400 days after its last scan.
	DefaultTTL = 400 * 24 * time.Hour
	// DefaultTimeout bounds one request: the cloud's call timeout.
	DefaultTimeout = cloudapi.DefaultCallTimeout
	// MaxBatchRows is BatchWriteRow's limit of rows per request.
	MaxBatchRows = 200
)

// Credentials sign the requests; SecurityToken is set for STS credentials.
type Credentials = cloudapi.Credentials

// Options configure a Store.
type Options struct {
	Location Location
	// Region of the instance, for the default endpoint
	// https://INSTANCE.REGION.ots.aliyuncs.com.
	Region string
	// Endpoint overrides the default, as endpoint.Parse reads it: e.g. the
	// VPC endpoint https://INSTANCE.REGION.vpc.tablestore.aliyuncs.com or a
	// loopback http://127.0.0.1:PORT for tests.
	Endpoint    string
	Credentials Credentials
	// HTTPClient gives the transport and the per-request timeout; nil: a
	// transport of its own and DefaultTimeout.
	HTTPClient *http.Client
	// PageRows bounds the rows of one GetRange page; 0: the service's bound.
	PageRows int32
	// Retry bounds the attempts and pauses of each request; its zero fields
	// are cloudapi's defaults. Rows of a batch that fail retryably are sent
	// again under the same bound.
	Retry retry.Policy
	// TTL of the table Setup creates; default DefaultTTL.
	TTL time.Duration
}

// Stats counts the requests a Store made.
type Stats struct {
	GetRange      int64
	BatchWriteRow int64
	GetRow        int64 // looking up writes whose answer was lost
	Retries       int64 // requests made again after a retryable failure
}

// Store is a lifecycle.Store on a Tablestore table.
type Store struct {
	loc       Location
	endpoint  string // as the SDK takes it: scheme://host[:port]
	creds     Credentials
	transport http.RoundTripper
	timeout   time.Duration
	pageRows  int32
	policy    retry.Policy
	ttl       time.Duration

	getRange, batchWriteRow, getRow, retries atomic.Int64
}

var _ lifecycle.Store = (*Store)(nil)

// New checks the options and returns a Store; it makes no request.
func New(opts Options) (*Store, error) {
	if opts.Location.IsZero() {
		return nil, errors.New("state store: no location: set " + EnvStateStore + " to tablestore://INSTANCE/TABLE")
	}
	if _, err := ParseStateStore(opts.Location.String()); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	if opts.Credentials.AccessKeyID == "" || opts.Credentials.AccessKeySecret == "" {
		return nil, fmt.Errorf("state store %s: no access key", opts.Location)
	}
	raw := strings.TrimSpace(opts.Endpoint)
	if raw == "" {
		if opts.Region == "" {
			return nil, fmt.Errorf("state store %s: no region for the default endpoint https://%s.REGION.ots.aliyuncs.com", opts.Location, opts.Location.Instance)
		}
		raw = "https://" + opts.Location.Instance + "." + opts.Region + ".ots.aliyuncs.com"
	}
	ep, err := endpoint.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", opts.Location, err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if ep.Loopback {
		transport.Proxy = nil // an emulator is never behind a proxy
	}
	s := &Store{
		loc:       opts.Location,
		endpoint:  ep.URL(),
		creds:     opts.Credentials,
		transport: transport,
		timeout:   DefaultTimeout,
		pageRows:  opts.PageRows,
		policy:    opts.Retry.Defaults(),
		ttl:       opts.TTL,
	}
	if hc := opts.HTTPClient; hc != nil {
		if hc.Transport != nil {
			s.transport = hc.Transport
		}
		if hc.Timeout > 0 {
			s.timeout = hc.Timeout
		}
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.ttl < 24*time.Hour {
		return nil, fmt.Errorf("state store %s: TTL %s is under Tablestore's minimum of one day", opts.Location, s.ttl)
	}
	return s, nil
}

// Location is where the store keeps its records.
func (s *Store) Location() Location { return s.loc }

// Stats returns the request counters.
func (s *Store) Stats() Stats {
	return Stats{GetRange: s.getRange.Load(), BatchWriteRow: s.batchWriteRow.Load(), GetRow: s.getRow.Load(), Retries: s.retries.Load()}
}

// client returns an SDK client whose requests carry ctx, and its transport.
// The SDK's calls take no context and its own retries sleep without one, so
// it retries nothing (RetryTimes 0): every retry is internal/retry's,
// bounded and cancellable.
func (s *Store) client(ctx context.Context) (*tablestore.TableStoreClient, *ctxTransport) {
	cfg := tablestore.NewDefaultTableStoreConfig()
	cfg.RetryTimes = 0
	cfg.HTTPTimeout.RequestTimeout = s.timeout
	cfg.HTTPTimeout.ConnectionTimeout = s.timeout
	tr := &ctxTransport{ctx: ctx, base: s.transport}
	cfg.Transport = tr
	return tablestore.NewClientWithConfig(s.endpoint, s.loc.Instance,
		s.creds.AccessKeyID, s.creds.AccessKeySecret, s.creds.SecurityToken, cfg), tr
}

// SetupResult says what Setup found or did.
type SetupResult struct {
	Created bool          // false: the table was there already
	TTL     time.Duration // the table's TTL; 0: never expires
}

// Setup creates the table with its TTL and one version per column; when the
// table exists it checks that its primary key is the store's and leaves it
// as it is (an existing TTL is reported, not changed).
func (s *Store) Setup(ctx context.Context) (SetupResult, error) {
	meta := &tablestore.TableMeta{TableName: s.loc.Table}
	meta.AddPrimaryKeyColumn(colPartition, tablestore.PrimaryKeyType_STRING)
	meta.AddPrimaryKeyColumn(colFindingUID, tablestore.PrimaryKeyType_STRING)
	req := &tablestore.CreateTableRequest{
		TableMeta:          meta,
		TableOption:        &tablestore.TableOption{TimeToAlive: int(s.ttl / time.Second), MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{},
	}
	err := s.do(ctx, func(c *tablestore.TableStoreClient) error {
		_, err := c.CreateTable(req)
		return err
	}, nil)
	if err == nil {
		return SetupResult{Created: true, TTL: s.ttl}, nil
	}
	if otsCode(err) != "OTSObjectAlreadyExist" {
		return SetupResult{}, fmt.Errorf("state store %s: create the table: %w", s.loc, err)
	}
	var desc *tablestore.DescribeTableResponse
	err = s.do(ctx, func(c *tablestore.TableStoreClient) error {
		var err error
		desc, err = c.DescribeTable(&tablestore.DescribeTableRequest{TableName: s.loc.Table})
		return err
	}, nil)
	if err != nil {
		return SetupResult{}, fmt.Errorf("state store %s: the table exists; describe it: %w", s.loc, err)
	}
	var got []string
	for _, c := range desc.TableMeta.SchemaEntry {
		got = append(got, fmt.Sprintf("%s:%s", *c.Name, pkTypeName(c.Type)))
	}
	want := []string{colPartition + ":STRING", colFindingUID + ":STRING"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return SetupResult{}, fmt.Errorf("state store %s: the table exists with primary key [%s], want [%s]: choose another table",
			s.loc, strings.Join(got, " "), strings.Join(want, " "))
	}
	res := SetupResult{}
	if ttl := desc.TableOption.TimeToAlive; ttl > 0 {
		res.TTL = time.Duration(ttl) * time.Second
	}
	return res, nil
}

func pkTypeName(t *tablestore.PrimaryKeyType) string {
	if t == nil {
		return "?"
	}
	switch *t {
	case tablestore.PrimaryKeyType_INTEGER:
		return "INTEGER"
	case tablestore.PrimaryKeyType_STRING:
		return "STRING"
	case tablestore.PrimaryKeyType_BINARY:
		return "BINARY"
	}
	return fmt.Sprint(int(*t))
}

func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
