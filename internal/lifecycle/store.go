// Package lifecycle remembers findings between scans: it tells, for each
// finding a scan makes, when it was first seen and where it stands (new, open,
// reopened, suppressed, resolved), and which transitions the scan caused. It
// knows neither FC, SLS nor Tablestore: state lives behind Store.
package lifecycle

import (
	"context"
	"errors"
	"time"
)

// Lifecycle values of a finding and of a stored record.
const (
	LifecycleNew        = "new"
	LifecycleOpen       = "open"
	LifecycleReopened   = "reopened"
	LifecycleSuppressed = "suppressed"
	LifecycleResolved   = "resolved"
	LifecyclePass       = "pass" // a PASS that was never anything else (never stored)
)

// Transitions, the `change` of a vpnauthz-change log.
const (
	ChangeOpened       = "opened"
	ChangeReopened     = "reopened"
	ChangeSuppressed   = "suppressed"
	ChangeUnsuppressed = "unsuppressed"
	ChangeResolved     = "resolved"
)

// Reasons a stored finding was resolved.
const (
	ReasonPassed               = "passed"
	ReasonAuthorizationRemoved = "authorization_removed"
	ReasonConnectionDeleted    = "connection_deleted"
)

// Record is the stored state of one finding that is or was FAIL or
// SUPPRESSED. The key is (AccountID, Region, FindingUID): one range read
// returns everything stored for an (account, region).
type Record struct {
	AccountID  string
	Region     string
	FindingUID string

	// What the finding is about, kept so that a resolution found without a
	// finding in hand (connection deleted, authorization removed) can still
	// name it in its change log.
	ConnectionID string
	RuleID       string
	Severity     string
	BindUID      string
	BindInstance string

	Status         string // FAIL or SUPPRESSED while open; the last one seen once resolved
	Lifecycle      string // new, open, reopened, suppressed or resolved
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
	LastScanID     string
	ResolvedAt     time.Time // zero unless resolved
	ResolvedReason string    // empty unless resolved

	// Revision counts the writes of the record; a write is conditional on the
	// revision it was computed from, so two invocations that computed the same
	// transition from the same state cannot both make it.
	Revision int64
}

// Write is one conditional write: Record replaces the stored row only if the
// row's revision is still ExpectRevision (0: the row must not exist yet).
// Record.Revision is ExpectRevision+1.
type Write struct {
	Record         Record
	ExpectRevision int64
}

// ErrConflict is the result of a Write whose condition did not hold: another
// invocation wrote the row first.
var ErrConflict = errors.New("lifecycle: the stored record changed since it was read")

// Store keeps Records.
type Store interface {
	// Load returns every record stored for one account and region.
	Load(ctx context.Context, accountID, region string) ([]Record, error)
	// Write applies the writes (a store may batch them as its API allows) and
	// returns one error per write, in order: nil, ErrConflict (wrapped or not)
	// when its condition failed, or another error when it could not be
	// written. The returned error is for a failure of the whole call.
	Write(ctx context.Context, writes []Write) ([]error, error)
}
