package cloudapi

import (
	"errors"
	"fmt"
	"testing"
)

func TestServiceCodes(t *testing.T) {
	tests := []struct {
		code   string
		status int
		want   Class
	}{
		{"WriteQuotaExceed", 403, Throttled},
		{"ShardReadQuotaExceed", 403, Throttled},
		{"ReadQuotaExceed", 403, Throttled},
		{"ServerBusy", 503, Throttled},
		{"Unauthorized", 401, Final},
		{"ShardNotExist", 404, Final},
		// A Tablestore batch row carries a code and no status.
		{"OTSServerBusy", 0, Throttled},
		{"OTSServerBusy", 503, Throttled},
		{"OTSNotEnoughCapacityUnit", 403, Throttled},
		{"OTSQuotaExhausted", 403, Throttled},
		{"OTSTableNotReady", 404, Transient},
		{"OTSRowOperationConflict", 0, Transient},
		{"OTSTimeout", 0, Transient},
		{"OTSInternalServerError", 500, Transient},
		{"OTSConditionCheckFail", 0, Final},
		{"OTSObjectNotExist", 404, Final},
		{"OTSAuthFailed", 403, Final},
		{"OTSParameterInvalid", 400, Final},
	}
	for _, tt := range tests {
		err := fmt.Errorf("call: %w", &APIError{Code: tt.code, HTTPStatus: tt.status})
		if got := Classify(err); got != tt.want {
			t.Errorf("%s (HTTP %d): %v, want %v", tt.code, tt.status, got, tt.want)
		}
	}
	for _, err := range []error{&DecodeError{HTTPStatus: 200, Err: errors.New("x")}, Localf("bad %s", "id")} {
		if Classify(err) != Final {
			t.Errorf("%T is not final", err)
		}
	}
	if Classify(errors.New("connection reset")) != Transient {
		t.Error("no answer is not transient")
	}
}
