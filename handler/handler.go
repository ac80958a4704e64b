// Package handler is vpnauthz's Function Compute entry point: it recognises
// the trigger of each invocation (timer, HTTP, EventBridge), turns it into a
// scan request, runs the scan and shapes the answer the trigger expects. It
// knows nothing of how connections are read or where findings go: the
// Scanner and the sinks NewSink builds do.
//
// Invocations run concurrently (the runtime starts each in its own
// goroutine), so a Handler holds only its immutable Options; everything an
// invocation learns — its credentials above all — lives in that invocation's
// locals and travels to the scanner only inside its scan.Request.
//
// EventBridge may deliver one event more than once. No deduplication state is
// kept: a second delivery rescans the same connection, and since finding_uid
// is a hash of what was judged (rule, owner, region, connection, bind uid,
// bind instance) and not of the scan, the repeated findings carry the same
// finding_uids and describe the same state.
package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"vpnauthz/events"
	"vpnauthz/internal/accounts"
	"vpnauthz/internal/config"
	"vpnauthz/internal/fanout"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/trail"
)

// Scanner runs one scan; *scan.Scanner is the real one.
type Scanner interface {
	Run(ctx context.Context, req scan.Request, sink scan.Sink) (scan.Report, error)
}

// Options configure a Handler. They are read, never written, by invocations.
type Options struct {
	Config    *config.Config // nil when ConfigErr is set
	ConfigErr error          // invalid configuration: every invocation reports it
	Scanner   Scanner
	// NewSink opens where one scan's findings go, with that invocation's
	// credentials, in the function's region. It is not called for dry runs.
	NewSink func(ctx context.Context, creds scan.Credentials, region string) (scan.Sink, error)
	Version string
	// Logger writes JSON lines; each invocation derives its own carrying
	// request_id and scan_id. Default: JSON on standard error.
	Logger *slog.Logger
	// NewScanID returns a fresh scan id; default 32 random hex digits.
	NewScanID func() string

	// The clients of organisation scans, the state store, fan-out and the
	// trail, each called with the invocation it serves (its credentials,
	// region, account). internal/function wires the real ones; a nil one
	// is a feature the handler cannot use.

	// ListDirectory reads the Resource Directory's management account and
	// members, for ACCOUNTS=resource-directory and TRUST_ORGANIZATION.
	ListDirectory func(ctx context.Context, inv Invocation) (accounts.Listing, error)
	// NewMembers gives one scan the credentials of the other accounts it
	// reads (AssumeRole into their member role, cached for the scan).
	NewMembers func(ctx context.Context, inv Invocation, scanID string) (scan.MemberCredentials, error)
	// NewState opens the finding state store (STATE_STORE); nil, or a nil
	// Store: stateless scans.
	NewState func(ctx context.Context, inv Invocation) (lifecycle.Store, error)
	// Dispatch starts one asynchronous worker invocation of this function
	// per batch of accounts; nil: a timer scan never fans out.
	Dispatch func(ctx context.Context, inv Invocation, scanID string, batches [][]string) ([]fanout.Dispatched, error)
	// ReadTrail reads the ActionTrail records a Log Service trigger event
	// announces.
	ReadTrail func(ctx context.Context, inv Invocation, ev *events.SLSEvent) (trail.Result, error)
}

// Handler serves invocations. It is safe for concurrent use.
type Handler struct {
	opts Options
	http *httpServer
}

// New returns a Handler, filling in the defaults of unset options.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.NewScanID == nil {
		opts.NewScanID = randomScanID
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	h := &Handler{opts: opts}
	h.http = newHTTPServer(h)
	return h
}

func randomScanID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return hex.EncodeToString(b[:])
}

// Invocation is what the platform says about one invocation besides its
// event: who runs it and where. Function Compute passes these in its
// invocation context; the command line makes them up.
type Invocation struct {
	RequestID   string
	Region      string // the function's region: where findings go
	AccountID   string // the function's account
	Credentials scan.Credentials
	// Trigger, when set, is recorded as the scan's trigger instead of the
	// kind of the event: the command line's own default event is "cli", so
	// that a person trying something is told apart from a schedule.
	Trigger string
	// DryRun scans and reports without delivering anything, whatever the
	// event asks.
	DryRun bool
	// Collect keeps a timer or EventBridge scan's findings for the caller,
	// in ScanResult.Findings (an HTTP answer always carries them).
	Collect bool
	// FunctionName and Qualifier name the running function, which a
	// coordinator invokes for its workers; no name: no fan-out.
	FunctionName string
	Qualifier    string
}

// Error types of invocation errors, shown by FC as the errorType of a failed
// invocation.
const (
	ErrInvalidConfiguration = "InvalidConfiguration" // the function's environment is invalid
	ErrInvalidPayload       = "InvalidPayload"       // the timer payload is invalid
	ErrInvalidEvent         = "InvalidEvent"         // the event is not one vpnauthz understands
	ErrDeliveryFailed       = "DeliveryFailed"       // findings could not be delivered: let FC retry
	ErrInvalidContext       = "InvalidContext"       // no FC invocation context or no credentials in it
	ErrScanFailed           = "ScanFailed"           // the scanner refused the request
	ErrDispatchFailed       = "DispatchFailed"       // a coordinator could not start every batch: let FC retry
	ErrTrailReadFailed      = "TrailReadFailed"      // a Log Service trigger's logs could not be read: let the trigger retry
)

