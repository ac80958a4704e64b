package lifecycle

import (
	"time"

	"vpnauthz/internal/finding"
)

// observation is one thing a scan learnt about one finding: it was seen with
// a status, or it is gone (its authorization or its connection).
type observation struct {
	uid    string
	at     time.Time
	status string // PASS, FAIL or SUPPRESSED; empty for an absence
	reason string // for an absence: ReasonAuthorizationRemoved or ReasonConnectionDeleted
	about  subject
}

// subject is what a seen finding is about; an absence has none and the
// record's own description is used.
type subject struct {
	connectionID, ruleID, severity, bindUID, bindInstance, ownerAccountID string
}

// state is one finding's stored record, or its absence from the store.
type state struct {
	rec    Record
	exists bool
}

// scanMeta is what every change of one tracker shares.
type scanMeta struct {
	accountID, region, scanID, trigger string
}

// apply is the lifecycle rule: from a finding's state and one observation,
// its next state, the transition it makes (nil: none) and the annotation of
// the finding observed. It is pure; the tracker decides what is written.
//
// An observation older than what the record last reflects is stale: it moves
// nothing, so a slow invocation cannot undo a newer one's work or make a
// transition from an outdated view.
func (m scanMeta) apply(s state, o observation) (state, *Change, Annotation) {
	if s.exists && o.at.Before(s.rec.LastSeenAt) {
		return s, nil, staleAnnotation(s.rec, o)
	}
	if o.status == "" {
		if !s.exists || s.rec.Lifecycle == LifecycleResolved {
			return s, nil, Annotation{}
		}
		r := s.rec
		prev := r.Lifecycle
		m.resolve(&r, o)
		return state{r, true}, m.change(ChangeResolved, prev, r, o), Annotation{}
	}

	r := s.rec
	if !s.exists {
		switch o.status {
		case finding.StatusPass:
			return s, nil, Annotation{FindingUID: o.uid, Lifecycle: LifecyclePass}
		case finding.StatusFail:
			r = m.newRecord(o, LifecycleNew)
			return state{r, true}, m.change(ChangeOpened, "", r, o), annotate(r)
		case finding.StatusSuppressed:
			r = m.newRecord(o, LifecycleSuppressed)
			return state{r, true}, m.change(ChangeSuppressed, "", r, o), annotate(r)
		}
		return s, nil, Annotation{}
	}

	prev := r.Lifecycle
	var change string
	switch o.status {
	case finding.StatusPass:
		if prev == LifecycleResolved {
			// Already resolved: nothing to write, so the row keeps the age
			// its time to live counts from.
			return s, nil, annotate(r)
		}
		m.resolve(&r, observation{at: o.at, reason: ReasonPassed, about: o.about})
		m.describe(&r, o)
		return state{r, true}, m.change(ChangeResolved, prev, r, o), annotate(r)
	case finding.StatusFail:
		switch prev {
		case LifecycleResolved:
			change, r.Lifecycle = ChangeReopened, LifecycleReopened
		case LifecycleSuppressed:
			// The exception went away; the finding was never resolved, so
			// it is open again rather than reopened.
			change, r.Lifecycle = ChangeUnsuppressed, LifecycleOpen
		default:
			r.Lifecycle = LifecycleOpen
		}
	case finding.StatusSuppressed:
		if prev != LifecycleSuppressed {
			change = ChangeSuppressed
		}
		r.Lifecycle = LifecycleSuppressed
	default:
		return s, nil, Annotation{}
	}
	r.Status = o.status
	r.ResolvedAt, r.ResolvedReason = time.Time{}, ""
	r.LastSeenAt, r.LastScanID = o.at, m.scanID
	m.describe(&r, o)
	var c *Change
	if change != "" {
		c = m.change(change, prev, r, o)
	}
	return state{r, true}, c, annotate(r)
}

