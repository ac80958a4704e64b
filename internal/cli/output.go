package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"vpnauthz/handler"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/version"
)

// outputFormat is invoke's --format.
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
	formatJSONL outputFormat = "jsonl"
	formatCSV   outputFormat = "csv"
	formatOCSF  outputFormat = "ocsf"
)

func (f *outputFormat) String() string { return string(*f) }

func (f *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case formatTable, formatJSON, formatJSONL, formatCSV, formatOCSF:
		*f = outputFormat(v)
		return nil
	}
	return errors.New("want table, json, jsonl, csv or ocsf")
}

// printAs prints the handler's answer in format and gives the exit status:
// 1 for an HTTP answer with an error status. The formats made of findings
// print none for an answer that holds none, and say so on stderr.
func printAs(stdout, stderr io.Writer, format outputFormat, res handler.Result) (int, error) {
	code := httpCode(res)
	switch format {
	case formatTable:
		printResult(stdout, res, nil, false)
		return code, nil
	case formatJSON:
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return exitError, fmt.Errorf("cannot show the response: %w", err)
		}
		fmt.Fprintf(stdout, "%s\n", data)
		return code, nil
	}
	findings := sortFindings(findingsOf(res))
	if !carriesFindings(res) {
		data, _ := json.Marshal(res)
		fmt.Fprintf(stderr, "vpnauthz invoke: the answer holds no findings: %s\n", data)
	}
	var err error
	switch format {
	case formatJSONL:
		err = writeJSONL(stdout, findings)
	case formatCSV:
		err = writeCSV(stdout, findings)
	case formatOCSF:
		err = writeOCSF(stdout, findings, version.String())
	}
	if err != nil {
		return exitError, err
	}
	return code, nil
}

// httpCode is the exit status of an answer: 1 for an HTTP answer with an
// error status, else 0.
func httpCode(res handler.Result) int {
	if h, ok := res.(*handler.HTTPResult); ok && h.StatusCode >= 400 {
		return exitError
	}
	return exitOK
}

// findingsOf gives the findings an answer carries: a scan's collected
// findings, or those of a POST /scans report.
func findingsOf(res handler.Result) []finding.Finding {
	switch r := res.(type) {
	case *handler.ScanResult:
		return r.Findings
	case *handler.HTTPResult:
		if rep, ok := r.Value.(*handler.HTTPReport); ok {
			return rep.Findings
		}
	}
	return nil
}

func carriesFindings(res handler.Result) bool {
	switch r := res.(type) {
	case *handler.ScanResult:
		return true
	case *handler.HTTPResult:
		_, ok := r.Value.(*handler.HTTPReport)
		return ok
	}
	return false
}

// printResult prints the handler's answer for a person: findings, the
// transitions the scan made and the report for a scan, status and body for
// an HTTP response, anything else as JSON. With showNone, a scan without
// transitions says so.
func printResult(w io.Writer, res handler.Result, changes []lifecycle.Change, showNone bool) {
	switch r := res.(type) {
	case *handler.ScanResult:
		printReport(w, r.Report, r.Findings, changes, showNone)
	case *handler.HTTPResult:
		fmt.Fprintf(w, "HTTP %d\n", r.StatusCode)
		if rep, ok := r.Value.(*handler.HTTPReport); ok {
			fmt.Fprintln(w)
			printReport(w, rep.Report, rep.Findings, changes, showNone)
			return
		}
		if r.Body != "" {
			printIndented(w, []byte(r.Body))
		}
	default:
		data, _ := json.Marshal(res)
		printIndented(w, data)
	}
}

func printIndented(w io.Writer, data []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		fmt.Fprintf(w, "%s\n", data)
		return
	}
	fmt.Fprintf(w, "%s\n", buf.Bytes())
}

// printReport prints the findings, the transitions and the report's summary
// and delivery.
func printReport(w io.Writer, r scan.Report, findings []finding.Finding, changes []lifecycle.Change, showNone bool) {
	if len(findings) > 0 {
		printFindings(w, findings)
		fmt.Fprintln(w)
	}
	switch {
	case len(changes) > 0:
		printChanges(w, changes)
		fmt.Fprintln(w)
	case showNone:
		fmt.Fprintln(w, "changes: none")
		fmt.Fprintln(w)
	}

	s := r.Summary
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scan:\t%s (trigger %s, started %s, %d ms)\n", r.ScanID, r.Trigger, r.StartedAt, r.DurationMs)
	fmt.Fprintf(tw, "complete:\t%t\n", r.Complete)
	fmt.Fprintf(tw, "summary:\t%d connections, %d authorizations: %d fail, %d error, %d suppressed, %d pass\n",
		s.Connections, s.Authorizations, s.Fail, s.Error, s.Suppressed, s.Pass)
	fmt.Fprintf(tw, "api:\t%d calls, %d retries, %d throttled\n", s.APICalls, s.APIRetries, s.Throttled)
	d := r.Delivery
	where := d.Sink
	if d.Project != "" || d.Logstore != "" {
		where = fmt.Sprintf("%s %s/%s", d.Sink, d.Project, d.Logstore)
	}
	if where == "" {
		where = "none"
	}
	fmt.Fprintf(tw, "delivery:\t%s, delivered: %t, %d findings delivered\n", where, d.Delivered, s.FindingsDelivered)
	if d.Error != "" {
		fmt.Fprintf(tw, "delivery error:\t%s\n", d.Error)
	}
	_ = tw.Flush()
}

// statusRank orders the table: what needs attention first.
var statusRank = map[string]int{
	finding.StatusFail:       0,
	finding.StatusError:      1,
	finding.StatusSuppressed: 2,
	finding.StatusPass:       3,
}

func printFindings(w io.Writer, findings []finding.Finding) {
	fs := sortFindings(findings)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSEVERITY\tRULE\tACCOUNT\tREGION\tCONNECTION\tBIND UID\tBIND INSTANCE\tDETAIL")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(f.Status), cell(f.Severity), cell(f.RuleID), cell(f.OwnerAccountID), cell(f.Region), cell(f.VpnConnectionID),
			cell(f.BindUID), cell(f.BindInstance), detail(f))
	}
	_ = tw.Flush()
}

// sortFindings orders findings as every output shows them: what needs
// attention first, then by place.
func sortFindings(findings []finding.Finding) []finding.Finding {
	fs := slices.Clone(findings)
	slices.SortStableFunc(fs, func(a, b finding.Finding) int {
		return cmp.Or(
			cmp.Compare(rank(a.Status), rank(b.Status)),
			cmp.Compare(a.OwnerAccountID, b.OwnerAccountID),
			cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.VpnConnectionID, b.VpnConnectionID),
			cmp.Compare(a.RuleID, b.RuleID),
			cmp.Compare(a.BindUID, b.BindUID),
			cmp.Compare(a.BindInstance, b.BindInstance),
		)
	})
	return fs
}

func rank(status string) int {
	if r, ok := statusRank[status]; ok {
		return r
	}
	return len(statusRank)
}

// cell keeps a column aligned: empty values show as "-", and tabs or line
// breaks inside a value would break the table.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

// detail is the finding's evidence, with the exception that suppresses it
// when the detail does not already name it.
func detail(f finding.Finding) string {
	d := cell(f.StatusDetail)
	if f.ExceptionReason != "" && !strings.Contains(f.StatusDetail, f.ExceptionReason) {
		d += fmt.Sprintf(" (exception: %s, expires %s)", cell(f.ExceptionReason), cell(f.ExceptionExpires))
	}
	return d
}
