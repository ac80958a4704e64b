package statestore

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/lifecycle"
)

func sortByUID(recs []lifecycle.Record) {
	slices.SortFunc(recs, func(a, b lifecycle.Record) int { return strings.Compare(a.FindingUID, b.FindingUID) })
}

// TestLoadIsolation: one (account, region) is read with one GetRange and
// holds exactly its own records, not those of a neighbour account whose id
// it prefixes, nor those of other regions.
func TestLoadIsolation(t *testing.T) {
	srv, s := setupStore(t, otsemu.Options{})
	var want []lifecycle.Record
	var all []lifecycle.Record
	for _, key := range [][2]string{
		{"1234567890123456", "cn-hangzhou"},
		{"1234567890123456", "cn-hangzhou-finance"}, // a region sharing the prefix
		{"12345678901234567", "cn-hangzhou"},        // an account sharing the prefix
		{"1234567890123456", "cn-shanghai"},
		{"1111111111111111", "cn-hangzhou"},
	} {
		for i := range 5 {
			r := record(key[0], key[1], i)
			if i == 2 {
				r.Lifecycle, r.Status = lifecycle.LifecycleResolved, "FAIL"
				r.ResolvedAt, r.ResolvedReason = t0.Add(time.Hour), lifecycle.ReasonConnectionDeleted
			}
			all = append(all, r)
			if key == [2]string{"1234567890123456", "cn-hangzhou"} {
				want = append(want, r)
			}
		}
	}
	mustWrite(t, s, creates(all...))
	srv.ResetStats()

	got, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	sortByUID(got)
	sortByUID(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	if n := srv.Stats().Calls[otsemu.OpGetRange]; n != 1 {
		t.Errorf("%d GetRange calls, want 1", n)
	}
	if st := s.Stats(); st.GetRange != 1 || st.Retries != 0 {
		t.Errorf("store stats %+v, want one GetRange and no retry", st)
	}

	none, err := s.Load(context.Background(), "9999999999999999", "cn-hangzhou")
	if err != nil || len(none) != 0 {
		t.Errorf("an account with no record: %v, %v", none, err)
	}
}

// TestLoadPaging: a partition larger than a page is read to its end
// through NextStartPrimaryKey, by the service's paging and by the store's.
func TestLoadPaging(t *testing.T) {
	cases := []struct {
		name      string
		serverMax int
		pageRows  int32
		records   int
		wantCalls int
	}{
		{"service pages", 100, 0, 250, 3},
		{"store pages", 0, 40, 120, 3},         // the last page is exactly full: 3 calls
		{"exactly one page", 50, 0, 50, 1},     // no next key when the rows end with the page
		{"page of one row", 0, 1, 3, 3},        // every row its own page
		{"service bound wins", 30, 100, 65, 3}, // 30+30+5
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startOTS(t, otsemu.Options{MaxRowsPerPage: c.serverMax})
			s := newStore(t, srv, func(o *Options) { o.PageRows = c.pageRows })
			if _, err := s.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			var want []lifecycle.Record
			for i := range c.records {
				want = append(want, record("1234567890123456", "cn-hangzhou", i))
			}
			mustWrite(t, s, creates(want...))
			mustWrite(t, s, creates(record("1234567890123456", "cn-shanghai", 1)))
			srv.ResetStats()
			got, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
			if err != nil {
				t.Fatal(err)
			}
			sortByUID(got)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("records (-want +got):\n%s", d)
			}
			if n := srv.Stats().Calls[otsemu.OpGetRange]; n != c.wantCalls {
				t.Errorf("%d GetRange calls, want %d", n, c.wantCalls)
			}
		})
	}
}

// TestWriteBatches: 450 writes go out as BatchWriteRow requests of 200, 200
// and 50 rows, and all of them are stored.
func TestWriteBatches(t *testing.T) {
	srv, _ := setupStore(t, otsemu.Options{})
	var recs []lifecycle.Record
	for i := range 450 {
		recs = append(recs, record("1234567890123456", "cn-hangzhou", i))
	}
	var (
		mu    sync.Mutex
		sizes []int
	)
	counting := &countingTransport{base: http.DefaultTransport, onBatch: func(rows int) {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, rows)
	}}
	s := newStore(t, srv, func(o *Options) { o.HTTPClient = &http.Client{Transport: counting} })
	mustWrite(t, s, creates(recs...))
	st := srv.Stats()
	if st.Calls[otsemu.OpBatchWriteRow] != 3 || st.RowsWritten != 450 {
		t.Errorf("emulator saw %d BatchWriteRow calls writing %d rows, want 3 and 450", st.Calls[otsemu.OpBatchWriteRow], st.RowsWritten)
	}
	// The chunks go out concurrently: their sizes in any order.
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{50, 200, 200}) {
		t.Errorf("batch sizes %v, want 200, 200 and 50", sizes)
	}
	got, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err != nil || len(got) != 450 {
		t.Fatalf("loaded %d records, %v; want 450", len(got), err)
	}
}

