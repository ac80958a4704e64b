package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/function"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/target"
	"vpnauthz/internal/testutil"
	"vpnauthz/internal/vpcapi"
)

// canaryCred is a fresh STS credential whose secret and token are random
// canaries: neither may ever be found in anything the function writes.
func canaryCred() cred.Credential {
	return cred.Credential{
		AccessKeyID:     "STS.Canary" + rand.Text(),
		AccessKeySecret: "secretcanary" + rand.Text(),
		SecurityToken:   "CAIStokencanary" + rand.Text() + rand.Text(),
		Expires:         time.Now().Add(time.Hour),
	}
}

// leaks names the canaries found in out.
func leaks(out []byte, canaries ...string) []string {
	var found []string
	for _, c := range canaries {
		if c != "" && bytes.Contains(out, []byte(c)) {
			found = append(found, c[:min(len(c), 16)]+"…")
		}
	}
	return found
}

// TestNoSecretInOutput runs scans with canary secrets, those that succeed
// and those that fail (wrong secret, expired token, Log Service down), with
// the scanner's and the handler's logs at debug level, and searches every
// byte of the logs, the report, the findings, the standard-output fallback
// and the invocation answer and error for the canaries.
func TestNoSecretInOutput(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(t *testing.T, c *emulator.Cloud, canary cred.Credential) cred.Credential // returns the credential signed with
		wantError string                                                                        // in the findings' status details
		wantSLS   bool                                                                          // findings stored in Log Service
	}{
		{
			name: "scan succeeds",
			setup: func(t *testing.T, c *emulator.Cloud, canary cred.Credential) cred.Credential {
				c.AddCredential(canary)
				return canary
			},
			wantSLS: true,
		},
		{
			name: "wrong secret",
			setup: func(t *testing.T, c *emulator.Cloud, canary cred.Credential) cred.Credential {
				real := canary
				real.AccessKeySecret = "the-real-secret-" + rand.Text()
				c.AddCredential(real)
				return canary
			},
			wantError: "SignatureDoesNotMatch",
		},
		{
			name: "expired token",
			setup: func(t *testing.T, c *emulator.Cloud, canary cred.Credential) cred.Credential {
				canary.Expires = time.Now().Add(-time.Second)
				c.AddCredential(canary)
				return canary
			},
			wantError: "InvalidSecurityToken.Expired",
		},
		{
			name: "Log Service down",
			setup: func(t *testing.T, c *emulator.Cloud, canary cred.Credential) cred.Credential {
				c.AddCredential(canary)
				c.SLS.SetDown(true)
				return canary
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cloud := startCloud(t, emulator.Demo(time.Now()))
			canary := canaryCred()
			signWith := tc.setup(t, cloud, canary)
			canaries := []string{canary.AccessKeySecret, canary.SecurityToken}
			var logs, stdout testutil.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			creds := scan.Credentials{AccessKeyID: signWith.AccessKeyID, AccessKeySecret: signWith.AccessKeySecret, SecurityToken: signWith.SecurityToken}

			// The scanner on its own, as every trigger runs it.
			s := newScanner(t, cloud, func(o *scan.Options) { o.Logger = logger })
			req := scanRequest(t, creds, "cn-hangzhou:*", "cn-shanghai:*", "ap-southeast-1:*", "cn-hangzhou:"+emulator.DemoTrusted)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := s.Run(ctx, req, newSink(t, cloud, creds, &stdout))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			reportJSON, _ := json.Marshal(rep)
			out.Write(reportJSON)
			fmt.Fprintf(&out, "%v %+v %#v", rep, rep, rep)

			// The same scan through the function's handler: an HTTP trigger
			// request and a timer event.
			h := canaryHandler(t, cloud, logger, &stdout)
			fc := fccontext.NewContext(ctx, &fccontext.FcContext{
				RequestID: "1-canary", Region: cloud.Region, AccountId: cloud.AccountID,
				Credentials: fccontext.Credentials{AccessKeyId: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken},
			})
			for _, ev := range []string{httpScanEvent, `{"triggerTime":"2026-05-01T02:00:00Z","triggerName":"hourly","payload":""}`} {
				resp, err := function.Invoke(h)(fc, []byte(ev))
				b, _ := json.Marshal(resp)
				out.Write(b)
				if err != nil {
					fmt.Fprintf(&out, "%v %+v", err, err)
				}
			}

			findings, _ := json.Marshal(rep.Findings)
			var stored bytes.Buffer
			for _, l := range cloud.SLS.Logs(cloud.Project, cloud.Logstore) {
				fmt.Fprintf(&stored, "%v\n", l.Contents)
			}
			for what, b := range map[string][]byte{
				"logs": logs.Bytes(), "report, answers and errors": out.Bytes(), "findings": findings,
				"standard output": stdout.Bytes(), "Log Service": stored.Bytes(),
			} {
				if found := leaks(b, canaries...); len(found) > 0 {
					t.Errorf("%s hold %v", what, found)
				}
			}
			if len(logs.Bytes()) == 0 {
				t.Error("no log line: the search proves nothing")
			}

			// The scan went the way the case says.
			for _, f := range rep.Findings {
				if tc.wantError != "" && !strings.Contains(f.StatusDetail, tc.wantError) {
					t.Errorf("%s: %s %q, want an ERROR naming %s", f.VpnConnectionID, f.Status, f.StatusDetail, tc.wantError)
				}
			}
			if rep.Delivery.Delivered != tc.wantSLS {
				t.Errorf("delivery %+v", rep.Delivery)
			}
			if !tc.wantSLS && !bytes.Contains(stdout.Bytes(), []byte(`"finding_uid"`)) {
				t.Error("undelivered findings are not on standard output")
			}
		})
	}
}

