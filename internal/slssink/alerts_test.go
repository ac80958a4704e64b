package slssink_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"vpnauthz/internal/endpoint"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/google/go-cmp/cmp"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/slssink"
)

const region = "cn-hangzhou"

var alerting = slssink.Alerting{ActionPolicyID: "vpnauthz-oncall", Region: region}

// readBack reads the alert and the dashboard through the SDK.
func readBack(t *testing.T, e *env) (*sls.Alert, *sls.Dashboard) {
	t.Helper()
	c, err := slssink.NewClient(endpoint.MustParse(e.emu.Endpoint()), plainCreds)
	if err != nil {
		t.Fatal(err)
	}
	alert, err := c.GetAlert(project, slssink.AlertName(logstore))
	if err != nil {
		t.Fatalf("GetAlert: %v", err)
	}
	d, err := c.GetDashboard(project, slssink.DashboardName(logstore))
	if err != nil {
		t.Fatalf("GetDashboard: %v", err)
	}
	return alert, d
}

func TestSetupCreatesAlertThenUpdatesIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	if err := slssink.SetupWithAlerting(t.Context(), e.opts, alerting); err != nil {
		t.Fatalf("first setup: %v", err)
	}
	if got := e.emu.Stats().ErrorsByCode; got["JobAlreadyExist"]+got["ParameterInvalid"] != 0 {
		t.Fatalf("first setup met existing objects: %v", got)
	}
	firstAlert, firstDashboard := readBack(t, e)

	if err := slssink.SetupWithAlerting(t.Context(), e.opts, alerting); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	// The second run found both and replaced them.
	errs := e.emu.Stats().ErrorsByCode
	if errs["JobAlreadyExist"] != 1 || errs["ParameterInvalid"] != 1 {
		t.Errorf("second setup: error answers %v, want one JobAlreadyExist and one ParameterInvalid", errs)
	}
	secondAlert, secondDashboard := readBack(t, e)
	ignoreTimes := func(a *sls.Alert) sls.Alert { c := *a; c.CreateTime, c.LastModifiedTime = 0, 0; return c }
	if diff := cmp.Diff(ignoreTimes(firstAlert), ignoreTimes(secondAlert)); diff != "" {
		t.Errorf("alert changed on the second setup (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(firstDashboard, secondDashboard); diff != "" {
		t.Errorf("dashboard changed on the second setup (-first +second):\n%s", diff)
	}
	if secondAlert.CreateTime != firstAlert.CreateTime {
		t.Errorf("createTime %d → %d: the alert was recreated, not updated", firstAlert.CreateTime, secondAlert.CreateTime)
	}
}

func TestSetupRestoresADriftedDefinition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	if err := slssink.SetupWithAlerting(t.Context(), e.opts, alerting); err != nil {
		t.Fatal(err)
	}
	c, err := slssink.NewClient(endpoint.MustParse(e.emu.Endpoint()), plainCreds)
	if err != nil {
		t.Fatal(err)
	}
	// Someone edits both in the console.
	drifted := slssink.Alert(project, logstore, alerting)
	drifted.Configuration.SendResolved = false
	drifted.Configuration.GroupConfiguration = sls.GroupConfiguration{Type: sls.GroupTypeNoGroup}
	if err := c.UpdateAlert(project, drifted); err != nil {
		t.Fatal(err)
	}
	d := slssink.Dashboard(logstore)
	d.ChartList = d.ChartList[:1]
	if err := c.UpdateDashboard(project, d); err != nil {
		t.Fatal(err)
	}

	if err := slssink.SetupWithAlerting(t.Context(), e.opts, alerting); err != nil {
		t.Fatal(err)
	}
	alert, dashboard := readBack(t, e)
	if !alert.Configuration.SendResolved || alert.Configuration.GroupConfiguration.Type != sls.GroupTypeCustom {
		t.Errorf("alert not restored: sendResolved %v, group %+v", alert.Configuration.SendResolved, alert.Configuration.GroupConfiguration)
	}
	if len(dashboard.ChartList) != len(slssink.Dashboard(logstore).ChartList) {
		t.Errorf("dashboard has %d charts, want them all back", len(dashboard.ChartList))
	}
}

