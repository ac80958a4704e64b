package statestore

import (
	"fmt"
	"strings"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"

	"vpnauthz/internal/lifecycle"
)

// Times are stored as RFC 3339 strings in UTC with nanoseconds: exact on the
// way back, sortable, and readable in the console. A zero time is no column.
const timeLayout = time.RFC3339Nano

func partition(accountID, region string) string { return accountID + "/" + region }

// checkKey refuses parts of a key that would make partitions ambiguous.
func checkKey(accountID, region string) error {
	switch {
	case accountID == "" || region == "":
		return fmt.Errorf("account %q and region %q must both be set", accountID, region)
	case strings.Contains(accountID, "/") || strings.Contains(region, "/"):
		return fmt.Errorf("account %q or region %q holds a '/'", clip(accountID), clip(region))
	}
	return nil
}

func primaryKey(accountID, region, findingUID string) *tablestore.PrimaryKey {
	pk := &tablestore.PrimaryKey{}
	pk.AddPrimaryKeyColumn(colPartition, partition(accountID, region))
	pk.AddPrimaryKeyColumn(colFindingUID, findingUID)
	return pk
}

// putChange is the row of w, conditional on its expected revision.
func putChange(table string, w lifecycle.Write, writeID string) *tablestore.PutRowChange {
	r := w.Record
	ch := &tablestore.PutRowChange{TableName: table, PrimaryKey: primaryKey(r.AccountID, r.Region, r.FindingUID)}
	for _, c := range [][2]string{
		{colConnectionID, r.ConnectionID}, {colRuleID, r.RuleID}, {colSeverity, r.Severity},
		{colBindUID, r.BindUID}, {colBindInstance, r.BindInstance}, {colStatus, r.Status},
		{colLifecycle, r.Lifecycle}, {colLastScanID, r.LastScanID}, {colResolvedReason, r.ResolvedReason},
	} {
		if c[1] != "" {
			ch.AddColumn(c[0], c[1])
		}
	}
	for _, c := range []struct {
		name string
		t    time.Time
	}{{colFirstSeenAt, r.FirstSeenAt}, {colLastSeenAt, r.LastSeenAt}, {colResolvedAt, r.ResolvedAt}} {
		if !c.t.IsZero() {
			ch.AddColumn(c.name, c.t.UTC().Format(timeLayout))
		}
	}
	ch.AddColumn(colRevision, r.Revision)
	ch.AddColumn(colWriteID, writeID)
	if w.ExpectRevision == 0 {
		ch.SetCondition(tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST)
		return ch
	}
	ch.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	cond := tablestore.NewSingleColumnCondition(colRevision, tablestore.CT_EQUAL, w.ExpectRevision)
	cond.FilterIfMissing = true // a row without a revision is not the one read
	cond.LatestVersionOnly = true
	ch.SetColumnCondition(cond)
	return ch
}

// checkWrite refuses a write the store cannot make faithfully.
func checkWrite(w lifecycle.Write) error {
	r := w.Record
	if err := checkKey(r.AccountID, r.Region); err != nil {
		return err
	}
	switch {
	case r.FindingUID == "":
		return fmt.Errorf("no finding uid")
	case w.ExpectRevision < 0:
		return fmt.Errorf("expected revision %d is negative", w.ExpectRevision)
	case r.Revision != w.ExpectRevision+1:
		return fmt.Errorf("revision %d is not the expected revision %d plus one", r.Revision, w.ExpectRevision)
	}
	return nil
}

// decodeRecord reads a row of the partition of (accountID, region).
func decodeRecord(accountID, region string, row *tablestore.Row) (lifecycle.Record, string, error) {
	rec := lifecycle.Record{AccountID: accountID, Region: region}
	if row.PrimaryKey == nil || len(row.PrimaryKey.PrimaryKeys) != 2 {
		return rec, "", fmt.Errorf("a row without the (partition, finding_uid) key")
	}
	part, _ := row.PrimaryKey.PrimaryKeys[0].Value.(string)
	uid, _ := row.PrimaryKey.PrimaryKeys[1].Value.(string)
	if part != partition(accountID, region) || uid == "" {
		return rec, "", fmt.Errorf("row (%q, %q) outside the partition read", clip(part), clip(uid))
	}
	rec.FindingUID = uid
	var writeID string
	seen := map[string]bool{}
	for _, c := range row.Columns {
		seen[c.ColumnName] = true
		var err error
		switch c.ColumnName {
		case colRevision:
			v, ok := c.Value.(int64)
			if !ok || v < 1 {
				err = fmt.Errorf("revision %v is not a positive integer", c.Value)
			}
			rec.Revision = v
		case colFirstSeenAt:
			rec.FirstSeenAt, err = parseTime(c)
		case colLastSeenAt:
			rec.LastSeenAt, err = parseTime(c)
		case colResolvedAt:
			rec.ResolvedAt, err = parseTime(c)
		case colWriteID:
			writeID, _ = c.Value.(string)
		default:
			if dst := stringField(&rec, c.ColumnName); dst != nil {
				s, ok := c.Value.(string)
				if !ok {
					err = fmt.Errorf("column %s is not a string", c.ColumnName)
				}
				*dst = s
			}
			// Other columns are left to newer versions of the function.
		}
		if err != nil {
			return rec, "", fmt.Errorf("finding %s: %w", uid, err)
		}
	}
	for _, name := range []string{colRevision, colLifecycle, colFirstSeenAt, colLastSeenAt} {
		if !seen[name] {
			return rec, "", fmt.Errorf("finding %s: no %s column", uid, name)
		}
	}
	return rec, writeID, nil
}

func stringField(r *lifecycle.Record, column string) *string {
	switch column {
	case colConnectionID:
		return &r.ConnectionID
	case colRuleID:
		return &r.RuleID
	case colSeverity:
		return &r.Severity
	case colBindUID:
		return &r.BindUID
	case colBindInstance:
		return &r.BindInstance
	case colStatus:
		return &r.Status
	case colLifecycle:
		return &r.Lifecycle
	case colLastScanID:
		return &r.LastScanID
	case colResolvedReason:
		return &r.ResolvedReason
	}
	return nil
}

func parseTime(c *tablestore.AttributeColumn) (time.Time, error) {
	s, ok := c.Value.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("column %s is not a string", c.ColumnName)
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("column %s %q is not an RFC 3339 time", c.ColumnName, clip(s))
	}
	return t, nil
}
