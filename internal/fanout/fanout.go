// Package fanout dispatches an organisation scan over Function Compute: the
// coordinator splits the accounts into batches and invokes its own function
// asynchronously once per batch (FC 3.0 InvokeFunction, fc-20230330/v4),
// each with the task id "<scan id>-<batch>", so that a retried coordinator
// cannot start a batch twice: FC refuses a repeated task id with 409, which
// counts as dispatched. FC's async queue, retries and failure destination do
// the rest; nothing here queues or retries a worker.
package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/openapi"
	"vpnauthz/internal/retry"
)

const (
	// DefaultAccountsPerInvocation is FANOUT_ACCOUNTS_PER_INVOCATION's default.
	DefaultAccountsPerInvocation = 50
	// DefaultConcurrency is how many InvokeFunction calls are in flight.
	DefaultConcurrency = 8
)

// Payload is a worker's event.
type Payload struct {
	ScanID   string   `json:"scanId"`
	Batch    int      `json:"batch"`   // 1..Batches
	Batches  int      `json:"batches"` // how many batches the scan has
	Accounts []string `json:"accounts"`
}

// Batches splits accounts, in order, into batches of at most per accounts.
func Batches(accounts []string, per int) [][]string {
	if per < 1 {
		per = DefaultAccountsPerInvocation
	}
	var out [][]string
	for len(accounts) > 0 {
		n := min(per, len(accounts))
		out = append(out, accounts[:n:n])
		accounts = accounts[n:]
	}
	return out
}

var (
	taskIDPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)
	unsafeChars   = regexp.MustCompile(`[^A-Za-z0-9_-]`)
)

// TaskID is the async task id of a batch: "<scanID>-<batch>". FC task ids
// must start with a letter or '_' and hold only letters, digits, '_' and
// '-' (at most 128): a scan id that starts otherwise (a hex id may start
// with a digit) gets the prefix "vpnauthz-", other characters become '_'.
// The same scan id and batch always give the same task id.
func TaskID(scanID string, batch int) string {
	id := unsafeChars.ReplaceAllString(scanID, "_") + "-" + strconv.Itoa(batch)
	if !taskIDPattern.MatchString(id) {
		id = "vpnauthz-" + id
	}
	if len(id) > 128 {
		id = id[len(id)-128:]
		if !taskIDPattern.MatchString(id) {
			id = "_" + id[1:]
		}
	}
	return id
}

// Options configure a Dispatcher.
type Options struct {
	// Endpoint is FC_ENDPOINT for Region; zero: the SDK's endpoint for Region.
	Endpoint    endpoint.Endpoint
	Region      string
	Credentials cloudapi.Credentials
	// FunctionName is the function to invoke (the coordinator's own);
	// Qualifier its version or alias ("" : LATEST).
	FunctionName, Qualifier string
	// Concurrency is how many InvokeFunction calls are in flight (default
	// DefaultConcurrency).
	Concurrency int
	// Retry bounds the attempts and pauses of each batch's call; its zero
	// fields are cloudapi's defaults.
	Retry      retry.Policy
	HTTPClient *http.Client
}

// Dispatched is the outcome of one batch.
type Dispatched struct {
	Batch          int
	TaskID         string
	Accounts       int
	AlreadyStarted bool   // a 409: the task id had been used, by an earlier try of this coordinator
	RequestID      string // FC's request id of the accepted call
	Err            error  // the batch could not be dispatched
}

// Dispatcher invokes the worker batches.
type Dispatcher struct {
	opts Options
	ep   endpoint.Endpoint
	hc   *http.Client
}

