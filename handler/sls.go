package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"vpnauthz/events"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/target"
)

// Reasons a trail's asked-for scan is not run, counted beside the records'
// own (trail.Result.Ignored).
const (
	ignoredOutsideScope    = "outside-scope"    // a connection or region SCAN_TARGETS does not cover
	ignoredOutsideAccounts = "outside-accounts" // an account that is not scanned
)

// trailReadShare is the part of the time left that reading the trail may
// take; the scan and the delivery of its findings get the rest.
const trailReadShare = 3

// slsEvent serves a Log Service trigger on the logstore an ActionTrail trail
// delivers to (every region, and in a Resource Directory every member): it
// reads the records between the event's cursors, keeps the successful calls
// that change a VPN connection or its grants, and scans every named
// connection in scope once, in one scan. Out-of-scope connections and
// accounts are counted as ignored.
func (inv *invocation) slsEvent(raw json.RawMessage) (Result, error) {
	var ev events.SLSEvent
	if err := decodeJSON(raw, &ev); err != nil {
		return nil, invokeError(ErrInvalidEvent, "Log Service trigger event: %s", describeJSONError("the Log Service trigger event", err))
	}
	if missing := missingSource(&ev); len(missing) > 0 {
		inv.log.Error("invalid Log Service trigger event", "missing", missing)
		return nil, invokeError(ErrInvalidEvent, "Log Service trigger event: %s missing or invalid", strings.Join(missing, ", "))
	}
	src := ev.Source
	inv.log = inv.log.With("project", truncate(*src.ProjectName), "logstore", truncate(*src.LogstoreName), "shard", *src.ShardID)
	cfg, err := inv.config()
	if err != nil {
		return nil, err
	}
	if len(cfg.Targets) == 0 {
		return inv.ignore("SCAN_TARGETS is empty: no connection is in scope")
	}
	if err := inv.credentials(); err != nil {
		return nil, err
	}
	if inv.h.opts.ReadTrail == nil {
		return nil, invokeError(ErrScanFailed, "no trail reader is configured")
	}
	o, err := inv.organisation(cfg)
	if err != nil {
		return nil, err
	}

	readCtx, cancel := inv.ctx, context.CancelFunc(func() {})
	if dl, ok := inv.ctx.Deadline(); ok {
		readCtx, cancel = context.WithDeadline(inv.ctx, time.Now().Add(time.Until(dl)/trailReadShare))
	}
	res, err := inv.h.opts.ReadTrail(readCtx, inv.Invocation, &ev)
	cancel()
	if err != nil {
		inv.log.Error("trail not read", "error", err.Error())
		return nil, invokeError(ErrTrailReadFailed, "the trail's logs could not be read (the trigger delivers the event again): %s", err)
	}
	tr := &TrailReport{
		Project: res.Project, Logstore: res.Logstore, Shard: res.Shard,
		Records: res.Records, Kept: res.Kept, Scans: len(res.Scans), Complete: res.Complete,
		Ignored: map[string]int{},
	}
	for k, n := range res.Ignored {
		tr.Ignored[string(k)] = n
	}
	var targets []target.Target
	for _, s := range res.Scans {
		ts, why := o.eventTargets(cfg, s.Account, s.Region, s.ConnectionID)
		switch {
		case why == "":
			targets = append(targets, ts...)
		case !o.covers(o.eventAccount(s.Account)):
			tr.Ignored[ignoredOutsideAccounts]++
			inv.log.Debug("trail scan ignored", "reason", why)
		default:
			tr.Ignored[ignoredOutsideScope]++
			inv.log.Debug("trail scan ignored", "reason", why)
		}
	}
	targets = target.Collapse(targets)
	tr.Targets = len(targets)
	inv.log.Info("trail read", "records", tr.Records, "kept", tr.Kept, "scans", tr.Scans, "targets", tr.Targets,
		"ignored", tr.Ignored, "complete", tr.Complete, "problems", res.Problems)
	if !res.Complete {
		inv.log.Warn("the deadline came before the trail's end cursor: the records after it were not read", "cursor", res.Cursor)
	}
	if len(targets) == 0 {
		return inv.ignore(fmt.Sprintf("no record asks for a connection in scope (%d records, %d asking for a scan, ignored: %s)",
			tr.Records, tr.Kept, ignoredList(tr.Ignored)))
	}
	return inv.asyncResult(scanJob{trigger: finding.TriggerSLS, targets: targets, org: o}, func(r *ScanResult) { r.Trail = tr })
}

// missingSource names the parts of a trigger event's source that are not
// there, which no retry can bring.
func missingSource(ev *events.SLSEvent) []string {
	s := ev.Source
	if s == nil {
		return []string{"source"}
	}
	var missing []string
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"source.endpoint", s.Endpoint}, {"source.projectName", s.ProjectName}, {"source.logstoreName", s.LogstoreName},
		{"source.beginCursor", s.BeginCursor}, {"source.endCursor", s.EndCursor},
	} {
		if f.v == nil || *f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if s.ShardID == nil {
		missing = append(missing, "source.shardId")
	} else if *s.ShardID < 0 {
		missing = append(missing, "source.shardId (negative)")
	}
	return missing
}

func ignoredList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	return strings.Join(sortedStrings(parts), ", ")
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
