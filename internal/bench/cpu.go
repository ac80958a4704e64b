package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"vpnauthz/internal/emulator/fcemu"
)

// BinaryScan is one timer scan run by the built function binary under an
// emulated FC runtime, measured from outside the process.
type BinaryScan struct {
	Wall      time.Duration
	CPU       time.Duration // user + system time of the process during the scan
	VPCCalls  int
	Throttled int
	Findings  int // delivered to Log Service
	// Changes are the lifecycle transitions, delivered as change logs with
	// the findings; StateWarning is the summary's state_warning ("" when
	// the state was read and written, or not configured).
	Changes      int
	StateWarning string
	Complete     bool
	// Connections were read; Accounts were scanned (an organisation scan).
	Connections, Accounts int
	// GCHeap is the largest heap a garbage collection of the scan started
	// from, as the runtime reports it (GODEBUG=gctrace=1), in bytes: whole
	// MiB, and at most the heap goal, so it lags a peak between two
	// collections.
	GCHeap uint64
}

// CPUPerCall is the process's CPU time per VPC API call.
func (b BinaryScan) CPUPerCall() time.Duration {
	if b.VPCCalls == 0 {
		return 0
	}
	return b.CPU / time.Duration(b.VPCCalls)
}

// BinaryOptions configure MeasureBinaryScan.
type BinaryOptions struct {
	Rate float64 // VPC_API_RATE; 0: the function's default
	// Dir holds the policy file written for the run.
	Dir string
	// Targets is SCAN_TARGETS; default every connection of Targets().
	Targets []string
	// Env is set on top of the cloud's, like ACCOUNTS and MEMBER_ROLE_NAME.
	Env map[string]string
}

// MeasureBinaryScan execs binary as FC would, pointed at cloud with the
// benchmark's policy and every region's connections as targets. It answers
// GET /health first, so that the start of the process is not counted, then
// runs one timer scan and reads the process's CPU time (/proc/PID/stat)
// before and after: everything the function does for the scan, SDK calls,
// judgement, logs and Log Service delivery included.
func MeasureBinaryScan(ctx context.Context, binary string, cloud Cloud, opts BinaryOptions) (BinaryScan, error) {
	policyFile := filepath.Join(opts.Dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(policyYAML()), 0o644); err != nil {
		return BinaryScan{}, err
	}
	rt, err := fcemu.New()
	if err != nil {
		return BinaryScan{}, err
	}
	defer rt.Close()

	targets := opts.Targets
	if targets == nil {
		for _, t := range Targets() {
			targets = append(targets, t.Region+":"+t.ConnectionID)
		}
	}
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "FC_RUNTIME_API="+rt.Addr(), "GODEBUG=gctrace=1",
		"SCAN_TARGETS="+strings.Join(targets, " "), "POLICY_FILE="+policyFile,
		// The trust lists come from the policy file alone.
		"TRUSTED_ACCOUNT_IDS=", "TRUSTED_CEN_IDS=", "MAX_AUTHORIZATION_AGE_DAYS=")
	for k, v := range cloud.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// The throughput figures are of scans without a state store, whatever
	// the emulated cloud offers: the lifecycle scenario asks for one.
	if _, ok := opts.Env["STATE_STORE"]; !ok {
		cmd.Env = append(cmd.Env, "STATE_STORE=")
	}
	for k, v := range opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if opts.Rate > 0 {
		cmd.Env = append(cmd.Env, "VPC_API_RATE="+strconv.FormatFloat(opts.Rate, 'f', -1, 64))
	}
	cmd.Stdout = io.Discard
	gc := &gcTrace{}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return BinaryScan{}, err
	}
	if err := cmd.Start(); err != nil {
		return BinaryScan{}, err
	}
	traced := make(chan struct{})
	go func() {
		gc.read(stderr)
		close(traced)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-traced
		_ = cmd.Wait()
	}()

	inv := fcemu.Invocation{
		Payload:         healthEvent,
		AccessKeyID:     cloud.Credentials.AccessKeyID,
		AccessKeySecret: cloud.Credentials.AccessKeySecret,
		SecurityToken:   cloud.Credentials.SecurityToken,
		Region:          cloud.Region,
		AccountID:       cloud.AccountID,
		Timeout:         time.Hour,
	}
	res, err := rt.Invoke(ctx, inv)
	if err != nil {
		return BinaryScan{}, err
	}
	if err := checkAnswer(FirstHealth, res); err != nil {
		return BinaryScan{}, err
	}

	before, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return BinaryScan{}, err
	}
	gc.reset()
	start := time.Now()
	inv.Payload = timerEvent
	res, err = rt.Invoke(ctx, inv)
	wall := time.Since(start)
	if err != nil {
		return BinaryScan{}, err
	}
	after, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return BinaryScan{}, err
	}
	if res.Error != nil {
		return BinaryScan{}, fmt.Errorf("the scan failed: %s: %s", res.Error.ErrorType, res.Error.ErrorMessage)
	}
	var r struct {
		Complete bool
		Delivery struct{ Delivered bool }
		Accounts *struct{ Scanned int }
		Summary  struct {
			Connections       int    `json:"connections"`
			APICalls          int    `json:"api_calls"`
			Throttled         int    `json:"throttled"`
			FindingsDelivered int    `json:"findings_delivered"`
			Changes           int    `json:"changes"`
			StateWarning      string `json:"state_warning"`
		}
	}
	if err := json.Unmarshal(res.Response, &r); err != nil {
		return BinaryScan{}, fmt.Errorf("the scan answered %.200s: %w", res.Response, err)
	}
	if !r.Delivery.Delivered {
		return BinaryScan{}, fmt.Errorf("the scan's findings were not delivered: %.300s", res.Response)
	}
	accounts := 1
	if r.Accounts != nil {
		accounts = r.Accounts.Scanned
	}
	return BinaryScan{
		Connections:  r.Summary.Connections,
		Accounts:     accounts,
		Wall:         wall,
		CPU:          after - before,
		VPCCalls:     r.Summary.APICalls,
		Throttled:    r.Summary.Throttled,
		Findings:     r.Summary.FindingsDelivered,
		Changes:      r.Summary.Changes,
		StateWarning: r.Summary.StateWarning,
		Complete:     r.Complete,
		GCHeap:       gc.peak(),
	}, nil
}

