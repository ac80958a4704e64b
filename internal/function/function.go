// Package function runs vpnauthz on Function Compute: it reads the
// configuration from the environment, wires the handler to the real VPC API
// and Log Service, and serves the runtime's invocations. It is all the FC
// build links besides the handler and what the handler needs; the command
// line reuses NewHandler so that both run the same wiring.
package function

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/version"
	"vpnauthz/internal/vpcapi"
)

// Start serves Function Compute's invocations until the runtime stops the
// instance. The configuration is read once from the environment and logs
// are JSON lines on standard output at LOG_LEVEL. An invalid configuration
// does not stop the runtime: every invocation reports it.
func Start() {
	fc.Start(Invoke(FromEnviron()))
}

// FromEnviron is the function's handler, configured from the environment.
func FromEnviron() *handler.Handler {
	cfg, cfgErr := config.FromEnviron()
	level := slog.LevelInfo
	if cfgErr == nil {
		level = cfg.LogLevel
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
	return NewHandler(cfg, cfgErr, logger, Options{})
}

// Invoke adapts h to the runtime: the invocation comes from FC's context,
// and a failed invocation is an error of the handler's type, which FC shows
// as the errorType.
//
// The event parameter is []byte because the runtime passes exactly that type
// through untouched; any other type it decodes first, and a payload that is
// not JSON would then fail with the decoder's bare message before the
// handler could name what is wrong.
func Invoke(h *handler.Handler) func(ctx context.Context, event []byte) (any, error) {
	return func(ctx context.Context, event []byte) (any, error) {
		fcc, ok := fccontext.FromContext(ctx)
		if !ok || fcc == nil {
			return nil, messages.InvokeResponse_Error{Type: handler.ErrInvalidContext,
				Message: "the invocation carries no Function Compute context (request id, region, credentials)"}
		}
		res, err := h.Handle(ctx, handler.Invocation{
			RequestID: fcc.RequestID,
			Region:    fcc.Region,
			AccountID: fcc.AccountId,
			Credentials: scan.Credentials{
				AccessKeyID:     fcc.Credentials.AccessKeyId,
				AccessKeySecret: fcc.Credentials.AccessKeySecret,
				SecurityToken:   fcc.Credentials.SecurityToken,
			},
		}, event)
		if err != nil {
			var e *handler.Error
			if errors.As(err, &e) {
				return nil, messages.InvokeResponse_Error{Type: e.Type, Message: e.Message}
			}
			return nil, err
		}
		return res, nil
	}
}

// Options adapt the wiring for a local command.
type Options struct {
	// Fallback takes the findings Log Service refuses; default standard
	// output, where FC's log collects them.
	Fallback io.Writer
	// WrapSink, when set, wraps each scan's sink: the command line watches
	// the findings and transitions a scan delivers through it.
	WrapSink func(scan.Sink) scan.Sink
}

// NewHandler wires the handler to the VPC API and Log Service as configured.
func NewHandler(cfg *config.Config, cfgErr error, logger *slog.Logger, o Options) *handler.Handler {
	if o.Fallback == nil {
		o.Fallback = os.Stdout
	}
	opts := handler.Options{Config: cfg, ConfigErr: cfgErr, Version: version.String(), Logger: logger}
	if cfgErr == nil && cfg != nil {
		opts.Scanner = scan.New(scan.Options{
			Policy:      cfg.Policy,
			NewSource:   vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: cfg.VPCEndpoint}),
			Rate:        cfg.VPCAPIRate,
			Concurrency: cfg.ScanConcurrency,
			Logger:      logger,
		})
		opts.NewSink = func(ctx context.Context, creds scan.Credentials, region string) (scan.Sink, error) {
			if err := cfg.DeliveryConfigured(); err != nil {
				return nil, err
			}
			endpoint := cfg.SLSEndpointFor(region)
			if endpoint.IsZero() {
				return nil, fmt.Errorf("no Log Service endpoint for region %q: set SLS_ENDPOINT", region)
			}
			sink, err := slssink.New(slssink.Options{
				Endpoint:    endpoint,
				Project:     cfg.SLSProject,
				Logstore:    cfg.SLSLogstore,
				Credentials: creds,
				Stdout:      o.Fallback,
			})
			if err != nil {
				return nil, fmt.Errorf("open Log Service sink: %w", err)
			}
			if o.WrapSink != nil {
				return o.WrapSink(sink), nil
			}
			return sink, nil
		}
	}
	return handler.New(opts)
}
