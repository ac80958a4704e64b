package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"vpnauthz/events"
	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/target"
)

func (inv *invocation) ignore(reason string) (Result, error) {
	inv.log.Info("event ignored", "reason", reason)
	return &Ignored{Ignored: true, Reason: reason}, nil
}

// event rescans the connection an ActionTrail record names, in the account
// the record names (recipientAccountId, else userIdentity.accountId): the
// function's own, or a member among ACCOUNTS, read with its member role. The
// record is a hint, not the truth: the scan reads the connection's current
// state. A DeleteVpnConnection is scanned too: what the scan finds says the
// connection is gone.
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
	if len(cfg.Targets) == 0 {
		// Out of scope, like any connection SCAN_TARGETS does not cover: an
		// error would make FC retry every VPN change and then dead-letter it.
		return inv.ignore("SCAN_TARGETS is empty: no connection is in scope")
	}
	o, err := inv.organisation(cfg)
	if err != nil {
		return nil, err
	}
	targets, why := o.eventTargets(cfg, req.Account, req.Region, req.ConnectionID)
	if why != "" {
		return inv.ignore(why)
	}
	if err := inv.credentials(); err != nil {
		return nil, err
	}
	return inv.asyncResult(scanJob{trigger: finding.TriggerEvent, targets: targets, org: o}, nil)
}

// eventTargets gives what a change to a connection (id "" for a create whose
// new id was not recorded: every connection of the region in scope) asks to
// scan, in the account the record names: the function's own or a scanned
// member, with that member's role. why says why nothing is in scope.
func (o *org) eventTargets(cfg *config.Config, account, region, id string) (targets []target.Target, why string) {
	account = o.eventAccount(account)
	if !o.covers(account) {
		return nil, o.outsideReason(account)
	}
	scope := o.scope(cfg)
	if id == "" {
		targets = target.InAccountRegion(scope, account, region)
		if len(targets) == 0 {
			where := region
			if account != "" {
				where = account + "/" + region
			}
			return nil, fmt.Sprintf("no target of SCAN_TARGETS is in %s", where)
		}
		return targets, ""
	}
	t := target.Target{Region: region, ConnectionID: id, Account: account}
	if !target.Covers(scope, t) {
		return nil, fmt.Sprintf("%s is outside SCAN_TARGETS", t)
	}
	return []target.Target{t}, ""
}

// eventAccount is the account a record names, written as targets write it.
// A record naming none is about the function's own account; so is any
// record when neither ACCOUNTS nor TRUST_ORGANIZATION is set and the
// function's account is not known (a local run), as before organisations.
func (o *org) eventAccount(account string) string {
	if account == "" || (!o.active && o.own == "") {
		return ""
	}
	return o.local(account)
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
