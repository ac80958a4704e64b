package handler

import (
	"encoding/json"

	"vpnauthz/events"
	"vpnauthz/internal/finding"
)

// timer runs a scheduled scan: SCAN_TARGETS, or the payload's targets when
// it names some inside SCAN_TARGETS.
func (inv *invocation) timer(raw json.RawMessage) (Result, error) {
	var ev events.TimerEvent
	if err := decodeJSON(raw, &ev); err != nil {
		return nil, invokeError(ErrInvalidEvent, "timer event: %s", describeJSONError("the timer event", err))
	}
	if ev.TriggerName != nil {
		inv.log = inv.log.With("trigger_name", *ev.TriggerName)
	}
	cfg, err := inv.config()
	if err != nil {
		return nil, err
	}
	var payload []byte
	if ev.Payload != nil {
		payload = []byte(*ev.Payload)
	}
	p, perr := parsePayload(payload)
	if perr != nil {
		inv.log.Error("invalid timer payload", "error", perr.Error())
		return nil, invokeError(ErrInvalidPayload, "timer payload: %s", perr)
	}
	targets, terr := resolveTargets(cfg.Targets, p)
	if terr != nil {
		inv.log.Error("invalid timer targets", "error", terr.msg)
		if terr.problem == targetsNone {
			return nil, invokeError(ErrInvalidConfiguration, "SCAN_TARGETS is empty: a scheduled scan needs targets, in SCAN_TARGETS or in the timer payload")
		}
		return nil, invokeError(ErrInvalidPayload, "timer payload: %s", terr.msg)
	}
	if err := inv.credentials(); err != nil {
		return nil, err
	}
	return inv.asyncResult(finding.TriggerTimer, targets, p.DryRun)
}
