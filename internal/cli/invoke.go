package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"vpnauthz/handler"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/function"
	"vpnauthz/internal/lifecycle"
)

const invokeDescription = `
Runs the function's handler once on an event, as Function Compute would, and
prints the findings as a table (FAIL and ERROR first) followed by the scan
report. For an HTTP event it prints the response status and the report in its
body; an ignored event or a health answer is printed as it is.

The event is a file holding a timer, HTTP trigger or EventBridge event as
Function Compute delivers it (the repository's events/ has samples); the scan
is recorded with that event's trigger (timer, http, event). Without --event it
is a timer event with an empty payload and triggerName "cli", which scans
every configured target and is recorded with trigger "cli".

--format chooses the output: table (the default), json (the handler's answer
as FC returns it; --json is the same), jsonl (one finding per line, with
exactly the keys of the Log Service log), csv (a header of those keys, then
one finding per line) or ocsf (one OCSF 1.x Compliance Finding, class_uid
2003, per line). Only table and json show an answer that holds no findings.

--dry-run scans and prints without delivering anything, and needs no Log
Service settings. --fail-on SEVERITY (low, medium or high) makes the exit
status 3 when any FAIL finding (SUPPRESSED ones do not count) has that
severity or a higher one: a gate for CI.

Without --live the function runs on the built-in emulated cloud, configured
with the demo's settings only (the environment is not read, so the demo gives
the same verdicts on every machine): an organisation whose management account
— the function's — has seven connections in three regions, and a Resource
Directory of three members (a network hub whose role it assumes, a sandbox
whose role refuses it, a legacy account excluded by ACCOUNTS_EXCLUDE); a trust
policy (trusted account and CEN, TRUST_ORGANIZATION, a 365-day age limit, a
policy file with one exception); and the finding lifecycle kept in the
emulated Tablestore. Without --event (and without --dry-run) the demo scans
twice: the first scan, then a change in the inventory (a grant revoked, an
untrusted grant added, the exception expired), then the second scan, whose
transitions (opened, reopened, suppressed, unsuppressed, resolved) are printed
after its findings. In the table format both scans are shown; json, jsonl,
csv and ocsf print the second scan only, and say so on standard error, so
that the output stays one document of one kind. --fail-on judges the second
scan.

With --live the configuration comes from the environment (SCAN_TARGETS,
TRUSTED_ACCOUNT_IDS, SLS_PROJECT, ... as for the function), the credentials
from the Alibaba Cloud credential chain (ALIBABA_CLOUD_ACCESS_KEY_ID,
ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN, a profile or a
RAM role), the region from FC_REGION or ALIBABA_CLOUD_REGION_ID and the
account from FC_ACCOUNT_ID or, when that is not set, from STS
GetCallerIdentity (at STS_ENDPOINT when set) with those credentials: it is
part of some findings' uid.

A scan that runs longer than a few seconds shows its progress on standard
error when that is a terminal: the accounts and connections its findings have
covered so far, and the ERROR findings among them.

Exit status: 0 when the invocation succeeded (FAIL and ERROR findings are
results, not failures), 1 when it failed or an HTTP event was answered with an
error status, 2 for a bad command line or event file, 3 when --fail-on finds
a FAIL at or above its severity.`

func runInvoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("invoke", "[--event FILE] [--live] [--dry-run] [--format F] [--fail-on SEVERITY] [--timeout D]", invokeDescription)
	eventPath := fs.String("event", "", "`file` holding the event (default: a timer event with an empty payload)")
	asJSON := fs.Bool("json", false, "the same as --format json")
	format := formatTable
	fs.Var(&format, "format", "output `format`: table, json, jsonl, csv or ocsf")
	var failOn severityFlag
	fs.Var(&failOn, "fail-on", "exit 3 when a FAIL finding has this `severity` or a higher one: low, medium or high")
	hf := addHandlerFlags(fs, "the invocation's deadline, like the function's timeout", slog.LevelWarn)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !hf.valid(stderr) {
		return exitUsage
	}
	if *asJSON {
		if format != formatTable && format != formatJSON {
			fmt.Fprintf(stderr, "vpnauthz invoke: --json and --format %s: choose one\n", format)
			return exitUsage
		}
		format = formatJSON
	}
	now := time.Now()
	event, trigger, err := readEvent(*eventPath, now)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
		return exitUsage
	}

	c, err := openScanCloud(ctx, *hf.live)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
		return exitError
	}
	defer c.close()
	fmt.Fprintf(stderr, "vpnauthz invoke: %s\n", c.describe())

	r := &invoker{c: c, hf: hf, stderr: stderr, logger: newLogger(stderr, hf.level, c, slog.LevelWarn),
		watch: &scanWatch{}, terminal: isTerminal(stderr)}
	demo, isDemo := c.(*demoCloud)
	twice := isDemo && *eventPath == "" && !*hf.dryRun
	if twice {
		// The demo's lifecycle: a first scan, a change in the inventory,
		// and the second scan, whose transitions show what changed.
		first, changes, code := r.invoke(ctx, event, trigger, now)
		if code != exitOK {
			return code
		}
		if format == formatTable {
			fmt.Fprintln(stdout, "First scan:")
			fmt.Fprintln(stdout)
			printResult(stdout, first, changes, true)
			fmt.Fprintln(stdout)
		} else {
			fmt.Fprintf(stderr, "vpnauthz invoke: demo: first scan %s, %d transitions; the output is the second scan's\n",
				scanIDOf(first), len(changes))
		}
		now = time.Now()
		made, err := demo.change(now)
		if err != nil {
			fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
			return exitError
		}
		out := stdout
		if format != formatTable {
			out = stderr
		}
		fmt.Fprintln(out, "Between the scans, the demo inventory changed:")
		for _, m := range made {
			fmt.Fprintf(out, "  %s %s %s: %s\n", m.Account, m.Region, m.ConnectionID, m.What)
		}
		fmt.Fprintln(out)
		if format == formatTable {
			fmt.Fprintln(stdout, "Second scan:")
			fmt.Fprintln(stdout)
		}
		if event, trigger, err = readEvent("", now); err != nil {
			fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
			return exitError
		}
	}
	res, changes, code := r.invoke(ctx, event, trigger, now)
	if code != exitOK {
		return code
	}
	if format == formatTable {
		printResult(stdout, res, changes, twice)
		code = httpCode(res)
	} else if code, err = printAs(stdout, stderr, format, res); err != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
		return exitError
	}
	if code == exitOK && failOn.set && anyFailAtOrAbove(findingsOf(res), failOn.rank) {
		fmt.Fprintf(stderr, "vpnauthz invoke: --fail-on %s: a FAIL finding has severity %s or higher\n", failOn.name, failOn.name)
		return exitFound
	}
	return code
}

