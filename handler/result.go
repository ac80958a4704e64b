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
	Findings []finding.Finding `json:"-"`
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
