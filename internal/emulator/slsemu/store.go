package slsemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
)

// Log is one stored log entry with the fields of its log group.
type Log struct {
	Time     uint32
	Topic    string
	Source   string
	Tags     map[string]string
	Contents map[string]string
	Keys     []string // content keys in the order they were sent
}

type project struct {
	name        string
	description string
	created     time.Time
	logstores   map[string]*logstore
}

type logstore struct {
	name          string
	ttl           int
	shardCount    int
	autoSplit     bool
	maxSplitShard int
	webTracking   bool
	created       time.Time
	modified      time.Time
	logs          []Log
	index         json.RawMessage
}

// Project names: 3..63 of [a-z0-9-], starting and ending with a letter or digit.
var projectNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// Logstore names: 3..63 of [a-z0-9_-], starting and ending with a letter or digit.
var logstoreNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)

// CreateProject makes sure the project exists.
func (s *Server) CreateProject(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createProjectLocked(name, "")
}

func (s *Server) createProjectLocked(name, description string) *project {
	if p, ok := s.projects[name]; ok {
		return p
	}
	p := &project{name: name, description: description, created: s.now(), logstores: map[string]*logstore{}}
	s.projects[name] = p
	return p
}

// CreateLogStore adds a logstore with two shards and a 30-day TTL to an
// existing project.
func (s *Server) CreateLogStore(projectName, logstoreName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[projectName]
	if !ok {
		return fmt.Errorf("create logstore %s: project %s does not exist", logstoreName, projectName)
	}
	if _, ok := p.logstores[logstoreName]; ok {
		return fmt.Errorf("create logstore %s/%s: it already exists", projectName, logstoreName)
	}
	now := s.now()
	p.logstores[logstoreName] = &logstore{name: logstoreName, ttl: 30, shardCount: 2, created: now, modified: now}
	return nil
}

// Logs returns every stored log of a logstore in arrival order.
func (s *Server) Logs(projectName, logstoreName string) []Log {
	return s.logsWhere(projectName, logstoreName, func(Log) bool { return true })
}

// LogsByTopic returns the stored logs of one topic in arrival order.
func (s *Server) LogsByTopic(projectName, logstoreName, topic string) []Log {
	return s.logsWhere(projectName, logstoreName, func(l Log) bool { return l.Topic == topic })
}

func (s *Server) logsWhere(projectName, logstoreName string, keep func(Log) bool) []Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logstoreLocked(projectName, logstoreName)
	if ls == nil {
		return nil
	}
	var out []Log
	for _, l := range ls.logs {
		if keep(l) {
			out = append(out, l.clone())
		}
	}
	return out
}

// Index returns the index configuration CreateIndex or UpdateIndex stored.
func (s *Server) Index(projectName, logstoreName string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logstoreLocked(projectName, logstoreName)
	if ls == nil || ls.index == nil {
		return nil, false
	}
	return slices.Clone(ls.index), true
}

func (s *Server) logstoreLocked(projectName, logstoreName string) *logstore {
	p, ok := s.projects[projectName]
	if !ok {
		return nil
	}
	return p.logstores[logstoreName]
}

func (l Log) clone() Log {
	l.Tags = maps.Clone(l.Tags)
	l.Contents = maps.Clone(l.Contents)
	l.Keys = slices.Clone(l.Keys)
	return l
}
