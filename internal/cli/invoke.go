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

	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"

	"vpnauthz/handler"
)

const invokeDescription = `
Runs the function's handler once on an event, as Function Compute would, and
prints the findings as a table (FAIL and ERROR first) followed by the scan
report. For an HTTP event it prints the response status and the report in its
body; an ignored event or a health answer is printed as it is.

The event is a file holding a timer, HTTP trigger or EventBridge event as
Function Compute delivers it (the repository's events/ has samples). Without
--event it is a timer event with an empty payload and triggerName "cli", which
scans every configured target.

Without --live the function runs on the built-in emulated VPC API and Log
Service, seeded with a demo inventory of seven connections in three regions,
and is configured with the demo's settings only (targets, trusted account and
CEN, a 365-day age limit, a policy file with one exception): the environment
is not read, so the demo gives the same verdicts on every machine.

With --live the configuration comes from the environment (SCAN_TARGETS,
TRUSTED_ACCOUNT_IDS, SLS_PROJECT, ... as for the function), the credentials
from the Alibaba Cloud credential chain (ALIBABA_CLOUD_ACCESS_KEY_ID,
ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN, a profile or a
RAM role), the region from FC_REGION or ALIBABA_CLOUD_REGION_ID and the
account from FC_ACCOUNT_ID (required: it is part of some findings' uid).

Exit status: 0 when the invocation succeeded (FAIL and ERROR findings are
results, not failures), 1 when it failed or an HTTP event was answered with an
error status, 2 for a bad command line or event file.`

func runInvoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("invoke", "[--event FILE] [--live] [--json] [--timeout D]", invokeDescription)
	eventPath := fs.String("event", "", "`file` holding the event (default: a timer event with an empty payload)")
	asJSON := fs.Bool("json", false, "print the handler's raw response as JSON instead of the table")
	hf := addHandlerFlags(fs, "the invocation's deadline, like the function's timeout", slog.LevelWarn)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !hf.valid(stderr) {
		return exitUsage
	}
	live, timeout, level := hf.live, hf.timeout, hf.level
	now := time.Now()
	event, err := readEvent(*eventPath, now)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
		return exitUsage
	}

	c, err := openScanCloud(*live)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
		return exitError
	}
	defer c.close()
	fmt.Fprintf(stderr, "vpnauthz invoke: %s\n", c.describe())

	var seen findingLog
	// Findings Log Service refuses go to stderr: stdout is the table or JSON.
	h := newHandler(c.cfg, c.cfgErr, BuildVersion(), newLogger(stderr, level, c, slog.LevelWarn), stderr, seen.add)
	ictx, cancel, err := c.invocation(ctx, newRequestID(now), *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: %v\n", err)
		return exitError
	}
	defer cancel()
	res, invokeErr := h.Invoke(handler.FromCLI(ictx), event)

	var code int
	if *asJSON {
		code = printJSON(stdout, res)
	} else {
		code = printResult(stdout, res, seen.all())
	}
	if invokeErr != nil {
		fmt.Fprintf(stderr, "vpnauthz invoke: the invocation failed: %s\n", describeInvokeError(invokeErr))
		return exitError
	}
	return code
}

// readEvent reads the event file, or makes the default timer event.
func readEvent(path string, now time.Time) (json.RawMessage, error) {
	if path == "" {
		return json.Marshal(map[string]string{
			"triggerTime": now.UTC().Format(time.RFC3339),
			"triggerName": "cli",
			"payload":     "",
		})
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--event: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("--event %s: not a JSON document", path)
	}
	return data, nil
}

// describeInvokeError shows an invocation error as FC reports it: its type and
// message.
func describeInvokeError(err error) string {
	typ, msg := invokeErrorParts(err)
	return typ + ": " + msg
}

// invokeErrorParts splits an invocation error into FC's errorType and
// errorMessage; errors of other types are of type "Error".
func invokeErrorParts(err error) (typ, msg string) {
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return ie.Type, ie.Message
	}
	var iep *messages.InvokeResponse_Error
	if errors.As(err, &iep) && iep != nil {
		return iep.Type, iep.Message
	}
	return "Error", err.Error()
}