func (m scanMeta) newRecord(o observation, lifecycle string) Record {
	r := Record{
		AccountID:   m.accountID,
		Region:      m.region,
		FindingUID:  o.uid,
		Status:      o.status,
		Lifecycle:   lifecycle,
		FirstSeenAt: o.at,
		LastSeenAt:  o.at,
		LastScanID:  m.scanID,
	}
	m.describe(&r, o)
	return r
}

// resolve marks r resolved by o; Status keeps the last status seen.
func (m scanMeta) resolve(r *Record, o observation) {
	r.Lifecycle = LifecycleResolved
	r.ResolvedAt, r.ResolvedReason = o.at, o.reason
	r.LastSeenAt, r.LastScanID = o.at, m.scanID
}

// describe keeps the record's description up to date with the finding seen
// (a policy change may have moved a rule's severity).
func (m scanMeta) describe(r *Record, o observation) {
	if o.about.ruleID == "" {
		return
	}
	r.ConnectionID = o.about.connectionID
	r.RuleID = o.about.ruleID
	r.Severity = o.about.severity
	r.BindUID = o.about.bindUID
	r.BindInstance = o.about.bindInstance
}

func (m scanMeta) change(change, prev string, r Record, o observation) *Change {
	owner := o.about.ownerAccountID
	if owner == "" {
		owner = r.AccountID
	}
	return &Change{
		Change:            change,
		PreviousLifecycle: prev,
		Lifecycle:         r.Lifecycle,
		ResolvedReason:    r.ResolvedReason,
		FindingUID:        r.FindingUID,
		RuleID:            r.RuleID,
		Severity:          r.Severity,
		OwnerAccountID:    owner,
		Region:            r.Region,
		VpnConnectionID:   r.ConnectionID,
		BindUID:           r.BindUID,
		BindInstance:      r.BindInstance,
		FirstSeenAt:       formatTime(r.FirstSeenAt),
		ObservedAt:        formatTime(o.at),
		ScanID:            m.scanID,
		Trigger:           m.trigger,
	}
}

func annotate(r Record) Annotation {
	return Annotation{FindingUID: r.FindingUID, FirstSeenAt: formatTime(r.FirstSeenAt), Lifecycle: r.Lifecycle}
}

// staleAnnotation labels a finding observed before what its record last
// reflects by its own status: the record's later lifecycle would misdescribe
// it (a FAIL seen before a newer scan resolved it was open, not reopened).
func staleAnnotation(r Record, o observation) Annotation {
	a := Annotation{FindingUID: o.uid, FirstSeenAt: formatTime(r.FirstSeenAt)}
	before := o.at.Before(r.FirstSeenAt) // seen before the record's first sight
	switch o.status {
	case finding.StatusFail:
		a.Lifecycle = LifecycleOpen
		if before {
			a.Lifecycle, a.FirstSeenAt = LifecycleNew, formatTime(o.at)
		}
	case finding.StatusSuppressed:
		a.Lifecycle = LifecycleSuppressed
		if before {
			a.FirstSeenAt = formatTime(o.at)
		}
	case finding.StatusPass:
		a.Lifecycle = LifecycleResolved
		if before {
			a.Lifecycle, a.FirstSeenAt = LifecyclePass, ""
		}
	default:
		return Annotation{}
	}
	return a
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// sameRecord tells whether writing b over a would change anything stored.
func sameRecord(a, b Record) bool {
	a.Revision, b.Revision = 0, 0
	if !a.FirstSeenAt.Equal(b.FirstSeenAt) || !a.LastSeenAt.Equal(b.LastSeenAt) || !a.ResolvedAt.Equal(b.ResolvedAt) {
		return false
	}
	a.FirstSeenAt, a.LastSeenAt, a.ResolvedAt = time.Time{}, time.Time{}, time.Time{}
	b.FirstSeenAt, b.LastSeenAt, b.ResolvedAt = time.Time{}, time.Time{}, time.Time{}
	return a == b
}
