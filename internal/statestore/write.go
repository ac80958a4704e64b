package statestore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/lifecycle"
)

// Write applies the writes in BatchWriteRow requests of at most MaxBatchRows
// rows and returns one error per write: nil, an error wrapping
// lifecycle.ErrConflict when its revision condition did not hold, or why it
// could not be written. A row that fails with a retryable error is sent again
// alone with the other such rows of its request, not with the rows already
// written.
//
// The returned error is set only when no write was made and the cause was
// the whole store (unreachable, credentials refused, table missing, context
// ended): then every write's error is that error as well.
func (s *Store) Write(ctx context.Context, writes []lifecycle.Write) ([]error, error) {
	errs := make([]error, len(writes))
	writeID := newWriteID()
	var todo []int
	seen := map[[3]string]bool{}
	for i, w := range writes {
		if err := checkWrite(w); err != nil {
			errs[i] = fmt.Errorf("state store %s: write %s: %w", s.loc, w.Record.FindingUID, err)
			continue
		}
		k := [3]string{w.Record.AccountID, w.Record.Region, w.Record.FindingUID}
		if seen[k] {
			// The service refuses a request changing one row twice; the
			// second write could not hold anyway, as its revision condition
			// is on the state before the first.
			errs[i] = fmt.Errorf("state store %s: write %s: the record is written twice in one call", s.loc, w.Record.FindingUID)
			continue
		}
		seen[k] = true
		todo = append(todo, i)
	}
	// Chunks go out a few at a time: a scan's writes come at the end of its
	// (account, region), and one chunk after another would add their round
	// trips to the scan's wall time. Chunks hold disjoint rows, so each
	// fills its own entries of errs.
	var chunks [][]int
	for start := 0; start < len(todo); start += MaxBatchRows {
		chunks = append(chunks, todo[start:min(start+MaxBatchRows, len(todo))])
	}
	type outcome struct {
		wrote bool
		err   error
	}
	outcomes := make([]outcome, len(chunks))
	var (
		wg      sync.WaitGroup
		stopMu  sync.Mutex
		stopErr error // a final answer or the end of ctx: later chunks are not sent
	)
	sem := make(chan struct{}, chunksInFlight)
	for c, chunk := range chunks {
		sem <- struct{}{}
		stopMu.Lock()
		stop := stopErr
		stopMu.Unlock()
		if stop != nil {
			<-sem
			for _, i := range chunk {
				errs[i] = stop
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			wrote, err := s.writeChunk(ctx, writes, chunk, errs, writeID)
			outcomes[c] = outcome{wrote, err}
			if err != nil && (ctx.Err() != nil || cloudapi.Classify(err) == cloudapi.Final) {
				// The same cause would refuse every later chunk.
				stopMu.Lock()
				if stopErr == nil {
					stopErr = err
				}
				stopMu.Unlock()
			}
		})
	}
	wg.Wait()
	var callErrs []error
	written := false
	for _, o := range outcomes {
		written = written || o.wrote
		if o.err != nil {
			callErrs = append(callErrs, o.err)
		}
	}
	if written || len(callErrs) == 0 {
		return errs, nil
	}
	return errs, errors.Join(callErrs...)
}

// chunksInFlight bounds the BatchWriteRow requests of one Write in flight.
const chunksInFlight = 4

