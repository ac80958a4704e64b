package handler

import (
	"encoding/json"

	"vpnauthz/events"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/target"
)

// timer runs a scheduled scan: SCAN_TARGETS in every scanned account, or
// the payload's targets when it names some inside them. A scan of more
// accounts than FANOUT_ACCOUNTS_PER_INVOCATION coordinates workers instead;
// a payload that is a coordinator's batch is a worker's scan.
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
	p, perr := parsePayload(payload, true)
	if perr != nil {
		inv.log.Error("invalid timer payload", "error", perr.Error())
		return nil, invokeError(ErrInvalidPayload, "timer payload: %s", perr)
	}
	if p.Worker() {
		return inv.worker(cfg, p)
	}
	o, err := inv.organisation(cfg)
	if err != nil {
		return nil, err
	}
	targets, terr := resolveTargets(cfg, o, p)
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
	// Only a scan of the whole scope that delivers fans out: a worker
	// scans SCAN_TARGETS in its accounts, and a dry run must not start
	// invocations that deliver.
	accounts := target.Accounts(targets)
	if !p.targetsGiven && !p.DryRun && !inv.DryRun && len(accounts) > cfg.FanoutAccountsPerInvocation && inv.canFanOut() {
		return inv.coordinate(o, accounts)
	}
	return inv.asyncResult(scanJob{trigger: finding.TriggerTimer, targets: targets, dryRun: p.DryRun, org: o, whole: !p.targetsGiven}, nil)
}

// workerEvent is a coordinator's batch delivered as the event itself, as
// the dispatcher sends it: {"scanId","batch","batches","accounts"}.
func (inv *invocation) workerEvent(raw json.RawMessage) (Result, error) {
	cfg, err := inv.config()
	if err != nil {
		return nil, err
	}
	p, perr := parsePayload(raw, true)
	if perr == nil && !p.Worker() {
		perr = errNotWorker
	}
	if perr != nil {
		inv.log.Error("invalid worker payload", "error", perr.Error())
		return nil, invokeError(ErrInvalidPayload, "worker payload: %s", perr)
	}
	return inv.worker(cfg, p)
}
