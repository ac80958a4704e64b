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
	TriggerSLS   = "sls" // a Log Service trigger on an ActionTrail trail's logstore
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
	// FirstSeenAt and Lifecycle come from the state kept between scans
	// (STATE_STORE); both are empty without one, for an ERROR, and when the
	// state could not be read.
	FirstSeenAt string `json:"first_seen_at"`
	Lifecycle   string `json:"lifecycle"`
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
	// Connections were read (judged, or answered with an error); those the
	// deadline left unread are in ConnectionsInScope only.
	Connections int `json:"connections"`
	// ConnectionsInScope were named: the explicit targets and every
	// connection a listing found.
	ConnectionsInScope int `json:"connections_in_scope"`
	Authorizations     int `json:"authorizations"`
	Pass               int `json:"pass"`
	Fail               int `json:"fail"`
	Error              int `json:"error"`
	Suppressed         int `json:"suppressed"`
	APICalls           int `json:"api_calls"`
	APIRetries         int `json:"api_retries"`
	Throttled          int `json:"throttled"`
	FindingsDelivered  int `json:"findings_delivered"`
	// Changes are the lifecycle transitions the scan made (written to the
	// state store and handed to the sink as change logs).
	Changes int `json:"changes"`
	// StateWarning is why the lifecycle state could not be read or written
	// ("" when it could): the findings are delivered all the same, with
	// empty lifecycle fields where the state was not read.
	StateWarning string `json:"state_warning"`
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

// Roles of an invocation in a fanned-out scan (the summary's role).
const (
	RoleWorker      = "worker"      // scans one batch of accounts
	RoleCoordinator = "coordinator" // dispatches the batches, scans nothing
)

// ScanSummary is the one log per invocation with topic vpnauthz-scan.
type ScanSummary struct {
	ScanID     string
	Trigger    string
	StartedAt  string // RFC 3339
	DurationMs int64
	Complete   bool
	Counts     Counts

	// Role is RoleWorker or RoleCoordinator in a fanned-out scan, "" for a
	// scan on its own.
	Role string
	// Accounts is how many accounts the scan covered (a coordinator: how
	// many it dispatched).
	Accounts int
	// ParentScanID, Batch (1..Batches) and Batches place a worker in its
	// fanned-out scan; a coordinator sets Batches only. Empty/zero otherwise.
	ParentScanID string
	Batch        int
	Batches      int
}
