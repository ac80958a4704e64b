// Package scan reads the cross-account authorizations of every targeted
// IPsec-VPN connection within the API quota, judges them, and streams the
// findings to a Sink. It knows neither FC nor SLS.
package scan

import (
	"context"
	"vpnauthz/internal/cloudapi"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/target"
)

// Credentials sign the VPC API calls of one scan.
type Credentials = cloudapi.Credentials

// Request is one scan.
type Request struct {
	ScanID  string
	Trigger string
	// Targets name their account: Account "" is the function's own account
	// (AccountID, read with Credentials); any other account is read with the
	// credentials Members gives for it.
	Targets         []target.Target
	DryRun          bool
	Credentials     Credentials
	AccountID       string // the scanning account, owner of connections without authorizations
	CollectFindings bool   // keep the findings for the report (HTTP, CLI); otherwise they are only streamed

	// Members gives the credentials of every other account the targets
	// name; nil when the targets name none. An account it cannot give
	// credentials for is one ERROR finding (region "*", connection "*",
	// owner that account), and its targets are not read; the other accounts
	// go on.
	Members MemberCredentials
	// TrustedAccounts are trusted on top of the policy's for this scan
	// (TRUST_ORGANIZATION: every member of the Resource Directory).
	TrustedAccounts []int64
	// State keeps findings between scans (STATE_STORE); nil: stateless.
	// Findings then carry first_seen_at and lifecycle, and the scan's
	// transitions go to the sink as change logs.
	State lifecycle.Store
	// Batch is set when this scan is one batch of a fanned-out scan.
	Batch *Batch
}

// MemberCredentials gives the credentials to read another account with,
// e.g. from STS AssumeRole into its member role.
type MemberCredentials interface {
	Credentials(ctx context.Context, accountID string) (Credentials, error)
}

// Batch places a worker's scan in the fanned-out scan it is part of.
type Batch struct {
	ParentScanID string
	Batch        int // 1..Batches
	Batches      int
}

// Report is what a scan returns to every trigger.
type Report struct {
	ScanID     string            `json:"scanId"`
	Trigger    string            `json:"trigger"`
	StartedAt  string            `json:"startedAt"`
	DurationMs int64             `json:"durationMs"`
	Complete   bool              `json:"complete"`
	Summary    finding.Counts    `json:"summary"`
	Delivery   Delivery          `json:"delivery"`
	Findings   []finding.Finding `json:"findings,omitempty"`
}

// Delivery says where the findings went and whether they arrived.
type Delivery struct {
	Sink      string `json:"sink"`
	Project   string `json:"project"`
	Logstore  string `json:"logstore"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error"`
}

// Source reads one region's VPN connections and their authorizations. Each
// method makes exactly one API call: pacing and retries are the scanner's.
type Source interface {
	ListConnections(ctx context.Context, region string, pageNumber, pageSize int) (ConnectionPage, error)
	ListAuthorizations(ctx context.Context, region, connectionID string, pageNumber, pageSize int) (AuthorizationPage, error)
}

// ConnectionPage is one page of DescribeVpnConnections.
type ConnectionPage struct {
	IDs        []string
	TotalCount int
}

// AuthorizationPage is one page of DescribeVpnCrossAccountAuthorizations.
type AuthorizationPage struct {
	Authorizations []policy.Authorization
	TotalCount     int
}

// SourceFactory builds the Source of one region for one scan's credentials.
type SourceFactory func(creds Credentials, region string) (Source, error)

// Sink receives the findings of one scan as they are made, the lifecycle
// transitions they caused, then the summary. Write and WriteChange are
// called from one goroutine at a time; what they are handed is theirs
// until they return (the scanner reuses it), so a Sink copies what it
// keeps.
type Sink interface {
	Write(ctx context.Context, f *finding.Finding) error
	// WriteChange takes one lifecycle transition (topic vpnauthz-change).
	WriteChange(ctx context.Context, c *lifecycle.Change) error
	// Close delivers what is buffered and the summary (whose FindingsDelivered
	// the sink fills in) and says whether everything arrived.
	Close(ctx context.Context, summary *finding.ScanSummary) Delivery
}
