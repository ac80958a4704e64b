package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/slssink"
)

const setupSLSDescription = `
Creates, idempotently, the logstore findings go to and its field index: one
key for every field of a finding and of the scan summary, identifiers as whole
tokens, counters as numbers for SQL. An existing logstore is kept and an
existing index replaced, so it is safe to run again after an upgrade. The
project must exist.

With --live the logstore is SLS_PROJECT/SLS_LOGSTORE at SLS_ENDPOINT (default:
the Log Service endpoint of FC_REGION or ALIBABA_CLOUD_REGION_ID), with
credentials from the Alibaba Cloud credential chain (ALIBABA_CLOUD_ACCESS_KEY_ID,
ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN, a profile or a
RAM role); they need log:CreateLogStore, log:CreateIndex, log:UpdateIndex,
log:CreateDashboard, log:UpdateDashboard, log:CreateAlert and log:UpdateAlert.

It also creates, or brings back to the current definition, the dashboard
LOGSTORE-posture and the alert LOGSTORE-high-open: one alert per finding_uid
whose newest transition is opened or reopened at high severity, recovered when
the finding is resolved or suppressed. The alert notifies through the action
policy given by --alert-action-policy (default SLS_ALERT_ACTION_POLICY_ID);
without one it fires in the project's alert center and notifies nobody.

Without --live it runs on the built-in emulated Log Service, so that it can be
tried anywhere, and prints the index the service stored.`

func runSetupSLS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("setup-sls", "[--live] [--timeout D] [--alert-action-policy ID]", setupSLSDescription)
	live := fs.Bool("live", false, "set up the Log Service of the environment instead of the emulated one")
	timeout := fs.Duration("timeout", time.Minute, "how long the setup may take")
	actionPolicy := fs.String("alert-action-policy", os.Getenv("SLS_ALERT_ACTION_POLICY_ID"), "the SLS action policy the alert notifies through")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	c, err := openCloud(*live)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-sls: %v\n", err)
		return exitError
	}
	defer c.close()
	cfg, cfgErr := c.config()
	if cfgErr != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-sls: invalid configuration: %v\n", cfgErr)
		return exitError
	}
	if err := cfg.DeliveryConfigured(); err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-sls: %v\n", err)
		return exitError
	}
	inv, err := c.invocation(newRequestID(time.Now()))
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-sls: %v\n", err)
		return exitError
	}
	endpoint := cfg.SLSEndpointFor(inv.Region)
	if endpoint.IsZero() {
		fmt.Fprintf(stderr, "vpnauthz setup-sls: no Log Service endpoint for region %q: set SLS_ENDPOINT\n", inv.Region)
		return exitError
	}
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := slssink.Options{Endpoint: endpoint, Project: cfg.SLSProject, Logstore: cfg.SLSLogstore, Credentials: inv.Credentials}
	alerting := slssink.Alerting{ActionPolicyID: *actionPolicy, Region: inv.Region}
	if err := slssink.SetupWithAlerting(sctx, opts, alerting); err != nil {
		fmt.Fprintf(stderr, "vpnauthz setup-sls: %v\n", err)
		return exitError
	}

	keys := indexKeys(slssink.Index().Keys)
	source := "as sent"
	if ir, ok := c.(indexReader); ok {
		// Show what the emulated service stored, not merely what was sent.
		stored, ok := ir.storedIndex(opts.Project, opts.Logstore)
		if !ok {
			fmt.Fprintf(stderr, "vpnauthz setup-sls: the emulated Log Service holds no index for %s/%s\n", opts.Project, opts.Logstore)
			return exitError
		}
		var idx struct {
			Keys map[string]struct {
				Type string `json:"type"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(stored, &idx); err != nil {
			fmt.Fprintf(stderr, "vpnauthz setup-sls: read back the index: %v\n", err)
			return exitError
		}
		keys = map[string]string{}
		for k, v := range idx.Keys {
			keys[k] = v.Type
		}
		source = "as stored by the emulated Log Service"
		fmt.Fprintf(stdout, "%s\n", c.describe())
	}
	fmt.Fprintf(stdout, "logstore %s/%s at %s: ready\n", opts.Project, opts.Logstore, endpoint)
	fmt.Fprintf(stdout, "dashboard %s/%s: ready\n", opts.Project, slssink.DashboardName(opts.Logstore))
	notifies := "action policy " + alerting.ActionPolicyID
	if alerting.ActionPolicyID == "" {
		notifies = "no action policy: nobody is notified until SLS_ALERT_ACTION_POLICY_ID names one"
	}
	fmt.Fprintf(stdout, "alert %s/%s: ready (%s)\n", opts.Project, slssink.AlertName(opts.Logstore), notifies)
	fmt.Fprintf(stdout, "field index (%s): %d keys\n", source, len(keys))
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, k := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", k, keys[k])
	}
	_ = tw.Flush()
	return exitOK
}

// indexKeys gives the type of each key of an index.
func indexKeys(m map[string]sls.IndexKey) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Type
	}
	return out
}

// indexReader is a cloud that can show the index its Log Service stored.
type indexReader interface {
	storedIndex(project, logstore string) ([]byte, bool)
}

func (d *demoCloud) storedIndex(project, logstore string) ([]byte, bool) {
	return d.emu.SLS.Index(project, logstore)
}
