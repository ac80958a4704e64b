package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/endpoint"
)

const emulateDescription = `
Starts the emulated cloud on loopback — the VPC API, Log Service, STS,
ResourceManager and Tablestore (with the state table) — for tests and other
tools, and prints on one line a JSON object with their endpoints and the test
credentials they accept: the environment variables that point vpnauthz at them
(VPC_ENDPOINT, SLS_ENDPOINT, SLS_PROJECT, SLS_LOGSTORE, STS_ENDPOINT,
RESOURCEMANAGER_ENDPOINT, TABLESTORE_ENDPOINT, STATE_STORE,
ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
ALIBABA_CLOUD_SECURITY_TOKEN, FC_ACCOUNT_ID, FC_REGION) and vpcEndpoint,
slsEndpoint, stsEndpoint, resourceManagerEndpoint, tablestoreEndpoint,
stateStore, project, logstore, accountId and region. The credentials are an
STS key, secret and token made at random for this run. It serves until SIGINT
or SIGTERM.

Without --inventory the cloud holds the demo organisation as well: the demo
account manages a Resource Directory of three members, each with a role
vpnauthz-auditor that requires the ExternalId in MEMBER_ROLE_EXTERNAL_ID; the
output then also sets ACCOUNTS=resource-directory and MEMBER_ROLE_EXTERNAL_ID,
so that a scan pointed at it covers the organisation.

With --format env it prints instead one "export NAME=value" line per
variable, shell-quoted, for the endpoints, project, logstore, state store,
credentials, account and region (and the organisation's settings), and a
SCAN_TARGETS covering every region of the inventory, so that

  eval "$(vpnauthz emulate --format env)"

in another shell (or the first lines of its output) point vpnauthz at it.

--addr is the VPC API's address; Log Service listens on the next free port
(on any free port when --addr's port is 0), the other services on any free
port. The project "vpnauthz-demo" and its
logstore "findings" exist from the start.

Without --inventory the VPC API holds the demo inventory. An inventory file is
JSON: the owner account and, per region, its IPsec-VPN connections in listing
order, each with its cross-account authorizations (CreationTime in epoch
milliseconds; AliUid 0 means the AccountId) and optionally an Error the API
answers for it:

  {
    "AccountId": "1234567890123456",
    "Regions": {
      "cn-hangzhou": [
        {"VpnConnectionId": "vco-example0000001", "Name": "to-partner",
         "Authorizations": [{"AliUid": 1234567890123456, "BindUid": 1999000011112222,
           "BindProduct": "CEN", "BindInstance": "cen-partner00001",
           "CreationTime": 1767225600000}]},
        {"VpnConnectionId": "vco-example0000002", "Authorizations": [],
         "Error": {"Code": "Forbidden.RAM", "HTTPStatus": 403,
           "Message": "User not authorized to operate on the specified resource."}}
      ]
    }
  }

Unknown fields and malformed ids are errors naming their place in the file.

--org FILE serves an organisation instead (not with --inventory): a JSON
file {"Inventory": the management account's inventory, "RoleName",
"ExternalID", "Members": [{"AccountID", "Inventory", "DisplayName",
"Status", "DenyAssumeRole"}]}. Every member is an account of its own on the
VPC API, listed in the Resource Directory, with the role RoleName (default
vpnauthz-auditor) trusting the management account and requiring ExternalID;
the tokens STS issues for it are accepted by the VPC API for that member
only. The output then sets ACCOUNTS=resource-directory, MEMBER_ROLE_NAME and
MEMBER_ROLE_EXTERNAL_ID.

--stats prints, when the cloud stops, one more JSON line on standard output:
{"stats": {"vpcCalls", "vpcThrottled", "vpcErrors", "assumeRole",
"tokensIssued", "tablestoreCalls", "tablestoreGetRange",
"tablestoreBatchWriteRow", "tablestoreRowsRead", "tablestoreRowsWritten"}},
the calls the emulated services answered since the cloud started (Tablestore's
include the state table's creation). With --stats, SIGUSR1 prints the same
line at once, without stopping, so that a benchmark can count the calls of
each scan.

--latency and --quota make the VPC API behave like the real one under load,
for benchmarks: every call waits --latency before it is answered, and each
region and action has a token bucket of --quota calls a second (up to --burst
at once); calls beyond it get 400 Throttling.User, as the real quota answers.`

