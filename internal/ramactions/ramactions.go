// Package ramactions is the one list of the RAM actions vpnauthz needs, by
// feature: which cloud API each part of the code calls, and which RAM action
// that call needs. The function role's policy (scripts/ram-policy.sh) is
// rendered from it, and its tests check each entry against the calls the code
// makes, so that the policy grants what the configured features use and
// nothing else.
package ramactions

import "slices"

// Feature is a part of vpnauthz that calls the cloud only when configured.
type Feature string

// The features, each with what turns it on.
const (
	// Scan: listing and reading VPN connections. Always on.
	Scan Feature = "scan"
	// Findings: delivering findings to Log Service (SLS_PROJECT and
	// SLS_LOGSTORE), and FC writing the function's own log with the same role.
	Findings Feature = "findings"
	// FailureDestination: FC hands a failed asynchronous invocation to
	// VPNAUTHZ_FAILURE_DESTINATION, writing it with the function's role.
	FailureDestination Feature = "failure-destination"
	// MemberAccounts: ACCOUNTS names accounts other than the function's own,
	// entered with STS AssumeRole into MEMBER_ROLE_NAME.
	MemberAccounts Feature = "member-accounts"
	// ResourceDirectory: ACCOUNTS=resource-directory lists the members.
	ResourceDirectory Feature = "resource-directory"
	// FanOut: a timer scan over more accounts than
	// FANOUT_ACCOUNTS_PER_INVOCATION invokes the function itself per batch.
	FanOut Feature = "fan-out"
	// State: STATE_STORE keeps the finding lifecycle in Tablestore.
	State Feature = "state"
	// Trail: the Log Service trigger on an ActionTrail trail's logstore
	// (TRAIL_PROJECT, TRAIL_LOGSTORE); the function pulls the records itself.
	Trail Feature = "trail"
)

// Caller says whose credentials make a call.
type Caller string

const (
	// Function: the function, with its role (FC passes the credentials to
	// each invocation). These actions go into the function role's policy.
	Function Caller = "function"
	// Platform: FC itself, on the function's behalf, with the function's role
	// (the function's log, the failure destination). Also in the role's
	// policy, but no code of ours makes the call.
	Platform Caller = "platform"
	// Setup: the person running setup-sls or setup-state, with their own
	// credentials. Never in the function role's policy.
	Setup Caller = "setup"
)

// Action is one RAM action and the API call that needs it.
type Action struct {
	Feature Feature
	Caller  Caller
	// RAM is the action as a policy names it.
	RAM string
	// APIs are the operations that need it, as the SDKs name their methods
	// (or, for calls made through a generic client, as the code spells the
	// operation's name). Empty for Platform actions.
	APIs []string
	// Resource says, in words, what the policy grants the action on.
	Resource string
}

