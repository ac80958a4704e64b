package slsemu

import (
	"slices"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
)

// ActionTrailTopic is the topic of the logs an ActionTrail trail delivers to
// its logstore ("Log fields" of ActionTrail logs in the Simple Log Service
// documentation: __topic__ is fixed as actiontrail_audit_event).
const ActionTrailTopic = "actiontrail_audit_event"

// ActionTrailLog is one event as a trail writes it: the whole record, in
// JSON, under the key "event". The documentation lists event.eventName,
// event.userIdentity.accountId and so on as fields; those are the JSON keys
// the logstore's index reads inside "event", not keys of their own.
func ActionTrailLog(at time.Time, record string) *sls.Log {
	return LogOf(at, map[string]string{"event": record})
}

// LogOf is a log with the given keys, in key order; for logs in other
// shapes, such as one with flattened event.* keys.
func LogOf(at time.Time, contents map[string]string) *sls.Log {
	keys := make([]string, 0, len(contents))
	for k := range contents {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	l := &sls.Log{Time: proto.Uint32(uint32(at.Unix()))}
	for _, k := range keys {
		l.Contents = append(l.Contents, &sls.LogContent{Key: proto.String(k), Value: proto.String(contents[k])})
	}
	return l
}

// ActionTrailGroup is a log group of trail events, with the trail's topic.
func ActionTrailGroup(logs ...*sls.Log) *sls.LogGroup {
	return &sls.LogGroup{Topic: proto.String(ActionTrailTopic), Source: proto.String(""), Logs: logs}
}
