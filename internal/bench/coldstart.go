package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"vpnauthz/internal/emulator/fcemu"
)

// The first invocations of a cold start: an HTTP GET /health (no cloud call)
// and a timer scan of the one connection SCAN_TARGETS names.
var (
	healthEvent = []byte(`{"version":"v1","rawPath":"/health","body":"","isBase64Encoded":false,
"headers":{"Accept":"*/*"},"queryParameters":{},
"requestContext":{"accountId":"` + AccountID + `","domainName":"vpnauthz.cn-hangzhou.fcapp.run","domainPrefix":"vpnauthz",
"http":{"method":"GET","path":"/health","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"probe"},
"requestId":"1-bench","time":"2026-05-01T02:10:56Z","timeEpoch":"1777601456000","triggerId":"http"}}`)
	timerEvent = []byte(`{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"bench","payload":""}`)
)

// ColdStart is one start of the function binary under an emulated FC runtime.
type ColdStart struct {
	// FirstResponse is from exec to the answer of the first invocation.
	FirstResponse time.Duration
}

// ColdStartKind picks the first invocation of a cold start.
type ColdStartKind int

const (
	FirstHealth ColdStartKind = iota // GET /health over the HTTP trigger
	FirstScan                        // a timer scan of ScanTarget
)

// MeasureColdStart execs binary as FC would, with FC_RUNTIME_API pointing at
// a runtime API in this process and the function's environment pointing at
// cloud, queues the first invocation before the exec, and measures until its
// answer arrives. scanTarget is the SCAN_TARGETS of a timer scan.
func MeasureColdStart(ctx context.Context, binary string, cloud Cloud, kind ColdStartKind, scanTarget string) (ColdStart, error) {
	rt, err := fcemu.New()
	if err != nil {
		return ColdStart{}, err
	}
	defer rt.Close()

	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "FC_RUNTIME_API="+rt.Addr(), "SCAN_TARGETS="+scanTarget)
	for k, v := range cloud.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard

	inv := fcemu.Invocation{
		Payload:         healthEvent,
		AccessKeyID:     cloud.Credentials.AccessKeyID,
		AccessKeySecret: cloud.Credentials.AccessKeySecret,
		SecurityToken:   cloud.Credentials.SecurityToken,
		Region:          cloud.Region,
		AccountID:       cloud.AccountID,
		Timeout:         30 * time.Second,
	}
	if kind == FirstScan {
		inv.Payload = timerEvent
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type answer struct {
		res fcemu.Result
		at  time.Time
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		res, err := rt.Invoke(ctx, inv)
		answers <- answer{res, time.Now(), err}
	}()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return ColdStart{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	a := <-answers
	if a.err != nil {
		return ColdStart{}, a.err
	}
	if err := checkAnswer(kind, a.res); err != nil {
		return ColdStart{}, err
	}
	return ColdStart{FirstResponse: a.at.Sub(start)}, nil
}

// checkAnswer makes sure the time measured is that of a good answer.
func checkAnswer(kind ColdStartKind, res fcemu.Result) error {
	if res.Error != nil {
		return fmt.Errorf("the function failed: %s: %s", res.Error.ErrorType, res.Error.ErrorMessage)
	}
	switch kind {
	case FirstHealth:
		var r struct{ StatusCode int }
		if err := json.Unmarshal(res.Response, &r); err != nil || r.StatusCode != 200 {
			return fmt.Errorf("GET /health answered %s", res.Response)
		}
	case FirstScan:
		var r struct {
			Complete bool
			Delivery struct{ Delivered bool }
			Summary  struct{ Connections int }
		}
		if err := json.Unmarshal(res.Response, &r); err != nil || !r.Complete || !r.Delivery.Delivered || r.Summary.Connections != 1 {
			return fmt.Errorf("the timer scan answered %s", res.Response)
		}
	}
	return nil
}
