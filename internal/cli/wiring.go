package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/vpcapi"
)

// Version is the release, set at build time with
// -ldflags "-X vpnauthz/internal/cli.Version=…".
var Version = "dev"

// BuildVersion is Version, or when that was not set at build time, the module
// version or source revision the binary was built from.
func BuildVersion() string {
	if Version != "dev" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return Version + "+" + rev
}

// FCHandler is the function Function Compute runs: the configuration is read
// once from the environment and logs are JSON lines on standard output at
// LOG_LEVEL. An invalid configuration does not stop the runtime: the handler
// still starts, and every invocation reports the configuration error.
//
// The event parameter is []byte because the runtime passes exactly that type
// through untouched; any other type it decodes first, and a payload that is
// not JSON would then fail with the decoder's bare message before the handler
// could name what is wrong.
func FCHandler() func(ctx context.Context, event []byte) (any, error) {
	cfg, cfgErr := config.FromEnviron()
	level := slog.LevelInfo
	if cfgErr == nil {
		level = cfg.LogLevel
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
	h := NewHandler(cfg, cfgErr, BuildVersion(), logger)
	return func(ctx context.Context, event []byte) (any, error) { return h.Invoke(ctx, event) }
}

// NewHandler wires the handler to the VPC API and Log Service as configured.
// Function Compute and every local command build their handler with it, so
// that they run the same code.
func NewHandler(cfg *config.Config, cfgErr error, version string, logger *slog.Logger) *handler.Handler {
	return newHandler(cfg, cfgErr, version, logger, os.Stdout, nil)
}

// newHandler is NewHandler with the writer that takes findings Log Service
// refused (the sink's fallback) and an optional observer of every finding
// delivered, with which the CLI prints the findings of a timer scan, whose
// report does not carry them.
func newHandler(cfg *config.Config, cfgErr error, version string, logger *slog.Logger,
	fallback io.Writer, observe func(finding.Finding)) *handler.Handler {
	opts := handler.Options{Config: cfg, ConfigErr: cfgErr, Version: version, Logger: logger}
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
			ep := cfg.SLSEndpointFor(region)
			if ep.IsZero() {
				return nil, fmt.Errorf("no Log Service endpoint for region %q: set SLS_ENDPOINT", region)
			}
			sink, err := slssink.New(slssink.Options{
				Endpoint:    ep,
				Project:     cfg.SLSProject,
				Logstore:    cfg.SLSLogstore,
				Credentials: creds,
				Stdout:      fallback,
			})
			if err != nil {
				return nil, fmt.Errorf("open Log Service sink: %w", err)
			}
			if observe == nil {
				return sink, nil
			}
			return &observedSink{Sink: sink, observe: observe}, nil
		}
	}
	return handler.New(opts)
}

// observedSink shows every finding to observe before the sink takes it.
type observedSink struct {
	scan.Sink
	observe func(finding.Finding)
}

func (s *observedSink) Write(ctx context.Context, f *finding.Finding) error {
	s.observe(*f)
	return s.Sink.Write(ctx, f)
}

// findingLog collects the findings an observedSink saw; scans may write from
// several invocations at once (serve), so it locks.
type findingLog struct {
	mu       sync.Mutex
	findings []finding.Finding
}

func (l *findingLog) add(f finding.Finding) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.findings = append(l.findings, f)
}

func (l *findingLog) all() []finding.Finding {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]finding.Finding(nil), l.findings...)
}
