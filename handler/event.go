package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"vpnauthz/events"
	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/target"
)

func (inv *invocation) ignore(reason string) (Result, error) {
	inv.log.Info("event ignored", "reason", reason)
	return &Ignored{Ignored: true, Reason: reason}, nil
}

// event rescans the connection an ActionTrail record names. The record is a
// hint, not the truth: the scan reads the connection's current state. A
// DeleteVpnConnection is scanned too: the ERROR finding saying the
// connection no longer exists is the record that it went.
func (inv *invocation) event(raw json.RawMessage) (Result, error) {
	var ce events.CloudEvent
	if err := decodeJSON(raw, &ce); err != nil {
		return nil, invokeError(ErrInvalidEvent, "CloudEvent: %s", describeJSONError("the CloudEvent", err))
	}
	inv.log = inv.log.With("event_id", truncate(ce.ID), "event_type", truncate(ce.Type))
	cfg, err := inv.config()
	if err != nil {
		return nil, err
	}
	rec, err := actionTrailRecord(ce.Data)
	if err != nil {
		inv.log.Error("invalid event", "error", err.Error())
		return nil, invokeError(ErrInvalidEvent, "CloudEvent %s: %s", quote(ce.ID), err)
	}
	inv.log = inv.log.With("event_name", truncate(rec.EventName))

	req, ig := actiontrail.Extract(&rec, actiontrail.Origin{Record: "data", Region: ce.AliyunRegionID, RegionAt: "aliyunregionid"})
	if ig != nil {
		return inv.ignore(ig.Reason)
	}
	region, id := req.Region, req.ConnectionID

	if len(cfg.Targets) == 0 {
		// Out of scope, like any connection SCAN_TARGETS does not cover: an
		// error would make FC retry every VPN change and then dead-letter it.
		return inv.ignore("SCAN_TARGETS is empty: no connection is in scope")
	}
	var targets []target.Target
	if id == "" {
		// A create whose response was not recorded: the new connection is
		// somewhere in the region, so rescan what the scope holds there.
		targets = target.InRegion(cfg.Targets, region)
		if len(targets) == 0 {
			return inv.ignore(fmt.Sprintf("no target of SCAN_TARGETS is in %s", region))
		}
	} else {
		t := target.Target{Region: region, ConnectionID: id}
		if !target.Covers(cfg.Targets, t) {
			return inv.ignore(fmt.Sprintf("%s is outside SCAN_TARGETS", t))
		}
		targets = []target.Target{t}
	}
	if err := inv.credentials(); err != nil {
		return nil, err
	}
	return inv.asyncResult(finding.TriggerEvent, targets, false)
}

// actionTrailRecord decodes the data of a CloudEvent, given as an object or
// as a JSON string holding one.
func actionTrailRecord(data json.RawMessage) (events.ActionTrailRecord, error) {
	var rec events.ActionTrailRecord
	d := bytes.TrimSpace(data)
	if len(d) == 0 || isNull(d) {
		return rec, errors.New("data is missing: expected an ActionTrail record")
	}
	if d[0] == '"' {
		var s string
		if err := decodeJSON(d, &s); err != nil {
			return rec, errors.New(describeJSONError("data", err))
		}
		d = bytes.TrimSpace([]byte(s))
		if len(d) == 0 || d[0] != '{' {
			return rec, errors.New("data is a string that does not hold an ActionTrail record (a JSON object)")
		}
	}
	if d[0] != '{' {
		return rec, fmt.Errorf("data must be an ActionTrail record (a JSON object), got %s", jsonKind(d))
	}
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber() // ids and account numbers stay exact
	if err := dec.Decode(&rec); err != nil {
		return rec, errors.New(describeJSONError("data", err))
	}
	if err := trailing(dec); err != nil {
		return rec, fmt.Errorf("data: %w", err)
	}
	if rec.EventName == "" {
		return rec, errors.New("data.eventName is missing")
	}
	return rec, nil
}
