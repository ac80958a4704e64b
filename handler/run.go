package handler

import (
	"errors"
	"fmt"

	"vpnauthz/internal/config"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/target"
)

// runError is a scan that did not run: its sink could not be opened, or the
// scanner refused the request.
type runError struct {
	typ string // ErrDeliveryFailed or ErrScanFailed
	msg string
}

// run scans targets with this invocation's credentials, streaming findings
// to a sink opened for this invocation alone (none for a dry run).
func (inv *invocation) run(trigger string, targets []target.Target, dryRun, collect bool) (scan.Report, *runError) {
	if inv.Trigger != "" {
		trigger = inv.Trigger
	}
	dryRun = dryRun || inv.DryRun
	req := scan.Request{
		ScanID:          inv.scanID,
		Trigger:         trigger,
		Targets:         targets,
		DryRun:          dryRun,
		Credentials:     inv.Credentials,
		AccountID:       inv.AccountID,
		CollectFindings: collect || inv.Collect,
	}
	var sink scan.Sink
	if !dryRun {
		if inv.h.opts.NewSink == nil {
			return scan.Report{}, &runError{ErrDeliveryFailed, "no findings sink is configured"}
		}
		s, err := inv.h.opts.NewSink(inv.ctx, inv.Credentials, inv.Region)
		if err != nil {
			inv.log.Error("findings sink unavailable", "error", err.Error())
			// Missing SLS settings are the operator's to fix, and retrying
			// the invocation cannot help: a configuration error, not a
			// delivery failure.
			typ, msg := ErrDeliveryFailed, "could not open the findings sink, nothing was scanned: "
			if ce := (*config.Error)(nil); errors.As(err, &ce) {
				typ, msg = ErrInvalidConfiguration, "invalid configuration, nothing was scanned: "
			}
			return scan.Report{}, &runError{typ, msg + err.Error()}
		}
		sink = s
	}
	if inv.h.opts.Scanner == nil {
		return scan.Report{}, &runError{ErrScanFailed, "no scanner is configured"}
	}
	inv.log.Info("scan started", "targets", len(targets), "dry_run", dryRun)
	report, err := inv.h.opts.Scanner.Run(inv.ctx, req, sink)
	if err != nil {
		inv.log.Error("scan refused", "error", err.Error())
		return scan.Report{}, &runError{ErrScanFailed, fmt.Sprintf("scan %s did not run: %s", inv.scanID, err)}
	}
	inv.log.Info("scan finished", "complete", report.Complete, "summary", report.Summary,
		"delivered", report.Delivery.Delivered, "duration_ms", report.DurationMs)
	return report, nil
}

// undelivered reports whether a scan that should have delivered its
// findings did not.
func undelivered(dryRun bool, r scan.Report) bool { return !dryRun && !r.Delivery.Delivered }

func deliveryMessage(r scan.Report) string {
	msg := fmt.Sprintf("findings of scan %s were not delivered (%d of %d delivered to %s %s/%s)",
		r.ScanID, r.Summary.FindingsDelivered, r.Summary.Findings(), r.Delivery.Sink, r.Delivery.Project, r.Delivery.Logstore)
	if r.Delivery.Error != "" {
		msg += ": " + r.Delivery.Error
	}
	return msg
}

// asyncResult answers a timer or EventBridge invocation: the report without
// its findings, or a DeliveryFailed error so that FC's retries and failure
// destination take over. The report is logged either way, so an undelivered
// scan still leaves its counts behind.
func (inv *invocation) asyncResult(trigger string, targets []target.Target, dryRun bool) (Result, error) {
	dryRun = dryRun || inv.DryRun
	report, rerr := inv.run(trigger, targets, dryRun, false)
	if rerr != nil {
		return nil, invokeError(rerr.typ, "%s", rerr.msg)
	}
	findings := report.Findings
	report.Findings = nil
	if undelivered(dryRun, report) {
		inv.log.Error("findings not delivered", "report", report)
		return nil, invokeError(ErrDeliveryFailed, "%s", deliveryMessage(report))
	}
	inv.log.Info("report", "report", report)
	return &ScanResult{Report: report, Findings: findings}, nil
}
