// Package cloudapi holds what every client of the cloud shares: the error an
// API answers, the errors that are no answer at all, how each is classified
// for retries (PRODUCT.md, "Errors from the cloud"), and the defaults of
// calling the cloud. It knows no SDK.
package cloudapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Defaults of calling the cloud, in one place for the configuration, the
// scanner, the VPC client and the Log Service sink.
const (
	// DefaultRate is VPC_API_RATE: calls per second per region and account
	// (the published quota is 600 calls per 60 s).
	DefaultRate = 10
	// DefaultConcurrency is SCAN_CONCURRENCY: connections read at once per
	// region.
	DefaultConcurrency = 8
	// DefaultCallTimeout bounds one VPC API call: connect, send, answer.
	DefaultCallTimeout = 10 * time.Second
	// DefaultMaxAttempts bounds the attempts of one call, the first
	// included; throttled calls get ThrottledAttemptsFactor times as many.
	DefaultMaxAttempts      = 6
	ThrottledAttemptsFactor = 4
	// DefaultBaseDelay and DefaultMaxDelay bound the backoff pauses.
	DefaultBaseDelay = 200 * time.Millisecond
	DefaultMaxDelay  = 5 * time.Second
	// DefaultDeliveryBudget is the time one Log Service request may take,
	// retries included, and DefaultDeliveryAttemptTimeout one attempt of it.
	DefaultDeliveryBudget         = 30 * time.Second
	DefaultDeliveryAttemptTimeout = 15 * time.Second
)

// APIError is an error answer of a cloud API.
type APIError struct {
	Code       string // "" when the body named none
	Message    string
	RequestID  string
	HTTPStatus int
}

func (e *APIError) Error() string {
	var s string
	if e.Code == "" {
		s = fmt.Sprintf("HTTP %d: %s", e.HTTPStatus, e.Message)
	} else {
		s = fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Class is what a failed call calls for.
type Class int

const (
	// Final: repeating the call cannot help (permission, signature, not
	// found, bad parameter, an undecodable answer, a local error).
	Final Class = iota
	// Transient: a server error or no answer at all (timeout, reset, EOF,
	// refused connection); the call is retried.
	Transient
	// Throttled: the service says "later"; the call is retried with backoff,
	// more often than a transient failure, and the caller slows down.
	Throttled
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	}
	return "final"
}

// serviceCodes are the codes of services that do not speak the OpenAPI
// gateway's Throttling* vocabulary, each named with its service: the one
// place a service's own "later" is taught to the retry loop. Codes are
// matched whatever the HTTP status, because a row of a Tablestore batch
// answers with a code and no status of its own.
var serviceCodes = map[string]Class{
	// Log Service answers its traffic quotas with 403 (writes by PutLogs,
	// reads by PullLogs and GetLogs); its busy server is a 503.
	"WriteQuotaExceed":      Throttled,
	"ShardWriteQuotaExceed": Throttled,
	"ReadQuotaExceed":       Throttled,
	"ShardReadQuotaExceed":  Throttled,

	// Tablestore: the busy and capacity answers are "later"
	// (OTSQuotaExhausted is also the table-count quota of CreateTable, told
	// apart by its message only; it is treated as throttling, which costs
	// a refused Setup a few attempts rather than reading a message).
	"OTSServerBusy":            Throttled,
	"OTSStorageServerBusy":     Throttled,
	"OTSNotEnoughCapacityUnit": Throttled,
	"OTSQuotaExhausted":        Throttled,
	// A table just created, a partition moving, two writes of one row
	// meeting, or a server error: worth one more try, not a slower pace.
	"OTSTableNotReady":        Transient,
	"OTSPartitionUnavailable": Transient,
	"OTSRowOperationConflict": Transient,
	"OTSTimeout":              Transient,
	"OTSStorageTimeout":       Transient,
	"OTSServerUnavailable":    Transient,
	"OTSInternalServerError":  Transient,
}

// Class classifies the answer: throttling is any code starting with
// Throttling, Rejected.Throttling, ServiceUnavailable, HTTP 429 or 503, and
// the services' own codes in serviceCodes; other 5xx are transient; the rest
// is final.
func (e *APIError) Class() Class {
	if c, ok := serviceCodes[e.Code]; ok {
		return c
	}
	switch {
	case strings.HasPrefix(e.Code, "Throttling"),
		e.Code == "Rejected.Throttling",
		e.Code == "ServiceUnavailable",
		e.HTTPStatus == http.StatusTooManyRequests,
		e.HTTPStatus == http.StatusServiceUnavailable:
		return Throttled
	case e.HTTPStatus >= 500:
		return Transient
	}
	return Final
}

// DecodeError is an answer that came but could not be read: repeating the
// call would bring the same answer.
type DecodeError struct {
	HTTPStatus int
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("the answer (HTTP %d) could not be decoded: %v", e.HTTPStatus, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// LocalError is a failure before anything was sent: a bad region or id, a
// client the SDK refused. It is final.
type LocalError struct{ Err error }

func (e *LocalError) Error() string { return e.Err.Error() }
func (e *LocalError) Unwrap() error { return e.Err }

// Local marks err as a LocalError; nil stays nil.
func Local(err error) error {
	if err == nil {
		return nil
	}
	return &LocalError{Err: err}
}

// Localf is Local(fmt.Errorf(format, args...)).
func Localf(format string, args ...any) error { return Local(fmt.Errorf(format, args...)) }

// Classify says what err calls for. An answer is classified by its code and
// status; a DecodeError or LocalError is final; anything else is a call that
// got no answer (a timeout, a reset, an EOF, a refused connection) and is
// transient. Errors are recognised by type, never by their text.
func Classify(err error) Class {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	var de *DecodeError
	var le *LocalError
	if errors.As(err, &de) || errors.As(err, &le) {
		return Final
	}
	return Transient
}
