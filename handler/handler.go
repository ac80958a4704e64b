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

	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/internal/config"
	"vpnauthz/internal/scan"
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
}

// Handler serves invocations. It is safe for concurrent use.
type Handler struct {
	opts Options
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
	return &Handler{opts: opts}
}

func randomScanID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return hex.EncodeToString(b[:])
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
)

// invokeError is an invocation error FC reports with our own errorType.
func invokeError(typ, format string, args ...any) error {
	return messages.InvokeResponse_Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// Trigger kinds, as recognised from the event's keys.
const (
	kindTimer = "timer"
	kindHTTP  = "http"
	kindEvent = "event"
)

// invocation is the state of one invocation; it is never shared.
type invocation struct {
	h         *Handler
	ctx       context.Context
	requestID string
	region    string
	accountID string
	creds     scan.Credentials
	scanID    string
	log       *slog.Logger
}

// Invoke handles one invocation; it is what fc.Start runs. The answer is a
// scan report, an ignored-event result or an HTTP trigger response; the
// error, when not nil, is a messages.InvokeResponse_Error.
func (h *Handler) Invoke(ctx context.Context, event json.RawMessage) (any, error) {
	fc, ok := fccontext.FromContext(ctx)
	if !ok || fc == nil {
		h.opts.Logger.Error("invocation without an FC context")
		return nil, invokeError(ErrInvalidContext, "the invocation carries no Function Compute context (request id, region, credentials)")
	}
	inv := &invocation{
		h:         h,
		ctx:       ctx,
		requestID: fc.RequestID,
		region:    fc.Region,
		accountID: fc.AccountId,
		creds: scan.Credentials{
			AccessKeyID:     fc.Credentials.AccessKeyId,
			AccessKeySecret: fc.Credentials.AccessKeySecret,
			SecurityToken:   fc.Credentials.SecurityToken,
		},
		scanID: h.opts.NewScanID(),
	}
	inv.log = h.opts.Logger.With("request_id", inv.requestID, "scan_id", inv.scanID)

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
		return inv.http(event)
	default:
		return inv.event(event)
	}
}

// detect tells the trigger from the event's top-level keys.
func detect(event []byte) (string, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(event, &keys); err != nil {
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
	return "", fmt.Errorf("unrecognised event with keys %s: expected a timer event (triggerTime, triggerName), "+
		"an HTTP trigger event (version \"v1\", requestContext) or a CloudEvent (specversion, type)", keyList(keys))
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
	if inv.creds.AccessKeyID == "" || inv.creds.AccessKeySecret == "" {
		inv.log.Error("invocation context carries no credentials")
		return invokeError(ErrInvalidContext, "the invocation context carries no credentials: give the function a role and let FC pass its credentials to invocations")
	}
	return nil
}