// Table is every action vpnauthz may need. The clients that make the calls
// name this table in their doc comments; the policy renderer reads it.
//
// Facts behind the less obvious entries:
//   - Log Service documents GetCursor under log:GetCursorOrData, and its
//     consumer examples pull logs with only log:ListShards and
//     log:GetCursorOrData: there is no log:PullLogs action.
//   - A failure destination is written by FC with the function's role
//     (mns:SendMessage for a queue, mns:PublishMessage for a topic,
//     fc:InvokeFunction for a function); without it the destination fails.
//   - STS GetCallerIdentity (the CLI's --live account discovery) is not in
//     the table: it runs with the user's credentials, never the role's.
var Table = []Action{
	{Feature: Scan, Caller: Function, RAM: "vpc:DescribeVpnConnections",
		APIs: []string{"DescribeVpnConnections"}, Resource: "the scanned regions of each scanned account"},
	{Feature: Scan, Caller: Function, RAM: "vpc:DescribeVpnCrossAccountAuthorizations",
		APIs: []string{"DescribeVpnCrossAccountAuthorizations"}, Resource: "the VPN connections of each scanned account"},

	{Feature: Findings, Caller: Function, RAM: "log:PostLogStoreLogs",
		APIs: []string{"PutLogs", "PutRawLogWithCompressType"}, Resource: "the findings logstore"},
	{Feature: Findings, Caller: Platform, RAM: "log:PostLogStoreLogs",
		Resource: "the logstore of the function's own log"},
	{Feature: Findings, Caller: Setup, RAM: "log:CreateLogStore",
		APIs: []string{"CreateLogStore"}, Resource: "the findings logstore"},
	{Feature: Findings, Caller: Setup, RAM: "log:CreateIndex",
		APIs: []string{"CreateIndex"}, Resource: "the findings logstore"},
	{Feature: Findings, Caller: Setup, RAM: "log:UpdateIndex",
		APIs: []string{"UpdateIndex"}, Resource: "the findings logstore"},
	{Feature: Findings, Caller: Setup, RAM: "log:CreateDashboard",
		APIs: []string{"CreateDashboard"}, Resource: "the posture dashboard of the findings project"},
	{Feature: Findings, Caller: Setup, RAM: "log:UpdateDashboard",
		APIs: []string{"UpdateDashboard"}, Resource: "the posture dashboard of the findings project"},
	{Feature: Findings, Caller: Setup, RAM: "log:CreateAlert",
		APIs: []string{"CreateAlert"}, Resource: "the high-severity alert of the findings project"},
	{Feature: Findings, Caller: Setup, RAM: "log:UpdateAlert",
		APIs: []string{"UpdateAlert"}, Resource: "the high-severity alert of the findings project"},

	{Feature: FailureDestination, Caller: Platform, RAM: "mns:SendMessage",
		Resource: "the destination queue (acs:mns:REGION:ACCOUNT:/queues/NAME/messages)"},
	{Feature: FailureDestination, Caller: Platform, RAM: "mns:PublishMessage",
		Resource: "the destination topic (acs:mns:REGION:ACCOUNT:/topics/NAME/messages)"},
	{Feature: FailureDestination, Caller: Platform, RAM: "fc:InvokeFunction",
		Resource: "the destination function"},

	{Feature: MemberAccounts, Caller: Function, RAM: "sts:AssumeRole",
		APIs: []string{"AssumeRole"}, Resource: "acs:ram::*:role/MEMBER_ROLE_NAME"},
	{Feature: ResourceDirectory, Caller: Function, RAM: "resourcemanager:ListAccounts",
		APIs: []string{"ListAccounts"}, Resource: "*"},
	{Feature: ResourceDirectory, Caller: Function, RAM: "resourcemanager:GetResourceDirectory",
		APIs: []string{"GetResourceDirectory"}, Resource: "*"},
	{Feature: FanOut, Caller: Function, RAM: "fc:InvokeFunction",
		APIs: []string{"InvokeFunction"}, Resource: "the function itself"},

	{Feature: State, Caller: Function, RAM: "ots:GetRange",
		APIs: []string{"GetRange"}, Resource: "the state table"},
	{Feature: State, Caller: Function, RAM: "ots:BatchWriteRow",
		APIs: []string{"BatchWriteRow"}, Resource: "the state table"},
	{Feature: State, Caller: Function, RAM: "ots:GetRow",
		APIs: []string{"GetRow"}, Resource: "the state table (to tell a retried write that won from a conflict)"},
	{Feature: State, Caller: Setup, RAM: "ots:CreateTable",
		APIs: []string{"CreateTable"}, Resource: "the state table"},
	{Feature: State, Caller: Setup, RAM: "ots:DescribeTable",
		APIs: []string{"DescribeTable"}, Resource: "the state table"},

	{Feature: Trail, Caller: Function, RAM: "log:GetCursorOrData",
		APIs: []string{"PullLogs"}, Resource: "the trail logstore"},
}

// Features lists every feature in a fixed order.
var Features = []Feature{Scan, Findings, FailureDestination, MemberAccounts, ResourceDirectory, FanOut, State, Trail}

// For returns the entries of the table for the features and callers given,
// in table order.
func For(features []Feature, callers ...Caller) []Action {
	var out []Action
	for _, a := range Table {
		if slices.Contains(features, a.Feature) && slices.Contains(callers, a.Caller) {
			out = append(out, a)
		}
	}
	return out
}

// Names returns the distinct RAM action names of actions, sorted.
func Names(actions []Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, a.RAM)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
