package cli

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"vpnauthz/events"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
)

// printJSON prints the handler's answer as indented JSON. An HTTP response
// with an error status makes the exit status 1.
func printJSON(w io.Writer, res any) int {
	if res == nil {
		return exitOK
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "cannot show the response: %v\n", err)
		return exitError
	}
	fmt.Fprintf(w, "%s\n", data)
	if resp, ok := asHTTPResponse(data); ok && resp.StatusCode >= 400 {
		return exitError
	}
	return exitOK
}

// printResult prints the handler's answer for a person: findings and report
// for a scan, status and body for an HTTP response, anything else as JSON.
// seen holds the findings the sink was given, for scans whose report does not
// list them (timer and EventBridge invocations).
func printResult(w io.Writer, res any, seen []finding.Finding) int {
	if res == nil {
		return exitOK
	}
	data, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(w, "cannot show the response: %v\n", err)
		return exitError
	}
	if resp, ok := asHTTPResponse(data); ok {
		return printHTTPResponse(w, resp, seen)
	}
	if report, ok := asReport(data); ok {
		printReport(w, report, seen)
		return exitOK
	}
	printIndented(w, data)
	return exitOK
}

func printHTTPResponse(w io.Writer, resp events.HTTPTriggerResponse, seen []finding.Finding) int {
	code := exitOK
	if resp.StatusCode >= 400 {
		code = exitError
	}
	fmt.Fprintf(w, "HTTP %d\n", resp.StatusCode)
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			fmt.Fprintf(w, "body is not valid base64: %v\n", err)
			return exitError
		}
		body = decoded
	}
	if report, ok := asReport(body); ok {
		fmt.Fprintln(w)
		printReport(w, report, seen)
		return code
	}
	if json.Valid(body) {
		printIndented(w, body)
	} else if len(body) > 0 {
		fmt.Fprintf(w, "%s\n", body)
	}
	return code
}

// asHTTPResponse recognises an HTTP trigger response by its statusCode.
func asHTTPResponse(data []byte) (events.HTTPTriggerResponse, bool) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return events.HTTPTriggerResponse{}, false
	}
	if _, ok := probe["statusCode"]; !ok {
		return events.HTTPTriggerResponse{}, false
	}
	var resp events.HTTPTriggerResponse
	if json.Unmarshal(data, &resp) != nil {
		return events.HTTPTriggerResponse{}, false
	}
	return resp, true
}

// asReport recognises a scan report by its scanId.
func asReport(data []byte) (scan.Report, bool) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return scan.Report{}, false
	}
	if _, ok := probe["scanId"]; !ok {
		return scan.Report{}, false
	}
	var r scan.Report
	if json.Unmarshal(data, &r) != nil {
		return scan.Report{}, false
	}
	return r, true
}

func printIndented(w io.Writer, data []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		fmt.Fprintf(w, "%s\n", data)
		return
	}
	fmt.Fprintf(w, "%s\n", buf.Bytes())
}

// printReport prints the findings (the report's own, else those seen for this
// scan) and the report's summary and delivery.
func printReport(w io.Writer, r scan.Report, seen []finding.Finding) {
	findings := r.Findings
	if len(findings) == 0 {
		for _, f := range seen {
			if f.ScanID == r.ScanID || f.ScanID == "" {
				findings = append(findings, f)
			}
		}
	}
	if len(findings) > 0 {
		printFindings(w, findings)
		fmt.Fprintln(w)
	} else if r.Summary.Findings() > 0 {
		// A timer or EventBridge dry run neither delivers its findings nor
		// returns them: only the counts are known.
		fmt.Fprintf(w, "(%d findings made; this dry run neither delivered nor returned them: "+
			"an HTTP event, POST /scans with dryRun, returns them)\n\n", r.Summary.Findings())
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
	fs := slices.Clone(findings)
	slices.SortStableFunc(fs, func(a, b finding.Finding) int {
		return cmp.Or(
			cmp.Compare(rank(a.Status), rank(b.Status)),
			cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.VpnConnectionID, b.VpnConnectionID),
			cmp.Compare(a.RuleID, b.RuleID),
			cmp.Compare(a.BindUID, b.BindUID),
			cmp.Compare(a.BindInstance, b.BindInstance),
		)
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSEVERITY\tRULE\tREGION\tCONNECTION\tBIND UID\tBIND INSTANCE\tDETAIL")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(f.Status), cell(f.Severity), cell(f.RuleID), cell(f.Region), cell(f.VpnConnectionID),
			cell(f.BindUID), cell(f.BindInstance), detail(f))
	}
	_ = tw.Flush()
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
