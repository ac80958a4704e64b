package statestore

import (
	"context"
	"fmt"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"vpnauthz/internal/lifecycle"
)

// maxPages stops a range read that never ends (a service answering the same
// next key again) long after any real partition of this table would.
const maxPages = 10000

// Load returns every record of (accountID, region): one GetRange over the
// partition, more only when the service pages.
func (s *Store) Load(ctx context.Context, accountID, region string) ([]lifecycle.Record, error) {
	if err := checkKey(accountID, region); err != nil {
		return nil, fmt.Errorf("state store %s: load: %w", s.loc, err)
	}
	start := &tablestore.PrimaryKey{}
	start.AddPrimaryKeyColumn(colPartition, partition(accountID, region))
	start.AddPrimaryKeyColumnWithMinValue(colFindingUID)
	end := &tablestore.PrimaryKey{}
	end.AddPrimaryKeyColumn(colPartition, partition(accountID, region))
	end.AddPrimaryKeyColumnWithMaxValue(colFindingUID)

	var out []lifecycle.Record
	for page := 0; start != nil; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("state store %s: load %s/%s: more than %d pages", s.loc, accountID, region, maxPages)
		}
		req := &tablestore.GetRangeRequest{RangeRowQueryCriteria: &tablestore.RangeRowQueryCriteria{
			TableName:       s.loc.Table,
			StartPrimaryKey: start,
			EndPrimaryKey:   end,
			MaxVersion:      1,
			Limit:           s.pageRows,
			Direction:       tablestore.FORWARD,
		}}
		var resp *tablestore.GetRangeResponse
		err := s.do(ctx, func(c *tablestore.TableStoreClient) error {
			s.getRange.Add(1)
			var err error
			resp, err = c.GetRange(req)
			return err
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("state store %s: load %s/%s: %w", s.loc, accountID, region, err)
		}
		for _, row := range resp.Rows {
			rec, _, err := decodeRecord(accountID, region, row)
			if err != nil {
				return nil, fmt.Errorf("state store %s: load %s/%s: %w", s.loc, accountID, region, err)
			}
			out = append(out, rec)
		}
		start = resp.NextStartPrimaryKey
	}
	return out, nil
}
