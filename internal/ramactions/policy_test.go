package ramactions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

const (
	acct   = "1234567890123456"
	member = "1999000011112222"
	queue  = "acs:mns:cn-hangzhou:1234567890123456:/queues/vpnauthz-dlq/messages"
	topic  = "acs:mns:cn-hangzhou:1234567890123456:/topics/vpnauthz-failed/messages"
	fnDest = "acs:fc:cn-hangzhou:1234567890123456:functions/vpnauthz-dlq"
)

var baseArgs = []string{acct, "cn-hangzhou", "vpn-audit", "vpnauthz-findings"}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// render renders the function policy for args and env, and decodes it back
// strictly, as a RAM policy document holding only Allow statements.
func render(t *testing.T, args []string, env map[string]string) Document {
	t.Helper()
	cfg, err := ConfigFromEnv(args, envOf(env))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	doc, err := FunctionPolicy(cfg)
	if err != nil {
		t.Fatalf("FunctionPolicy: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(doc.JSON()))
	dec.DisallowUnknownFields()
	var back Document
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("not a RAM policy document: %v\n%s", err, doc.JSON())
	}
	for i, s := range back.Statement {
		if s.Effect != "Allow" || len(s.Action) == 0 || len(s.Resource) == 0 {
			t.Errorf("statement %d: %+v", i, s)
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %d: wildcard action %q", i, a)
			}
		}
	}
	return back
}

// resourcesOf returns the resources granted for each action.
func resourcesOf(d Document) map[string][]string {
	out := map[string][]string{}
	for _, s := range d.Statement {
		for _, a := range s.Action {
			out[a] = append(out[a], s.Resource...)
		}
	}
	return out
}