// TestRevisionConflict: two writers that read the same revision write
// concurrently; exactly one wins, the other gets ErrConflict, and the stored
// record is the winner's.
func TestRevisionConflict(t *testing.T) {
	srv, s := setupStore(t, otsemu.Options{})
	base := record("1234567890123456", "cn-hangzhou", 7)
	mustWrite(t, s, creates(base))

	writers := [2]*Store{s, newStore(t, srv, nil)}
	var wg sync.WaitGroup
	var results [2]error
	var recs [2]lifecycle.Record
	for w := range 2 {
		r := base
		r.Revision, r.LastSeenAt, r.LastScanID, r.Lifecycle = 2, t0.Add(time.Duration(w+1)*time.Hour), "scan-"+string(rune('a'+w)), lifecycle.LifecycleOpen
		recs[w] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs, err := writers[w].Write(context.Background(), []lifecycle.Write{{Record: r, ExpectRevision: 1}})
			if err != nil {
				t.Errorf("writer %d: %v", w, err)
				return
			}
			results[w] = errs[0]
		}()
	}
	wg.Wait()
	winner := -1
	for w, err := range results {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("both writers won")
			}
			winner = w
		case !errors.Is(err, lifecycle.ErrConflict):
			t.Errorf("writer %d: %v, want ErrConflict", w, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", results)
	}
	got, err := s.Load(context.Background(), base.AccountID, base.Region)
	if err != nil || len(got) != 1 {
		t.Fatalf("load: %v %v", got, err)
	}
	if d := cmp.Diff(recs[winner], got[0]); d != "" {
		t.Errorf("stored record is not the winner's (-want +got):\n%s", d)
	}

	// A write from a stale revision fails too, and so does one expecting a
	// row that was never written.
	stale := recs[winner]
	stale.Revision = 2
	ghost := record("1234567890123456", "cn-hangzhou", 8)
	ghost.Revision = 5
	errs, err := s.Write(context.Background(), []lifecycle.Write{{Record: stale, ExpectRevision: 1}, {Record: ghost, ExpectRevision: 4}})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !errors.Is(e, lifecycle.ErrConflict) {
			t.Errorf("write %d: %v, want ErrConflict", i, e)
		}
	}
}

// TestCreateConflict: creating a record that exists (ExpectRevision 0, the
// row must not exist) is a conflict and leaves the stored record alone,
// while the other rows of the same batch are written.
func TestCreateConflict(t *testing.T) {
	_, s := setupStore(t, otsemu.Options{})
	first := record("1234567890123456", "cn-hangzhou", 1)
	mustWrite(t, s, creates(first))
	again := first
	again.LastScanID = "scan-2"
	other := record("1234567890123456", "cn-hangzhou", 2)
	errs, err := s.Write(context.Background(), creates(again, other))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errs[0], lifecycle.ErrConflict) || errs[1] != nil {
		t.Fatalf("errors %v, want [ErrConflict nil]", errs)
	}
	got, err := s.Load(context.Background(), first.AccountID, first.Region)
	if err != nil || len(got) != 2 {
		t.Fatalf("load: %v %v", got, err)
	}
	sortByUID(got)
	if d := cmp.Diff([]lifecycle.Record{first, other}, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
}

func TestStoreDown(t *testing.T) {
	srv, s := setupStore(t, otsemu.Options{})
	srv.SetDown(true)
	_, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), testLoc.String()) {
		t.Errorf("load with the store down: %v, want an error naming the store and the refused connection", err)
	}
	if st := s.Stats(); st.GetRange != attempts || st.Retries != attempts-1 {
		t.Errorf("stats %+v: a refused connection is retried up to %d attempts", st, attempts)
	}
	recs := creates(record("1234567890123456", "cn-hangzhou", 1), record("1234567890123456", "cn-hangzhou", 2))
	errs, err := s.Write(context.Background(), recs)
	if err == nil || len(errs) != 2 || errs[0] == nil || errs[1] == nil {
		t.Fatalf("write with the store down: %v %v, want a call error and both rows failed", errs, err)
	}
	srv.SetDown(false)
	mustWrite(t, s, recs) // nothing was half-written
}