func TestAlertDefinition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	if err := slssink.SetupWithAlerting(t.Context(), e.opts, alerting); err != nil {
		t.Fatal(err)
	}
	alert, _ := readBack(t, e)
	c := alert.Configuration
	if c == nil || alert.Schedule == nil {
		t.Fatalf("alert read back without configuration or schedule: %+v", alert)
	}

	checks := []struct {
		what      string
		got, want any
	}{
		{"enabled", alert.IsEnabled(), true},
		{"version", c.Version, "2.0"},
		{"type", c.Type, "default"},
		{"schedule", *alert.Schedule, sls.Schedule{Type: sls.ScheduleTypeFixedRate, Interval: "1m"}},
		{"queries", len(c.QueryList), 1},
		{"grouping (de-duplication)", c.GroupConfiguration, sls.GroupConfiguration{Type: sls.GroupTypeCustom, Fields: []string{"finding_uid"}}},
		{"recovery", c.SendResolved, true},
		{"fires on no data", c.NoDataFire, false},
		{"consecutive evaluations before firing", c.Threshold, 1},
		{"severities", len(c.SeverityConfigurations), 1},
		{"alert policy", c.PolicyConfiguration.AlertPolicyId, "sls.builtin.dynamic"},
		{"action policy", c.PolicyConfiguration.ActionPolicyId, "vpnauthz-oncall"},
		{"repeat interval", c.PolicyConfiguration.RepeatInterval, "24h"},
		{"dashboard", c.Dashboard, slssink.DashboardName(logstore)},
		{"joins", len(c.JoinConfigurations), 0},
	}
	for _, ch := range checks {
		if diff := cmp.Diff(ch.want, ch.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", ch.what, diff)
		}
	}
	if len(c.SeverityConfigurations) == 1 && c.SeverityConfigurations[0].Severity != sls.High {
		t.Errorf("severity = %d, want high (%d)", c.SeverityConfigurations[0].Severity, sls.High)
	}
	if len(c.QueryList) == 1 {
		q := c.QueryList[0]
		want := sls.AlertQuery{
			ChartTitle: q.ChartTitle, StoreType: "log", Region: region, Project: project, Store: logstore,
			Query: slssink.AlertQuery, TimeSpanType: "Relative", Start: "-2592000s", End: "now",
			PowerSqlMode: sls.PowerSqlModeAuto,
		}
		if diff := cmp.Diff(want, *q); diff != "" {
			t.Errorf("query (-want +got):\n%s", diff)
		}
	}

	// Every ${name} of the notification is a column the query returns.
	columns := queryColumns(slssink.AlertQuery)
	for _, tag := range c.Annotations {
		for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(tag.Value, -1) {
			if !slices.Contains(columns, m[1]) {
				t.Errorf("annotation %s uses ${%s}, which the query does not return (%v)", tag.Key, m[1], columns)
			}
		}
	}
}

