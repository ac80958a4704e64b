// Package finding defines the compliance finding and scan summary that vpnauthz
// writes to Log Service and returns in its reports. Every value is a string, as
// an SLS log content is; the JSON keys are the SLS keys.
package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Topics of the two kinds of log vpnauthz writes.
const (
	TopicFinding = "vpnauthz-finding"
	TopicScan    = "vpnauthz-scan"
)

// Statuses of a finding.
const (
	StatusPass       = "PASS"
	StatusFail       = "FAIL"
	StatusError      = "ERROR"
	StatusSuppressed = "SUPPRESSED"
)

// Rule identifiers.
const (
	RuleUntrustedAccount   = "untrusted-account"
	RuleUnexpectedProduct  = "unexpected-product"
	RuleUntrustedCEN       = "untrusted-cen"
	RuleStaleAuthorization = "stale-authorization"
	RuleReadAuthorizations = "read-authorizations"
)

// Triggers a scan can come from.
const (
	TriggerTimer = "timer"
	TriggerHTTP  = "http"
	TriggerEvent = "event"
	TriggerCLI   = "cli"
)

// Finding is one judgement of one rule on one authorization (or on a
// connection without authorizations, or on a connection that could not be
// read). Its fields are the finding log's schema: see Schema.
type Finding struct {
	FindingUID             string `json:"finding_uid"`
	ScanID                 string `json:"scan_id"`
	Trigger                string `json:"trigger"`
	RuleID                 string `json:"rule_id"`
	Title                  string `json:"title"`
	Severity               string `json:"severity"`
	Status                 string `json:"status"`
	StatusDetail           string `json:"status_detail"`
	Region                 string `json:"region"`
	OwnerAccountID         string `json:"owner_account_id"`
	VpnConnectionID        string `json:"vpn_connection_id"`
	BindUID                string `json:"bind_uid"`
	BindProduct            string `json:"bind_product"`
	BindInstance           string `json:"bind_instance"`
	AuthorizationCreatedAt string `json:"authorization_created_at"`
	AuthorizationAgeDays   string `json:"authorization_age_days"`
	Remediation            string `json:"remediation"`
	ExceptionReason        string `json:"exception_reason"`
	ExceptionExpires       string `json:"exception_expires"`
	ObservedAt             string `json:"observed_at"`
}

// FindingSchema is the schema of a finding log, read from Finding's tags.
var FindingSchema = NewSchema[Finding]()

// Keys lists the SLS content keys of a finding, in schema order.
var Keys = FindingSchema.Keys()

// Values returns the finding's values in the order of Keys.
func (f *Finding) Values() []string { return FindingSchema.Values(f) }

// UID is the stable identity of a finding across scans: the first 32 hex
// characters of SHA-256 over rule|owner|region|connection|bind uid|bind instance.
func UID(ruleID, ownerAccountID, region, vpnConnectionID, bindUID, bindInstance string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{
		ruleID, ownerAccountID, region, vpnConnectionID, bindUID, bindInstance,
	}, "|")))
	return hex.EncodeToString(sum[:])[:32]
}

// Counts are the per-scan counters, shared by the scan summary log and the
// report's summary object.
type Counts struct {
	Connections       int `json:"connections"`
	Authorizations    int `json:"authorizations"`
	Pass              int `json:"pass"`
	Fail              int `json:"fail"`
	Error             int `json:"error"`
	Suppressed        int `json:"suppressed"`
	APICalls          int `json:"api_calls"`
	APIRetries        int `json:"api_retries"`
	Throttled         int `json:"throttled"`
	FindingsDelivered int `json:"findings_delivered"`
}

// Add counts one finding by its status.
func (c *Counts) Add(f *Finding) {
	switch f.Status {
	case StatusPass:
		c.Pass++
	case StatusFail:
		c.Fail++
	case StatusError:
		c.Error++
	case StatusSuppressed:
		c.Suppressed++
	}
}

// Findings is the number of findings counted.
func (c *Counts) Findings() int { return c.Pass + c.Fail + c.Error + c.Suppressed }

// ScanSummary is the one log per invocation with topic vpnauthz-scan.
type ScanSummary struct {
	ScanID     string
	Trigger    string
	StartedAt  string // RFC 3339
	DurationMs int64
	Complete   bool
	Counts     Counts
}