// New checks the options; no call is made.
func New(opts Options) (*Dispatcher, error) {
	ep := opts.Endpoint
	if !ep.IsZero() && ep.Scheme != "https" && !ep.Loopback {
		return nil, fmt.Errorf("FC_ENDPOINT %s: plain http is only for a loopback host", ep)
	}
	if ep.IsZero() && opts.Region == "" {
		return nil, errors.New("fanout: neither FC_ENDPOINT nor a region to find the FC endpoint")
	}
	if opts.FunctionName == "" {
		return nil, errors.New("fanout: no function name to invoke")
	}
	if opts.Credentials.AccessKeyID == "" {
		return nil, errors.New("fanout: no credentials to call FC with")
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = DefaultConcurrency
	}
	opts.Retry = opts.Retry.Defaults()
	hc := opts.HTTPClient
	if hc == nil {
		hc = openapi.NewHTTPClient(ep, cloudapi.DefaultCallTimeout)
	}
	return &Dispatcher{opts: opts, ep: ep, hc: hc}, nil
}

// Dispatch invokes one async task per batch and reports each batch, in
// batch order. The error is the first batch that could not be dispatched
// (the others were still tried).
func (d *Dispatcher) Dispatch(ctx context.Context, scanID string, batches [][]string) ([]Dispatched, error) {
	out := make([]Dispatched, len(batches))
	sem := make(chan struct{}, d.opts.Concurrency)
	var wg sync.WaitGroup
	for i, accounts := range batches {
		out[i] = Dispatched{Batch: i + 1, TaskID: TaskID(scanID, i+1), Accounts: len(accounts)}
		body, err := json.Marshal(Payload{ScanID: scanID, Batch: i + 1, Batches: len(batches), Accounts: accounts})
		if err != nil {
			out[i].Err = fmt.Errorf("batch %d: encode: %w", i+1, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].Err = fmt.Errorf("batch %d: %w", i+1, ctx.Err())
				return
			}
			defer func() { <-sem }()
			out[i].AlreadyStarted, out[i].RequestID, out[i].Err = d.invoke(ctx, out[i].TaskID, body)
			if out[i].Err != nil {
				out[i].Err = fmt.Errorf("batch %d (task %s): %w", i+1, out[i].TaskID, out[i].Err)
			}
		}()
	}
	wg.Wait()
	for _, r := range out {
		if r.Err != nil {
			return out, r.Err
		}
	}
	return out, nil
}

func (d *Dispatcher) invoke(ctx context.Context, taskID string, body []byte) (alreadyStarted bool, requestID string, err error) {
	err = retry.Do(ctx, d.opts.Retry, retry.Hooks{}, func(ctx context.Context) error {
		client, err := fc.NewClient(openapi.Config(ctx, d.opts.Credentials, d.ep, d.opts.Region, d.hc))
		if err != nil {
			return fmt.Errorf("fc client: %w", cloudapi.Local(err))
		}
		req := &fc.InvokeFunctionRequest{Body: bytes.NewReader(body)}
		if d.opts.Qualifier != "" {
			req.Qualifier = dara.String(d.opts.Qualifier)
		}
		resp, err := client.InvokeFunctionWithContext(ctx, dara.String(d.opts.FunctionName), req, &fc.InvokeFunctionHeaders{
			XFcInvocationType: dara.String("Async"),
			XFcAsyncTaskId:    dara.String(taskID),
		}, &dara.RuntimeOptions{})
		if err != nil {
			err = openapi.MapError(ctx, "InvokeFunction", err)
			var ae *cloudapi.APIError
			if errors.As(err, &ae) && ae.HTTPStatus == http.StatusConflict {
				// The task id was used: an earlier try of this
				// coordinator started the batch.
				alreadyStarted = true
				return nil
			}
			return err
		}
		if code := dara.Int32Value(resp.StatusCode); code != http.StatusAccepted && code != http.StatusOK {
			return fmt.Errorf("InvokeFunction: %w", &cloudapi.DecodeError{HTTPStatus: int(code), Err: errors.New("an async invocation is answered 202")})
		}
		requestID = dara.StringValue(resp.Headers["x-fc-request-id"])
		return nil
	})
	return alreadyStarted, requestID, err
}
