package lifecycle

// TopicChange is the SLS topic of a transition log.
const TopicChange = "vpnauthz-change"

// Change is one transition of one finding: one vpnauthz-change log. Every
// value is a string, as an SLS log content is; the JSON keys are the SLS keys.
type Change struct {
	Change            string `json:"change"`
	PreviousLifecycle string `json:"previous_lifecycle"`
	Lifecycle         string `json:"lifecycle"`
	ResolvedReason    string `json:"resolved_reason"`
	FindingUID        string `json:"finding_uid"`
	RuleID            string `json:"rule_id"`
	Severity          string `json:"severity"`
	OwnerAccountID    string `json:"owner_account_id"`
	Region            string `json:"region"`
	VpnConnectionID   string `json:"vpn_connection_id"`
	BindUID           string `json:"bind_uid"`
	BindInstance      string `json:"bind_instance"`
	FirstSeenAt       string `json:"first_seen_at"`
	ObservedAt        string `json:"observed_at"`
	ScanID            string `json:"scan_id"`
	Trigger           string `json:"trigger"`
}

// ChangeKeys lists the SLS content keys of a change, in schema order.
var ChangeKeys = []string{
	"change", "previous_lifecycle", "lifecycle", "resolved_reason", "finding_uid", "rule_id",
	"severity", "owner_account_id", "region", "vpn_connection_id", "bind_uid", "bind_instance",
	"first_seen_at", "observed_at", "scan_id", "trigger",
}

// Values returns the change's values in the order of ChangeKeys.
func (c *Change) Values() []string {
	return []string{
		c.Change, c.PreviousLifecycle, c.Lifecycle, c.ResolvedReason, c.FindingUID, c.RuleID,
		c.Severity, c.OwnerAccountID, c.Region, c.VpnConnectionID, c.BindUID, c.BindInstance,
		c.FirstSeenAt, c.ObservedAt, c.ScanID, c.Trigger,
	}
}

// Annotation is what the lifecycle adds to one finding: the finding log's
// first_seen_at (RFC 3339, UTC) and lifecycle. Both are empty for an ERROR
// finding and whenever the state could not be read; FirstSeenAt is empty for
// a PASS that was never anything else (PASS findings are not stored).
type Annotation struct {
	FindingUID  string
	FirstSeenAt string
	Lifecycle   string
}
