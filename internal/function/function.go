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

	"vpnauthz/events"
	"vpnauthz/handler"
	"vpnauthz/internal/accounts"
	"vpnauthz/internal/assume"
	"vpnauthz/internal/config"
	"vpnauthz/internal/fanout"
	"vpnauthz/internal/lifecycle"
	"vpnauthz/internal/resourcedir"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/statestore"
	"vpnauthz/internal/trail"
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
		name := fcc.Function.Name
		if name == "" {
			name = os.Getenv(EnvFunctionName)
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
			FunctionName: name,
			Qualifier:    fcc.Service.Qualifier,
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

// EnvFunctionName is the variable FC sets to the function's name: the
// function a coordinator invokes for its workers, when the invocation
// context does not name it.
const EnvFunctionName = "FC_FUNCTION_NAME"

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
		wireOrganisation(cfg, &opts)
	}
	return handler.New(opts)
}

// wireOrganisation plugs the clients of organisation scans, the state
// store, fan-out and the trail into the handler. Each is built per
// invocation with that invocation's credentials and region: nothing one
// invocation is given outlives it or reaches another.
func wireOrganisation(cfg *config.Config, opts *handler.Options) {
	opts.ListDirectory = func(ctx context.Context, inv handler.Invocation) (accounts.Listing, error) {
		ep, err := cfg.ResourceManagerEndpoint.For(inv.Region)
		if err != nil {
			return accounts.Listing{}, fmt.Errorf("%s: %w", config.EnvResourceManagerEndpoint, err)
		}
		dir, err := resourcedir.List(ctx, resourcedir.Options{Endpoint: ep, Credentials: inv.Credentials})
		if err != nil {
			return accounts.Listing{}, err
		}
		l := accounts.Listing{MasterAccountID: dir.MasterAccountID, Members: make([]accounts.Member, len(dir.Accounts))}
		for i, a := range dir.Accounts {
			l.Members[i] = accounts.Member{ID: a.ID, Status: a.Status, Joined: a.Joined()}
		}
		return l, nil
	}
	opts.NewMembers = func(ctx context.Context, inv handler.Invocation, scanID string) (scan.MemberCredentials, error) {
		ep, err := cfg.STSEndpoint.For(inv.Region)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvSTSEndpoint, err)
		}
		deadline, _ := ctx.Deadline()
		c, err := assume.New(assume.Options{
			Endpoint:   ep,
			Region:     inv.Region,
			Base:       inv.Credentials,
			RoleName:   cfg.MemberRoleName,
			ExternalID: cfg.MemberRoleExternalID,
			ScanID:     scanID,
			Deadline:   deadline,
		})
		if err != nil {
			return nil, err
		}
		return memberCredentials{c}, nil
	}
	if !cfg.StateStore.IsZero() {
		opts.NewState = func(_ context.Context, inv handler.Invocation) (lifecycle.Store, error) {
			ep, err := cfg.TablestoreEndpoint.For(inv.Region)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", config.EnvTablestoreEndpoint, err)
			}
			url := ""
			if !ep.IsZero() {
				url = ep.URL()
			}
			return statestore.New(statestore.Options{
				Location: cfg.StateStore,
				Region:   inv.Region,
				Endpoint: url,
				Credentials: statestore.Credentials{
					AccessKeyID:     inv.Credentials.AccessKeyID,
					AccessKeySecret: inv.Credentials.AccessKeySecret,
					SecurityToken:   inv.Credentials.SecurityToken,
				},
			})
		}
	}
	opts.Dispatch = func(ctx context.Context, inv handler.Invocation, scanID string, batches [][]string) ([]fanout.Dispatched, error) {
		ep, err := cfg.FCEndpoint.For(inv.Region)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvFCEndpoint, err)
		}
		d, err := fanout.New(fanout.Options{
			Endpoint:     ep,
			Region:       inv.Region,
			Credentials:  inv.Credentials,
			FunctionName: inv.FunctionName,
			Qualifier:    inv.Qualifier,
		})
		if err != nil {
			return nil, err
		}
		return d.Dispatch(ctx, scanID, batches)
	}
	opts.ReadTrail = func(ctx context.Context, inv handler.Invocation, ev *events.SLSEvent) (trail.Result, error) {
		// Only a loopback SLS_ENDPOINT (the emulated cloud) replaces the
		// endpoint the event names; trail.Read decides.
		configured := ""
		if ep, err := cfg.SLSEndpoint.For(inv.Region); err == nil && !ep.IsZero() {
			configured = ep.URL()
		}
		return trail.Read(ctx, trail.Options{SLSEndpoint: configured, Credentials: inv.Credentials}, ev)
	}
}

// memberCredentials gives the scanner a member's credentials from the
// scan's AssumeRole cache.
type memberCredentials struct{ c *assume.Cache }

func (m memberCredentials) Credentials(ctx context.Context, account string) (scan.Credentials, error) {
	t, err := m.c.Credentials(ctx, account)
	if err != nil {
		return scan.Credentials{}, err
	}
	return t.Credentials, nil
}
