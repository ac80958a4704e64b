// Package cli is vpnauthz's local face: the command line that runs the
// function's handler on the emulated demo cloud or a live account, serves it
// over HTTP, starts the emulated cloud for other tools and prepares Log
// Service. It builds the handler with the function's own wiring, so that
// Function Compute and every command run the same code.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"vpnauthz/internal/version"
)

// Exit codes.
const (
	exitOK    = 0 // the command did its work; FAIL findings are results
	exitError = 1 // the invocation or the command failed
	exitUsage = 2 // bad command line
	exitFound = 3 // invoke --fail-on: a FAIL finding at or above the severity
)

const usageText = `vpnauthz checks the cross-account authorizations of IPsec-VPN connections
(which other accounts' CEN instances may attach them) against a trust policy and
writes one compliance finding per judgement to Log Service.

Run by Function Compute (FC_RUNTIME_API set), it serves the function's
invocations. Anywhere else it is this command line.

Usage:
  vpnauthz <command> [flags]

Commands:
  invoke      run the function once on an event and print its findings and report
  serve       serve HTTP requests as the function behind an HTTP trigger
  emulate     start the emulated cloud (VPC API, Log Service, STS,
              ResourceManager, Tablestore) for other tools
  setup-sls   create the logstore, its field index, dashboard and alert
  setup-state create the Tablestore table of the finding lifecycle
  version     print the version

Without --live, invoke, serve, setup-sls and setup-state run on a built-in
emulated cloud seeded with a demo organisation: they work on any machine,
with no account.

Run "vpnauthz <command> --help" for a command's flags.
`

// Main runs the command line and returns the exit code. SIGINT and SIGTERM
// end a running command gracefully.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stdout, stderr)
}

// run is Main with the context that ends long-running commands.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "invoke":
		return runInvoke(ctx, rest, stdout, stderr)
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "emulate":
		return runEmulate(ctx, rest, stdout, stderr)
	case "setup-sls":
		return runSetupSLS(ctx, rest, stdout, stderr)
	case "setup-state":
		return runSetupState(ctx, rest, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "vpnauthz: unknown command %q\n\n", cmd)
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
}

// newFlagSet returns the flag set of one command; its usage is the given
// description followed by the flags.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("vpnauthz "+name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: vpnauthz %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses a command's flags. Help goes to stdout and ends the
// command with exit 0; a bad flag or a stray argument is a usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard) // the errors are reported below, once
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, false
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n\n", fs.Name(), err)
		fs.SetOutput(stderr)
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// levelFlag is --log-level; unset, the command's default applies.
type levelFlag struct {
	set   bool
	level slog.Level
}

func (l *levelFlag) String() string {
	if !l.set {
		return ""
	}
	return l.level.String()
}

func (l *levelFlag) Set(s string) error {
	if err := l.level.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	l.set = true
	return nil
}

func addLevelFlag(fs *flag.FlagSet, def slog.Level) *levelFlag {
	l := &levelFlag{}
	fs.Var(l, "log-level", "level of the JSON log lines on standard error: debug, info, warn or error "+
		"(default: LOG_LEVEL with --live, else "+strings.ToLower(def.String())+")")
	return l
}

// newLogger writes JSON lines to stderr at the flag's level, else with --live
// at the configured LOG_LEVEL, else at def.
func newLogger(stderr io.Writer, l *levelFlag, c cloud, def slog.Level) *slog.Logger {
	level := def
	if configured, ok := c.logLevel(); ok {
		level = configured
	}
	if l.set {
		level = l.level
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Prints the version of vpnauthz.")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintln(stdout, "vpnauthz", version.String())
	return exitOK
}

// handlerFlags are the flags shared by the commands that run the handler,
// invoke and serve.
type handlerFlags struct {
	name    string
	live    *bool
	dryRun  *bool
	timeout *time.Duration
	level   *levelFlag
}

func addHandlerFlags(fs *flag.FlagSet, timeoutHelp string, defaultLevel slog.Level) handlerFlags {
	return handlerFlags{
		name:    fs.Name(),
		live:    fs.Bool("live", false, "run on the account of the environment and credential chain instead of the emulated demo"),
		dryRun:  fs.Bool("dry-run", false, "scan and print, deliver nothing (no Log Service settings needed)"),
		timeout: fs.Duration("timeout", 5*time.Minute, timeoutHelp),
		level:   addLevelFlag(fs, defaultLevel),
	}
}

// valid reports the flags' values that parsing cannot catch.
func (f handlerFlags) valid(stderr io.Writer) bool {
	if *f.timeout <= 0 {
		fmt.Fprintf(stderr, "%s: --timeout %v: want a positive duration\n", f.name, *f.timeout)
		return false
	}
	return true
}