func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("emulate", "[--addr HOST:PORT] [--inventory FILE | --org FILE] [--format json|env] [--stats] [--latency D] [--quota N [--burst N]]", emulateDescription)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `address` of the VPC API (port 0: any free port)")
	inventoryPath := fs.String("inventory", "", "inventory JSON `file` (default: the demo inventory)")
	orgPath := fs.String("org", "", "organisation JSON `file`: the management account's inventory and its members'")
	stats := fs.Bool("stats", false, "print the services' call counters as one JSON line when stopping")
	latency := fs.Duration("latency", 0, "`delay` added to every VPC API call (like 50ms)")
	quota := fs.Float64("quota", 0, "VPC API `calls` a second per region and action; beyond it, Throttling.User (0: no quota)")
	burst := fs.Int("burst", 1, "`calls` a region and action may make at once within --quota")
	format := envFormatJSON
	fs.Var(&format, "format", "`output`: json (one JSON object) or env (export lines for a shell)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if err := checkFaultFlags(*latency, *quota, *burst); err != nil {
		fmt.Fprintf(stderr, "vpnauthz emulate: %v\n", err)
		return exitUsage
	}
	slsAddr, err := slsAddrAfter(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz emulate: --addr %s: %v\n", *addr, err)
		return exitUsage
	}
	if *orgPath != "" && *inventoryPath != "" {
		fmt.Fprintln(stderr, "vpnauthz emulate: --org and --inventory: give one; the organisation file holds the management account's inventory")
		return exitUsage
	}
	now := time.Now()
	inv, org := emulator.Demo(now), emulator.DemoOrganization(now)
	if *inventoryPath != "" {
		if inv, err = vpcemu.LoadInventory(*inventoryPath); err != nil {
			fmt.Fprintf(stderr, "vpnauthz emulate: --inventory: %v\n", err)
			return exitUsage
		}
		org = nil
	}
	if *orgPath != "" {
		if inv, org, err = emulator.LoadOrganization(*orgPath); err != nil {
			fmt.Fprintf(stderr, "vpnauthz emulate: --org: %v\n", err)
			return exitUsage
		}
	}
	c, err := emulator.Start(emulator.Options{Inventory: inv, Organization: org, VPCAddr: *addr, SLSAddr: slsAddr})
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz emulate: %v\n", err)
		return exitError
	}
	defer c.Close()
	c.VPC.SetLatency(*latency)
	if *quota > 0 {
		c.VPC.SetQuota(*quota, *burst)
	}

	env := c.Env()
	if c.StateTable != "" {
		env["STATE_STORE"] = c.StateLocation().String()
	}
	if org != nil {
		env["ACCOUNTS"] = "resource-directory"
		env["MEMBER_ROLE_EXTERNAL_ID"] = org.ExternalID
		if *orgPath != "" {
			env["MEMBER_ROLE_NAME"] = c.Organization.RoleName
		}
	}
	// printed serialises the lines on stdout: --stats' answers to SIGUSR1
	// come from another goroutine.
	var printed sync.Mutex
	ready := make(chan struct{})
	if *stats {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		defer func() {
			printed.Lock()
			defer printed.Unlock()
			printStats(stdout, c)
		}()
		// Answered once the endpoints are out: the first line is theirs.
		defer startStatsOnSignal(ready, usr1, &printed, stdout, c)()
	}
	if format == envFormatEnv {
		env["SCAN_TARGETS"] = coveringTargets(inv)
		printed.Lock()
		for _, k := range slices.Sorted(maps.Keys(env)) {
			fmt.Fprintf(stdout, "export %s=%s\n", k, shellQuote(env[k]))
		}
		printed.Unlock()
		close(ready)
		fmt.Fprintln(stderr, "vpnauthz emulate: serving until interrupted")
		<-ctx.Done()
		fmt.Fprintln(stderr, "vpnauthz emulate: stopping")
		return exitOK
	}
	out := env
	out["vpcEndpoint"] = c.VPC.URL()
	out["slsEndpoint"] = c.SLS.Endpoint()
	out["stsEndpoint"] = c.STS.URL()
	out["resourceManagerEndpoint"] = c.RM.URL()
	out["tablestoreEndpoint"] = c.OTS.Endpoint()
	out["stateStore"] = c.StateLocation().String()
	out["project"] = c.Project
	out["logstore"] = c.Logstore
	out["accountId"] = c.AccountID
	out["region"] = c.Region
	line, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(stderr, "vpnauthz emulate: %v\n", err)
		return exitError
	}
	printed.Lock()
	fmt.Fprintf(stdout, "%s\n", line)
	printed.Unlock()
	close(ready)
	fmt.Fprintln(stderr, "vpnauthz emulate: serving until interrupted")
	<-ctx.Done()
	fmt.Fprintln(stderr, "vpnauthz emulate: stopping")
	return exitOK
}

