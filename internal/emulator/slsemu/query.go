package slsemu

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const maxQueryLines = 100

type getLogsRequest struct {
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Topic   string `json:"topic"`
	Lines   int64  `json:"line"`
	Offset  int64  `json:"offset"`
	Reverse bool   `json:"reverse"`
	Query   string `json:"query"`
}

type getLogsMeta struct {
	Progress           string   `json:"progress"`
	AggQuery           string   `json:"aggQuery"`
	WhereQuery         string   `json:"whereQuery"`
	HasSQL             bool     `json:"hasSQL"`
	ProcessedRows      int64    `json:"processedRows"`
	ElapsedMillisecond int64    `json:"elapsedMillisecond"`
	Count              int64    `json:"count"`
	ProcessedBytes     int64    `json:"processedBytes"`
	TelemetryType      string   `json:"telementryType"` // sic, as the service spells it
	Keys               []string `json:"keys"`
}

type getLogsReply struct {
	Meta getLogsMeta         `json:"meta"`
	Data []map[string]string `json:"data"`
}

// getLogs answers GetLogs with the stored logs in [from, to) that match a
// search query: "*", or terms joined by "and", each "key: value", "key:
// prefix*", "key: \"a phrase\"" or a bare word searched in every field.
// Analytic (SQL) statements after "|" are refused.
func (s *Server) getLogs(req *request) (any, *apiError) {
	start := time.Now()
	var q getLogsRequest
	if err := json.Unmarshal(req.body, &q); err != nil {
		return nil, parameterInvalid("the GetLogs request is not valid JSON: %v", err)
	}
	switch {
	case q.To < q.From:
		return nil, parameterInvalid("from %d is after to %d", q.From, q.To)
	case q.Lines < 0 || q.Lines > maxQueryLines:
		return nil, parameterInvalid("line %d is invalid: 0 to %d", q.Lines, maxQueryLines)
	case q.Offset < 0:
		return nil, parameterInvalid("offset %d is invalid", q.Offset)
	}
	if q.Lines == 0 {
		q.Lines = maxQueryLines
	}
	terms, e := parseQuery(q.Query)
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	stored := slices.Clone(s.logstoreLocked(req.project, req.logstore).logs)
	s.mu.Unlock()

	var inRange, matched []Log
	for _, l := range stored {
		if int64(l.Time) < q.From || int64(l.Time) >= q.To {
			continue
		}
		inRange = append(inRange, l)
		if q.Topic != "" && l.Topic != q.Topic {
			continue
		}
		if matchesAll(l, terms) {
			matched = append(matched, l)
		}
	}
	slices.SortStableFunc(matched, func(a, b Log) int {
		if q.Reverse {
			a, b = b, a
		}
		return int(int64(a.Time) - int64(b.Time))
	})
	page := matched[min(int(q.Offset), len(matched)):]
	page = page[:min(int(q.Lines), len(page))]

	data := make([]map[string]string, 0, len(page))
	var keys []string
	seen := map[string]bool{}
	for _, l := range page {
		row := logRow(l)
		for _, k := range l.Keys {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		data = append(data, row)
	}
	return getLogsReply{
		Meta: getLogsMeta{
			Progress:           "Complete",
			WhereQuery:         q.Query,
			ProcessedRows:      int64(len(inRange)),
			ElapsedMillisecond: time.Since(start).Milliseconds(),
			Count:              int64(len(data)),
			TelemetryType:      "None",
			Keys:               keys,
		},
		Data: data,
	}, nil
}

// logRow is a log as GetLogs shows it: every value a string, the group fields
// under their reserved names, tags as "__tag__:key".
func logRow(l Log) map[string]string {
	row := map[string]string{
		"__time__":   strconv.FormatUint(uint64(l.Time), 10),
		"__topic__":  l.Topic,
		"__source__": l.Source,
	}
	for k, v := range l.Tags {
		row["__tag__:"+k] = v
	}
	for k, v := range l.Contents {
		row[k] = v
	}
	return row
}

type queryTerm struct {
	field  string // "" searches every field
	value  string
	prefix bool
}

var andRE = regexp.MustCompile(`(?i)\s+and\s+`)

func parseQuery(query string) ([]queryTerm, *apiError) {
	query = strings.TrimSpace(query)
	if strings.Contains(query, "|") {
		return nil, parameterInvalid("analytic statements are not supported by the emulated Log Service: %s", query)
	}
	var terms []queryTerm
	for part := range strings.SplitSeq(andRE.ReplaceAllString(query, "\x00"), "\x00") {
		part = strings.TrimSpace(part)
		lower := strings.ToLower(part)
		if part == "" || part == "*" {
			continue
		}
		if strings.HasPrefix(lower, "not ") || strings.Contains(lower, " or ") || strings.ContainsAny(part, "()<>") {
			return nil, parameterInvalid("only terms joined by \"and\" are supported by the emulated Log Service: %s", query)
		}
		t := queryTerm{}
		rest := part
		if strings.HasPrefix(rest, "__tag__:") {
			name, value, ok := strings.Cut(strings.TrimPrefix(rest, "__tag__:"), ":")
			if !ok {
				return nil, parameterInvalid("term %q has no value", part)
			}
			t.field, rest = "__tag__:"+strings.TrimSpace(name), value
		} else if name, value, ok := strings.Cut(rest, ":"); ok && !strings.HasPrefix(strings.TrimSpace(rest), `"`) {
			t.field, rest = strings.TrimSpace(name), value
		}
		rest = strings.TrimSpace(rest)
		if unquoted, err := strconv.Unquote(rest); err == nil && strings.HasPrefix(rest, `"`) {
			rest = unquoted
		} else if strings.HasSuffix(rest, "*") {
			t.prefix, rest = true, strings.TrimSuffix(rest, "*")
		}
		t.value = rest
		terms = append(terms, t)
	}
	return terms, nil
}

func matchesAll(l Log, terms []queryTerm) bool {
	if len(terms) == 0 {
		return true
	}
	row := logRow(l)
	for _, t := range terms {
		if !matchesTerm(row, t) {
			return false
		}
	}
	return true
}

func matchesTerm(row map[string]string, t queryTerm) bool {
	if t.field != "" {
		v, ok := row[t.field]
		return ok && matchesValue(v, t)
	}
	for _, v := range row {
		if matchesValue(v, t) {
			return true
		}
	}
	return false
}

// tokenDelimiters are the default token separators of a Log Service index.
const tokenDelimiters = " ,'\";=()[]{}?@&<>/:\n\t\r"

// matchesValue compares case-insensitively, as a default index does: the
// whole value, one of its tokens, or a phrase inside it.
func matchesValue(value string, t queryTerm) bool {
	value, want := strings.ToLower(value), strings.ToLower(t.value)
	if t.prefix {
		if strings.HasPrefix(value, want) {
			return true
		}
		for _, tok := range strings.FieldsFunc(value, isDelimiter) {
			if strings.HasPrefix(tok, want) {
				return true
			}
		}
		return false
	}
	if value == want {
		return true
	}
	if strings.ContainsAny(want, tokenDelimiters) {
		return strings.Contains(value, want)
	}
	return slices.Contains(strings.FieldsFunc(value, isDelimiter), want)
}

func isDelimiter(r rune) bool { return strings.ContainsRune(tokenDelimiters, r) }
