package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/scan"
)

// cloud is where a local command runs: the emulated demo cloud (demoCloud),
// or with --live the account the environment and the credential chain point
// at (liveCloud).
type cloud interface {
	// config is the configuration the handler runs with, or why it is
	// invalid (the handler reports that, as it would in FC).
	config() (*config.Config, error)
	// invocation is what FC would pass with one invocation: a request id,
	// the credentials, the function's region and account.
	invocation(requestID string) (handler.Invocation, error)
	// logLevel is the level the configuration asks for, if it asks.
	logLevel() (slog.Level, bool)
	// describe says in one line where the commands run.
	describe() string
	close()
}

// demoCloud is the emulated cloud seeded with the demo inventory, with
// vpnauthz configured by the demo's settings alone, so that the demo gives
// the same verdicts on every machine whatever its environment.
type demoCloud struct {
	emu    *emulator.Cloud
	cfg    *config.Config
	cfgErr error
	dir    string
}

func openDemo() (*demoCloud, error) {
	now := time.Now()
	c, err := emulator.Start(emulator.Options{})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vpnauthz-demo-")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("create a directory for the demo policy: %w", err)
	}
	d := &demoCloud{emu: c, dir: dir}
	policyPath, err := emulator.WriteDemoPolicy(dir, now)
	if err != nil {
		d.close()
		return nil, err
	}
	env := c.Env()
	for k, v := range emulator.DemoEnv(policyPath) {
		env[k] = v
	}
	d.cfg, d.cfgErr = config.Load(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}, os.ReadFile)
	return d, nil
}

func (d *demoCloud) config() (*config.Config, error) { return d.cfg, d.cfgErr }
func (d *demoCloud) logLevel() (slog.Level, bool)    { return 0, false }

func (d *demoCloud) invocation(requestID string) (handler.Invocation, error) {
	return handler.Invocation{
		RequestID: requestID,
		Region:    d.emu.Region,
		AccountID: d.emu.AccountID,
		Credentials: scan.Credentials{
			AccessKeyID:     d.emu.Credentials.AccessKeyID,
			AccessKeySecret: d.emu.Credentials.AccessKeySecret,
			SecurityToken:   d.emu.Credentials.SecurityToken,
		},
	}, nil
}

func (d *demoCloud) describe() string {
	return fmt.Sprintf("emulated demo cloud: VPC API %s, Log Service %s (%s/%s), account %s",
		d.emu.VPC.URL(), d.emu.SLS.Endpoint(), d.emu.Project, d.emu.Logstore, d.emu.AccountID)
}

func (d *demoCloud) close() {
	d.emu.Close()
	_ = os.RemoveAll(d.dir)
}

// liveCloud reads the configuration from the environment and takes the
// credentials from the standard Alibaba Cloud credential chain (environment,
// profile, RAM role), asked again for each invocation so that expiring STS
// tokens are renewed.
type liveCloud struct {
	cfg       *config.Config
	cfgErr    error
	region    string
	accountID string
	chain     credentials.Credential
}

func openLive() (*liveCloud, error) {
	region := firstEnv("FC_REGION", "ALIBABA_CLOUD_REGION_ID")
	if region == "" && os.Getenv("SLS_ENDPOINT") == "" {
		return nil, errors.New("set FC_REGION or ALIBABA_CLOUD_REGION_ID to the function's region " +
			"(where findings go unless SLS_ENDPOINT says otherwise)")
	}
	cfg, cfgErr := config.FromEnviron()
	chain, err := credentials.NewCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("credential chain: %w", err)
	}
	return &liveCloud{cfg: cfg, cfgErr: cfgErr, region: region, accountID: os.Getenv("FC_ACCOUNT_ID"), chain: chain}, nil
}

func (l *liveCloud) config() (*config.Config, error) { return l.cfg, l.cfgErr }

func (l *liveCloud) logLevel() (slog.Level, bool) {
	if l.cfg == nil {
		return 0, false
	}
	return l.cfg.LogLevel, true
}

func (l *liveCloud) invocation(requestID string) (handler.Invocation, error) {
	m, err := l.chain.GetCredential()
	if err != nil {
		return handler.Invocation{}, fmt.Errorf("get credentials from the Alibaba Cloud credential chain "+
			"(ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN, profile or RAM role): %w", err)
	}
	return handler.Invocation{
		RequestID: requestID,
		Region:    l.region,
		AccountID: l.accountID,
		Credentials: scan.Credentials{
			AccessKeyID:     deref(m.AccessKeyId),
			AccessKeySecret: deref(m.AccessKeySecret),
			SecurityToken:   deref(m.SecurityToken),
		},
	}, nil
}

func (l *liveCloud) describe() string { return fmt.Sprintf("live cloud, region %q", l.region) }
func (l *liveCloud) close()           {}

func openCloud(live bool) (cloud, error) {
	if live {
		return openLive()
	}
	return openDemo()
}

// openScanCloud is openCloud for the commands that scan. A live scan needs
// the account id: it is the owner of connections without authorizations and
// of ERROR findings, and so part of their finding_uid, which must come out as
// the function's does for the same judgement.
func openScanCloud(live bool) (cloud, error) {
	if !live {
		return openDemo()
	}
	l, err := openLive()
	if err != nil {
		return nil, err
	}
	if l.accountID == "" {
		return nil, errors.New("set FC_ACCOUNT_ID to the scanned account's UID: it is the owner (and part of the " +
			"finding_uid) of findings about connections without authorizations and of ERROR findings")
	}
	return l, nil
}

// newRequestID makes an id shaped like FC's: 1-<seconds in hex>-<random>.
func newRequestID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return fmt.Sprintf("1-%08x-%s", now.Unix(), hex.EncodeToString(b[:]))
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