// EmulateStats are the counters --stats prints when the cloud stops.
type EmulateStats struct {
	VPCCalls     int `json:"vpcCalls"`
	VPCThrottled int `json:"vpcThrottled"`
	VPCErrors    int `json:"vpcErrors"`
	AssumeRole   int `json:"assumeRole"`
	TokensIssued int `json:"tokensIssued"`
	// Tablestore: every request, and the two the scan's state uses.
	TablestoreCalls         int `json:"tablestoreCalls"`
	TablestoreGetRange      int `json:"tablestoreGetRange"`
	TablestoreBatchWriteRow int `json:"tablestoreBatchWriteRow"`
	TablestoreRowsRead      int `json:"tablestoreRowsRead"`
	TablestoreRowsWritten   int `json:"tablestoreRowsWritten"`
}

func printStats(w io.Writer, c *emulator.Cloud) {
	var s EmulateStats
	for _, n := range c.VPC.Stats().ByKey {
		s.VPCCalls += n.Calls
		s.VPCThrottled += n.Throttled
		s.VPCErrors += n.Errors
	}
	st := c.STS.Stats()
	s.AssumeRole, s.TokensIssued = st.AssumeRole, st.Issued
	ots := c.OTS.Stats()
	s.TablestoreCalls = ots.Requests
	s.TablestoreGetRange = ots.Calls[otsemu.OpGetRange]
	s.TablestoreBatchWriteRow = ots.Calls[otsemu.OpBatchWriteRow]
	s.TablestoreRowsRead, s.TablestoreRowsWritten = ots.RowsRead, ots.RowsWritten
	line, _ := json.Marshal(map[string]EmulateStats{"stats": s})
	fmt.Fprintf(w, "%s\n", line)
}

// startStatsOnSignal prints the counters on every signal from usr1 once
// ready is closed; the function it returns stops it and waits for it.
func startStatsOnSignal(ready <-chan struct{}, usr1 <-chan os.Signal, printed *sync.Mutex, w io.Writer, c *emulator.Cloud) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ready:
		case <-stop:
			return
		}
		for {
			select {
			case <-usr1:
				printed.Lock()
				printStats(w, c)
				printed.Unlock()
			case <-stop:
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// checkFaultFlags refuses values the emulator would otherwise take silently:
// a negative latency would be no latency, and a burst below 1 would be 1.
func checkFaultFlags(latency time.Duration, quota float64, burst int) error {
	switch {
	case latency < 0:
		return fmt.Errorf("--latency %s: must not be negative", latency)
	case quota < 0 || math.IsNaN(quota) || math.IsInf(quota, 0):
		return fmt.Errorf("--quota %v: must be a number of calls a second, 0 for none", quota)
	case burst < 1:
		return fmt.Errorf("--burst %d: must be at least 1", burst)
	}
	return nil
}

// slsAddrAfter picks Log Service's address: the next free port after the VPC
// API's, or any free port when that is 0. Only loopback hosts are accepted:
// the emulators print their credentials and speak plain HTTP.
func slsAddrAfter(vpcAddr string) (string, error) {
	host, portText, err := net.SplitHostPort(vpcAddr)
	if err != nil {
		return "", err
	}
	if !endpoint.IsLoopbackHost(host) {
		return "", errors.New("the emulators listen on loopback only (127.0.0.1, ::1 or localhost)")
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", fmt.Errorf("port %q is not a number from 0 to 65535", portText)
	}
	if port == 0 {
		return net.JoinHostPort(host, "0"), nil
	}
	for p := port + 1; p <= 65535 && p <= port+100; p++ {
		candidate := net.JoinHostPort(host, strconv.Itoa(p))
		ln, err := net.Listen("tcp", candidate)
		if err == nil {
			_ = ln.Close()
			return candidate, nil
		}
	}
	return "", fmt.Errorf("no free port after %d for Log Service", port)
}

// envFormat is emulate's --format.
type envFormat string

const (
	envFormatJSON envFormat = "json"
	envFormatEnv  envFormat = "env"
)

func (f *envFormat) String() string { return string(*f) }

func (f *envFormat) Set(v string) error {
	switch envFormat(v) {
	case envFormatJSON, envFormatEnv:
		*f = envFormat(v)
		return nil
	}
	return errors.New("want json or env")
}

// coveringTargets is a SCAN_TARGETS that covers every connection of inv:
// each of its regions whole.
func coveringTargets(inv *vpcemu.Inventory) string {
	regions := slices.Sorted(maps.Keys(inv.Regions))
	for i, r := range regions {
		regions[i] = r + ":*"
	}
	return strings.Join(regions, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote gives s as one word of a POSIX shell: bare when it is made of
// characters no shell interprets, else in single quotes.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
