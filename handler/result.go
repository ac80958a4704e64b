package handler

import (
	"vpnauthz/events"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
)

// Result is the answer to one invocation: a *ScanResult, an *HTTPResult or
// an *Ignored, and nothing else. Each marshals to exactly the JSON Function
// Compute returns to the caller, so the runtime passes it through as it is
// and a local caller can print it by type without decoding it again.
type Result interface{ result() }

// ScanResult answers a timer or EventBridge invocation: the scan's report,
// without its findings (they went to Log Service). Findings holds them when
// the invocation asked to collect them; it is never part of the answer's
// JSON.
type ScanResult struct {
	scan.Report
	// Accounts says which accounts an organisation scan covered (ACCOUNTS
	// or TRUST_ORGANIZATION set).
	Accounts *AccountsReport `json:"accounts,omitempty"`
	// Batch places a worker's scan in the fanned-out scan it belongs to.
	Batch *BatchReport `json:"batch,omitempty"`
	// Fanout is a coordinator's answer: it scanned nothing itself and says
	// what it dispatched.
	Fanout *FanoutReport `json:"fanout,omitempty"`
	// Trail is what a Log Service trigger's logs held.
	Trail    *TrailReport      `json:"trail,omitempty"`
	Findings []finding.Finding `json:"-"`
}

// AccountsReport says which accounts an organisation scan covered.
type AccountsReport struct {
	Scanned   int         `json:"scanned"`   // accounts the scan read
	Excluded  []string    `json:"excluded"`  // in ACCOUNTS_EXCLUDE
	NotJoined []NotJoined `json:"notJoined"` // listed but not in a joined state
	// ListError is why the resource directory could not be listed; the
	// scan then covered the function's own account only.
	ListError string `json:"listError,omitempty"`
}

// NotJoined is a listed member that is not scanned.
type NotJoined struct {
	Account string `json:"account"`
	Reason  string `json:"reason"`
}

// BatchReport places a worker's scan in its fanned-out scan.
type BatchReport struct {
	ParentScanID string `json:"parentScanId"`
	Batch        int    `json:"batch"`
	Batches      int    `json:"batches"`
	Accounts     int    `json:"accounts"`
}

// FanoutReport is what a coordinator dispatched.
type FanoutReport struct {
	Role     string `json:"role"` // "coordinator"
	Accounts int    `json:"accounts"`
	Batches  int    `json:"batches"`
	// Dispatched batches were started by this invocation; AlreadyStarted
	// ones by an earlier try of it (FC refused their task id as used).
	Dispatched     int          `json:"dispatched"`
	AlreadyStarted int          `json:"alreadyStarted"`
	Tasks          []FanoutTask `json:"tasks"`
}

// FanoutTask is one dispatched batch.
type FanoutTask struct {
	Batch          int    `json:"batch"`
	TaskID         string `json:"taskId"`
	Accounts       int    `json:"accounts"`
	AlreadyStarted bool   `json:"alreadyStarted"`
	RequestID      string `json:"requestId,omitempty"`
}

// TrailReport is what a Log Service trigger's logs held and which scans
// they led to.
type TrailReport struct {
	Project  string `json:"project"`
	Logstore string `json:"logstore"`
	Shard    int    `json:"shard"`
	Records  int    `json:"records"` // logs read
	Kept     int    `json:"kept"`    // records that asked for a scan
	// Ignored counts records that asked for none, by reason (failed-call,
	// unrelated-event, ..., malformed), and asked-for scans outside the
	// scope (outside-scope, outside-accounts).
	Ignored map[string]int `json:"ignored"`
	Scans   int            `json:"scans"` // de-duplicated scans asked for
	Targets int            `json:"targets"`
	// Complete is false when the deadline came before the end cursor: the
	// records after it were not read.
	Complete bool `json:"complete"`
}

// HTTPResult answers an HTTP trigger invocation: the response the trigger
// sends back, and in Value what its body encodes: an *HTTPReport
// (POST /scans), a *Health (GET /health) or an *ErrorBody (every error
// status). Value is nil for a HEAD request, whose body is empty.
type HTTPResult struct {
	events.HTTPTriggerResponse
	Value any `json:"-"`
}

// Ignored answers an event that needs no scan.
type Ignored struct {
	Ignored bool   `json:"ignored"`
	Reason  string `json:"reason"`
}

func (*ScanResult) result() {}
func (*HTTPResult) result() {}
func (*Ignored) result()    {}