func TestUnavailableRetried(t *testing.T) {
	srv, s := setupStore(t, otsemu.Options{})
	srv.FailNext(otsemu.OpGetRange, 2, otsemu.CodeServerUnavailable)
	srv.FailNext(otsemu.OpBatchWriteRow, 1, otsemu.CodeServerBusy)
	recs := creates(record("1234567890123456", "cn-hangzhou", 1))
	mustWrite(t, s, recs)
	got, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err != nil || len(got) != 1 {
		t.Fatalf("load: %v %v", got, err)
	}
	st := srv.Stats()
	if st.Calls[otsemu.OpGetRange] != 3 || st.Calls[otsemu.OpBatchWriteRow] != 2 {
		t.Errorf("calls %v, want 3 GetRange and 2 BatchWriteRow", st.Calls)
	}

	srv.FailNext(otsemu.OpGetRange, attempts, otsemu.CodeServerUnavailable)
	_, err = s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err == nil || !strings.Contains(err.Error(), "OTSServerUnavailable") {
		t.Errorf("load past the attempts: %v, want OTSServerUnavailable", err)
	}
}

// TestLostAnswer: a write is applied but its answer is lost on the way back
// (the connection drops); the retry meets its own write and reports success,
// not a conflict — else the transition it carries would never be told.
func TestLostAnswer(t *testing.T) {
	srv, _ := setupStore(t, otsemu.Options{})
	r := record("1234567890123456", "cn-hangzhou", 3)
	drop := &dropFirstAnswer{base: http.DefaultTransport}
	s := newStore(t, srv, func(o *Options) { o.HTTPClient = &http.Client{Transport: drop} })
	errs, err := s.Write(context.Background(), creates(r))
	if err != nil || errs[0] != nil {
		t.Fatalf("write whose first answer was lost: %v %v, want success", errs, err)
	}
	if st := s.Stats(); st.BatchWriteRow != 2 || st.GetRow != 1 {
		t.Errorf("stats %+v, want 2 BatchWriteRow and 1 GetRow", st)
	}
	// A rival's write met after a lost answer is still a conflict.
	rival := r
	rival.Revision, rival.LastScanID = 2, "rival"
	mustWrite(t, newStore(t, srv, nil), []lifecycle.Write{{Record: rival, ExpectRevision: 1}})
	mine := r
	mine.Revision, mine.LastScanID = 2, "mine"
	drop.armed.Store(true)
	errs, err = s.Write(context.Background(), []lifecycle.Write{{Record: mine, ExpectRevision: 1}})
	if err != nil || !errors.Is(errs[0], lifecycle.ErrConflict) {
		t.Errorf("write after a rival's: %v %v, want ErrConflict", errs, err)
	}
}

func TestRowRetry(t *testing.T) {
	srv, s := setupStore(t, otsemu.Options{})
	var recs []lifecycle.Record
	for i := range 10 {
		recs = append(recs, record("1234567890123456", "cn-hangzhou", i))
	}
	srv.FailNextRows(3, otsemu.CodePartitionUnavail)
	mustWrite(t, s, creates(recs...))
	st := srv.Stats()
	if st.Calls[otsemu.OpBatchWriteRow] != 2 || st.RowsWritten != 10 {
		t.Errorf("emulator: %d BatchWriteRow, %d rows written; want 2 and 10 (the retry carries the 3 failed rows only)", st.Calls[otsemu.OpBatchWriteRow], st.RowsWritten)
	}

	// A row that keeps failing retryably gets its error once the attempts
	// are spent: a throttled row gets cloudapi.ThrottledAttemptsFactor times
	// as many as a row meeting a moving partition.
	for _, tc := range []struct {
		code  string
		calls int
	}{
		{otsemu.CodePartitionUnavail, attempts},
		{otsemu.CodeServerBusy, attempts * cloudapi.ThrottledAttemptsFactor},
	} {
		srv.ResetStats()
		srv.FailNextRows(tc.calls, tc.code)
		errs, err := s.Write(context.Background(), creates(record("1234567890123456", "cn-shanghai", 1)))
		if err != nil || errs[0] == nil || !strings.Contains(errs[0].Error(), tc.code) {
			t.Errorf("errors %v, %v: want %s", errs, err, tc.code)
		}
		if n := srv.Stats().Calls[otsemu.OpBatchWriteRow]; n != tc.calls {
			t.Errorf("%s: %d BatchWriteRow calls, want %d", tc.code, n, tc.calls)
		}
	}

	// A row failing for good is not retried; the others of its request are
	// written.
	srv.ResetStats()
	srv.FailNextRows(1, otsemu.CodeParameterInvalid)
	errs, err := s.Write(context.Background(), creates(record("1234567890123456", "cn-beijing", 1), record("1234567890123456", "cn-beijing", 2)))
	if err != nil || errs[0] == nil || !strings.Contains(errs[0].Error(), "OTSParameterInvalid") || errs[1] != nil {
		t.Errorf("errors %v, %v: want OTSParameterInvalid for the first row only", errs, err)
	}
	if n := srv.Stats().Calls[otsemu.OpBatchWriteRow]; n != 1 {
		t.Errorf("%d BatchWriteRow calls, want 1", n)
	}
}

