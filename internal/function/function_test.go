package function

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/handler"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/scan"
)

// fcContext is the context FC gives an invocation on the emulated cloud.
func fcContext(t *testing.T, c *emulator.Cloud) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return fccontext.NewContext(ctx, &fccontext.FcContext{
		RequestID: "1-test",
		Credentials: fccontext.Credentials{
			AccessKeyId:     c.Credentials.AccessKeyID,
			AccessKeySecret: c.Credentials.AccessKeySecret,
			SecurityToken:   c.Credentials.SecurityToken,
		},
		Region:    c.Region,
		AccountId: c.AccountID,
	})
}

func startEmulator(t *testing.T) *emulator.Cloud {
	t.Helper()
	c, err := emulator.Start(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var timerEvent = json.RawMessage(`{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"daily","payload":""}`)

func TestFCHandlerScansAsConfigured(t *testing.T) {
	c := startEmulator(t)
	for k, v := range c.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("SCAN_TARGETS", "cn-shanghai:*")
	t.Setenv("TRUSTED_ACCOUNT_IDS", emulator.DemoTrustedAccount)
	t.Setenv("LOG_LEVEL", "error")

	res, err := Invoke(FromEnviron())(fcContext(t, c), timerEvent)
	if err != nil {
		t.Fatalf("invocation failed: %v", err)
	}
	data, _ := json.Marshal(res)
	var report scan.Report
	if err := json.Unmarshal(data, &report); err != nil || !report.Delivery.Delivered || report.Summary.Connections != 2 || report.Summary.Fail != 1 {
		t.Errorf("report = %s", data)
	}
	if got := len(c.SLS.LogsByTopic(c.Project, c.Logstore, "vpnauthz-finding")); got != 4 {
		t.Errorf("%d findings in Log Service, want 4 (2 connections x 2 rules)", got)
	}
}

func TestFCHandlerReportsInvalidConfigurationOnEveryInvocation(t *testing.T) {
	c := startEmulator(t)
	for k, v := range c.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("SCAN_TARGETS", "cn-shanghai")      // no connection part
	t.Setenv("TRUSTED_ACCOUNT_IDS", "not-a-uid") // and a bad account id
	h := Invoke(FromEnviron())                   // must not panic or exit
	for i := range 2 {
		_, err := h(fcContext(t, c), timerEvent)
		if err == nil {
			t.Fatalf("invocation %d succeeded with an invalid configuration", i+1)
		}
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) {
			t.Fatalf("error %T %v: want the runtime's error type", err, err)
		}
		msg := ie.Type + ": " + ie.Message
		for _, want := range []string{"InvalidConfiguration", "SCAN_TARGETS", "TRUSTED_ACCOUNT_IDS"} {
			if !strings.Contains(msg, want) {
				t.Errorf("invocation %d: error %q does not name %s", i+1, msg, want)
			}
		}
	}
	if n := c.VPC.Stats().Total().Calls; n != 0 {
		t.Errorf("%d VPC API calls with an invalid configuration, want none", n)
	}
}

func TestInvokeWithoutAnFCContext(t *testing.T) {
	h := Invoke(NewHandler(nil, errors.New("unused"), slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{}))
	res, err := h(context.Background(), timerEvent)
	var ie messages.InvokeResponse_Error
	if res != nil || !errors.As(err, &ie) || ie.Type != handler.ErrInvalidContext {
		t.Errorf("got %v, %v; want an InvalidContext error", res, err)
	}
}

func TestInvokeKeepsTheHandlersErrorType(t *testing.T) {
	c := startEmulator(t)
	h := Invoke(NewHandler(nil, errors.New("unused"), slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{}))
	_, err := h(fcContext(t, c), []byte(`{"nothing":1}`))
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != handler.ErrInvalidEvent || !strings.Contains(ie.Message, `"nothing"`) {
		t.Errorf("error %T %v; want InvalidEvent naming the key", err, err)
	}
}
