package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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

// scanJob is one scan an invocation runs.
type scanJob struct {
	trigger         string
	targets         []target.Target
	dryRun, collect bool
	org             *org        // the accounts; nil: the function's own only
	batch           *scan.Batch // a worker's place in a fanned-out scan
	// whole is a scan of the whole configured scope: it carries the ERROR
	// finding of a failed directory listing, if any.
	whole bool
}

// run scans a job's targets with this invocation's credentials (other
// accounts with the credentials NewMembers gives), streaming findings to a
// sink opened for this invocation alone (none for a dry run).
func (inv *invocation) run(j scanJob) (scan.Report, *runError) {
	trigger := j.trigger
	if inv.Trigger != "" {
		trigger = inv.Trigger
	}
	dryRun := j.dryRun || inv.DryRun
	req := scan.Request{
		ScanID:          inv.scanID,
		Trigger:         trigger,
		Targets:         j.targets,
		DryRun:          dryRun,
		Credentials:     inv.Credentials,
		AccountID:       inv.AccountID,
		CollectFindings: j.collect || inv.Collect,
		Batch:           j.batch,
	}
	var extra []finding.Finding
	if j.org != nil {
		req.TrustedAccounts = j.org.trusted
		if f := j.org.listingFinding(time.Now()); f != nil && j.whole {
			f.ScanID, f.Trigger = req.ScanID, req.Trigger
			extra = append(extra, *f)
		}
	}
	if slices.ContainsFunc(j.targets, func(t target.Target) bool { return t.Account != "" }) {
		if inv.h.opts.NewMembers == nil {
			return scan.Report{}, &runError{ErrScanFailed, "the targets name other accounts, and no member credentials are configured"}
		}
		m, err := inv.h.opts.NewMembers(inv.ctx, inv.Invocation, inv.scanID)
		if err != nil {
			inv.log.Error("member credentials unavailable", "error", err.Error())
			return scan.Report{}, configOr(ErrScanFailed, "could not prepare the member accounts' credentials, nothing was scanned: ", err)
		}
		req.Members = m
	}
	if !dryRun && inv.h.opts.NewState != nil {
		// A dry run leaves the state as it is: it changes nothing anywhere.
		st, err := inv.h.opts.NewState(inv.ctx, inv.Invocation)
		if err != nil {
			inv.log.Error("state store unavailable", "error", err.Error())
			return scan.Report{}, configOr(ErrScanFailed, "could not open the state store, nothing was scanned: ", err)
		}
		req.State = st
	}
	var sink scan.Sink
	if !dryRun {
		s, rerr := inv.openSink()
		if rerr != nil {
			return scan.Report{}, rerr
		}
		sink = s
		if len(extra) > 0 {
			es := &extraSink{Sink: s, extra: extra}
			for i := range extra {
				if err := s.Write(inv.ctx, &extra[i]); err != nil {
					inv.log.Warn("writing findings failed", "error", err.Error())
				}
			}
			sink = es
		}
	}
	if inv.h.opts.Scanner == nil {
		return scan.Report{}, &runError{ErrScanFailed, "no scanner is configured"}
	}
	inv.log.Info("scan started", "targets", len(j.targets), "accounts", len(target.Accounts(j.targets)), "dry_run", dryRun)
	report, err := inv.h.opts.Scanner.Run(inv.ctx, req, sink)
	if err != nil {
		inv.log.Error("scan refused", "error", err.Error())
		return scan.Report{}, &runError{ErrScanFailed, fmt.Sprintf("scan %s did not run: %s", inv.scanID, err)}
	}
	for i := range extra {
		report.Summary.Add(&extra[i])
	}
	if len(extra) > 0 && req.CollectFindings {
		report.Findings = append(slices.Clip(extra), report.Findings...)
	}
	inv.log.Info("scan finished", "complete", report.Complete, "summary", report.Summary,
		"delivered", report.Delivery.Delivered, "duration_ms", report.DurationMs)
	return report, nil
}

// openSink opens where this invocation's findings go.
func (inv *invocation) openSink() (scan.Sink, *runError) {
	if inv.h.opts.NewSink == nil {
		return nil, &runError{ErrDeliveryFailed, "no findings sink is configured"}
	}
	s, err := inv.h.opts.NewSink(inv.ctx, inv.Credentials, inv.Region)
	if err != nil {
		inv.log.Error("findings sink unavailable", "error", err.Error())
		// Missing SLS settings are the operator's to fix, and retrying
		// the invocation cannot help: a configuration error, not a
		// delivery failure.
		return nil, configOr(ErrDeliveryFailed, "could not open the findings sink, nothing was scanned: ", err)
	}
	return s, nil
}

// configOr is a runError of type typ, or of ErrInvalidConfiguration when err
// is a configuration error.
func configOr(typ, prefix string, err error) *runError {
	if ce := (*config.Error)(nil); errors.As(err, &ce) {
		return &runError{ErrInvalidConfiguration, "invalid configuration, nothing was scanned: " + err.Error()}
	}
	return &runError{typ, prefix + err.Error()}
}

// extraSink counts findings the handler wrote itself (a failed directory
// listing) in the summary the scanner closes the sink with.
type extraSink struct {
	scan.Sink
	extra []finding.Finding
}

func (s *extraSink) Close(ctx context.Context, summary *finding.ScanSummary) scan.Delivery {
	if summary != nil {
		for i := range s.extra {
			summary.Counts.Add(&s.extra[i])
		}
	}
	return s.Sink.Close(ctx, summary)
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
func (inv *invocation) asyncResult(j scanJob, decorate func(*ScanResult)) (Result, error) {
	dryRun := j.dryRun || inv.DryRun
	report, rerr := inv.run(j)
	if rerr != nil {
		return nil, invokeError(rerr.typ, "%s", rerr.msg)
	}
	res := &ScanResult{Report: report, Findings: report.Findings}
	res.Report.Findings = nil
	if j.org != nil {
		res.Accounts = j.org.report(len(target.Accounts(j.targets)))
	}
	if decorate != nil {
		decorate(res)
	}
	if undelivered(dryRun, report) {
		inv.log.Error("findings not delivered", "report", res)
		return nil, invokeError(ErrDeliveryFailed, "%s", deliveryMessage(report))
	}
	inv.log.Info("report", "report", res)
	return res, nil
}
