package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"vpnauthz/handler"
	"vpnauthz/internal/assume"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/endpoint"
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
	// getenv is a variable of the function's environment.
	getenv(name string) string
	close()
}

// demoCloud is the emulated cloud seeded with the demo inventory and
// organisation, with vpnauthz configured by the demo's settings alone, so
// that the demo gives the same verdicts on every machine whatever its
// environment.
type demoCloud struct {
	emu    *emulator.Cloud
	env    map[string]string
	cfg    *config.Config
	cfgErr error
	dir    string
}

// demoOptions adapt the demo cloud to a command.
type demoOptions struct {
	noStateTable bool // setup-state creates it
}

func openDemo(o demoOptions) (*demoCloud, error) {
	now := time.Now()
	c, err := emulator.Start(emulator.Options{Organization: emulator.DemoOrganization(now), NoStateTable: o.noStateTable})
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
	d.env = c.Env()
	for k, v := range emulator.DemoEnv(policyPath) {
		d.env[k] = v
	}
	d.load()
	return d, nil
}

// load reads the configuration from the demo's environment and policy file.
func (d *demoCloud) load() {
	d.cfg, d.cfgErr = config.Load(func(k string) (string, bool) {
		v, ok := d.env[k]
		return v, ok
	}, os.ReadFile)
}

// change changes the demo between two scans (emulator.ChangeDemo) and
// reads the configuration again, since the policy file changed.
func (d *demoCloud) change(now time.Time) ([]emulator.DemoChange, error) {
	changes, err := emulator.ChangeDemo(d.emu, d.dir, now)
	if err != nil {
		return nil, err
	}
	d.load()
	return changes, nil
}

func (d *demoCloud) config() (*config.Config, error) { return d.cfg, d.cfgErr }
func (d *demoCloud) logLevel() (slog.Level, bool)    { return 0, false }
func (d *demoCloud) getenv(k string) string          { return d.env[k] }

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
	members := 0
	if d.emu.Organization != nil {
		members = len(d.emu.Organization.Members)
	}
	return fmt.Sprintf("emulated demo cloud: account %s managing %d members; VPC API %s, Log Service %s (%s/%s), "+
		"STS %s, ResourceManager %s, Tablestore %s (%s)",
		d.emu.AccountID, members, d.emu.VPC.URL(), d.emu.SLS.Endpoint(), d.emu.Project, d.emu.Logstore,
		d.emu.STS.URL(), d.emu.RM.URL(), d.emu.OTS.Endpoint(), d.emu.StateLocation())
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
	// accountFrom says where accountID came from, for describe.
	accountFrom string
	chain       credentials.Credential
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
	return &liveCloud{cfg: cfg, cfgErr: cfgErr, region: region, accountID: os.Getenv("FC_ACCOUNT_ID"),
		accountFrom: "FC_ACCOUNT_ID", chain: chain}, nil
}

func (l *liveCloud) getenv(k string) string { return os.Getenv(k) }

// discoverAccount asks STS (GetCallerIdentity at STS_ENDPOINT, else the
// SDK's endpoint) which account the credential chain's credentials belong to.
func (l *liveCloud) discoverAccount(ctx context.Context) error {
	sts, err := endpoint.ParseRegional(os.Getenv(config.EnvSTSEndpoint))
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvSTSEndpoint, err)
	}
	ep, err := sts.For(l.region)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvSTSEndpoint, err)
	}
	inv, err := l.invocation("")
	if err != nil {
		return err
	}
	id, err := assume.CallerIdentity(ctx, ep, l.region, inv.Credentials, nil)
	if err != nil {
		return fmt.Errorf("FC_ACCOUNT_ID is not set, and asking STS for the account failed "+
			"(set FC_ACCOUNT_ID to the scanned account's UID, or allow sts:GetCallerIdentity): %w", err)
	}
	if id.AccountID == "" {
		return errors.New("FC_ACCOUNT_ID is not set, and STS GetCallerIdentity named no account: set FC_ACCOUNT_ID")
	}
	l.accountID, l.accountFrom = id.AccountID, "STS GetCallerIdentity"
	return nil
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

func (l *liveCloud) describe() string {
	if l.accountID == "" {
		return fmt.Sprintf("live cloud, region %q", l.region)
	}
	return fmt.Sprintf("live cloud, region %q, account %s (from %s)", l.region, l.accountID, l.accountFrom)
}
func (l *liveCloud) close() {}

func openCloud(live bool) (cloud, error) {
	if live {
		return openLive()
	}
	return openDemo(demoOptions{})
}

// openScanCloud is openCloud for the commands that scan. A live scan needs
// the account id: it is the owner of connections without authorizations and
// of ERROR findings, and so part of their finding_uid, which must come out as
// the function's does for the same judgement. Without FC_ACCOUNT_ID it is
// asked of STS.
func openScanCloud(ctx context.Context, live bool) (cloud, error) {
	if !live {
		return openDemo(demoOptions{})
	}
	l, err := openLive()
	if err != nil {
		return nil, err
	}
	if l.accountID == "" {
		if err := l.discoverAccount(ctx); err != nil {
			return nil, err
		}
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
