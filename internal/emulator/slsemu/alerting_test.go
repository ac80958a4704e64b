package slsemu

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

func testDashboard(name string, titles ...string) sls.Dashboard {
	d := sls.Dashboard{DashboardName: name, DisplayName: "Posture", ChartList: []sls.Chart{}}
	for _, title := range titles {
		d.ChartList = append(d.ChartList, sls.Chart{
			Title:  title,
			Type:   "table",
			Search: sls.ChartSearch{Logstore: testLogstore, Query: "* | select count(1) as n", Start: "-86400s", End: "now"},
		})
	}
	return d
}

func testAlert(name, dashboard string) *sls.Alert {
	return &sls.Alert{
		Name:        name,
		DisplayName: "high findings",
		Schedule:    &sls.Schedule{Type: sls.ScheduleTypeFixedRate, Interval: "1m"},
		Configuration: &sls.AlertConfiguration{
			Version:   "2.0",
			Type:      "default",
			Dashboard: dashboard,
			QueryList: []*sls.AlertQuery{{
				StoreType: sls.StoreTypeLog, Project: testProject, Store: testLogstore, Region: "cn-hangzhou",
				Query: "* | select count(1) as n", TimeSpanType: "Relative", Start: "-900s", End: "now",
			}},
			JoinConfigurations:     []*sls.JoinConfiguration{},
			GroupConfiguration:     sls.GroupConfiguration{Type: sls.GroupTypeCustom, Fields: []string{"finding_uid"}},
			SeverityConfigurations: []*sls.SeverityConfiguration{{Severity: sls.High}},
			SendResolved:           true,
			PolicyConfiguration:    sls.PolicyConfiguration{AlertPolicyId: "sls.builtin.dynamic", ActionPolicyId: "oncall", RepeatInterval: "1h"},
		},
	}
}

func TestDashboardLifecycle(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")

	_, err := c.GetDashboard(testProject, "posture")
	if se := assertSLSError(t, err, 404, "DashboardNotExist"); se.Message != "specified dashboard does not exist" {
		t.Errorf("message %q", se.Message)
	}
	err = c.UpdateDashboard(testProject, testDashboard("posture", "a"))
	assertSLSError(t, err, 404, "DashboardNotExist")

	if err := c.CreateDashboard(testProject, testDashboard("posture", "a", "b")); err != nil {
		t.Fatalf("CreateDashboard: %v", err)
	}
	err = c.CreateDashboard(testProject, testDashboard("posture", "a"))
	if se := assertSLSError(t, err, 400, "ParameterInvalid"); se.Message != "specified dashboard already exists" {
		t.Errorf("message %q", se.Message)
	}
	got, err := c.GetDashboard(testProject, "posture")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ChartList) != 2 || got.ChartList[1].Title != "b" || got.ChartList[1].Search.Query != "* | select count(1) as n" {
		t.Errorf("dashboard read back: %+v", got)
	}

	if err := c.UpdateDashboard(testProject, testDashboard("posture", "c")); err != nil {
		t.Fatalf("UpdateDashboard: %v", err)
	}
	got, err = c.GetDashboard(testProject, "posture")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ChartList) != 1 || got.ChartList[0].Title != "c" {
		t.Errorf("after update: %+v", got.ChartList)
	}
	if raw, ok := s.Dashboard(testProject, "posture"); !ok || !strings.Contains(string(raw), `"title":"c"`) {
		t.Errorf("Server.Dashboard = %s, %v", raw, ok)
	}

	if err := c.DeleteDashboard(testProject, "posture"); err != nil {
		t.Fatal(err)
	}
	assertSLSError(t, c.DeleteDashboard(testProject, "posture"), 404, "DashboardNotExist")
}