// TestFunctionPolicyByFeature renders the policy for each feature
// combination: it holds exactly the table's actions for the features the
// configuration turns on (and, for a failure destination, the one action
// that kind of destination needs), each on exactly its resources.
func TestFunctionPolicyByFeature(t *testing.T) {
	many := make([]string, 0, 51)
	for i := range 51 {
		many = append(many, fmt.Sprintf("1999000011%06d", i))
	}
	cases := []struct {
		name     string
		env      map[string]string
		features []Feature
		dest     string            // the failure-destination action, if any
		want     map[string]string // action → one resource it must name exactly
	}{
		{name: "first deploy: scan and findings only", features: []Feature{Scan, Findings},
			want: map[string]string{"log:PostLogStoreLogs": "acs:log:cn-hangzhou:" + acct + ":project/vpn-audit/logstore/vpnauthz-findings"}},
		{name: "queue destination", env: map[string]string{"VPNAUTHZ_FAILURE_DESTINATION": queue},
			features: []Feature{Scan, Findings, FailureDestination}, dest: "mns:SendMessage",
			want: map[string]string{"mns:SendMessage": queue}},
		{name: "topic destination", env: map[string]string{"VPNAUTHZ_FAILURE_DESTINATION": topic},
			features: []Feature{Scan, Findings, FailureDestination}, dest: "mns:PublishMessage",
			want: map[string]string{"mns:PublishMessage": topic}},
		{name: "function destination", env: map[string]string{"VPNAUTHZ_FAILURE_DESTINATION": fnDest},
			features: []Feature{Scan, Findings, FailureDestination}, dest: "fc:InvokeFunction",
			want: map[string]string{"fc:InvokeFunction": fnDest}},
		{name: "own account listed only", env: map[string]string{"ACCOUNTS": acct},
			features: []Feature{Scan, Findings}},
		{name: "a short list of members", env: map[string]string{"ACCOUNTS": acct + "," + member},
			features: []Feature{Scan, Findings, MemberAccounts},
			want:     map[string]string{"sts:AssumeRole": "acs:ram::" + member + ":role/vpnauthz-auditor"}},
		{name: "member role renamed", env: map[string]string{"ACCOUNTS": member, "MEMBER_ROLE_NAME": "audit-ro"},
			features: []Feature{Scan, Findings, MemberAccounts},
			want:     map[string]string{"sts:AssumeRole": "acs:ram::" + member + ":role/audit-ro"}},
		{name: "a list longer than one invocation takes", env: map[string]string{"ACCOUNTS": strings.Join(many, " ")},
			features: []Feature{Scan, Findings, MemberAccounts, FanOut},
			want:     map[string]string{"fc:InvokeFunction": "acs:fc:cn-hangzhou:" + acct + ":functions/vpnauthz"}},
		{name: "the same list under the threshold after exclusion", env: map[string]string{"ACCOUNTS": strings.Join(many, " "), "ACCOUNTS_EXCLUDE": many[0]},
			features: []Feature{Scan, Findings, MemberAccounts}},
		{name: "a lower threshold", env: map[string]string{"ACCOUNTS": member + " 1999000011113333", "FANOUT_ACCOUNTS_PER_INVOCATION": "1",
			"VPNAUTHZ_REGION": "cn-shanghai", "VPNAUTHZ_FUNCTION_NAME": "audit"},
			features: []Feature{Scan, Findings, MemberAccounts, FanOut},
			want:     map[string]string{"fc:InvokeFunction": "acs:fc:cn-shanghai:" + acct + ":functions/audit"}},
		{name: "resource directory", env: map[string]string{"ACCOUNTS": "resource-directory"},
			features: []Feature{Scan, Findings, MemberAccounts, ResourceDirectory, FanOut},
			want: map[string]string{"sts:AssumeRole": "acs:ram::*:role/vpnauthz-auditor", "resourcemanager:ListAccounts": "*",
				"fc:InvokeFunction": "acs:fc:cn-hangzhou:" + acct + ":functions/vpnauthz"}},
		{name: "state store", env: map[string]string{"STATE_STORE": "tablestore://vpnauthz/finding_state"},
			features: []Feature{Scan, Findings, State},
			want: map[string]string{"ots:GetRange": "acs:ots:cn-hangzhou:" + acct + ":instance/vpnauthz/table/finding_state",
				"ots:BatchWriteRow": "acs:ots:cn-hangzhou:" + acct + ":instance/vpnauthz/table/finding_state"}},
		{name: "trail with the default logstore", env: map[string]string{"TRAIL_PROJECT": "org-audit"},
			features: []Feature{Scan, Findings, Trail},
			want:     map[string]string{"log:GetCursorOrData": "acs:log:cn-hangzhou:" + acct + ":project/org-audit/logstore/actiontrail_vpnauthz-trail"}},
		{name: "trail with its own names", env: map[string]string{"TRAIL_PROJECT": "org-audit", "TRAIL_LOGSTORE": "trail_logs", "VPNAUTHZ_REGION": "cn-shanghai"},
			features: []Feature{Scan, Findings, Trail},
			want:     map[string]string{"log:GetCursorOrData": "acs:log:cn-shanghai:" + acct + ":project/org-audit/logstore/trail_logs"}},
		{name: "everything", env: map[string]string{"VPNAUTHZ_FAILURE_DESTINATION": queue, "ACCOUNTS": "resource-directory",
			"STATE_STORE": "tablestore://vpnauthz/finding_state", "TRAIL_PROJECT": "org-audit"},
			features: []Feature{Scan, Findings, FailureDestination, MemberAccounts, ResourceDirectory, FanOut, State, Trail}, dest: "mns:SendMessage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(baseArgs, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.EnabledFeatures()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.features) {
				t.Errorf("features %v, want %v", got, tc.features)
			}

			// The actions the table lists for these features, where a
			// failure destination needs only its own kind's action.
			var want []Action
			for _, a := range For(tc.features, Function, Platform) {
				if a.Feature != FailureDestination || a.RAM == tc.dest {
					want = append(want, a)
				}
			}
			doc := render(t, baseArgs, tc.env)
			if got, want := doc.Actions(), Names(want); !slices.Equal(got, want) {
				t.Errorf("policy grants %v\nthe features need %v", got, want)
			}

			granted := resourcesOf(doc)
			for action, resource := range tc.want {
				if !slices.Contains(granted[action], resource) {
					t.Errorf("%s on %v, want it on %s", action, granted[action], resource)
				}
			}
			for action, resources := range granted {
				for _, r := range resources {
					if action == "resourcemanager:ListAccounts" || action == "resourcemanager:GetResourceDirectory" {
						continue // not scoped by resource
					}
					if action == "sts:AssumeRole" && tc.env["ACCOUNTS"] == "resource-directory" {
						continue // every member: acs:ram::*:role/NAME, checked above
					}
					if !strings.Contains(r, ":"+acct+":") && !strings.HasPrefix(r, "acs:ram::"+member+":") && !strings.HasPrefix(r, "acs:ram::1999") {
						t.Errorf("%s on %q: outside the account", action, r)
					}
				}
			}
			// The function's own log is on the list for FC, never given our index.
			if !slices.Contains(granted["log:PostLogStoreLogs"], "acs:log:cn-hangzhou:"+acct+":project/vpn-audit/logstore/vpnauthz-function-logs") {
				t.Errorf("log:PostLogStoreLogs on %v: the function's own log is missing", granted["log:PostLogStoreLogs"])
			}
		})
	}
}

// TestFunctionPolicyScopesRegions: with regions, the VPC reads name only them.
func TestFunctionPolicyScopesRegions(t *testing.T) {
	doc := render(t, append(baseArgs, "cn-shanghai", "ap-southeast-1"), nil)
	got := resourcesOf(doc)
	want := map[string][]string{
		"vpc:DescribeVpnConnections":                {"acs:vpc:cn-shanghai:" + acct + ":*", "acs:vpc:ap-southeast-1:" + acct + ":*"},
		"vpc:DescribeVpnCrossAccountAuthorizations": {"acs:vpc:cn-shanghai:" + acct + ":vpnconnection/*", "acs:vpc:ap-southeast-1:" + acct + ":vpnconnection/*"},
	}
	for a, w := range want {
		if !slices.Equal(got[a], w) {
			t.Errorf("%s on %v, want %v", a, got[a], w)
		}
	}
	doc = render(t, baseArgs, nil)
	if r := resourcesOf(doc)["vpc:DescribeVpnConnections"]; !slices.Equal(r, []string{"acs:vpc:*:" + acct + ":*"}) {
		t.Errorf("no region: %v", r)
	}
}

