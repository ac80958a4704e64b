package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/scan"
)

// Cloud is where a benchmark run sends its calls: the endpoints and the
// credential of an emulated cloud, in this process or another.
type Cloud struct {
	VPCEndpoint string // http://127.0.0.1:PORT
	SLSEndpoint string // http://127.0.0.1:PORT
	Project     string
	Logstore    string
	AccountID   string
	Region      string // the function's region
	Credentials scan.Credentials
	// Env is the environment that points the function at this cloud.
	Env map[string]string
}

// InProcess describes an emulated cloud started in this process.
func InProcess(c *emulator.Cloud) Cloud {
	return Cloud{
		VPCEndpoint: c.VPC.URL(),
		SLSEndpoint: c.SLS.Endpoint(),
		Project:     c.Project,
		Logstore:    c.Logstore,
		AccountID:   c.AccountID,
		Region:      c.Region,
		Credentials: scan.Credentials{
			AccessKeyID:     c.Credentials.AccessKeyID,
			AccessKeySecret: c.Credentials.AccessKeySecret,
			SecurityToken:   c.Credentials.SecurityToken,
		},
		Env: c.Env(),
	}
}

// Faults are the VPC API's latency and quota in an emulated cloud.
type Faults struct {
	Latency time.Duration
	Quota   float64 // calls a second per region and action; 0: none
	Burst   int
}

// External is an emulated cloud served by another process (the built
// `vpnauthz emulate`), so that the emulators' memory — Log Service keeps
// every log it receives — stays out of the heap measured here.
type External struct {
	Cloud
	cmd    *exec.Cmd
	exited chan error
	stderr *tailBuffer
	stats  chan EmulatorStats
}

// EmulatorStats are the calls the emulated cloud answered, as `vpnauthz
// emulate --stats` prints them when it stops.
type EmulatorStats struct {
	VPCCalls     int `json:"vpcCalls"`
	VPCThrottled int `json:"vpcThrottled"`
	VPCErrors    int `json:"vpcErrors"`
	AssumeRole   int `json:"assumeRole"`
	TokensIssued int `json:"tokensIssued"`
	// Tablestore: every request (the state table's creation at start
	// included), the state's range reads and batched writes, and rows.
	TablestoreCalls         int `json:"tablestoreCalls"`
	TablestoreGetRange      int `json:"tablestoreGetRange"`
	TablestoreBatchWriteRow int `json:"tablestoreBatchWriteRow"`
	TablestoreRowsRead      int `json:"tablestoreRowsRead"`
	TablestoreRowsWritten   int `json:"tablestoreRowsWritten"`
}

// Sub is the calls answered between an earlier snapshot o and s.
func (s EmulatorStats) Sub(o EmulatorStats) EmulatorStats {
	return EmulatorStats{
		VPCCalls:                s.VPCCalls - o.VPCCalls,
		VPCThrottled:            s.VPCThrottled - o.VPCThrottled,
		VPCErrors:               s.VPCErrors - o.VPCErrors,
		AssumeRole:              s.AssumeRole - o.AssumeRole,
		TokensIssued:            s.TokensIssued - o.TokensIssued,
		TablestoreCalls:         s.TablestoreCalls - o.TablestoreCalls,
		TablestoreGetRange:      s.TablestoreGetRange - o.TablestoreGetRange,
		TablestoreBatchWriteRow: s.TablestoreBatchWriteRow - o.TablestoreBatchWriteRow,
		TablestoreRowsRead:      s.TablestoreRowsRead - o.TablestoreRowsRead,
		TablestoreRowsWritten:   s.TablestoreRowsWritten - o.TablestoreRowsWritten,
	}
}

// StartExternal runs binary's emulate command on the inventory in file with
// the given faults, and waits for it to print its endpoints.
func StartExternal(ctx context.Context, binary, file string, f Faults) (*External, error) {
	return startExternal(ctx, binary, []string{"emulate", "--inventory", file}, f)
}

