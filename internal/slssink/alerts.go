package slssink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"vpnauthz/internal/cloudapi"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
)

// Alert settings. See AlertQuery for what is evaluated.
const (
	// alertWindow is how far back the alert query looks for a finding's
	// newest transition. The alert can only know a finding is still open
	// while its opened/reopened log is inside the window: a high-severity
	// finding left open longer than this drops out of the query, and Log
	// Service then reports it recovered although nothing was resolved. The
	// change log holds only transitions, few logs, so a long window is
	// cheap; 30 days bounds that false recovery to findings nobody acted on
	// for a month.
	alertWindow = "-2592000s" // 30 days, relative to each evaluation

	// alertInterval is how often Log Service evaluates the alert.
	alertInterval = "1m"

	// alertRepeatInterval is how often a finding that is still open is
	// notified again; the alert policy drops the evaluations in between.
	alertRepeatInterval = "24h"

	// alertPolicyID is Log Service's built-in alert policy: it merges and
	// de-duplicates alerts by their labels, finding_uid among them.
	alertPolicyID = "sls.builtin.dynamic"

	// postureWindow is the time range of the posture charts: findings of the
	// last day, enough for a daily timer.
	postureWindow = "-86400s"

	// transitionsWindow is the time range of the transitions chart.
	transitionsWindow = "-2592000s"
)

// Error codes and messages of the dashboard and alert calls that mean
// "already there". The service answers a second CreateDashboard with
// ParameterInvalid "specified dashboard already exists" and a second
// CreateAlert with "Job <name> already exists" (code JobAlreadyExist);
// DashboardAlreadyExist is accepted too, should the service ever use it.
const (
	codeJobExists       = "JobAlreadyExist"
	codeDashboardExists = "DashboardAlreadyExist"
	msgDashboardExists  = "specified dashboard already exists"
)

// Alerting configures the alert and dashboard Setup creates next to the
// logstore.
type Alerting struct {
	// ActionPolicyID is the action policy the alert notifies through
	// (SLS_ALERT_ACTION_POLICY_ID): who is told, and how. Empty: the alert
	// fires and is recorded in the project's alert center, and nobody is
	// notified until an operator binds one.
	ActionPolicyID string
	// Region of the project, for the alert's query. Empty: taken from the
	// endpoint's host name ({region}.log.aliyuncs.com).
	Region string
}

// AlertName is the name (job id) of the alert Setup creates for a logstore.
func AlertName(logstore string) string { return logstore + "-high-open" }

// DashboardName is the name of the dashboard Setup creates for a logstore.
func DashboardName(logstore string) string { return logstore + "-posture" }

// Setup creates, idempotently, everything vpnauthz needs in Log Service
// (vpnauthz setup-sls): the logstore and its field index, the posture
// dashboard and the alert on high-severity findings, with the default
// Alerting. An existing logstore is kept; an existing index, dashboard or
// alert is replaced by the current definition.
func Setup(ctx context.Context, opts Options) error {
	return SetupWithAlerting(ctx, opts, Alerting{})
}

// SetupWithAlerting is Setup with the alert's notification settings.
func SetupWithAlerting(ctx context.Context, opts Options, a Alerting) error {
	if err := setupLogstore(ctx, opts); err != nil {
		return err
	}
	return setupAlerting(ctx, opts, a)
}

// setupAlerting creates or updates the dashboard, then the alert: the
// service refuses an alert whose dashboard does not exist.
func setupAlerting(ctx context.Context, opts Options, a Alerting) error {
	opts.setDefaults()
	if a.Region == "" {
		a.Region = regionOfEndpoint(opts.Endpoint.Host)
	}
	calls, err := newCaller(&opts)
	if err != nil {
		return err
	}

	d := Dashboard(opts.Logstore)
	where := opts.Project + "/" + d.DashboardName
	err = calls.do(ctx, "CreateDashboard "+where, func(client *sls.Client) error {
		return client.CreateDashboard(opts.Project, d)
	})
	if err != nil && !alreadyExists(err) {
		return fmt.Errorf("dashboard: %w", err)
	}
	if err != nil {
		err = calls.do(ctx, "UpdateDashboard "+where, func(client *sls.Client) error {
			return client.UpdateDashboard(opts.Project, d)
		})
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
	}

	alert := Alert(opts.Project, opts.Logstore, a)
	where = opts.Project + "/" + alert.Name
	err = calls.do(ctx, "CreateAlert "+where, func(client *sls.Client) error {
		return client.CreateAlert(opts.Project, alert)
	})
	if err != nil && !alreadyExists(err) {
		return fmt.Errorf("alert: %w", err)
	}
	if err != nil {
		err = calls.do(ctx, "UpdateAlert "+where, func(client *sls.Client) error {
			return client.UpdateAlert(opts.Project, alert)
		})
		if err != nil {
			return fmt.Errorf("alert: %w", err)
		}
	}
	return nil
}

// alreadyExists tells a create refused because the object exists.
func alreadyExists(err error) bool {
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch {
	case ae.Code == codeJobExists, ae.Code == codeDashboardExists:
		return true
	case ae.HTTPStatus == http.StatusBadRequest && ae.Code == "ParameterInvalid":
		return ae.Message == msgDashboardExists
	}
	return false
}

