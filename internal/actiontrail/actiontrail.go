// Package actiontrail decides what an ActionTrail record asks vpnauthz to
// scan: which VPN connection, in which region and account, or nothing and
// why. Both event paths use it: one record per EventBridge event, and the
// many records a trail delivers to a logstore.
package actiontrail

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"vpnauthz/events"
	"vpnauthz/internal/target"
)

// watched are the API calls whose records trigger a rescan: the ones that
// create, change or delete an IPsec-VPN connection or its cross-account
// grant to a transit router.
var watched = []string{
	"GrantInstanceToTransitRouter",
	"RevokeInstanceFromTransitRouter",
	"ModifyGrantInstanceToTransitRouter",
	"CreateVpnConnection",
	"ModifyVpnConnectionAttribute",
	"DeleteVpnConnection",
	"CreateVpnAttachment",
	"ModifyVpnAttachmentAttribute",
	"DeleteVpnAttachment",
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

// EventNames are the watched API calls, for event filters.
func EventNames() []string { return slices.Clone(watched) }

// Watched reports whether a call's record triggers a rescan.
func Watched(eventName string) bool { return slices.Contains(watched, eventName) }

// Kind says why a record asks for no scan.
type Kind string

const (
	Failed    Kind = "failed-call"      // errorCode set: nothing changed
	Unrelated Kind = "unrelated-event"  // not a watched call
	NoRegion  Kind = "no-region"        // no region, or an invalid one
	NotVPN    Kind = "not-vpn"          // a grant of another instance type
	BadID     Kind = "invalid-id"       // an id that is not a VPN connection id
	NoID      Kind = "no-connection-id" // a change that names no connection
)

// Ignored is a record that asks for no scan, and why.
type Ignored struct {
	Kind   Kind
	Reason string // for people: names the field and quotes the value
}

// Request is what a record asks to scan.
type Request struct {
	EventName string
	// Account owns the changed connection: the record's recipientAccountId
	// (the account whose trail received the event, the resource owner in a
	// multi-account trail), else userIdentity.accountId (the caller's
	// account, the same one for a call on one's own resources). "" when the
	// record names neither.
	Account    string
	Region     string
	RegionFrom string // the field the region came from
	// ConnectionID is the connection to scan; "" for a create whose response
	// was not recorded: the new connection is somewhere in the region.
	ConnectionID string
}

// Origin says where a record came from, for the region fallback and for
// naming fields in reasons.
type Origin struct {
	Record   string // what reasons call the record: "data" (EventBridge), "event" (trail log)
	Region   string // a region outside the record (a CloudEvent's aliyunregionid); "" none
	RegionAt string // the name of that field, listed even when it is empty
}

// Extract gives what a record asks to scan, or why it asks for nothing. The
// checks run in a fixed order: a failed call is only that, whatever else is
// wrong with it.
func Extract(rec *events.ActionTrailRecord, o Origin) (Request, *Ignored) {
	if rec.ErrorCode != "" {
		return Request{}, &Ignored{Failed, "the call failed: " + clip(rec.ErrorCode)}
	}
	if !Watched(rec.EventName) {
		return Request{}, &Ignored{Unrelated, fmt.Sprintf("%s does not change a VPN connection or its grants", quote(rec.EventName))}
	}
	region, from := eventRegion(rec, o)
	if region == "" {
		fields := []string{"requestParameters.RegionId", o.Record + ".acsRegion"}
		if o.RegionAt != "" {
			fields = append(fields, o.RegionAt)
		}
		return Request{}, &Ignored{NoRegion, fmt.Sprintf("the event names no region (%s)", strings.Join(fields, ", "))}
	}
	if !target.ValidRegion(region) {
		return Request{}, &Ignored{NoRegion, fmt.Sprintf("invalid region %s in %s", quote(region), from)}
	}
	id, ig := connectionID(rec)
	if ig != nil {
		return Request{}, ig
	}
	if id == "" && !creates[rec.EventName] {
		return Request{}, &Ignored{NoID, fmt.Sprintf("%s names no VPN connection", rec.EventName)}
	}
	account := rec.RecipientAccountID
	if account == "" {
		account = rec.UserIdentity.AccountID
	}
	return Request{EventName: rec.EventName, Account: account, Region: region, RegionFrom: from, ConnectionID: id}, nil
}

// eventRegion gives the region of the changed connection and where it was
// found: the API's own RegionId first, then the region ActionTrail recorded,
// then the origin's.
func eventRegion(rec *events.ActionTrailRecord, o Origin) (region, from string) {
	if v, ok := Param(rec.RequestParameters, "RegionId"); ok {
		return v, "requestParameters.RegionId"
	}
	if rec.AcsRegion != "" {
		return rec.AcsRegion, o.Record + ".acsRegion"
	}
	if o.Region != "" {
		return o.Region, o.RegionAt
	}
	return "", ""
}

// connectionID finds the connection a record names, or says why the record
// is ignored. An empty id and no reason means the record names none.
func connectionID(rec *events.ActionTrailRecord) (string, *Ignored) {
	if grants[rec.EventName] {
		// ModifyGrant carries no InstanceType: its vco- prefix decides below.
		if it, ok := Param(rec.RequestParameters, "InstanceType"); ok && !strings.EqualFold(it, "VPN") {
			return "", &Ignored{NotVPN, fmt.Sprintf("the grant concerns instance type %s, not VPN", quote(it))}
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
		v, ok := Param(s.m, s.key)
		if !ok {
			continue
		}
		if s.key == "InstanceId" && !strings.HasPrefix(v, "vco-") {
			return "", &Ignored{NotVPN, fmt.Sprintf("instance %s in %s is not a VPN connection", quote(v), s.field)}
		}
		if !target.ValidConnectionID(v) {
			return "", &Ignored{BadID, fmt.Sprintf("invalid VPN connection id %s in %s", quote(v), s.field)}
		}
		return v, nil
	}
	return "", nil
}

// Param returns a non-empty value of m as a string. ActionTrail records
// parameters as strings; a number is taken as written, and any other value
// is returned in JSON form so that validation rejects it by name.
func Param(m map[string]any, key string) (string, bool) {
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

// maxQuoted bounds how much of a record's value a reason repeats: enough to
// recognise it, never a whole request body.
const maxQuoted = 80

func quote(s string) string {
	c, cut := cutAt(s)
	if cut {
		return strconv.Quote(c) + "…"
	}
	return strconv.Quote(c)
}

func clip(s string) string {
	c, cut := cutAt(s)
	if cut {
		return c + "…"
	}
	return c
}

// cutAt cuts s to at most maxQuoted bytes, on a UTF-8 boundary.
func cutAt(s string) (string, bool) {
	if len(s) <= maxQuoted {
		return s, false
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut], true
}