// invoker runs the handler on one event at a time, with the function's
// wiring and the configuration the cloud has at that moment.
type invoker struct {
	c        cloud
	hf       handlerFlags
	stderr   io.Writer
	logger   *slog.Logger
	watch    *scanWatch
	terminal bool // stderr shows a progress line
}

// invoke runs one invocation and returns its answer and the transitions its
// sink received; a failed invocation is reported and gives its exit code.
func (r *invoker) invoke(ctx context.Context, event json.RawMessage, trigger string, now time.Time) (handler.Result, []lifecycle.Change, int) {
	cfg, cfgErr := r.c.config()
	// Findings Log Service refuses go to stderr: stdout is the output.
	h := function.NewHandler(cfg, cfgErr, r.logger, function.Options{Fallback: r.stderr, WrapSink: r.watch.wrap})
	inv, err := r.c.invocation(newRequestID(now))
	if err != nil {
		fmt.Fprintf(r.stderr, "vpnauthz invoke: %v\n", err)
		return nil, nil, exitError
	}
	inv.Trigger, inv.DryRun, inv.Collect = trigger, *r.hf.dryRun, true
	ictx, cancel := context.WithTimeout(ctx, *r.hf.timeout)
	defer cancel()
	r.watch.progress = startProgress(r.stderr, r.terminal)
	res, invokeErr := h.Handle(ictx, inv, event)
	r.watch.progress.end()
	changes := r.watch.takeChanges()
	if invokeErr != nil {
		fmt.Fprintf(r.stderr, "vpnauthz invoke: the invocation failed: %s\n", describeInvokeError(invokeErr))
		return nil, nil, exitError
	}
	return res, changes, exitOK
}

func scanIDOf(res handler.Result) string {
	if r, ok := res.(*handler.ScanResult); ok {
		return r.ScanID
	}
	return "-"
}

// readEvent reads the event file, or makes the default timer event, and
// gives the trigger to record: none for a file (the event's own kind), "cli"
// for the default event.
func readEvent(path string, now time.Time) (json.RawMessage, string, error) {
	if path == "" {
		ev, err := json.Marshal(map[string]string{
			"triggerTime": now.UTC().Format(time.RFC3339),
			"triggerName": "cli",
			"payload":     "",
		})
		return ev, finding.TriggerCLI, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("--event: %w", err)
	}
	if !json.Valid(data) {
		return nil, "", fmt.Errorf("--event %s: not a JSON document", path)
	}
	return data, "", nil
}

// describeInvokeError shows an invocation error as FC reports it: its type
// and message.
func describeInvokeError(err error) string {
	var e *handler.Error
	if errors.As(err, &e) {
		return e.Type + ": " + e.Message
	}
	return "Error: " + err.Error()
}

// severityRank orders the severities of findings for --fail-on. The names
// are those of the rules' table.
var severityRank = map[string]int{"low": 1, "medium": 2, "high": 3}

// severityFlag is --fail-on.
type severityFlag struct {
	set  bool
	name string
	rank int
}

func (s *severityFlag) String() string { return s.name }

func (s *severityFlag) Set(v string) error {
	r, ok := severityRank[v]
	if !ok {
		return errors.New("want low, medium or high")
	}
	s.set, s.name, s.rank = true, v, r
	return nil
}

// anyFailAtOrAbove reports a FAIL finding of rank or above; SUPPRESSED,
// ERROR and PASS findings never count.
func anyFailAtOrAbove(findings []finding.Finding, rank int) bool {
	for _, f := range findings {
		if f.Status == finding.StatusFail && severityRank[f.Severity] >= rank {
			return true
		}
	}
	return false
}
