package slssink

// The Log Service queries behind the alert and the dashboard that Setup
// creates, in one place so that the README can quote them as they are.
//
// Every "latest" value is max_by(field, __time__): the value of the newest
// log of the group. arbitrary() would pick any log's value, and a finding
// reopened after being resolved would then flap between the two.
//
// SQL answers at most 100 rows unless told otherwise; every query says how
// many rows it may return.
const (
	// AlertQuery is what the alert evaluates every minute: for each
	// finding_uid, its newest transition, kept only while that transition is
	// opened or reopened and the finding's severity is high. The alert groups
	// by finding_uid, so each row is one alert of its own: a finding fires
	// once when it appears here and recovers (sendResolved) when it no longer
	// does — when its newest transition becomes resolved or suppressed.
	//
	// Severity is judged on the newest transition, not in the search before
	// "|": a finding whose severity dropped would otherwise keep its old
	// high-severity "opened" as its newest change and never recover.
	AlertQuery = `__topic__: "vpnauthz-change" | select finding_uid, ` +
		`max_by(change, __time__) as last_change, ` +
		`max_by(severity, __time__) as severity, ` +
		`max_by(rule_id, __time__) as rule_id, ` +
		`max_by(owner_account_id, __time__) as owner_account_id, ` +
		`max_by(region, __time__) as region, ` +
		`max_by(vpn_connection_id, __time__) as vpn_connection_id, ` +
		`max_by(bind_uid, __time__) as bind_uid, ` +
		`max_by(bind_instance, __time__) as bind_instance, ` +
		`max_by(first_seen_at, __time__) as first_seen_at, ` +
		`max_by(observed_at, __time__) as observed_at ` +
		`from log group by finding_uid ` +
		`having max_by(change, __time__) in ('opened', 'reopened') and max_by(severity, __time__) = 'high' ` +
		`limit 1000`

	// PostureByRuleQuery counts the findings of the last day by rule,
	// severity and status, each finding counted once at its newest status.
	PostureByRuleQuery = `__topic__: "vpnauthz-finding" | select rule_id, severity, status, count(1) as findings ` +
		`from (select finding_uid, max_by(rule_id, __time__) as rule_id, max_by(severity, __time__) as severity, ` +
		`max_by(status, __time__) as status from log group by finding_uid) ` +
		`group by rule_id, severity, status order by findings desc limit 1000`

	// PostureByAccountQuery counts the findings of the last day by owner
	// account and status, each finding counted once at its newest status.
	PostureByAccountQuery = `__topic__: "vpnauthz-finding" | select owner_account_id, status, count(1) as findings ` +
		`from (select finding_uid, max_by(owner_account_id, __time__) as owner_account_id, ` +
		`max_by(status, __time__) as status from log group by finding_uid) ` +
		`group by owner_account_id, status order by owner_account_id, status limit 1000`

	// OpenByAgeQuery counts the findings whose newest status is FAIL by how
	// long ago they were first seen (first_seen_at, which the lifecycle
	// keeps across scans), in age bands, by severity.
	OpenByAgeQuery = `__topic__: "vpnauthz-finding" | select case ` +
		`when age_days < 1 then '0-1 days' when age_days < 7 then '1-7 days' ` +
		`when age_days < 30 then '7-30 days' when age_days < 90 then '30-90 days' ` +
		`else '90+ days' end as age, severity, count(1) as open_findings ` +
		`from (select severity, date_diff('day', from_iso8601_timestamp(first_seen_at), now()) as age_days ` +
		`from (select finding_uid, max_by(status, __time__) as status, max_by(severity, __time__) as severity, ` +
		`max_by(first_seen_at, __time__) as first_seen_at from log group by finding_uid) ` +
		`where status = 'FAIL' and first_seen_at <> '') ` +
		`group by age, severity order by age, severity limit 1000`

	// TransitionsQuery counts transitions per day and kind.
	TransitionsQuery = `__topic__: "vpnauthz-change" | select date_format(date_trunc('day', __time__), '%Y-%m-%d') as day, ` +
		`change, count(1) as transitions group by day, change order by day, change limit 1000`
)