// StartExternalOrg runs binary's emulate command on the organisation file
// WriteOrg wrote, counting the calls it answers (Stop gives them).
func StartExternalOrg(ctx context.Context, binary, file string, f Faults) (*External, error) {
	return startExternal(ctx, binary, []string{"emulate", "--org", file, "--stats"}, f)
}

// StartExternalStats runs binary's emulate command on the inventory in
// file, counting the calls it answers: Snapshot gives them so far, Stop at
// the end. Its Env holds STATE_STORE, the state table it created.
func StartExternalStats(ctx context.Context, binary, file string, f Faults) (*External, error) {
	return startExternal(ctx, binary, []string{"emulate", "--inventory", file, "--stats"}, f)
}

func startExternal(ctx context.Context, binary string, args []string, f Faults) (*External, error) {
	if f.Latency > 0 {
		args = append(args, "--latency", f.Latency.String())
	}
	if f.Quota > 0 {
		args = append(args, "--quota", strconv.FormatFloat(f.Quota, 'f', -1, 64), "--burst", strconv.Itoa(max(f.Burst, 1)))
	}
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	e := &External{cmd: cmd, exited: make(chan error, 1), stderr: &tailBuffer{}, stats: make(chan EmulatorStats, 16)}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the emulated cloud: %w", err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		// What follows are --stats' lines, printed on SIGUSR1 and on stop.
		for sc.Scan() {
			var s struct{ Stats *EmulatorStats }
			if json.Unmarshal(sc.Bytes(), &s) == nil && s.Stats != nil {
				e.stats <- *s.Stats
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(e.stats)
	}()
	go func() { e.exited <- cmd.Wait() }()

	select {
	case line, ok := <-lines:
		if !ok {
			e.Close()
			return nil, fmt.Errorf("the emulated cloud printed no endpoints: %s", e.stderr)
		}
		var env map[string]string
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			e.Close()
			return nil, fmt.Errorf("the emulated cloud printed %q: %w", line, err)
		}
		e.Cloud = Cloud{
			VPCEndpoint: env["vpcEndpoint"],
			SLSEndpoint: env["slsEndpoint"],
			Project:     env["project"],
			Logstore:    env["logstore"],
			AccountID:   env["accountId"],
			Region:      env["FC_REGION"],
			Credentials: scan.Credentials{
				AccessKeyID:     env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
				AccessKeySecret: env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
				SecurityToken:   env["ALIBABA_CLOUD_SECURITY_TOKEN"],
			},
			Env: map[string]string{},
		}
		for k, v := range env {
			if strings.ToUpper(k) == k {
				e.Env[k] = v
			}
		}
		return e, nil
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("the emulated cloud did not start within a minute")
	}
}

// Close stops the emulated cloud and waits for it.
func (e *External) Close() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// Snapshot asks the emulated cloud (started with StartExternalOrg or
// StartExternalStats) for the calls it has answered so far, without
// stopping it.
func (e *External) Snapshot() (EmulatorStats, error) {
	if err := e.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return EmulatorStats{}, fmt.Errorf("ask the emulated cloud for its counters: %w", err)
	}
	select {
	case s, ok := <-e.stats:
		if ok {
			return s, nil
		}
	case <-time.After(10 * time.Second):
	}
	return EmulatorStats{}, fmt.Errorf("the emulated cloud printed no counters: %s", e.stderr)
}

// Stop stops the emulated cloud and returns the calls it answered (started
// with StartExternalOrg or StartExternalStats).
func (e *External) Stop() (EmulatorStats, error) {
	e.Close()
	// The last line is the one printed on stopping.
	var last *EmulatorStats
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s, ok := <-e.stats:
			if ok {
				last = &s
				continue
			}
		case <-timeout:
		}
		if last == nil {
			return EmulatorStats{}, fmt.Errorf("the emulated cloud printed no counters on stopping: %s", e.stderr)
		}
		return *last, nil
	}
}

// WriteInventory writes inv as an inventory file the emulate command reads.
func WriteInventory(path string, inv *vpcemu.Inventory) error {
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// tailBuffer keeps the last few kilobytes written, for error messages.
// The process's output is copied in by another goroutine, hence the lock.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 4096; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
