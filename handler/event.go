package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"vpnauthz/events"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/target"
)

// watched are the API calls whose ActionTrail records trigger a rescan: the
// ones that create, change or delete an IPsec-VPN connection or its
// cross-account grant to a transit router.
var watched = map[string]bool{
	"GrantInstanceToTransitRouter":       true,
	"RevokeInstanceFromTransitRouter":    true,
	"ModifyGrantInstanceToTransitRouter": true,
	"CreateVpnConnection":                true,
	"ModifyVpnConnectionAttribute":       true,
	"DeleteVpnConnection":                true,
	"CreateVpnAttachment":                true,
	"ModifyVpnAttachmentAttribute":       true,
	"DeleteVpnAttachment":                true,
}

// grants are the CEN calls that may concern any kind of instance; only
// their VPN variant matters here.
var grants = map[string]bool{
	"GrantInstanceToTransitRouter":       true,
	"RevokeInstanceFromTransitRouter":    true,
	"ModifyGrantInstanceToTransitRouter": true,
}

// creates are the calls whose new connection id appears only in the
// response, when ActionTrail recorded one.
var creates = map[string]bool{
	"CreateVpnConnection": true,
	"CreateVpnAttachment": true,
}

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

	if rec.ErrorCode != "" {
		return inv.ignore("the call failed: " + truncate(rec.ErrorCode))
	}
	if !watched[rec.EventName] {
		return inv.ignore(fmt.Sprintf("%s does not change a VPN connection or its grants", quote(rec.EventName)))
	}
	region, regionFrom := eventRegion(&rec, &ce)
	if region == "" {
		return inv.ignore("the event names no region (requestParameters.RegionId, data.acsRegion, aliyunregionid)")
	}
	if !target.ValidRegion(region) {
		return inv.ignore(fmt.Sprintf("invalid region %s in %s", quote(region), regionFrom))
	}
	id, reason := connectionID(&rec)
	if reason != "" {
		return inv.ignore(reason)
	}

	if len(cfg.Targets) == 0 {
		// Out of scope, like any connection SCAN_TARGETS does not cover: an
		// error would make FC retry every VPN change and then dead-letter it.
		return inv.ignore("SCAN_TARGETS is empty: no connection is in scope")
	}
	var targets []target.Target
	if id == "" {
		if !creates[rec.EventName] {
			return inv.ignore(fmt.Sprintf("%s names no VPN connection", rec.EventName))
		}
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

// eventRegion gives the region of the changed connection and where it was
// found: the API's own RegionId first, then the region ActionTrail recorded,
// then the region of the event bus.
func eventRegion(rec *events.ActionTrailRecord, ce *events.CloudEvent) (region, from string) {
	if v, ok := param(rec.RequestParameters, "RegionId"); ok {
		return v, "requestParameters.RegionId"
	}
	if rec.AcsRegion != "" {
		return rec.AcsRegion, "data.acsRegion"
	}
	if ce.AliyunRegionID != "" {
		return ce.AliyunRegionID, "aliyunregionid"
	}
	return "", ""
}

// connectionID finds the connection a record names, or says why the record
// is ignored. An empty id and reason means the record names none.
func connectionID(rec *events.ActionTrailRecord) (id, ignoreReason string) {
	if grants[rec.EventName] {
		// ModifyGrant carries no InstanceType: its vco- prefix decides below.
		if it, ok := param(rec.RequestParameters, "InstanceType"); ok && !strings.EqualFold(it, "VPN") {
			return "", fmt.Sprintf("the grant concerns instance type %s, not VPN", quote(it))
		}
	}
	type source struct {
		m     map[string]any
		key   string
		field string
	}
	sources := []source{
		{rec.RequestParameters, "VpnConnectionId", "requestParameters.VpnConnectionId"},
		{rec.RequestParameters, "InstanceId", "requestParameters.InstanceId"},
		{rec.RequestParameters, "VpnId", "requestParameters.VpnId"},
	}
	if creates[rec.EventName] {
		sources = append(sources, source{rec.ResponseElements, "VpnConnectionId", "responseElements.VpnConnectionId"})
	}
	for _, s := range sources {
		v, ok := param(s.m, s.key)
		if !ok {
			continue
		}
		if s.key == "InstanceId" && !strings.HasPrefix(v, "vco-") {
			return "", fmt.Sprintf("instance %s in %s is not a VPN connection", quote(v), s.field)
		}
		if !target.ValidConnectionID(v) {
			return "", fmt.Sprintf("invalid VPN connection id %s in %s", quote(v), s.field)
		}
		return v, ""
	}
	return "", ""
}

// param returns a non-empty value of m as a string. ActionTrail records
// parameters as strings; a number is taken as written, and any other value
// is returned in JSON form so that validation rejects it by name.
func param(m map[string]any, key string) (string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		b, _ := json.Marshal(x)
		s = string(b)
	}
	return s, s != ""
}
