package vpcemu

import (
	"net/http"
	"sync"
)

// Answer is a scripted answer of the emulated API: an error answer with a
// status and code, as the real API gives them, or a body sent as it is.
type Answer struct {
	Status  int    // HTTP status; default: the code's own, or 200 for a Body
	Code    string // error code, e.g. Throttling.Api or Rejected.Throttling
	Message string // default: the code's known message
	// Body, when set, is the whole answer, sent as it is with Status: a body
	// that does not decode, an answer in another shape. Code is then unused.
	Body string
}

// AnswerNext makes the next n authenticated, well-formed calls of action in
// region get a, before any other fault or the quota. Region "" matches any
// region and action "" any action; rules are used in the order given.
func (s *Server) AnswerNext(action, region string, n int, a Answer) {
	if n <= 0 {
		return
	}
	s.answers.mu.Lock()
	defer s.answers.mu.Unlock()
	s.answers.rules = append(s.answers.rules, &answerRule{action: action, region: region, left: n, a: a})
}

type answerRule struct {
	action, region string
	left           int
	a              Answer
}

// answers holds the AnswerNext rules.
type answers struct {
	mu    sync.Mutex
	rules []*answerRule
}

// next returns the reply scripted for this call, if any.
func (as *answers) next(key CallKey) (reply, bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	for i, rule := range as.rules {
		if (rule.action == "" || rule.action == key.Action) && (rule.region == "" || rule.region == key.Region) {
			rule.left--
			if rule.left == 0 {
				as.rules = append(as.rules[:i:i], as.rules[i+1:]...)
			}
			return rule.a.reply(), true
		}
	}
	return reply{}, false
}

func (a Answer) reply() reply {
	if a.Body != "" || a.Code == "" {
		status := a.Status
		if status == 0 {
			status = http.StatusOK
		}
		return reply{raw: &rawAnswer{status: status, body: a.Body}}
	}
	e := newAPIError(a.Code)
	if a.Status != 0 {
		e.status = a.Status
	}
	if a.Message != "" {
		e.message = a.Message
	}
	return reply{err: e}
}

// rawAnswer is a body sent as it is.
type rawAnswer struct {
	status int
	body   string
}

func writeRaw(w http.ResponseWriter, a *rawAnswer) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=utf-8")
	h.Set("x-acs-request-id", newRequestID())
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}
