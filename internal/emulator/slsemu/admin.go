package slsemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
)

type projectReply struct {
	ProjectName        string `json:"projectName"`
	Description        string `json:"description"`
	Status             string `json:"status"`
	Owner              string `json:"owner"`
	Region             string `json:"region"`
	CreateTime         string `json:"createTime"`
	LastModifyTime     string `json:"lastModifyTime"`
	DataRedundancyType string `json:"dataRedundancyType"`
}

func (s *Server) projectReplyLocked(p *project) projectReply {
	created := unixTime(p.created)
	return projectReply{
		ProjectName:        p.name,
		Description:        p.description,
		Status:             "Normal",
		Region:             s.opts.Region,
		CreateTime:         created,
		LastModifyTime:     created,
		DataRedundancyType: "LRS",
	}
}

func (s *Server) createProject(req *request) *apiError {
	var body struct {
		ProjectName string `json:"projectName"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		return parameterInvalid("the request body is not a project: %v", err)
	}
	if !projectNameRE.MatchString(req.project) {
		return parameterInvalid("project name %s is invalid: 3 to 63 of a-z, 0-9 and -, starting and ending with a letter or digit", req.project)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.projects[req.project]; ok {
		return errorf(http.StatusBadRequest, "ProjectAlreadyExist", "Project %s already exist", req.project)
	}
	s.createProjectLocked(req.project, body.Description)
	return nil
}

func (s *Server) getProject(name string) (any, *apiError) {
	if e := s.checkProject(name); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.projectReplyLocked(s.projects[name]), nil
}

func (s *Server) listProjects() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.projects))
	for n := range s.projects {
		names = append(names, n)
	}
	slices.Sort(names)
	projects := make([]projectReply, 0, len(names))
	for _, n := range names {
		projects = append(projects, s.projectReplyLocked(s.projects[n]))
	}
	return map[string]any{"projects": projects, "count": len(projects), "total": len(projects)}
}

type logstoreReply struct {
	Name           string `json:"logstoreName"`
	TTL            int    `json:"ttl"`
	ShardCount     int    `json:"shardCount"`
	WebTracking    bool   `json:"enable_tracking"`
	AutoSplit      bool   `json:"autoSplit"`
	MaxSplitShard  int    `json:"maxSplitShard"`
	AppendMeta     bool   `json:"appendMeta"`
	TelemetryType  string `json:"telemetryType"`
	Mode           string `json:"mode"`
	CreateTime     int64  `json:"createTime"`
	LastModifyTime int64  `json:"lastModifyTime"`
}

func (s *Server) createLogstore(req *request) *apiError {
	var body struct {
		Name          string `json:"logstoreName"`
		TTL           int    `json:"ttl"`
		ShardCount    int    `json:"shardCount"`
		AutoSplit     bool   `json:"autoSplit"`
		MaxSplitShard int    `json:"maxSplitShard"`
		WebTracking   bool   `json:"enable_tracking"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		return parameterInvalid("the request body is not a logstore: %v", err)
	}
	switch {
	case !logstoreNameRE.MatchString(body.Name):
		return parameterInvalid("logstore name %q is invalid: 3 to 63 of a-z, 0-9, _ and -, starting and ending with a letter or digit", body.Name)
	case body.TTL < 1 || body.TTL > 3650:
		return parameterInvalid("ttl %d is invalid: 1 to 3650 days", body.TTL)
	case body.ShardCount < 1:
		return parameterInvalid("shardCount %d is invalid: at least 1", body.ShardCount)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[req.project]
	if _, ok := p.logstores[body.Name]; ok {
		return errorf(http.StatusBadRequest, "LogStoreAlreadyExist", "logstore %s already exists", body.Name)
	}
	now := s.now()
	p.logstores[body.Name] = &logstore{
		name:          body.Name,
		ttl:           body.TTL,
		shardCount:    body.ShardCount,
		autoSplit:     body.AutoSplit,
		maxSplitShard: body.MaxSplitShard,
		webTracking:   body.WebTracking,
		created:       now,
		modified:      now,
	}
	return nil
}

func (s *Server) getLogstore(projectName, logstoreName string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logstoreLocked(projectName, logstoreName)
	return logstoreReply{
		Name:           ls.name,
		TTL:            ls.ttl,
		ShardCount:     ls.shardCount,
		WebTracking:    ls.webTracking,
		AutoSplit:      ls.autoSplit,
		MaxSplitShard:  ls.maxSplitShard,
		TelemetryType:  "None",
		Mode:           "standard",
		CreateTime:     ls.created.Unix(),
		LastModifyTime: ls.modified.Unix(),
	}, nil
}

func (s *Server) listLogstores(projectName string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0)
	for n := range s.projects[projectName].logstores {
		names = append(names, n)
	}
	slices.Sort(names)
	return map[string]any{"count": len(names), "total": len(names), "logstores": names}
}

// putIndex stores an index configuration as sent: create refuses to replace
// one, update refuses to make one.
func (s *Server) putIndex(req *request, update bool) *apiError {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(req.body, &probe); err != nil {
		return parameterInvalid("the index configuration is not a JSON object: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logstoreLocked(req.project, req.logstore)
	switch {
	case !update && ls.index != nil:
		return errorf(http.StatusBadRequest, "IndexAlreadyExist", "log store index is already created")
	case update && ls.index == nil:
		return indexNotExist()
	}
	ls.index = slices.Clone(req.body)
	ls.modified = s.now()
	return nil
}

func indexNotExist() *apiError {
	return errorf(http.StatusNotFound, "IndexConfigNotExist", "index config doesn't exist")
}

func (s *Server) getIndex(projectName, logstoreName string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logstoreLocked(projectName, logstoreName)
	if ls.index == nil {
		return nil, indexNotExist()
	}
	return json.RawMessage(slices.Clone(ls.index)), nil
}

// unixTime is seconds since the epoch, for timestamps in replies.
func unixTime(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