func TestDashboardCharts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	if err := slssink.Setup(t.Context(), e.opts); err != nil {
		t.Fatal(err)
	}
	_, d := readBack(t, e)
	want := map[string]string{
		"Posture by rule and severity": slssink.PostureByRuleQuery,
		"Posture by account":           slssink.PostureByAccountQuery,
		"Open findings by age":         slssink.OpenByAgeQuery,
		"Transitions per day":          slssink.TransitionsQuery,
	}
	got := map[string]string{}
	for _, c := range d.ChartList {
		got[c.Title] = c.Search.Query
		if c.Search.Logstore != logstore {
			t.Errorf("chart %q reads logstore %q, want %q", c.Title, c.Search.Logstore, logstore)
		}
		if c.Search.Start == "" || c.Search.End != "now" {
			t.Errorf("chart %q: time range %q..%q", c.Title, c.Search.Start, c.Search.End)
		}
		for _, k := range slices.Concat(c.Display.XAxisKeys, c.Display.YAxisKeys) {
			if !slices.Contains(queryColumns(c.Search.Query), k) {
				t.Errorf("chart %q plots %q, which its query does not return", c.Title, k)
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("charts (-want +got):\n%s", diff)
	}
}

func TestSetupAlertingErrorsNameWhatFailed(t *testing.T) {
	t.Parallel()
	alertName := project + "/" + slssink.AlertName(logstore)
	dashboardName := project + "/" + slssink.DashboardName(logstore)
	for _, tc := range []struct {
		deny      string
		setUpOnce bool // run a setup first, so that the second one updates
		want      []string
	}{
		{"log:CreateDashboard", false, []string{"dashboard: CreateDashboard " + dashboardName, "Unauthorized (HTTP 401)", "action: log:CreateDashboard"}},
		{"log:UpdateDashboard", true, []string{"dashboard: UpdateDashboard " + dashboardName, "Unauthorized (HTTP 401)", "action: log:UpdateDashboard"}},
		{"log:CreateAlert", false, []string{"alert: CreateAlert " + alertName, "Unauthorized (HTTP 401)", "action: log:CreateAlert"}},
		{"log:UpdateAlert", true, []string{"alert: UpdateAlert " + alertName, "Unauthorized (HTTP 401)", "action: log:UpdateAlert"}},
	} {
		t.Run(tc.deny, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			if tc.setUpOnce {
				if err := slssink.Setup(t.Context(), e.opts); err != nil {
					t.Fatal(err)
				}
			}
			e.emu.Deny(tc.deny)
			before := e.emu.Stats().Requests
			err := slssink.Setup(t.Context(), e.opts)
			if err == nil {
				t.Fatal("setup succeeded without the permission")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			checkNoSecrets(t, err.Error())
			// A permission error is final: the refused call is not repeated.
			if n := e.emu.Stats().ErrorsByCode["Unauthorized"]; n != 1 {
				t.Errorf("%d refused calls, want 1 (no retry of a permission error); %d requests", n, e.emu.Stats().Requests-before)
			}
		})
	}
}

func TestIndexCoversEveryQueriedKey(t *testing.T) {
	t.Parallel()
	keys := slssink.Index().Keys
	for _, k := range lifecycle.ChangeKeys {
		if _, ok := keys[k]; !ok {
			t.Errorf("index has no key %s of the change log", k)
		}
	}
	for name, q := range queries() {
		for _, field := range queriedFields(q) {
			if _, ok := keys[field]; !ok {
				t.Errorf("%s reads %s, which the index does not cover: SQL on it would fail", name, field)
			}
		}
	}
}

func queries() map[string]string {
	return map[string]string{
		"AlertQuery":            slssink.AlertQuery,
		"PostureByRuleQuery":    slssink.PostureByRuleQuery,
		"PostureByAccountQuery": slssink.PostureByAccountQuery,
		"OpenByAgeQuery":        slssink.OpenByAgeQuery,
		"TransitionsQuery":      slssink.TransitionsQuery,
	}
}

// The queries cannot run here (the emulated service has no SQL); their text
// is held to the shape that makes them right.
func TestQueryShapes(t *testing.T) {
	t.Parallel()
	topic := map[string]string{
		"AlertQuery":            lifecycle.TopicChange,
		"PostureByRuleQuery":    finding.TopicFinding,
		"PostureByAccountQuery": finding.TopicFinding,
		"OpenByAgeQuery":        finding.TopicFinding,
		"TransitionsQuery":      lifecycle.TopicChange,
	}
	for name, q := range queries() {
		search, sql, ok := strings.Cut(q, " | ")
		if !ok {
			t.Errorf("%s: no analytic statement after |", name)
			continue
		}
		if want := `__topic__: "` + topic[name] + `"`; search != want {
			t.Errorf("%s searches %q, want %q", name, search, want)
		}
		if strings.Contains(sql, "arbitrary(") {
			t.Errorf("%s uses arbitrary(): the latest value is max_by(x, __time__)", name)
		}
		if !regexp.MustCompile(` limit \d+$`).MatchString(sql) {
			t.Errorf("%s has no final limit: SQL would stop at 100 rows", name)
		}
		// A latest value per finding is taken per finding_uid.
		if strings.Contains(sql, "max_by(") && !strings.Contains(sql, "group by finding_uid") {
			t.Errorf("%s takes latest values without grouping by finding_uid", name)
		}
	}

	alert := slssink.AlertQuery
	for _, want := range []string{
		"max_by(change, __time__) as last_change",
		"group by finding_uid",
		"having max_by(change, __time__) in ('" + lifecycle.ChangeOpened + "', '" + lifecycle.ChangeReopened + "')",
		"max_by(severity, __time__) = 'high'",
	} {
		if !strings.Contains(alert, want) {
			t.Errorf("AlertQuery lacks %q", want)
		}
	}
	for _, name := range []string{"PostureByRuleQuery", "PostureByAccountQuery", "OpenByAgeQuery"} {
		if !strings.Contains(queries()[name], "max_by(status, __time__) as status") {
			t.Errorf("%s does not take each finding's newest status", name)
		}
	}
	if !strings.Contains(slssink.OpenByAgeQuery, "status = 'FAIL'") ||
		!strings.Contains(slssink.OpenByAgeQuery, "from_iso8601_timestamp(first_seen_at)") {
		t.Error("OpenByAgeQuery does not age the FAIL findings from first_seen_at")
	}
}

// queriedFields are the log fields a query reads in max_by, group by and
// its search.
func queriedFields(q string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`max_by\((\w+), __time__\)`).FindAllStringSubmatch(q, -1) {
		out = append(out, m[1])
	}
	if strings.Contains(q, "from log group by finding_uid") {
		out = append(out, "finding_uid")
	}
	if strings.Contains(q, "change, count(1)") {
		out = append(out, "change")
	}
	return out
}

