package faults

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"vpnauthz/events"
	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/function"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
	"vpnauthz/internal/target"
	"vpnauthz/internal/vpcapi"
)

// steeringTargets are targets that try to send the scan's signed calls
// somewhere else: another host in the region, a path in the connection id.
var steeringTargets = []string{
	"cn-hangzhou.evil.example:*",
	"cn-hangzhou.evil.example:vco-abcd1234",
	"127.0.0.1:*",
	"localhost:*",
	"[::1]:*",
	"cn-hangzhou@evil.example:*",
	"evil.example/cn-hangzhou:*",
	"cn-hangzhou%2eevil:*",
	"cn-hangzhou\n:*",
	"CN-HANGZHOU:*",
	"cn-hangzhou:vco-abc/../x",
	"cn-hangzhou:vco-abcd/x",
	"cn-hangzhou:../vco-abcd",
	"cn-hangzhou:vco-..",
	"cn-hangzhou:vco-abcd%2f..",
	"cn-hangzhou:vco-abcd?Action=DeleteVpnConnection",
	"cn-hangzhou:vco-abcd#x",
	"cn-hangzhou:vco-abcd&RegionId=cn-beijing",
	"cn-hangzhou:vco-ａｂｃｄ",
	"cn-hangzhou:vco-abcd:443",
	"cn-hangzhou:",
	":*",
}

// split is a target as a request may carry it, without parsing.
func split(s string) target.Target {
	region, id, _ := strings.Cut(s, ":")
	return target.Target{Region: region, ConnectionID: id}
}

// TestRequestSteering: each such target is refused before any call —
// by target parsing, by the scanner given the target unparsed, by the VPC
// source factory, and by the function's HTTP trigger — and the emulated
// services see no call at all.
func TestRequestSteering(t *testing.T) {
	cloud := startCloud(t, emulator.Demo(time.Now()))
	creds := cloudCreds(cloud)
	s := newScanner(t, cloud, nil)
	factory := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(cloud.VPC.URL())})
	h := steeringHandler(t, cloud)
	fc := fccontext.NewContext(context.Background(), &fccontext.FcContext{
		RequestID: "1-steer", Region: cloud.Region, AccountId: cloud.AccountID,
		Credentials: fccontext.Credentials{AccessKeyId: creds.AccessKeyID, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken},
	})
	for _, raw := range steeringTargets {
		t.Run(raw, func(t *testing.T) {
			if tg, err := target.Parse(raw); err == nil {
				t.Errorf("target.Parse accepted it as %+v", tg)
			}
			if ts, err := target.ParseList("cn-hangzhou:* " + raw); err == nil {
				t.Errorf("target.ParseList accepted it in a list: %v", ts)
			}

			// Alone, and next to a valid target: a request is refused whole.
			for _, ts := range [][]target.Target{{split(raw)}, {split("cn-hangzhou:*"), split(raw)}} {
				req := scan.Request{Trigger: "http", Targets: ts, Credentials: creds, AccountID: ownerAccount}
				if rep, err := s.Run(context.Background(), req, newSink(t, cloud, creds, io.Discard)); err == nil {
					t.Errorf("the scanner ran %v: %+v", ts, rep.Summary)
				}
			}
			if region := split(raw).Region; !target.ValidRegion(region) {
				if _, err := factory(creds, region); err == nil {
					t.Errorf("the VPC source factory accepted region %q", region)
				}
			}

			body, _ := json.Marshal(events.ScanPayload{Targets: []string{raw}})
			resp, err := function.Invoke(h)(fc, httpEvent(t, string(body)))
			r, ok := resp.(*handler.HTTPResult)
			if err != nil || !ok || r.StatusCode != 400 {
				t.Errorf("POST /scans: %+v, %v; want 400", resp, err)
			}

			if n := cloud.VPC.Stats().Total().Calls; n != 0 {
				t.Fatalf("the VPC API saw %d calls", n)
			}
			if n := cloud.SLS.Stats().Requests; n != 0 {
				t.Fatalf("Log Service saw %d requests", n)
			}
		})
	}
}

// httpEvent is an HTTP trigger request POST /scans with body.
func httpEvent(t *testing.T, body string) json.RawMessage {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(httpScanEvent), &ev); err != nil {
		t.Fatal(err)
	}
	ev["body"] = body
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// steeringHandler is the function's handler on the emulated cloud, scoped
// to every region of the demo.
func steeringHandler(t testing.TB, c *emulator.Cloud) *handler.Handler {
	t.Helper()
	env := c.Env()
	env[config.EnvScanTargets] = "cn-hangzhou:*,cn-shanghai:*,ap-southeast-1:*"
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	return handler.New(handler.Options{
		Config: cfg, Version: "test", Logger: logger,
		Scanner: scan.New(scan.Options{Policy: cfg.Policy, Logger: logger, Rate: 500,
			NewSource: vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: cfg.VPCEndpoint})}),
		NewSink: func(ctx context.Context, creds scan.Credentials, region string) (scan.Sink, error) {
			return slssink.New(slssink.Options{Endpoint: cfg.SLSEndpointFor(region), Project: cfg.SLSProject,
				Logstore: cfg.SLSLogstore, Credentials: creds, Stdout: io.Discard})
		},
	})
}

var (
	safeRegion = regexp.MustCompile(`^[a-z0-9-]+$`)
	safeID     = regexp.MustCompile(`^(\*|vco-[a-z0-9]+)$`)
)

// FuzzTargetSteering: whatever a target says, either it is refused by
// parsing and then by the scanner with no call made, or it is a region
// that stays one DNS label sequence inside the regional endpoint's host
// and an id of letters and digits.
func FuzzTargetSteering(f *testing.F) {
	for _, s := range steeringTargets {
		f.Add(s)
	}
	for _, s := range []string{"cn-hangzhou:*", "ap-southeast-1:vco-p0w2jpkhi2eeop6q6", "eu-central-1:*", "a-b:vco-0000"} {
		f.Add(s)
	}
	cloud, err := emulator.Start(emulator.Options{Inventory: emulator.Demo(time.Now())})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(cloud.Close)
	creds := cloudCreds(cloud)
	s := scan.New(scan.Options{Policy: testPolicy, Rate: 1000, Retry: retry.Policy{MaxAttempts: 1},
		NewSource: vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: endpoint.MustParseRegional(cloud.VPC.URL())})})
	f.Fuzz(func(t *testing.T, raw string) {
		tg, parseErr := target.Parse(raw)
		if parseErr == nil {
			host := "vpc." + tg.Region + ".aliyuncs.com"
			if u, err := url.Parse("https://" + host + "/"); err != nil || u.Host != host || !safeRegion.MatchString(tg.Region) {
				t.Fatalf("accepted region %q would make host %q", tg.Region, host)
			}
			if !safeID.MatchString(tg.ConnectionID) {
				t.Fatalf("accepted connection id %q", tg.ConnectionID)
			}
			return
		}
		before := cloud.VPC.Stats().Total().Calls
		req := scan.Request{Trigger: "http", Targets: []target.Target{split(raw)}, Credentials: creds, AccountID: ownerAccount}
		if _, err := s.Run(context.Background(), req, nil); err == nil {
			t.Fatalf("the scanner ran %q, which parsing refused: %v", raw, parseErr)
		}
		if n := cloud.VPC.Stats().Total().Calls - before; n != 0 {
			t.Fatalf("%d calls for %q", n, raw)
		}
	})
}