// processCPU reads the user and system time of a process, threads that
// ended included, from /proc/PID/stat (fields 14 and 15, in clock ticks of
// 10 ms on Linux).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of the function: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("CPU time of the function: /proc/%d/stat reads %.100q", pid, s)
	}
	fields := strings.Fields(s[i+1:]) // fields[0] is field 3
	if len(fields) < 13 {
		return 0, fmt.Errorf("CPU time of the function: /proc/%d/stat reads %.100q", pid, s)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time of the function: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on every Linux ABI Go supports
	return time.Duration(ticks) * clockTick, nil
}

// gcTrace keeps the largest heap at the start of a collection from the
// runtime's gctrace lines ("gc 3 @0.1s 1%: …, 4->5->1 MB, 5 MB goal, …").
type gcTrace struct {
	mu  sync.Mutex
	max uint64
}

var gcLine = regexp.MustCompile(`^gc \d+ .*: .* (\d+)->\d+->\d+ MB`)

func (g *gcTrace) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	// BENCH_GCTRACE names a file that keeps the binary's gctrace lines, for
	// the live heap after each collection (the third figure).
	var keep io.Writer
	if name := os.Getenv("BENCH_GCTRACE"); name != "" {
		if f, err := os.Create(name); err == nil {
			defer f.Close()
			keep = f
		}
	}
	for sc.Scan() {
		if keep != nil {
			fmt.Fprintln(keep, sc.Text())
		}
		m := gcLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if n, err := strconv.ParseUint(m[1], 10, 64); err == nil {
			g.mu.Lock()
			g.max = max(g.max, n<<20)
			g.mu.Unlock()
		}
	}
}

func (g *gcTrace) reset() {
	g.mu.Lock()
	g.max = 0
	g.mu.Unlock()
}

func (g *gcTrace) peak() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// policyYAML is Policy as a policy file.
func policyYAML() string {
	p := Policy()
	var b strings.Builder
	quoted := func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = strconv.Quote(x)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	fmt.Fprintf(&b, "trusted_account_ids: %s\n", quoted(p.TrustedAccountIDs))
	fmt.Fprintf(&b, "trusted_cen_ids: %s\n", quoted(p.TrustedCENIDs))
	fmt.Fprintf(&b, "max_authorization_age_days: %d\n", p.MaxAuthorizationAgeDays)
	b.WriteString("exceptions:\n")
	for _, e := range p.Exceptions {
		fmt.Fprintf(&b, "  - vpn_connection_id: %s\n    bind_uid: %s\n    rules: %s\n    reason: %s\n    expires: %s\n",
			strconv.Quote(e.VpnConnectionID), strconv.Quote(e.BindUID), quoted(e.Rules),
			strconv.Quote(e.Reason), e.Expires.Format(time.DateOnly))
	}
	return b.String()
}