func TestDashboardRefusals(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	titles := make([]string, maxCharts+1)
	for i := range titles {
		titles[i] = fmt.Sprintf("chart-%d", i)
	}
	for _, tc := range []struct {
		name    string
		d       sls.Dashboard
		code    string
		message string
	}{
		{"duplicate chart title", testDashboard("posture", "a", "a"), "PostBodyInvalid", "Duplicate chart title: a"},
		{"too many charts", testDashboard("posture", titles...), "ExceedQuota", "You have too many charts in your dashboard"},
		{"name too short", testDashboard("p"), "InvalidDashboardName", "The dashboard name is invalid: p"},
		{"name too long", testDashboard(strings.Repeat("p", 129)), "InvalidDashboardName", "The length of dashboard name must be less than or equal to 128"},
	} {
		err := c.CreateDashboard(testProject, tc.d)
		se := assertSLSError(t, err, 400, tc.code)
		if se.Message != tc.message {
			t.Errorf("%s: message %q, want %q", tc.name, se.Message, tc.message)
		}
	}
	err := c.CreateDashboard("no-such-project", testDashboard("posture"))
	assertSLSError(t, err, 404, "ProjectNotExist")
}

func TestAlertLifecycle(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	c := newClient(t, s, stsKeyID, stsSecret, stsToken)

	_, err := c.GetAlert(testProject, "high-open")
	assertSLSError(t, err, 404, "JobNotExist")
	assertSLSError(t, c.UpdateAlert(testProject, testAlert("high-open", "posture")), 404, "JobNotExist")

	// An alert needs its dashboard.
	err = c.CreateAlert(testProject, testAlert("high-open", "posture"))
	if se := assertSLSError(t, err, 400, "ParameterInvalid"); se.Message != "Dashboard does not exist: posture" {
		t.Errorf("message %q", se.Message)
	}
	if err := c.CreateDashboard(testProject, testDashboard("posture")); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateAlert(testProject, testAlert("high-open", "posture")); err != nil {
		t.Fatalf("CreateAlert: %v", err)
	}
	err = c.CreateAlert(testProject, testAlert("high-open", "posture"))
	if se := assertSLSError(t, err, 400, "JobAlreadyExist"); se.Message != "Job high-open already exists" {
		t.Errorf("message %q", se.Message)
	}

	got, err := c.GetAlert(testProject, "high-open")
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsEnabled() || got.CreateTime == 0 || got.Configuration == nil ||
		got.Configuration.GroupConfiguration.Fields[0] != "finding_uid" ||
		!got.Configuration.SendResolved || got.Configuration.PolicyConfiguration.ActionPolicyId != "oncall" {
		t.Errorf("alert read back: %+v / %+v", got, got.Configuration)
	}

	// An update sent back from GetAlert keeps the creation time and state.
	if err := c.DisableAlert(testProject, "high-open"); err != nil {
		t.Fatal(err)
	}
	changed := testAlert("high-open", "posture")
	changed.DisplayName = "renamed"
	if err := c.UpdateAlert(testProject, changed); err != nil {
		t.Fatal(err)
	}
	again, err := c.GetAlert(testProject, "high-open")
	if err != nil {
		t.Fatal(err)
	}
	if again.DisplayName != "renamed" || again.IsEnabled() || again.CreateTime != got.CreateTime {
		t.Errorf("after update: name %q enabled %v created %d (was %d)", again.DisplayName, again.IsEnabled(), again.CreateTime, got.CreateTime)
	}
	if err := c.EnableAlert(testProject, "high-open"); err != nil {
		t.Fatal(err)
	}
	if a, _ := c.GetAlert(testProject, "high-open"); !a.IsEnabled() {
		t.Error("EnableAlert left it disabled")
	}
	if raw, ok := s.Alert(testProject, "high-open"); !ok || !strings.Contains(string(raw), `"renamed"`) {
		t.Errorf("Server.Alert = %s, %v", raw, ok)
	}

	if err := c.DeleteAlert(testProject, "high-open"); err != nil {
		t.Fatal(err)
	}
	assertSLSError(t, c.DeleteAlert(testProject, "high-open"), 404, "JobNotExist")
}