// Error is a failed invocation: Type is one of the Err* constants, what FC
// shows as the errorType, and Message says what went wrong.
type Error struct {
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// invokeError is an invocation error with our own errorType.
func invokeError(typ, format string, args ...any) error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// Trigger kinds, as recognised from the event's keys.
const (
	kindTimer = "timer"
	kindHTTP  = "http"
	kindEvent = "event"
	kindSLS   = finding.TriggerSLS
	// kindWorker is a coordinator's batch, the event of a fan-out worker.
	kindWorker = "worker"
)

// invocation is the state of one invocation; it is never shared.
type invocation struct {
	h   *Handler
	ctx context.Context
	Invocation
	scanID string
	log    *slog.Logger
	base   *slog.Logger // log without the scan id
	// abortErr is the invocation error an HTTP request ended with.
	abortErr error
}

func (h *Handler) begin(ctx context.Context, in Invocation) *invocation {
	inv := &invocation{h: h, ctx: ctx, Invocation: in, scanID: h.opts.NewScanID()}
	inv.base = h.opts.Logger.With("request_id", in.RequestID)
	inv.log = inv.base.With("scan_id", inv.scanID)
	return inv
}

// Handle answers one invocation. The result is a *ScanResult (timer and
// EventBridge), an *HTTPResult (HTTP trigger) or an *Ignored (an event that
// needs no scan); the error, when not nil, is an *Error.
func (h *Handler) Handle(ctx context.Context, in Invocation, event json.RawMessage) (Result, error) {
	inv := h.begin(ctx, in)
	kind, err := detect(event)
	if err != nil {
		inv.log.Error("unrecognised event", "error", err.Error())
		return nil, invokeError(ErrInvalidEvent, "%s", err)
	}
	inv.log = inv.log.With("trigger", kind)
	switch kind {
	case kindTimer:
		return inv.timer(event)
	case kindHTTP:
		return inv.httpEvent(event)
	case kindSLS:
		return inv.slsEvent(event)
	case kindWorker:
		return inv.workerEvent(event)
	default:
		return inv.event(event)
	}
}

// detect tells the trigger from the event's top-level keys.
func detect(event []byte) (string, error) {
	var keys map[string]json.RawMessage
	if err := decodeJSON(event, &keys); err != nil {
		return "", errors.New(describeJSONError("the event", err))
	}
	_, triggerTime := keys["triggerTime"]
	_, triggerName := keys["triggerName"]
	if triggerTime || triggerName {
		return kindTimer, nil
	}
	if v, ok := keys["version"]; ok {
		var version string
		_, hasContext := keys["requestContext"]
		if json.Unmarshal(v, &version) == nil && version == "v1" && hasContext {
			return kindHTTP, nil
		}
	}
	_, spec := keys["specversion"]
	_, typ := keys["type"]
	if spec && typ {
		return kindEvent, nil
	}
	// A fan-out worker: the batch payload a coordinator sent.
	_, scanID := keys["scanId"]
	_, accts := keys["accounts"]
	if scanID && accts {
		return kindWorker, nil
	}
	// A Log Service trigger: the shard's source, and the job that ran. A
	// CloudEvent has a source too, but never these.
	_, source := keys["source"]
	_, job := keys["jobName"]
	_, task := keys["taskId"]
	_, cursorTime := keys["cursorTime"]
	if source && (job || task || cursorTime) {
		return kindSLS, nil
	}
	return "", fmt.Errorf("unrecognised event with keys %s: expected a timer event (triggerTime, triggerName), "+
		"an HTTP trigger event (version \"v1\", requestContext), a CloudEvent (specversion, type) "+
		"or a Log Service trigger event (source, jobName, taskId, cursorTime)", keyList(keys))
}

// config returns the configuration, or the invocation error every
// invocation gives while it is invalid.
func (inv *invocation) config() (*config.Config, error) {
	cfg, cerr := inv.h.opts.Config, inv.h.opts.ConfigErr
	if cerr == nil && cfg == nil {
		cerr = fmt.Errorf("no configuration loaded")
	}
	if cerr != nil {
		inv.log.Error("invalid configuration", "error", cerr.Error())
		return nil, invokeError(ErrInvalidConfiguration, "invalid configuration: %s", cerr)
	}
	return cfg, nil
}

// credentials checks that the invocation can sign API calls at all.
func (inv *invocation) credentials() error {
	if inv.Credentials.AccessKeyID == "" || inv.Credentials.AccessKeySecret == "" {
		inv.log.Error("invocation context carries no credentials")
		return invokeError(ErrInvalidContext, "the invocation context carries no credentials: give the function a role and let FC pass its credentials to invocations")
	}
	return nil
}
