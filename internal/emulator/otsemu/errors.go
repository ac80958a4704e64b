package otsemu

import (
	"fmt"
	"net/http"
)

// Error codes of the service, with the HTTP status and message it answers
// them with.
const (
	CodeAuthFailed         = "OTSAuthFailed"
	CodeParameterInvalid   = "OTSParameterInvalid"
	CodeConditionCheckFail = "OTSConditionCheckFail"
	CodeObjectNotExist     = "OTSObjectNotExist"
	CodeObjectAlreadyExist = "OTSObjectAlreadyExist"
	CodeServerBusy         = "OTSServerBusy"
	CodeServerUnavailable  = "OTSServerUnavailable"
	CodeInternalError      = "OTSInternalServerError"
	CodePartitionUnavail   = "OTSPartitionUnavailable"
	CodeRowOpConflict      = "OTSRowOperationConflict"
	CodeTimeout            = "OTSTimeout"
	CodeMethodNotAllowed   = "OTSMethodNotAllowed"
	CodeBodyTooLarge       = "OTSRequestBodyTooLarge"
	CodeNotEnoughCU        = "OTSNotEnoughCapacityUnit"
	CodeQuotaExhausted     = "OTSQuotaExhausted"
)

var codeStatus = map[string]int{
	CodeAuthFailed:         http.StatusForbidden,
	CodeParameterInvalid:   http.StatusBadRequest,
	CodeConditionCheckFail: http.StatusForbidden,
	CodeObjectNotExist:     http.StatusNotFound,
	CodeObjectAlreadyExist: http.StatusConflict,
	CodeServerBusy:         http.StatusServiceUnavailable,
	CodeServerUnavailable:  http.StatusServiceUnavailable,
	CodeInternalError:      http.StatusInternalServerError,
	CodePartitionUnavail:   http.StatusServiceUnavailable,
	CodeRowOpConflict:      http.StatusConflict,
	CodeTimeout:            http.StatusServiceUnavailable,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeBodyTooLarge:       http.StatusRequestEntityTooLarge,
	CodeNotEnoughCU:        http.StatusForbidden,
	CodeQuotaExhausted:     http.StatusForbidden,
}

var codeMessage = map[string]string{
	CodeConditionCheckFail: "Condition check failed.",
	CodeServerBusy:         "Server is busy.",
	CodeServerUnavailable:  "Server is not available.",
	CodeInternalError:      "Internal server error.",
	CodePartitionUnavail:   "The partition is not available.",
	CodeRowOpConflict:      "Data is being modified by the other request.",
	CodeTimeout:            "Operation timeout.",
	CodeNotEnoughCU:        "Remaining capacity unit is not enough.",
	CodeQuotaExhausted:     "Too frequent table operations.",
}

// apiError is an error answer: a protobuf Error body with the HTTP status.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(code, format string, args ...any) *apiError {
	status, ok := codeStatus[code]
	if !ok {
		status = http.StatusBadRequest
	}
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// codeError is the error of code with the service's own message.
func codeError(code string) *apiError {
	msg, ok := codeMessage[code]
	if !ok {
		msg = code
	}
	return errorf(code, "%s", msg)
}
