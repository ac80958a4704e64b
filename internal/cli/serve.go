package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"vpnauthz/events"
	"vpnauthz/handler"
)

const serveDescription = `
Serves HTTP requests with the function's handler, as an FC3 HTTP trigger would:
each request becomes an HTTP trigger event (version v1: rawPath, body, base64
when it is not UTF-8 text, headers and query parameters with repeated values
joined by commas, requestContext), and the handler's response (status,
headers, body) is written back. Try:

  curl http://127.0.0.1:9000/health
  curl -X POST http://127.0.0.1:9000/scans
  curl -X POST http://127.0.0.1:9000/scans -H 'Content-Type: application/json' \
       -d '{"targets":["cn-shanghai:vco-sh0rogue000002"]}'

Without --live it runs on the built-in emulated VPC API and Log Service with
the demo inventory and the demo's settings only, as "vpnauthz invoke" does.
With --live the configuration comes from the environment, the credentials from
the Alibaba Cloud credential chain (asked again for each request), the region
from FC_REGION or ALIBABA_CLOUD_REGION_ID and the account from FC_ACCOUNT_ID.

It prints the URL it listens on, and stops on SIGINT or SIGTERM after the
requests in progress are answered.`

// maxRequestBody is what serve reads of a request body: more than the
// handler's 64 KiB limit, so that the handler's own 413 answers large bodies,
// but bounded so that a client cannot exhaust memory.
const maxRequestBody = 1<<20 + 1

// shutdownGrace bounds how long a stopping server waits for requests in
// progress.
const shutdownGrace = 30 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[--addr HOST:PORT] [--live] [--timeout D]", serveDescription)
	addr := fs.String("addr", "127.0.0.1:9000", "`address` to listen on (port 0: any free port)")
	hf := addHandlerFlags(fs, "each invocation's deadline, like the function's timeout", slog.LevelInfo)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !hf.valid(stderr) {
		return exitUsage
	}
	live, timeout, level := hf.live, hf.timeout, hf.level
	c, err := openScanCloud(*live)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz serve: %v\n", err)
		return exitError
	}
	defer c.close()
	logger := newLogger(stderr, level, c, slog.LevelInfo)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz serve: %v\n", err)
		return exitError
	}
	es := &eventServer{
		h:       NewHandler(c.cfg, c.cfgErr, BuildVersion(), logger),
		cloud:   c,
		timeout: *timeout,
		log:     logger,
	}
	srv := &http.Server{
		Handler:           es,
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

// eventServer turns HTTP requests into HTTP trigger invocations.
type eventServer struct {
	h       *handler.Handler
	cloud   *cloud
	timeout time.Duration
	log     *slog.Logger
}

func (s *eventServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := newRequestID(start)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	event, err := json.Marshal(httpEvent(r, body, s.cloud.accountID, requestID, start))
	if err != nil {
		http.Error(w, "cannot build the event", http.StatusInternalServerError)
		return
	}
	// FC does not stop a synchronous invocation when its caller goes away;
	// neither does serve, or the unread connections would become ERROR
	// findings "cancelled" in a real logstore.
	ctx, cancel, err := s.cloud.invocation(context.WithoutCancel(r.Context()), requestID, s.timeout)
	if err != nil {
		s.log.Error("invocation context", "request_id", requestID, "error", err.Error())
		writeInvokeError(w, err)
		return
	}
	defer cancel()
	res, invokeErr := s.h.Invoke(ctx, event)
	status := writeResult(w, res, invokeErr)
	s.log.Debug("request served", "request_id", requestID, "method", r.Method, "path", r.URL.Path,
		"status", status, "duration_ms", time.Since(start).Milliseconds())
}

// httpTriggerEvent is the FC3 HTTP trigger event, every field as FC sends it.
type httpTriggerEvent struct {
	Version         string            `json:"version"`
	RawPath         string            `json:"rawPath"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Headers         map[string]string `json:"headers"`
	QueryParameters map[string]string `json:"queryParameters"`
	RequestContext  httpEventContext  `json:"requestContext"`
}

type httpEventContext struct {
	AccountID  string        `json:"accountId"`
	DomainName string        `json:"domainName"`
	HTTP       httpEventHTTP `json:"http"`
	RequestID  string        `json:"requestId"`
	Time       string        `json:"time"`
	TimeEpoch  string        `json:"timeEpoch"`
}

type httpEventHTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// httpEvent is the HTTP trigger event FC would make of r.
func httpEvent(r *http.Request, body []byte, accountID, requestID string, now time.Time) httpTriggerEvent {
	e := httpTriggerEvent{
		Version:         "v1",
		RawPath:         r.URL.EscapedPath(),
		Headers:         map[string]string{},
		QueryParameters: map[string]string{},
		RequestContext: httpEventContext{
			AccountID:  accountID,
			DomainName: r.Host,
			HTTP: httpEventHTTP{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
			RequestID: requestID,
			Time:      now.UTC().Format(time.RFC3339),
			TimeEpoch: strconv.FormatInt(now.UnixMilli(), 10),
		},
	}
	if utf8.Valid(body) {
		e.Body = string(body)
	} else {
		e.Body = base64.StdEncoding.EncodeToString(body)
		e.IsBase64Encoded = true
	}
	for name, values := range r.Header {
		e.Headers[name] = strings.Join(values, ",")
	}
	for name, values := range r.URL.Query() {
		e.QueryParameters[name] = strings.Join(values, ",")
	}
	return e
}

func sourceIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// reservedHeaders are the response headers FC drops from a function's
// response: the server sets them.
var reservedHeaders = map[string]bool{
	"connection": true, "content-length": true, "content-encoding": true, "date": true,
	"keep-alive": true, "server": true, "transfer-encoding": true, "upgrade": true,
}

// writeResult writes the handler's answer as FC's HTTP trigger would and
// returns the status written.
func writeResult(w http.ResponseWriter, res any, invokeErr error) int {
	if invokeErr != nil {
		return writeInvokeError(w, invokeErr)
	}
	data, err := json.Marshal(res)
	if err != nil {
		return writeInvokeError(w, fmt.Errorf("the response is not JSON: %w", err))
	}
	resp, ok := asHTTPResponse(data)
	if !ok {
		// FC answers a return value that is no HTTP response with the value
		// itself as a JSON body.
		resp = events.HTTPTriggerResponse{StatusCode: http.StatusOK,
			Headers: map[string]string{"Content-Type": "application/json"}, Body: string(data)}
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return writeInvokeError(w, fmt.Errorf("the response body is not valid base64: %w", err))
		}
	}
	for name, value := range resp.Headers {
		lower := strings.ToLower(name)
		if reservedHeaders[lower] || strings.HasPrefix(lower, "x-fc-") {
			continue
		}
		w.Header().Set(name, value)
	}
	status := resp.StatusCode
	if status < 100 || status > 999 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// writeInvokeError answers a failed invocation the way FC's HTTP trigger
// does: 502 with the error's message and type.
func writeInvokeError(w http.ResponseWriter, err error) int {
	typ, msg := invokeErrorParts(err)
	body := map[string]string{"errorMessage": msg, "errorType": typ}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Fc-Error-Type", "UnhandledInvocationError")
	w.WriteHeader(http.StatusBadGateway)
	_ = json.NewEncoder(w).Encode(body)
	return http.StatusBadGateway
}
