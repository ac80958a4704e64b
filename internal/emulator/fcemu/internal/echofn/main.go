// Command echofn is a function for the fcemu tests, run under the FC Go
// runtime SDK: it answers with what the runtime handed it, and fails, panics
// or waits for concurrent peers when the payload asks.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
)

// Request is the payload the tests send.
type Request struct {
	Echo     json.RawMessage `json:"echo,omitempty"`
	Fail     string          `json:"fail,omitempty"`     // return errors.New(Fail)
	FailType string          `json:"failType,omitempty"` // with Fail: return an error of this type
	Panic    string          `json:"panic,omitempty"`
	// WaitForPeers holds the call until this many calls have arrived, which
	// only happens if the runtime runs them at the same time.
	WaitForPeers int `json:"waitForPeers,omitempty"`
}

// Reply is what the function saw.
type Reply struct {
	Echo            json.RawMessage `json:"echo,omitempty"`
	RequestID       string          `json:"requestId"`
	AccessKeyID     string          `json:"accessKeyId"`
	AccessKeySecret string          `json:"accessKeySecret"`
	SecurityToken   string          `json:"securityToken"`
	FunctionName    string          `json:"functionName"`
	Handler         string          `json:"handler"`
	Memory          string          `json:"memory"`
	TimeoutSeconds  int             `json:"timeoutSeconds"`
	Region          string          `json:"region"`
	AccountID       string          `json:"accountId"`
	RetryCount      int             `json:"retryCount"`
	LogProject      string          `json:"logProject"`
	LogStore        string          `json:"logStore"`
	Qualifier       string          `json:"qualifier"`
	HasDeadline     bool            `json:"hasDeadline"`
	DeadlineUnixMs  int64           `json:"deadlineUnixMs"`
	Arrived         int             `json:"arrived"`
}

var (
	mu      sync.Mutex
	arrived int
	changed = make(chan struct{}) // closed and replaced on each arrival
)

func handle(ctx context.Context, req Request) (Reply, error) {
	fctx, ok := fccontext.FromContext(ctx)
	if !ok {
		return Reply{}, errors.New("no FC context")
	}
	switch {
	case req.Panic != "":
		panic(req.Panic)
	case req.Fail != "" && req.FailType != "":
		return Reply{}, messages.InvokeResponse_Error{Message: req.Fail, Type: req.FailType}
	case req.Fail != "":
		return Reply{}, errors.New(req.Fail)
	}
	mu.Lock()
	arrived++
	close(changed)
	changed = make(chan struct{})
	mu.Unlock()
	if req.WaitForPeers > 0 {
		if err := waitForPeers(ctx, req.WaitForPeers); err != nil {
			return Reply{}, err
		}
	}
	deadline, hasDeadline := ctx.Deadline()
	mu.Lock()
	seen := arrived
	mu.Unlock()
	return Reply{
		Echo:            req.Echo,
		RequestID:       fctx.RequestID,
		AccessKeyID:     fctx.Credentials.AccessKeyId,
		AccessKeySecret: fctx.Credentials.AccessKeySecret,
		SecurityToken:   fctx.Credentials.SecurityToken,
		FunctionName:    fctx.Function.Name,
		Handler:         fctx.Function.Handler,
		Memory:          fctx.Function.Memory,
		TimeoutSeconds:  fctx.Function.Timeout,
		Region:          fctx.Region,
		AccountID:       fctx.AccountId,
		RetryCount:      fctx.RetryCount,
		LogProject:      fctx.Service.LogProject,
		LogStore:        fctx.Service.LogStore,
		Qualifier:       fctx.Service.Qualifier,
		HasDeadline:     hasDeadline,
		DeadlineUnixMs:  deadline.UnixMilli(),
		Arrived:         seen,
	}, nil
}

// waitForPeers waits for each arrival rather than polling; the invocation's
// deadline ends the wait if the runtime never runs n calls at once.
func waitForPeers(ctx context.Context, n int) error {
	for {
		mu.Lock()
		got, next := arrived, changed
		mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d calls arrived: %w", got, n, ctx.Err())
		}
	}
}

func main() {
	fc.Start(handle)
}
