package handler

import (
	"context"
	"errors"
	"fmt"

	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"

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
	if fromCLI(inv.ctx) {
		trigger = finding.TriggerCLI
	}
	req := scan.Request{
		ScanID:          inv.scanID,
		Trigger:         trigger,
		Targets:         targets,
		DryRun:          dryRun,
		Credentials:     inv.creds,
		AccountID:       inv.accountID,
		CollectFindings: collect,
	}
	var sink scan.Sink
	if !dryRun {
		if inv.h.opts.NewSink == nil {
			return scan.Report{}, &runError{ErrDeliveryFailed, "no findings sink is configured"}
		}
		s, err := inv.h.opts.NewSink(inv.ctx, inv.creds, inv.region)
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
func (inv *invocation) asyncResult(trigger string, targets []target.Target, dryRun bool) (any, error) {
	report, rerr := inv.run(trigger, targets, dryRun, false)
	if rerr != nil {
		return nil, invokeError(rerr.typ, "%s", rerr.msg)
	}
	report.Findings = nil
	if undelivered(dryRun, report) {
		inv.log.Error("findings not delivered", "report", report)
		return nil, invokeError(ErrDeliveryFailed, "%s", deliveryMessage(report))
	}
	inv.log.Info("report", "report", report)
	return report, nil
}

type cliKey struct{}

// FromCLI marks ctx as an invocation made by hand from the command line, so
// its scans are recorded with trigger "cli" whatever event it carries and a
// scheduled run can be told apart from a person trying something.
func FromCLI(ctx context.Context) context.Context { return context.WithValue(ctx, cliKey{}, true) }

func fromCLI(ctx context.Context) bool { v, _ := ctx.Value(cliKey{}).(bool); return v }
