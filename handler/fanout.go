package handler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"vpnauthz/internal/accounts"
	"vpnauthz/internal/config"
	"vpnauthz/internal/fanout"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
)

// RoleCoordinator is the role of a scan that dispatched workers and read
// nothing itself.
const RoleCoordinator = "coordinator"

var errNotWorker = errors.New("the event has neither a timer's keys nor all of scanId, batch, batches and accounts")

// canFanOut reports whether this invocation can start workers: a
// dispatcher and the name of the function to invoke.
func (inv *invocation) canFanOut() bool {
	return inv.h.opts.Dispatch != nil && inv.FunctionName != ""
}

// coordinatorScanID is the scan id of a coordinator: derived from the
// invocation's request id, which FC keeps across the retries of one async
// invocation, so that a retried coordinator names its batches' task ids
// alike and FC refuses to start any of them twice.
func coordinatorScanID(requestID string) string {
	sum := sha256.Sum256([]byte("vpnauthz-coordinator\x00" + requestID))
	return hex.EncodeToString(sum[:16])
}

// coordinate starts one worker per batch of accounts and scans nothing
// itself. Its summary log and result say what it dispatched. A batch that
// could not be started fails the invocation: FC retries the coordinator,
// and the task ids of the batches already started make FC refuse them.
func (inv *invocation) coordinate(o *org, scanned []string) (Result, error) {
	if inv.RequestID != "" {
		inv.scanID = coordinatorScanID(inv.RequestID)
	}
	inv.log = inv.base.With("scan_id", inv.scanID, "trigger", kindTimer, "role", RoleCoordinator)
	trigger := finding.TriggerTimer
	if inv.Trigger != "" {
		trigger = inv.Trigger
	}
	cfg := inv.h.opts.Config
	uids := make([]string, len(scanned))
	for i, a := range scanned {
		uids[i] = o.uid(a)
	}
	batches := fanout.Batches(uids, cfg.FanoutAccountsPerInvocation)
	startedAt, start := time.Now().UTC(), time.Now()

	// The sink first: a coordinator whose summary cannot go anywhere should
	// not start workers whose findings cannot either.
	sink, rerr := inv.openSink()
	if rerr != nil {
		return nil, invokeError(rerr.typ, "%s", rerr.msg)
	}
	inv.log.Info("dispatching", "accounts", len(uids), "batches", len(batches), "per_invocation", cfg.FanoutAccountsPerInvocation)
	dispatched, err := inv.h.opts.Dispatch(inv.ctx, inv.Invocation, inv.scanID, batches)
	fr := &FanoutReport{Role: RoleCoordinator, Accounts: len(uids), Batches: len(batches), Tasks: []FanoutTask{}}
	failed := 0
	for _, d := range dispatched {
		if d.Err != nil {
			failed++
			continue
		}
		if d.AlreadyStarted {
			fr.AlreadyStarted++
		} else {
			fr.Dispatched++
		}
		fr.Tasks = append(fr.Tasks, FanoutTask{Batch: d.Batch, TaskID: d.TaskID, Accounts: d.Accounts, AlreadyStarted: d.AlreadyStarted, RequestID: d.RequestID})
	}
	if err == nil && fr.Dispatched+fr.AlreadyStarted != len(batches) {
		err = fmt.Errorf("the dispatcher answered for %d of %d batches", fr.Dispatched+fr.AlreadyStarted, len(batches))
	}
	if err != nil {
		inv.log.Error("dispatch failed", "error", err.Error(), "dispatched", fr.Dispatched, "already_started", fr.AlreadyStarted, "failed", failed)
		return nil, invokeError(ErrDispatchFailed, "coordinator %s started %d of %d batches (%d already started before); FC retries the coordinator, and the started batches' task ids keep them from running twice: %s",
			inv.scanID, fr.Dispatched+fr.AlreadyStarted, len(batches), fr.AlreadyStarted, err)
	}
	summary := coordinatorSummary(inv.scanID, trigger, startedAt, time.Since(start), len(uids), len(batches))
	delivery := sink.Close(inv.ctx, summary)
	res := &ScanResult{
		Report: scan.Report{
			ScanID: inv.scanID, Trigger: trigger, StartedAt: summary.StartedAt, DurationMs: summary.DurationMs,
			Complete: true, Summary: summary.Counts, Delivery: delivery,
		},
		Accounts: o.report(len(uids)),
		Fanout:   fr,
	}
	if !delivery.Delivered {
		inv.log.Error("coordinator summary not delivered", "report", res)
		return nil, invokeError(ErrDeliveryFailed, "the summary of coordinator %s was not delivered to %s %s/%s: %s",
			inv.scanID, delivery.Sink, delivery.Project, delivery.Logstore, delivery.Error)
	}
	inv.log.Info("report", "report", res)
	return res, nil
}

