package otsemu

import (
	"bytes"
	"cmp"

	//lint:ignore SA1019 the SDK's otsprotocol types are generated for this API and lack ProtoReflect
	"github.com/golang/protobuf/proto"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
)

// checkCondition judges a write's condition against the live row (nil when
// there is none): the row existence expectation, then the column condition.
func checkCondition(c *otsprotocol.Condition, row *storedRow) *apiError {
	if c == nil || c.RowExistence == nil {
		return errorf(CodeParameterInvalid, "The condition of the row is missing.")
	}
	switch c.GetRowExistence() {
	case otsprotocol.RowExistenceExpectation_IGNORE:
	case otsprotocol.RowExistenceExpectation_EXPECT_EXIST:
		if row == nil {
			return codeError(CodeConditionCheckFail)
		}
	case otsprotocol.RowExistenceExpectation_EXPECT_NOT_EXIST:
		if row != nil {
			return codeError(CodeConditionCheckFail)
		}
	default:
		return errorf(CodeParameterInvalid, "Invalid row existence expectation: %d.", c.GetRowExistence())
	}
	if len(c.ColumnCondition) == 0 {
		return nil
	}
	var f otsprotocol.Filter
	if err := proto.Unmarshal(c.ColumnCondition, &f); err != nil {
		return errorf(CodeParameterInvalid, "Invalid column condition: %v.", err)
	}
	ok, e := evalFilter(&f, row, 0)
	if e != nil {
		return e
	}
	if !ok {
		return codeError(CodeConditionCheckFail)
	}
	return nil
}

const maxFilterDepth = 10

func evalFilter(f *otsprotocol.Filter, row *storedRow, depth int) (bool, *apiError) {
	if depth > maxFilterDepth {
		return false, errorf(CodeParameterInvalid, "The column condition is nested too deeply.")
	}
	switch f.GetType() {
	case otsprotocol.FilterType_FT_SINGLE_COLUMN_VALUE:
		var s otsprotocol.SingleColumnValueFilter
		if err := proto.Unmarshal(f.Filter, &s); err != nil {
			return false, errorf(CodeParameterInvalid, "Invalid single column condition: %v.", err)
		}
		return evalSingle(&s, row)
	case otsprotocol.FilterType_FT_COMPOSITE_COLUMN_VALUE:
		var c otsprotocol.CompositeColumnValueFilter
		if err := proto.Unmarshal(f.Filter, &c); err != nil {
			return false, errorf(CodeParameterInvalid, "Invalid composite column condition: %v.", err)
		}
		subs := c.GetSubFilters()
		switch c.GetCombinator() {
		case otsprotocol.LogicalOperator_LO_NOT:
			if len(subs) != 1 {
				return false, errorf(CodeParameterInvalid, "NOT takes exactly one sub condition, got %d.", len(subs))
			}
			ok, e := evalFilter(subs[0], row, depth+1)
			return !ok, e
		case otsprotocol.LogicalOperator_LO_AND, otsprotocol.LogicalOperator_LO_OR:
			if len(subs) < 2 {
				return false, errorf(CodeParameterInvalid, "AND and OR take at least two sub conditions, got %d.", len(subs))
			}
			and := c.GetCombinator() == otsprotocol.LogicalOperator_LO_AND
			for _, sub := range subs {
				ok, e := evalFilter(sub, row, depth+1)
				if e != nil {
					return false, e
				}
				if ok != and {
					return ok, nil
				}
			}
			return and, nil
		}
		return false, errorf(CodeParameterInvalid, "Invalid logical operator: %d.", c.GetCombinator())
	}
	return false, errorf(CodeParameterInvalid, "Invalid column condition type: %d.", f.GetType())
}

// evalSingle compares a column with a value. A missing column (or row) passes
// unless filter_if_missing; values of different types never match, except
// that they are not equal.
func evalSingle(s *otsprotocol.SingleColumnValueFilter, row *storedRow) (bool, *apiError) {
	if s.Comparator == nil || s.ColumnName == nil || s.ColumnValue == nil {
		return false, errorf(CodeParameterInvalid, "A single column condition needs a comparator, a column name and a value.")
	}
	if s.ValueTransRule != nil {
		return false, errorf(CodeParameterInvalid, "emulator: value transfer rules are not supported.")
	}
	want, err := decodeVariant(s.ColumnValue)
	if err != nil {
		return false, errorf(CodeParameterInvalid, "Invalid value of the condition on '%s': %v.", s.GetColumnName(), err)
	}
	var got cell
	found := false
	if row != nil {
		got, found = row.column(s.GetColumnName())
	}
	if !found {
		return !s.GetFilterIfMissing(), nil
	}
	c, comparable := compareCell(got.value, want)
	switch s.GetComparator() {
	case otsprotocol.ComparatorType_CT_EQUAL:
		return comparable && c == 0, nil
	case otsprotocol.ComparatorType_CT_NOT_EQUAL:
		return !comparable || c != 0, nil
	case otsprotocol.ComparatorType_CT_GREATER_THAN:
		return comparable && c > 0, nil
	case otsprotocol.ComparatorType_CT_GREATER_EQUAL:
		return comparable && c >= 0, nil
	case otsprotocol.ComparatorType_CT_LESS_THAN:
		return comparable && c < 0, nil
	case otsprotocol.ComparatorType_CT_LESS_EQUAL:
		return comparable && c <= 0, nil
	}
	return false, errorf(CodeParameterInvalid, "Invalid comparator: %d.", s.GetComparator())
}

func compareCell(a, b value) (int, bool) {
	if a.kind != b.kind {
		return 0, false
	}
	switch a.kind {
	case vtInteger:
		return cmp.Compare(a.i, b.i), true
	case vtDouble:
		return cmp.Compare(a.f, b.f), true
	case vtBoolean:
		x, y := 0, 0
		if a.b {
			x = 1
		}
		if b.b {
			y = 1
		}
		return cmp.Compare(x, y), true
	case vtString, vtBlob:
		return bytes.Compare(a.s, b.s), true
	}
	return 0, false
}