// TestSetupPolicy: setup-sls and setup-state need only their admin calls,
// and the function never gets them.
func TestSetupPolicy(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"log:CreateAlert", "log:CreateDashboard", "log:CreateIndex", "log:CreateLogStore", "log:UpdateAlert", "log:UpdateDashboard", "log:UpdateIndex"}},
		{map[string]string{"STATE_STORE": "tablestore://vpnauthz/state"},
			[]string{"log:CreateAlert", "log:CreateDashboard", "log:CreateIndex", "log:CreateLogStore", "log:UpdateAlert", "log:UpdateDashboard", "log:UpdateIndex", "ots:CreateTable", "ots:DescribeTable"}},
	} {
		cfg, err := ConfigFromEnv(baseArgs, envOf(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := SetupPolicy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := doc.Actions(); !slices.Equal(got, tc.want) {
			t.Errorf("%v: setup policy %v, want %v", tc.env, got, tc.want)
		}
		fn, err := FunctionPolicy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range fn.Actions() {
			if slices.Contains(tc.want, a) {
				t.Errorf("the function role gets the setup action %s", a)
			}
		}
		// The findings index goes on the findings logstore only.
		for _, s := range doc.Statement {
			if s.Action[0] == "log:CreateIndex" || s.Action[0] == "log:UpdateIndex" {
				if !slices.Equal(s.Resource, []string{"acs:log:cn-hangzhou:" + acct + ":project/vpn-audit/logstore/vpnauthz-findings"}) {
					t.Errorf("%s on %v: only the findings logstore gets our index", s.Action[0], s.Resource)
				}
			}
		}
	}
}

// TestFunctionPolicyRefuses: values that would widen the policy or that
// cannot be granted are refused with a message naming what was wrong.
func TestFunctionPolicyRefuses(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"too few arguments", baseArgs[:3], nil, "need ACCOUNT_ID"},
		{"account wildcard", []string{"*", "cn-hangzhou", "vpn-audit", "f1"}, nil, "ACCOUNT_ID must be digits"},
		{"SLS region with a dot", []string{acct, "cn-hangzhou.evil", "vpn-audit", "f1"}, nil, "not a region id"},
		{"region with a quote", append(baseArgs, `cn-shanghai"],"Action":["*`), nil, "not a region id"},
		{"region wildcard", append(baseArgs, "*"), nil, "not a region id"},
		{"project upper case", []string{acct, "cn-hangzhou", "VPN-audit", "f1"}, nil, "not an SLS project name"},
		{"logstore path", []string{acct, "cn-hangzhou", "vpn-audit", "a/../b"}, nil, "not an SLS logstore name"},
		{"empty logstore", []string{acct, "cn-hangzhou", "vpn-audit", ""}, nil, "not an SLS logstore name"},
		{"findings in the function's log", baseArgs, map[string]string{"VPNAUTHZ_FUNCTION_LOGSTORE": "vpnauthz-findings"}, "must differ"},
		{"destination wildcard", baseArgs, map[string]string{"VPNAUTHZ_FAILURE_DESTINATION": "acs:mns:cn-hangzhou:" + acct + ":/queues/*/messages"}, "VPNAUTHZ_FAILURE_DESTINATION"},
		{"destination of another kind", baseArgs, map[string]string{"VPNAUTHZ_FAILURE_DESTINATION": "acs:eventbridge:cn-hangzhou:" + acct + ":eventbus/default"}, "want an MNS queue"},
		{"accounts not UIDs", baseArgs, map[string]string{"ACCOUNTS": "all"}, "ACCOUNTS"},
		{"exclusion not a UID", baseArgs, map[string]string{"ACCOUNTS": member, "ACCOUNTS_EXCLUDE": "x"}, "ACCOUNTS_EXCLUDE"},
		{"role wildcard", baseArgs, map[string]string{"ACCOUNTS": member, "MEMBER_ROLE_NAME": "*"}, "MEMBER_ROLE_NAME"},
		{"fan-out zero", baseArgs, map[string]string{"FANOUT_ACCOUNTS_PER_INVOCATION": "0"}, "FANOUT_ACCOUNTS_PER_INVOCATION"},
		{"state store scheme", baseArgs, map[string]string{"STATE_STORE": "ots://a/b"}, "STATE_STORE"},
		{"state store wildcard table", baseArgs, map[string]string{"STATE_STORE": "tablestore://a/*"}, "STATE_STORE"},
		{"trail logstore alone", baseArgs, map[string]string{"TRAIL_LOGSTORE": "x_y"}, "without TRAIL_PROJECT"},
		{"trail project wildcard", baseArgs, map[string]string{"TRAIL_PROJECT": "*"}, "TRAIL_PROJECT"},
		{"function name with a slash", baseArgs, map[string]string{"ACCOUNTS": "resource-directory", "VPNAUTHZ_FUNCTION_NAME": "a/b"}, "VPNAUTHZ_FUNCTION_NAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(tc.args, envOf(tc.env))
			if err == nil {
				_, err = FunctionPolicy(cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}