// httpScanEvent is an HTTP trigger request for a scan of the configured targets.
const httpScanEvent = `{"version":"v1","rawPath":"/scans","body":"","isBase64Encoded":false,
"headers":{"Content-Type":"application/json"},"queryParameters":{},
"requestContext":{"accountId":"1234567890123456","domainName":"vpnauthz.cn-hangzhou.fcapp.run","domainPrefix":"vpnauthz",
"http":{"method":"POST","path":"/scans","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"curl/8.5.0"},
"requestId":"1-canary","time":"2026-05-01T02:10:41Z","timeEpoch":"1777601441000","triggerId":"http-api"}}`

// canaryHandler is the function's handler wired as the function wires it,
// on the emulated cloud, with its fallback output and logs captured.
func canaryHandler(t *testing.T, c *emulator.Cloud, logger *slog.Logger, stdout *testutil.Buffer) *handler.Handler {
	t.Helper()
	env := c.Env()
	env[config.EnvScanTargets] = "cn-hangzhou:*,cn-shanghai:*,ap-southeast-1:*"
	env[config.EnvLogLevel] = "debug"
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return handler.New(handler.Options{
		Config:  cfg,
		Version: "test",
		Logger:  logger,
		Scanner: scan.New(scan.Options{
			Policy:    cfg.Policy,
			NewSource: vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: cfg.VPCEndpoint}),
			Rate:      500,
			Logger:    logger,
			Retry:     fastRetry,
		}),
		NewSink: func(ctx context.Context, creds scan.Credentials, region string) (scan.Sink, error) {
			return slssink.New(slssink.Options{
				Endpoint: cfg.SLSEndpointFor(region), Project: cfg.SLSProject, Logstore: cfg.SLSLogstore,
				Credentials: creds, Stdout: stdout, RetryBase: 5 * time.Millisecond, RetryCap: 50 * time.Millisecond,
				RetryBudget: 2 * time.Second,
			})
		},
	})
}

// TestCredentialsNotFormatted: every fmt verb on the credentials, a scan
// request and the configuration keeps the secret, the token and the
// bearer token out.
func TestCredentialsNotFormatted(t *testing.T) {
	canary := canaryCred()
	bearer := "bearercanary" + rand.Text()
	creds := scan.Credentials{AccessKeyID: canary.AccessKeyID, AccessKeySecret: canary.AccessKeySecret, SecurityToken: canary.SecurityToken}
	req := scan.Request{ScanID: "s1", Trigger: "http", Credentials: creds, AccountID: ownerAccount,
		Targets: []target.Target{{Region: "cn-hangzhou", ConnectionID: "*"}}}
	cfg := config.Config{HTTPAuthToken: bearer, SLSProject: "p", VPCEndpoint: endpoint.MustParseRegional("https://vpc.example")}
	values := map[string]any{
		"scan.Credentials": creds, "*scan.Credentials": &creds,
		"scan.Request": req, "*scan.Request": &req,
		"config.Config": cfg, "*config.Config": &cfg,
		"[]any": []any{creds, req, cfg}, "map": map[string]any{"c": creds, "r": req, "cfg": cfg},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			if out := fmt.Sprintf(verb, v); len(leaks([]byte(out), canary.AccessKeySecret, canary.SecurityToken, bearer)) > 0 {
				t.Errorf("%s with %s shows a secret: %s", name, verb, out)
			}
		}
		var logs bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
			slog.New(h).Info("value", "v", v)
		}
		if b, err := json.Marshal(v); err == nil {
			logs.Write(b)
		}
		if found := leaks(logs.Bytes(), canary.AccessKeySecret, canary.SecurityToken, bearer); len(found) > 0 {
			t.Errorf("%s in logs or JSON shows %v: %s", name, found, logs.String())
		}
	}
}