// writeChunk writes rows writes[i] for i in idx with one BatchWriteRow, again
// for the rows that failed retryably: each attempt of the retry loop sends
// the rows still to be written. It returns whether any row was written, and
// the request error that ended it, if any (then set on the rows left).
func (s *Store) writeChunk(ctx context.Context, writes []lifecycle.Write, idx []int, errs []error, writeID string) (bool, error) {
	// inDoubt marks rows a failed attempt may have written: if a later
	// attempt meets a changed revision, the row is read back to see whose
	// write it holds.
	inDoubt := map[int]bool{}
	wrote := false
	todo := idx
	err := s.do(ctx, func(c *tablestore.TableStoreClient) error {
		req := &tablestore.BatchWriteRowRequest{}
		for _, i := range todo {
			req.AddRowChange(putChange(s.loc.Table, writes[i], writeID))
		}
		s.batchWriteRow.Add(1)
		resp, err := c.BatchWriteRow(req)
		if err != nil {
			return err
		}
		results := resp.TableToRowsResult[s.loc.Table]
		if len(results) != len(todo) {
			return &cloudapi.DecodeError{HTTPStatus: http.StatusOK, Err: fmt.Errorf("BatchWriteRow answered %d row results for %d rows", len(results), len(todo))}
		}
		var again []int
		var retryable *cloudapi.APIError
		for j, res := range results {
			i := todo[j]
			w := writes[i]
			if res.IsSucceed {
				errs[i], wrote = nil, true
				continue
			}
			rowErr := apiError(res.Error.Code, res.Error.Message, "", 0)
			class := cloudapi.Classify(rowErr)
			switch {
			case rowErr.Code == "OTSConditionCheckFail":
				errs[i] = s.conflict(ctx, w, inDoubt[i], writeID)
				wrote = wrote || errs[i] == nil
			case class == cloudapi.Final:
				errs[i] = fmt.Errorf("state store %s: write %s: %w", s.loc, w.Record.FindingUID, rowErr)
			default:
				if mayBeApplied(rowErr) {
					inDoubt[i] = true
				}
				errs[i] = fmt.Errorf("state store %s: write %s: %w", s.loc, w.Record.FindingUID, rowErr)
				again = append(again, i)
				if retryable == nil || class == cloudapi.Throttled {
					retryable = rowErr
				}
			}
		}
		if len(again) == 0 {
			return nil
		}
		todo = again
		return &rowsLeft{retryable}
	}, func(err error) {
		var rl *rowsLeft
		if !errors.As(err, &rl) && mayBeApplied(err) {
			for _, i := range todo {
				inDoubt[i] = true
			}
		}
	})
	var rl *rowsLeft
	if err == nil || errors.As(err, &rl) {
		// Rows still failing keep their own errors.
		return wrote, nil
	}
	return wrote, s.failRows(todo, errs, err)
}

// rowsLeft is an attempt whose request went through but some of whose rows
// failed retryably; it classifies as the most telling of their answers
// (throttling first), so that the loop paces the next attempt.
type rowsLeft struct{ row *cloudapi.APIError }

func (e *rowsLeft) Error() string { return "rows left to write: " + e.row.Error() }
func (e *rowsLeft) Unwrap() error { return e.row }

func (s *Store) failRows(idx []int, errs []error, err error) error {
	err = fmt.Errorf("state store %s: write: %w", s.loc, err)
	for _, i := range idx {
		errs[i] = err
	}
	return err
}

// conflict is the error of a write whose revision condition failed. When an
// earlier attempt of this call may have written the row, the row is read: if
// it holds this call's write, the write succeeded and the answer was lost.
func (s *Store) conflict(ctx context.Context, w lifecycle.Write, inDoubt bool, writeID string) error {
	r := w.Record
	conflict := fmt.Errorf("%w: %s in %s/%s, expected revision %d", lifecycle.ErrConflict, r.FindingUID, r.AccountID, r.Region, w.ExpectRevision)
	if !inDoubt {
		return conflict
	}
	req := &tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
		TableName:    s.loc.Table,
		PrimaryKey:   primaryKey(r.AccountID, r.Region, r.FindingUID),
		ColumnsToGet: []string{colRevision, colWriteID},
		MaxVersion:   1,
	}}
	var resp *tablestore.GetRowResponse
	err := s.do(ctx, func(c *tablestore.TableStoreClient) error {
		s.getRow.Add(1)
		var err error
		resp, err = c.GetRow(req)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("state store %s: write %s: unknown whether it was written (its answer was lost and reading it back failed): %w", s.loc, r.FindingUID, err)
	}
	var rev int64
	var id string
	for _, c := range resp.Columns {
		switch c.ColumnName {
		case colRevision:
			rev, _ = c.Value.(int64)
		case colWriteID:
			id, _ = c.Value.(string)
		}
	}
	if id == writeID && rev == r.Revision {
		return nil
	}
	return conflict
}