// coordinatorSummary is the summary log of a coordinator: what it
// dispatched, no findings of its own.
func coordinatorSummary(scanID, trigger string, startedAt time.Time, took time.Duration, accounts, batches int) *finding.ScanSummary {
	return &finding.ScanSummary{
		ScanID:     scanID,
		Trigger:    trigger,
		StartedAt:  startedAt.Format(time.RFC3339),
		DurationMs: took.Milliseconds(),
		Complete:   true,
		Role:       finding.RoleCoordinator,
		Accounts:   accounts,
		Batches:    batches,
	}
}

// worker scans SCAN_TARGETS in the accounts of one coordinator's batch.
// The accounts must still be among those ACCOUNTS allows: a batch cannot
// widen the configured scope.
func (inv *invocation) worker(cfg *config.Config, p parsedPayload) (Result, error) {
	inv.log = inv.log.With("parent_scan_id", p.ScanID, "batch", p.Batch, "batches", p.Batches)
	if err := inv.credentials(); err != nil {
		return nil, err
	}
	if !target.ValidAccountID(inv.AccountID) {
		return nil, invokeError(ErrInvalidContext, "the invocation names no valid account id (%s): a worker needs the function's own account", quote(inv.AccountID))
	}
	o := &org{own: inv.AccountID, active: true}
	var listing *accounts.Listing
	if cfg.TrustOrganization {
		l, err := inv.listDirectory()
		if err != nil {
			inv.log.Error("resource directory not listed", "error", err.Error())
			return nil, invokeError(ErrAccountsUnavailable, "TRUST_ORGANIZATION needs the resource directory's members, and listing them failed: %s", err)
		}
		listing = &l
	}
	plan, err := accounts.Resolve(accounts.Spec{Mode: accounts.List, IDs: p.Accounts}, o.own, listing, cfg.AccountsExclude, cfg.TrustOrganization)
	if err != nil {
		return nil, invokeError(ErrScanFailed, "accounts of the batch: %s", err)
	}
	var refused []string
	for _, id := range p.Accounts {
		switch {
		case slices.Contains(plan.Excluded, id):
			refused = append(refused, id+" (in ACCOUNTS_EXCLUDE)")
		case id == o.own:
		case cfg.Accounts.Mode == accounts.Own:
			refused = append(refused, id+" (ACCOUNTS is unset: only the function's own account is scanned)")
		case cfg.Accounts.Mode == accounts.List && !slices.Contains(cfg.Accounts.IDs, id):
			refused = append(refused, id+" (not in ACCOUNTS)")
		}
	}
	if len(refused) > 0 {
		inv.log.Error("batch outside ACCOUNTS", "accounts", refused)
		return nil, invokeError(ErrInvalidPayload, "worker payload: accounts the configuration does not scan: %s", limitList(refused))
	}
	o.fromPlan(plan)
	targets := o.targets(cfg)
	if len(targets) == 0 {
		return nil, invokeError(ErrInvalidPayload, "worker payload: SCAN_TARGETS covers none of the batch's accounts")
	}
	batch := &scan.Batch{ParentScanID: p.ScanID, Batch: p.Batch, Batches: p.Batches}
	return inv.asyncResult(scanJob{trigger: finding.TriggerTimer, targets: targets, dryRun: p.DryRun, org: o, batch: batch},
		func(r *ScanResult) {
			r.Batch = &BatchReport{ParentScanID: p.ScanID, Batch: p.Batch, Batches: p.Batches, Accounts: len(p.Accounts)}
		})
}