func TestAlertRefusals(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	if err := c.CreateDashboard(testProject, testDashboard("posture")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(a *sls.Alert)
		want   string
	}{
		{"bad name", func(a *sls.Alert) { a.Name = "Bad Name" }, `job name "Bad Name" is invalid`},
		{"no display name", func(a *sls.Alert) { a.DisplayName = "" }, "displayName is required"},
		{"no schedule", func(a *sls.Alert) { a.Schedule = nil }, "schedule is required"},
		{"bad interval", func(a *sls.Alert) { a.Schedule.Interval = "soon" }, `schedule interval "soon" is invalid`},
		{"no queries", func(a *sls.Alert) { a.Configuration.QueryList = nil }, "queryList is required"},
		{"custom group without fields", func(a *sls.Alert) { a.Configuration.GroupConfiguration.Fields = nil }, "groupConfiguration of type custom needs fields"},
		{"unknown group type", func(a *sls.Alert) { a.Configuration.GroupConfiguration.Type = "by_magic" }, `groupConfiguration type "by_magic" is invalid`},
		{"no severities", func(a *sls.Alert) { a.Configuration.SeverityConfigurations = nil }, "severityConfigurations is required"},
		{"joins do not match queries", func(a *sls.Alert) {
			a.Configuration.JoinConfigurations = []*sls.JoinConfiguration{{Type: sls.JoinTypeCross}}
		}, "1 queries need 0 join configurations, got 1"},
		{"query without store", func(a *sls.Alert) { a.Configuration.QueryList[0].Store = "" }, "queryList[0]: query, store and storeType are required"},
	} {
		a := testAlert("high-open", "posture")
		tc.change(a)
		se := assertSLSError(t, c.CreateAlert(testProject, a), 400, "ParameterInvalid")
		if se.Message != tc.want {
			t.Errorf("%s: message %q, want %q", tc.name, se.Message, tc.want)
		}
	}
	if _, ok := s.Alert(testProject, "high-open"); ok {
		t.Error("a refused alert was stored")
	}
}

func TestDeniedActions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Region: "cn-shanghai"})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	s.Deny("log:CreateDashboard")
	s.Deny("log:GetAlert")

	err := c.CreateDashboard(testProject, testDashboard("posture"))
	se := assertSLSError(t, err, 401, "Unauthorized")
	want := "denied by sts or ram, action: log:CreateDashboard, resource: acs:log:cn-shanghai:*:project/" + testProject + "/dashboard/posture"
	if se.Message != want {
		t.Errorf("message %q, want %q", se.Message, want)
	}
	if _, ok := s.Dashboard(testProject, "posture"); ok {
		t.Error("a denied dashboard was stored")
	}
	_, err = c.GetAlert(testProject, "high-open")
	assertSLSError(t, err, 401, "Unauthorized")
	// Other actions are still allowed.
	if _, err := c.GetDashboard(testProject, "posture"); err != nil && !strings.Contains(err.Error(), "DashboardNotExist") {
		t.Errorf("GetDashboard: %v", err)
	}
}

func TestAlertingNeedsSignature(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, "wrong-secret", "")
	err := c.CreateDashboard(testProject, testDashboard("posture"))
	assertSLSError(t, err, 401, "SignatureNotMatch")
	if _, ok := s.Dashboard(testProject, "posture"); ok {
		t.Error("an unsigned dashboard was stored")
	}
	// The body GetDashboard returns is JSON the SDK reads.
	if err := newClient(t, s, plainKeyID, plainSecret, "").CreateDashboard(testProject, testDashboard("posture", "x")); err != nil {
		t.Fatal(err)
	}
	raw, _ := s.Dashboard(testProject, "posture")
	var d sls.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil || d.DashboardName != "posture" {
		t.Errorf("stored dashboard %s: %v", raw, err)
	}
}