func TestBadSignature(t *testing.T) {
	srv, _ := setupStore(t, otsemu.Options{})
	s := newStore(t, srv, func(o *Options) { o.Credentials.AccessKeySecret = "wrong-secret-value" })
	_, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err == nil || !strings.Contains(err.Error(), "OTSAuthFailed") || !strings.Contains(err.Error(), "Signature mismatch") {
		t.Errorf("load with a wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(err.Error(), testCred.SecurityToken) {
		t.Errorf("the error shows a secret: %v", err)
	}
	errs, err := s.Write(context.Background(), creates(record("1234567890123456", "cn-hangzhou", 1), record("1234567890123456", "cn-hangzhou", 2)))
	if err == nil || errs[0] == nil || errs[1] == nil {
		t.Errorf("write with a wrong secret: %v %v", errs, err)
	}
	if st := srv.Stats(); st.Calls[otsemu.OpGetRange] != 1 || st.Calls[otsemu.OpBatchWriteRow] != 1 {
		t.Errorf("calls %v: a refused signature is final, never retried", st.Calls)
	}
}

func TestMissingTable(t *testing.T) {
	srv := startOTS(t, otsemu.Options{})
	s := newStore(t, srv, nil)
	_, err := s.Load(context.Background(), "1234567890123456", "cn-hangzhou")
	if err == nil || !strings.Contains(err.Error(), "OTSObjectNotExist") {
		t.Errorf("load without the table: %v, want OTSObjectNotExist", err)
	}
}

func TestSetup(t *testing.T) {
	srv := startOTS(t, otsemu.Options{})
	s := newStore(t, srv, nil)
	res, err := s.Setup(context.Background())
	if err != nil || !res.Created || res.TTL != DefaultTTL {
		t.Fatalf("first setup: %+v %v", res, err)
	}
	res, err = s.Setup(context.Background())
	if err != nil || res.Created || res.TTL != DefaultTTL {
		t.Fatalf("second setup: %+v %v, want not created, same TTL", res, err)
	}
	info, ok := srv.Table(testLoc.Table)
	if !ok || info.TimeToLive != int32(DefaultTTL/time.Second) || info.MaxVersions != 1 ||
		!slices.Equal(info.PrimaryKey, []string{"partition:STRING", "finding_uid:STRING"}) {
		t.Errorf("table %+v", info)
	}
	st := srv.Stats()
	if st.Calls[otsemu.OpCreateTable] != 2 || st.ErrorsByCode[otsemu.CodeObjectAlreadyExist] != 1 || st.Calls[otsemu.OpDescribeTable] != 1 {
		t.Errorf("calls %v errors %v", st.Calls, st.ErrorsByCode)
	}
}

func TestSetupForeignTable(t *testing.T) {
	srv := startOTS(t, otsemu.Options{})
	other := newStore(t, srv, func(o *Options) { o.Location.Table = "other" })
	if _, err := other.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	createForeign(t, srv, "foreign")
	s := newStore(t, srv, func(o *Options) { o.Location.Table = "foreign" })
	_, err := s.Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "primary key [id:INTEGER]") {
		t.Errorf("setup on a table of another shape: %v", err)
	}
}

func TestContextCanceled(t *testing.T) {
	srv, s := setupStore(t, otsemu.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Load(ctx, "1234567890123456", "cn-hangzhou"); !errors.Is(err, context.Canceled) {
		t.Errorf("load: %v", err)
	}
	errs, err := s.Write(ctx, creates(record("1234567890123456", "cn-hangzhou", 1)))
	if !errors.Is(err, context.Canceled) || !errors.Is(errs[0], context.Canceled) {
		t.Errorf("write: %v %v", errs, err)
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("%d requests after the context ended", n)
	}
}

func TestInvalidWrites(t *testing.T) {
	_, s := setupStore(t, otsemu.Options{})
	good := record("1234567890123456", "cn-hangzhou", 1)
	slash := good
	slash.Region = "cn/hangzhou"
	noUID := good
	noUID.FindingUID = ""
	badRev := good
	badRev.Revision = 3
	errs, err := s.Write(context.Background(), []lifecycle.Write{{Record: good}, {Record: slash}, {Record: noUID}, {Record: badRev}, {Record: good}})
	if err != nil {
		t.Fatal(err)
	}
	wants := []string{"", "holds a '/'", "no finding uid", "is not the expected revision 0 plus one", "written twice in one call"}
	for i, want := range wants {
		switch {
		case want == "" && errs[i] != nil:
			t.Errorf("write %d: %v", i, errs[i])
		case want != "" && (errs[i] == nil || !strings.Contains(errs[i].Error(), want)):
			t.Errorf("write %d: %v, want %q", i, errs[i], want)
		}
	}
	if _, err := s.Load(context.Background(), "", "cn-hangzhou"); err == nil {
		t.Error("load without an account: no error")
	}
}
