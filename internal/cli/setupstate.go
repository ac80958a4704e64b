package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"vpnauthz/internal/config"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/statestore"
)

const setupStateDescription = `
Creates, idempotently, the Tablestore table that keeps the finding lifecycle
between scans (STATE_STORE=tablestore://INSTANCE/TABLE): primary key
(partition, finding_uid), one version per column, and a time to live of
400 days, after which a finding no scan has rewritten (resolved, or no
longer scanned) ages out. An existing table is kept as it is: its primary key is
checked, and its time to live reported, not changed. The instance must
exist.

With --live the table is STATE_STORE at TABLESTORE_ENDPOINT (default:
https://INSTANCE.REGION.ots.aliyuncs.com for FC_REGION or
ALIBABA_CLOUD_REGION_ID), with credentials from the Alibaba Cloud credential
chain (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
ALIBABA_CLOUD_SECURITY_TOKEN, a profile or a RAM role); they need
ots:CreateTable and ots:DescribeTable on the instance.

Without --live it runs on the built-in emulated Tablestore, so that it can be
tried anywhere, and prints the table the service stored.

Exit status: 0 when the table is ready, 1 when it could not be created or
checked, 2 for a bad command line or a STATE_STORE or TABLESTORE_ENDPOINT
that is missing or malformed.`

func runSetupState(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("setup-state", "[--live] [--timeout D]", setupStateDescription)
	live := fs.Bool("live", false, "set up the Tablestore table of the environment instead of the emulated one")
	timeout := fs.Duration("timeout", time.Minute, "how long the setup may take")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "vpnauthz setup-state: --timeout %v: want a positive duration\n", *timeout)
		return exitUsage
	}
	var c cloud
	var err error
	if *live {
		c, err = openLive()
	} else {
		c, err = openDemo(demoOptions{noStateTable: true})
	}
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-state: %v\n", err)
		return exitError
	}
	defer c.close()

	region := regionOf(c)
	opts, err := stateStoreOptions(c.getenv, region)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-state: %v\n", err)
		return exitUsage
	}
	inv, err := c.invocation(newRequestID(time.Now()))
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-state: %v\n", err)
		return exitError
	}
	opts.Credentials = statestore.Credentials{
		AccessKeyID:     inv.Credentials.AccessKeyID,
		AccessKeySecret: inv.Credentials.AccessKeySecret,
		SecurityToken:   inv.Credentials.SecurityToken,
	}
	opts.TTL = statestore.DefaultTTL
	st, err := statestore.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-state: %v\n", err)
		return exitUsage
	}
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := st.Setup(sctx)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-state: %v\n", err)
		return exitError
	}

	if d, ok := c.(*demoCloud); ok {
		fmt.Fprintln(stdout, c.describe())
		info, ok := d.emu.OTS.Table(opts.Location.Table)
		if !ok {
			fmt.Fprintf(stderr, "vpnauthz setup-state: the emulated Tablestore holds no table %s\n", opts.Location.Table)
			return exitError
		}
		defer fmt.Fprintf(stdout, "as stored by the emulated Tablestore: primary key %v, time to live %s, %d version(s) per column\n",
			info.PrimaryKey, ttlText(time.Duration(info.TimeToLive)*time.Second), info.MaxVersions)
	}
	what := "exists"
	if res.Created {
		what = "created"
	}
	where := opts.Endpoint
	if where == "" {
		where = "the default endpoint of " + region
	}
	fmt.Fprintf(stdout, "state table %s at %s: %s, time to live %s\n", opts.Location, where, what, ttlText(res.TTL))
	return exitOK
}

// regionOf is the function's region where c runs.
func regionOf(c cloud) string {
	switch c := c.(type) {
	case *demoCloud:
		return c.emu.Region
	case *liveCloud:
		return c.region
	}
	return ""
}

// stateStoreOptions reads where the state store is from the function's
// environment: STATE_STORE and TABLESTORE_ENDPOINT for region. The errors
// name the variable.
func stateStoreOptions(getenv func(string) string, region string) (statestore.Options, error) {
	v := getenv(statestore.EnvStateStore)
	if v == "" {
		return statestore.Options{}, fmt.Errorf("%s is not set: want tablestore://INSTANCE/TABLE", statestore.EnvStateStore)
	}
	loc, err := statestore.ParseStateStore(v)
	if err != nil {
		return statestore.Options{}, err
	}
	opts := statestore.Options{Location: loc, Region: region}
	r, err := endpoint.ParseRegional(getenv(config.EnvTablestoreEndpoint))
	if err != nil {
		return statestore.Options{}, fmt.Errorf("%s: %w", config.EnvTablestoreEndpoint, err)
	}
	if !r.IsZero() {
		ep, err := r.For(region)
		if err != nil {
			return statestore.Options{}, fmt.Errorf("%s: %w", config.EnvTablestoreEndpoint, err)
		}
		opts.Endpoint = ep.URL()
	}
	return opts, nil
}

func ttlText(d time.Duration) string {
	if d <= 0 {
		return "none (rows never expire)"
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