// queryColumns are the names a query's outer select returns: its aliases
// and the bare columns it groups by.
func queryColumns(q string) []string {
	var out []string
	for _, m := range regexp.MustCompile(` as (\w+)`).FindAllStringSubmatch(q, -1) {
		out = append(out, m[1])
	}
	for _, m := range regexp.MustCompile(`group by ([\w, ]+?)(?: having| order| limit|\)|$)`).FindAllStringSubmatch(q, -1) {
		for f := range strings.SplitSeq(m[1], ",") {
			out = append(out, strings.TrimSpace(f))
		}
	}
	return out
}

// The alert and dashboard as sent survive the trip through the SDK: what
// GetAlert gives back is what Setup meant.
func TestAlertSurvivesTheWire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	if err := slssink.SetupWithAlerting(t.Context(), e.opts, alerting); err != nil {
		t.Fatal(err)
	}
	got, _ := readBack(t, e)
	want := slssink.Alert(project, logstore, alerting)
	want.Status = "ENABLED"
	got.CreateTime, got.LastModifiedTime = 0, 0
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	var w, g map[string]any
	_ = json.Unmarshal(wantJSON, &w)
	_ = json.Unmarshal(gotJSON, &g)
	delete(g, "state") // the service's older spelling of status
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("alert read back differs from the definition (-want +got):\n%s", diff)
	}
}

// The README quotes the queries as they are.
func TestReadmeQuotesTheQueries(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range queries() {
		if !strings.Contains(string(readme), "\n"+q+"\n") {
			t.Errorf("README does not quote %s as it is", name)
		}
	}
	if strings.Contains(string(readme), "arbitrary(") {
		t.Error("README shows arbitrary(): latest values are max_by(x, __time__)")
	}
}
