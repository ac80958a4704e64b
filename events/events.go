// Package events holds the typed events that invoke vpnauthz on Function
// Compute 3.0 and realistic samples of each (the *.json files next to this
// file). The types are plain data: decoding a trigger and deciding what it
// means is the handler's job.
//
// Timer, HTTP and Log Service trigger events are the runtime SDK's own
// types, re-exported here so that the handler, the CLI and the tests name
// every event from one package. EventBridge deliveries have no SDK type, so CloudEvent and
// ActionTrailRecord are defined here.
package events

import (
	"encoding/json"

	fcevents "github.com/aliyun/fc-runtime-go-sdk/events"
)

// TimerEvent is what a timer trigger sends: {triggerTime, triggerName,
// payload}. The payload is always a string; vpnauthz reads it as an optional
// ScanPayload.
type TimerEvent = fcevents.TimerEvent

// HTTPTriggerEvent is an FC3 HTTP trigger request (version "v1"). FC3 also
// sends requestContext.triggerId, which the SDK type does not carry and
// vpnauthz does not need.
type HTTPTriggerEvent = fcevents.HTTPTriggerEvent

// HTTPTriggerRequestContext is the requestContext of an HTTP trigger request.
type HTTPTriggerRequestContext = fcevents.HTTPTriggerRequestContext

// HTTPTriggerResponse is the answer to an HTTP trigger request. Body is a
// string (base64 when IsBase64Encoded).
type HTTPTriggerResponse = fcevents.HTTPTriggerResponse

// SLSEvent is what a Log Service trigger sends when new logs arrive in a
// shard of the watched logstore (for vpnauthz, the logstore an ActionTrail
// trail delivers to): the shard and the cursors around the new log groups.
// Source.Endpoint is the region's internal endpoint, given as http://.
type SLSEvent = fcevents.SlsEvent

// SLSSource names the logstore, shard and cursors of an SLSEvent.
type SLSSource = fcevents.Source

// ScanPayload is the optional JSON of a timer payload and of a POST /scans
// body. Targets are "[UID/]REGION:vco-…" or "[UID/]REGION:*" and must lie
// inside the configured SCAN_TARGETS and ACCOUNTS; none means all of them.
// DryRun scans without delivering findings.
//
// A timer payload may instead be a worker's: the batch a coordinator
// dispatched (ScanID, Batch, Batches and Accounts, all four), which scans
// SCAN_TARGETS in exactly those accounts. POST /scans takes no worker
// fields.
type ScanPayload struct {
	Targets  []string `json:"targets,omitempty"`
	DryRun   bool     `json:"dryRun"`
	ScanID   string   `json:"scanId,omitempty"`   // the coordinator's scan id
	Batch    int      `json:"batch,omitempty"`    // 1..Batches
	Batches  int      `json:"batches,omitempty"`  // how many batches the coordinator dispatched
	Accounts []string `json:"accounts,omitempty"` // the account UIDs of this batch
}

// Worker reports whether the payload is a worker's batch.
func (p ScanPayload) Worker() bool {
	return p.ScanID != "" || p.Batch != 0 || p.Batches != 0 || len(p.Accounts) > 0
}

// CloudEvent is the envelope EventBridge delivers to a function (eventSchema
// CloudEvents, one event per invocation). For ActionTrail events Data holds
// an ActionTrailRecord; some deliveries carry it as a JSON string instead of
// an object, so Data is kept raw.
type CloudEvent struct {
	ID                 string          `json:"id"`
	Source             string          `json:"source"`
	SpecVersion        string          `json:"specversion"`
	Type               string          `json:"type"` // e.g. vpc:ActionTrail:ApiCall
	DataContentType    string          `json:"datacontenttype,omitempty"`
	DataSchema         string          `json:"dataschema,omitempty"`
	Subject            string          `json:"subject,omitempty"`
	Time               string          `json:"time"`
	AliyunAccountID    string          `json:"aliyunaccountid"`
	AliyunPublishTime  string          `json:"aliyunpublishtime"` // formats vary; not parsed
	AliyunEventBusName string          `json:"aliyuneventbusname"`
	AliyunRegionID     string          `json:"aliyunregionid"`
	AliyunPublishAddr  string          `json:"aliyunpublishaddr"`
	Data               json.RawMessage `json:"data"`
}

// ActionTrailRecord is one ActionTrail management event: the API call that
// changed something. ErrorCode is set when the call failed.
//
// Fields vpnauthz does not interpret and whose JSON type is not stable across
// services (eventVersion, isGlobal, additionalEventData, referencedResources,
// eventAttributes, sessionContext) are kept raw, so that a drift in one of
// them never makes an otherwise good event undecodable.
type ActionTrailRecord struct {
	EventID             string          `json:"eventId"`
	EventVersion        json.RawMessage `json:"eventVersion,omitempty"`
	EventCategory       string          `json:"eventCategory,omitempty"` // Management
	EventType           string          `json:"eventType"`               // ApiCall, ConsoleOperation, AliyunServiceEvent
	EventRW             string          `json:"eventRW"`                 // Write (only writes reach EventBridge)
	EventName           string          `json:"eventName"`               // the API name, e.g. GrantInstanceToTransitRouter
	EventSource         string          `json:"eventSource,omitempty"`
	ServiceName         string          `json:"serviceName"` // product code: Vpc, Cbn
	APIVersion          string          `json:"apiVersion,omitempty"`
	AcsRegion           string          `json:"acsRegion"`
	EventTime           string          `json:"eventTime"`
	IsGlobal            json.RawMessage `json:"isGlobal,omitempty"`
	RequestID           string          `json:"requestId"`
	SourceIPAddress     string          `json:"sourceIpAddress,omitempty"`
	UserAgent           string          `json:"userAgent,omitempty"`
	UserIdentity        UserIdentity    `json:"userIdentity"`
	RecipientAccountID  string          `json:"recipientAccountId,omitempty"` // the account whose trail received the event
	RequestParameters   map[string]any  `json:"requestParameters,omitempty"`
	ResponseElements    map[string]any  `json:"responseElements,omitempty"` // recorded for some APIs only
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	ReferencedResources json.RawMessage `json:"referencedResources,omitempty"`
	EventAttributes     json.RawMessage `json:"eventAttributes,omitempty"`
	ResourceName        string          `json:"resourceName,omitempty"`
	ErrorCode           string          `json:"errorCode,omitempty"`
	ErrorMessage        string          `json:"errorMessage,omitempty"`
}

// UserIdentity is who made the call.
type UserIdentity struct {
	Type           string          `json:"type"` // ram-user, assumed-role, root-account, system
	PrincipalID    string          `json:"principalId"`
	AccountID      string          `json:"accountId"`
	AccessKeyID    string          `json:"accessKeyId,omitempty"`
	UserName       string          `json:"userName,omitempty"`
	SessionContext json.RawMessage `json:"sessionContext,omitempty"`
}
