package slsemu

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Alerts (jobs of type Alert) and dashboards, the way the SDK's CreateAlert,
// UpdateAlert, GetAlert, DeleteAlert, EnableAlert, DisableAlert and the
// dashboard calls reach them:
//
//	POST /jobs                        create an alert
//	GET|PUT|DELETE /jobs/{name}       read, replace (or ?action=enable|disable), delete
//	POST /dashboards                  create a dashboard
//	GET|PUT|DELETE /dashboards/{name} read, replace, delete
//
// Codes and messages as the service gives them: a second CreateDashboard is
// 400 ParameterInvalid "specified dashboard already exists"; a missing one is
// 404 DashboardNotExist "specified dashboard does not exist"; a second
// CreateAlert is "Job {name} already exists" (JobAlreadyExist); a missing
// alert is 404 JobNotExist; an alert naming a dashboard that does not exist is
// refused with "Dashboard does not exist: {name}".

// maxCharts is the most charts a dashboard may hold (ExceedQuota beyond).
const maxCharts = 200

// Dashboard names: 2 to 128 characters.
var dashboardNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{2,128}$`)

// Job (alert) names: 2 to 64 of a-z, 0-9, _ and -, starting and ending with a
// letter or digit.
var jobNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}[a-z0-9]$`)

// adminObjects are the alerts and dashboards of every project, and the RAM
// actions refused to every caller.
type adminObjects struct {
	alerts     map[string]map[string]*storedAlert // project → name
	dashboards map[string]map[string]json.RawMessage
	denied     map[string]bool // "log:CreateDashboard" …
}

type storedAlert struct {
	body     map[string]any // as sent, less the fields the service owns
	enabled  bool
	created  time.Time
	modified time.Time
}

// Deny makes every later call of a RAM action (e.g. "log:CreateAlert",
// "log:UpdateDashboard") fail as a caller without the permission would:
// 401 Unauthorized "denied by sts or ram, action: …, resource: …". It applies
// to the alert and dashboard calls.
func (s *Server) Deny(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adminLocked().denied[action] = true
}

func (s *Server) adminLocked() *adminObjects {
	if s.admin.alerts == nil {
		s.admin = adminObjects{
			alerts:     map[string]map[string]*storedAlert{},
			dashboards: map[string]map[string]json.RawMessage{},
			denied:     map[string]bool{},
		}
	}
	return &s.admin
}

// Alert returns an alert as GetAlert would, and whether it exists.
func (s *Server) Alert(projectName, name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.adminLocked().alerts[projectName][name]
	if !ok {
		return nil, false
	}
	out, _ := json.Marshal(a.reply())
	return out, true
}

// Dashboard returns a dashboard as GetDashboard would, and whether it exists.
func (s *Server) Dashboard(projectName, name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.adminLocked().dashboards[projectName][name]
	return slices.Clone(d), ok
}

