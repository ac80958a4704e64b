package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"vpnauthz/handler"
	"vpnauthz/internal/function"
)

const serveDescription = `
Serves the function's HTTP API (POST /scans, GET and HEAD /health) with the
same http.Handler the function runs behind its HTTP trigger, so that every
status, header and body is the one the trigger answers. Try:

  curl http://127.0.0.1:9000/health
  curl -X POST http://127.0.0.1:9000/scans
  curl -X POST http://127.0.0.1:9000/scans -H 'Content-Type: application/json' \
       -d '{"targets":["cn-shanghai:vco-sh0rogue000002"]}'

Without --live it runs on the built-in emulated VPC API and Log Service with
the demo inventory and the demo's settings only, as "vpnauthz invoke" does.
With --live the configuration comes from the environment, the credentials from
the Alibaba Cloud credential chain (asked again for each request), the region
from FC_REGION or ALIBABA_CLOUD_REGION_ID and the account from FC_ACCOUNT_ID.
With --dry-run every scan is a dry run: findings are returned, never
delivered, and no Log Service settings are needed.

It prints the URL it listens on, and stops on SIGINT or SIGTERM after the
requests in progress are answered.`

// shutdownGrace bounds how long a stopping server waits for requests in
// progress.
const shutdownGrace = 30 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[--addr HOST:PORT] [--live] [--dry-run] [--timeout D]", serveDescription)
	addr := fs.String("addr", "127.0.0.1:9000", "`address` to listen on (port 0: any free port)")
	hf := addHandlerFlags(fs, "each invocation's deadline, like the function's timeout", slog.LevelInfo)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !hf.valid(stderr) {
		return exitUsage
	}
	c, err := openScanCloud(ctx, *hf.live)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz serve: %v\n", err)
		return exitError
	}
	defer c.close()
	logger := newLogger(stderr, hf.level, c, slog.LevelInfo)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz serve: %v\n", err)
		return exitError
	}
	cfg, cfgErr := c.config()
	h := function.NewHandler(cfg, cfgErr, logger, function.Options{})
	srv := &http.Server{
		Handler:           invocations(h, c, *hf.timeout, *hf.dryRun),
		ReadHeaderTimeout: 10 * time.Second,
		// Requests outlive a stopping command's context: shutdown waits for them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "vpnauthz serve: listening on http://%s (%s)\n", ln.Addr(), c.describe())

	select {
	case err := <-served:
		fmt.Fprintf(stderr, "vpnauthz serve: %v\n", err)
		return exitError
	case <-ctx.Done():
	}
	fmt.Fprintln(stderr, "vpnauthz serve: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "vpnauthz serve: requests still running were cut: %v\n", err)
		_ = srv.Close()
		return exitError
	}
	return exitOK
}

// invocations serves each request as one invocation of h in c: its own
// request id and credentials, and the function's deadline. FC does not stop
// a synchronous invocation when its caller goes away; neither does serve,
// or the unread connections would become ERROR findings "cancelled" in a
// real logstore.
func invocations(h *handler.Handler, c cloud, timeout time.Duration, dryRun bool) http.Handler {
	api := h.HTTPHandler(func(r *http.Request) (handler.Invocation, error) {
		inv, err := c.invocation(newRequestID(time.Now()))
		inv.DryRun = dryRun
		return inv, err
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
		defer cancel()
		api.ServeHTTP(w, r.WithContext(ctx))
	})
}