// regionOfEndpoint is the region in a Log Service endpoint's host name:
// "cn-hangzhou" for cn-hangzhou.log.aliyuncs.com and for its -intranet and
// -vpc forms; "" for any other host.
func regionOfEndpoint(host string) string {
	region, ok := strings.CutSuffix(host, ".log.aliyuncs.com")
	if !ok || strings.Contains(region, ".") {
		return ""
	}
	for _, suffix := range []string{"-intranet", "-vpc", "-share"} {
		region = strings.TrimSuffix(region, suffix)
	}
	return region
}

// Alert is the alert Setup creates: a Log Service alert (version 2.0) that
// runs AlertQuery every minute over the last 30 days of transitions, one
// alert per finding_uid, high severity, and a recovery notice when the
// finding's newest transition is no longer opened or reopened.
func Alert(project, logstore string, a Alerting) *sls.Alert {
	return &sls.Alert{
		Name:        AlertName(logstore),
		DisplayName: "vpnauthz: high-severity VPN authorization finding opened",
		Description: "A high-severity finding of vpnauthz was opened or reopened and is not resolved; " +
			"one alert per finding_uid, recovered when the finding is resolved or suppressed.",
		Schedule: &sls.Schedule{Type: sls.ScheduleTypeFixedRate, Interval: alertInterval},
		Configuration: &sls.AlertConfiguration{
			Version:   "2.0",
			Type:      "default",
			Dashboard: DashboardName(logstore),
			QueryList: []*sls.AlertQuery{{
				ChartTitle:   "high-severity findings opened or reopened",
				StoreType:    sls.StoreTypeLog,
				Region:       a.Region,
				Project:      project,
				Store:        logstore,
				Query:        AlertQuery,
				TimeSpanType: "Relative",
				Start:        alertWindow,
				End:          "now",
				PowerSqlMode: sls.PowerSqlModeAuto,
			}},
			// One query: nothing to join.
			JoinConfigurations: []*sls.JoinConfiguration{},
			// One alert per finding: the group's fields become its labels,
			// which the alert policy de-duplicates on and which the
			// recovery notice carries.
			GroupConfiguration: sls.GroupConfiguration{Type: sls.GroupTypeCustom, Fields: []string{"finding_uid"}},
			// Every row the query returns is a finding to alert on: the
			// query already keeps only high-severity open ones.
			SeverityConfigurations: []*sls.SeverityConfiguration{{
				Severity:      sls.High,
				EvalCondition: sls.ConditionConfiguration{Condition: "", CountCondition: ""},
			}},
			Threshold:    1,
			NoDataFire:   false,
			SendResolved: true,
			Labels: []*sls.Tag{
				{Key: "app", Value: "vpnauthz"},
				{Key: "logstore", Value: logstore},
			},
			Annotations: []*sls.Tag{
				{Key: "title", Value: "vpnauthz: ${rule_id} on ${vpn_connection_id} (${region}, account ${owner_account_id})"},
				{Key: "desc", Value: "Finding ${finding_uid} was ${last_change}: VPN connection ${vpn_connection_id} " +
					"authorizes ${bind_instance} (${bind_uid}); first seen ${first_seen_at}, last observed ${observed_at}."},
			},
			AutoAnnotation: true,
			PolicyConfiguration: sls.PolicyConfiguration{
				AlertPolicyId:  alertPolicyID,
				ActionPolicyId: a.ActionPolicyID,
				RepeatInterval: alertRepeatInterval,
			},
		},
	}
}

// Dashboard is the posture dashboard Setup creates: findings by rule,
// severity, status and account, open findings by age, transitions per day.
func Dashboard(logstore string) sls.Dashboard {
	chart := func(title, kind, query, start string, x, y float64, xAxis, yAxis []string) sls.Chart {
		return sls.Chart{
			Title: title,
			Type:  kind,
			Search: sls.ChartSearch{
				Logstore: logstore,
				Query:    query,
				Start:    start,
				End:      "now",
			},
			Display: sls.ChartDisplay{
				XAxisKeys:   xAxis,
				YAxisKeys:   yAxis,
				XPosition:   x,
				YPosition:   y,
				Width:       6,
				Height:      6,
				DisplayName: title,
			},
		}
	}
	return sls.Dashboard{
		DashboardName: DashboardName(logstore),
		DisplayName:   "vpnauthz posture (" + logstore + ")",
		Description:   "VPN cross-account authorization findings: posture, open findings by age, transitions.",
		ChartList: []sls.Chart{
			chart("Posture by rule and severity", "table", PostureByRuleQuery, postureWindow, 0, 0,
				nil, nil),
			chart("Posture by account", "bar", PostureByAccountQuery, postureWindow, 6, 0,
				[]string{"owner_account_id"}, []string{"findings"}),
			chart("Open findings by age", "bar", OpenByAgeQuery, postureWindow, 0, 6,
				[]string{"age"}, []string{"open_findings"}),
			chart("Transitions per day", "line", TransitionsQuery, transitionsWindow, 6, 6,
				[]string{"day"}, []string{"transitions"}),
		},
	}
}

// indexKeyNames are the keys the logstore's field index covers: every key of
// a finding, of the scan summary and of a transition log.
func indexKeyNames() []string {
	keys := slices.Concat(finding.Keys, summaryKeys, lifecycle.ChangeKeys)
	slices.Sort(keys)
	return slices.Compact(keys)
}