// handleAlerting serves the alert and dashboard calls; ok is false for any
// other path.
func (s *Server) handleAlerting(req *request) (reply any, e *apiError, ok bool) {
	r := req.http
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) > 2 || (parts[0] != "jobs" && parts[0] != "dashboards") {
		return nil, nil, false
	}
	name := ""
	if len(parts) == 2 {
		name = parts[1]
	}
	if req.project == "" {
		return nil, parameterInvalid("the Host %s names no project", r.Host), true
	}
	if e := s.checkProject(req.project); e != nil {
		return nil, e, true
	}
	switch {
	case parts[0] == "dashboards" && name == "" && r.Method == http.MethodPost:
		if e := s.checkDenied(req, "log:CreateDashboard", "dashboard", dashboardNameOf(req.body)); e != nil {
			return nil, e, true
		}
		return nil, s.putDashboard(req, "", false), true
	case parts[0] == "dashboards" && name != "" && r.Method == http.MethodPut:
		if e := s.checkDenied(req, "log:UpdateDashboard", "dashboard", name); e != nil {
			return nil, e, true
		}
		return nil, s.putDashboard(req, name, true), true
	case parts[0] == "dashboards" && name != "" && r.Method == http.MethodGet:
		if e := s.checkDenied(req, "log:GetDashboard", "dashboard", name); e != nil {
			return nil, e, true
		}
		d, ok := s.Dashboard(req.project, name)
		if !ok {
			return nil, dashboardNotExist(), true
		}
		return d, nil, true
	case parts[0] == "dashboards" && name != "" && r.Method == http.MethodDelete:
		if e := s.checkDenied(req, "log:DeleteDashboard", "dashboard", name); e != nil {
			return nil, e, true
		}
		return nil, s.deleteDashboard(req.project, name), true

	case parts[0] == "jobs" && name == "" && r.Method == http.MethodPost:
		if e := s.checkDenied(req, "log:CreateAlert", "job", jobNameOf(req.body)); e != nil {
			return nil, e, true
		}
		return nil, s.putAlert(req, "", false), true
	case parts[0] == "jobs" && name != "" && r.Method == http.MethodPut && r.URL.Query().Has("action"):
		return nil, s.enableAlert(req, name, r.URL.Query().Get("action")), true
	case parts[0] == "jobs" && name != "" && r.Method == http.MethodPut:
		if e := s.checkDenied(req, "log:UpdateAlert", "job", name); e != nil {
			return nil, e, true
		}
		return nil, s.putAlert(req, name, true), true
	case parts[0] == "jobs" && name != "" && r.Method == http.MethodGet:
		if e := s.checkDenied(req, "log:GetAlert", "job", name); e != nil {
			return nil, e, true
		}
		a, ok := s.Alert(req.project, name)
		if !ok {
			return nil, jobNotExist(name), true
		}
		return a, nil, true
	case parts[0] == "jobs" && name != "" && r.Method == http.MethodDelete:
		if e := s.checkDenied(req, "log:DeleteAlert", "job", name); e != nil {
			return nil, e, true
		}
		return nil, s.deleteAlert(req.project, name), true
	}
	return nil, unsupported(r), true
}

// checkDenied refuses an action Deny named, with the service's message.
func (s *Server) checkDenied(req *request, action, kind, name string) *apiError {
	s.mu.Lock()
	denied := s.adminLocked().denied[action]
	s.mu.Unlock()
	if !denied {
		return nil
	}
	return errorf(http.StatusUnauthorized, "Unauthorized",
		"denied by sts or ram, action: %s, resource: acs:log:%s:*:project/%s/%s/%s",
		action, s.opts.Region, req.project, kind, name)
}

func dashboardNotExist() *apiError {
	return errorf(http.StatusNotFound, "DashboardNotExist", "specified dashboard does not exist")
}

func jobNotExist(name string) *apiError {
	return errorf(http.StatusNotFound, "JobNotExist", "Job %s does not exist", name)
}

func dashboardNameOf(body []byte) string {
	var d struct {
		Name string `json:"dashboardName"`
	}
	_ = json.Unmarshal(body, &d)
	return d.Name
}

func jobNameOf(body []byte) string {
	var j struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(body, &j)
	return j.Name
}

// putDashboard creates (update false) or replaces a dashboard. The stored
// body is what was sent: GetDashboard gives it back.
func (s *Server) putDashboard(req *request, pathName string, update bool) *apiError {
	var d struct {
		Name   string `json:"dashboardName"`
		Charts []struct {
			Title string `json:"title"`
		} `json:"charts"`
	}
	if err := json.Unmarshal(req.body, &d); err != nil {
		return errorf(http.StatusBadRequest, "PostBodyInvalid", "the dashboard is not valid JSON: %v", err)
	}
	if update && d.Name != pathName {
		return parameterInvalid("dashboard name %q in the body differs from %q in the path", d.Name, pathName)
	}
	switch {
	case len(d.Name) > 128:
		return errorf(http.StatusBadRequest, "InvalidDashboardName", "The length of dashboard name must be less than or equal to 128")
	case !dashboardNameRE.MatchString(d.Name):
		return errorf(http.StatusBadRequest, "InvalidDashboardName", "The dashboard name is invalid: %s", d.Name)
	case len(d.Charts) > maxCharts:
		return errorf(http.StatusBadRequest, "ExceedQuota", "You have too many charts in your dashboard")
	}
	seen := map[string]bool{}
	for _, c := range d.Charts {
		if seen[c.Title] {
			return errorf(http.StatusBadRequest, "PostBodyInvalid", "Duplicate chart title: %s", c.Title)
		}
		seen[c.Title] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.adminLocked().dashboards
	if all[req.project] == nil {
		all[req.project] = map[string]json.RawMessage{}
	}
	_, exists := all[req.project][d.Name]
	switch {
	case !update && exists:
		return parameterInvalid("specified dashboard already exists")
	case update && !exists:
		return dashboardNotExist()
	}
	all[req.project][d.Name] = slices.Clone(req.body)
	return nil
}

func (s *Server) deleteDashboard(projectName, name string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.adminLocked().dashboards[projectName][name]; !ok {
		return dashboardNotExist()
	}
	delete(s.admin.dashboards[projectName], name)
	return nil
}

// putAlert creates (update false) or replaces an alert, checking what the
// service checks: a job of type Alert, a valid name, a schedule, a
// configuration whose dashboard exists, and for version 2.0 the fields the
// evaluation needs.
func (s *Server) putAlert(req *request, pathName string, update bool) *apiError {
	var body map[string]any
	if err := json.Unmarshal(req.body, &body); err != nil {
		return errorf(http.StatusBadRequest, "PostBodyInvalid", "the alert is not valid JSON: %v", err)
	}
	var a struct {
		Name          string `json:"name"`
		DisplayName   string `json:"displayName"`
		Type          string `json:"type"`
		Status        string `json:"status"`
		State         string `json:"state"`
		Configuration *struct {
			Version   string `json:"version"`
			Type      string `json:"type"`
			Dashboard string `json:"dashboard"`
			QueryList []struct {
				Query     string `json:"query"`
				StoreType string `json:"storeType"`
				Store     string `json:"store"`
				Project   string `json:"project"`
			} `json:"queryList"`
			GroupConfiguration struct {
				Type   string   `json:"type"`
				Fields []string `json:"fields"`
			} `json:"groupConfiguration"`
			SeverityConfigurations []struct {
				Severity int `json:"severity"`
			} `json:"severityConfigurations"`
			JoinConfigurations []json.RawMessage `json:"joinConfigurations"`
		} `json:"configuration"`
		Schedule *struct {
			Type     string `json:"type"`
			Interval string `json:"interval"`
		} `json:"schedule"`
	}
	if err := json.Unmarshal(req.body, &a); err != nil {
		return errorf(http.StatusBadRequest, "PostBodyInvalid", "the alert is not an alert: %v", err)
	}
	switch {
	case update && a.Name != pathName:
		return parameterInvalid("job name %q in the body differs from %q in the path", a.Name, pathName)
	case a.Type != "Alert":
		return parameterInvalid("job type %q is invalid: Alert expected", a.Type)
	case !jobNameRE.MatchString(a.Name):
		return parameterInvalid("job name %q is invalid", a.Name)
	case a.DisplayName == "":
		return parameterInvalid("displayName is required")
	case a.Schedule == nil || a.Schedule.Type == "":
		return parameterInvalid("schedule is required")
	case a.Schedule.Type == "FixedRate" && !validInterval(a.Schedule.Interval):
		return parameterInvalid("schedule interval %q is invalid", a.Schedule.Interval)
	case a.Configuration == nil:
		return parameterInvalid("configuration is required")
	case len(a.Configuration.QueryList) == 0:
		return parameterInvalid("queryList is required")
	}
	c := a.Configuration
	if c.Version == "2.0" {
		switch {
		case c.Type != "default" && c.Type != "tpl":
			return parameterInvalid("configuration type %q is invalid", c.Type)
		case len(c.JoinConfigurations) != len(c.QueryList)-1:
			return parameterInvalid("%d queries need %d join configurations, got %d",
				len(c.QueryList), len(c.QueryList)-1, len(c.JoinConfigurations))
		case len(c.SeverityConfigurations) == 0:
			return parameterInvalid("severityConfigurations is required")
		}
		switch c.GroupConfiguration.Type {
		case "no_group", "labels_auto":
		case "custom":
			if len(c.GroupConfiguration.Fields) == 0 {
				return parameterInvalid("groupConfiguration of type custom needs fields")
			}
		default:
			return parameterInvalid("groupConfiguration type %q is invalid", c.GroupConfiguration.Type)
		}
		for i, q := range c.QueryList {
			if q.Query == "" || q.Store == "" || q.StoreType == "" {
				return parameterInvalid("queryList[%d]: query, store and storeType are required", i)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	adm := s.adminLocked()
	if adm.alerts[req.project] == nil {
		adm.alerts[req.project] = map[string]*storedAlert{}
	}
	old, exists := adm.alerts[req.project][a.Name]
	switch {
	case !update && exists:
		return errorf(http.StatusBadRequest, "JobAlreadyExist", "Job %s already exists", a.Name)
	case update && !exists:
		return jobNotExist(a.Name)
	}
	if _, ok := adm.dashboards[req.project][c.Dashboard]; !ok {
		return parameterInvalid("Dashboard does not exist: %s", c.Dashboard)
	}
	// The service owns these; a client sending back what GetAlert gave
	// does not change them.
	for _, k := range []string{"createTime", "lastModifiedTime", "status", "state"} {
		delete(body, k)
	}
	now := s.now()
	stored := &storedAlert{body: body, enabled: true, created: now, modified: now}
	if exists {
		stored.enabled, stored.created = old.enabled, old.created
	}
	switch {
	case strings.EqualFold(a.Status, "DISABLED"), strings.EqualFold(a.State, "Disabled"):
		stored.enabled = false
	case strings.EqualFold(a.Status, "ENABLED"), strings.EqualFold(a.State, "Enabled"):
		stored.enabled = true
	}
	adm.alerts[req.project][a.Name] = stored
	return nil
}

func (s *Server) enableAlert(req *request, name, action string) *apiError {
	permission := map[string]string{"enable": "log:EnableAlert", "disable": "log:DisableAlert"}[action]
	if permission == "" {
		return parameterInvalid("action %q is invalid: enable or disable", action)
	}
	if e := s.checkDenied(req, permission, "job", name); e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.adminLocked().alerts[req.project][name]
	if !ok {
		return jobNotExist(name)
	}
	a.enabled = action == "enable"
	a.modified = s.now()
	return nil
}

func (s *Server) deleteAlert(projectName, name string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.adminLocked().alerts[projectName][name]; !ok {
		return jobNotExist(name)
	}
	delete(s.admin.alerts[projectName], name)
	return nil
}

// reply is the alert as GetAlert gives it: what was sent, with the fields
// the service owns.
func (a *storedAlert) reply() map[string]any {
	out := make(map[string]any, len(a.body)+4)
	for k, v := range a.body {
		out[k] = v
	}
	status, state := "ENABLED", "Enabled"
	if !a.enabled {
		status, state = "DISABLED", "Disabled"
	}
	out["status"], out["state"] = status, state
	out["createTime"] = a.created.Unix()
	out["lastModifiedTime"] = a.modified.Unix()
	return out
}

// validInterval accepts what FixedRate schedules use: a positive number of
// seconds, minutes, hours or days ("60s", "1m", "1h", "1d").
func validInterval(s string) bool {
	if len(s) < 2 || !strings.ContainsRune("smhd", rune(s[len(s)-1])) {
		return false
	}
	digits := s[:len(s)-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.TrimLeft(digits, "0") != ""
}
