package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/slsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/testutil"
)

// binary is the function under test, built once by TestMain.
var binary string

// moduleRoot is the directory of go.mod.
var moduleRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	moduleRoot = filepath.Dir(strings.TrimSpace(string(out)))
	if b := os.Getenv("VPNAUTHZ_BINARY"); b != "" {
		if !filepath.IsAbs(b) {
			b = filepath.Join(moduleRoot, b)
		}
		if _, err := os.Stat(b); err != nil {
			fmt.Fprintln(os.Stderr, "VPNAUTHZ_BINARY:", err)
			return 1
		}
		binary = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vpnauthz-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "main")
	build := exec.Command("go", "build", "-tags", "fc", "-o", binary, ".")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the function: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// cloud is the emulated cloud of one test with the demo's trust policy.
type cloud struct {
	*emulator.Cloud
	PolicyPath string
	Now        time.Time
}

// startCloud starts the emulated VPC API and Log Service on inv (nil: the demo
// inventory) and writes the demo policy file.
func startCloud(t *testing.T, inv *vpcemu.Inventory) *cloud {
	t.Helper()
	now := time.Now()
	c, err := emulator.Start(emulator.Options{Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	policy, err := emulator.WriteDemoPolicy(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	return &cloud{Cloud: c, PolicyPath: policy, Now: now}
}

// functionEnv is the environment Function Compute gives the function: its
// region and account, and the function's configured variables pointing at
// this cloud, with the demo's policy and scope for its management account
// alone, stateless (the organisation and lifecycle tests add their own
// settings). No credentials: in Function Compute they come with each
// invocation.
func (c *cloud) functionEnv() map[string]string {
	env := emulator.DemoAccountEnv(c.PolicyPath)
	for k, v := range c.Env() {
		if strings.HasPrefix(k, "ALIBABA_CLOUD_") {
			continue
		}
		env[k] = v
	}
	env["HTTP_AUTH_TOKEN"] = "demo-token"
	return env
}

// addKey registers a fresh STS credential with both services.
func (c *cloud) addKey() cred.Credential {
	k := newSTSCredential()
	c.AddCredential(k)
	return k
}

func newSTSCredential() cred.Credential {
	return cred.Credential{
		AccessKeyID:     "STS." + rand.Text(),
		AccessKeySecret: rand.Text() + rand.Text(),
		SecurityToken:   "CAIS" + rand.Text() + rand.Text() + rand.Text(),
	}
}

// function is the binary running under the emulated runtime API.
type function struct {
	rt     *fcemu.Server
	cmd    *exec.Cmd
	stdout *testutil.Buffer
	stderr *testutil.Buffer
	cloud  *cloud
}

// startFunction runs the binary with env (plus FC_RUNTIME_API) until the test
// ends, and waits until its runtime polls for invocations.
func startFunction(t *testing.T, c *cloud, env map[string]string) *function {
	t.Helper()
	rt, err := fcemu.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close) // registered first, so it runs after the process is gone
	f := &function{rt: rt, stdout: &testutil.Buffer{}, stderr: &testutil.Buffer{}, cloud: c}
	cmd := exec.Command(binary)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"FC_RUNTIME_API=" + rt.Addr(), "HOME=" + cmd.Dir, "TZ=UTC",
		"FC_FUNCTION_NAME=vpnauthz", "FC_FUNCTION_HANDLER=main", "FC_FUNCTION_MEMORY_SIZE=512"}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = f.stdout, f.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the function: %v", err)
	}
	f.cmd = cmd
	// The wait for the first poll ends when the process does, so a function
	// that cannot start fails the test instead of hanging it.
	running, exited := context.WithCancelCause(context.Background())
	waited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		exited(fmt.Errorf("the function exited: %v", err))
		close(waited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
		if t.Failed() {
			t.Logf("function stdout:\n%s\nfunction stderr:\n%s", tail(f.stdout.Bytes()), tail(f.stderr.Bytes()))
		}
	})
	if err := rt.AwaitPolls(running, 1); err != nil {
		t.Fatalf("the function never polled the runtime API: %v\nstdout:\n%s\nstderr:\n%s",
			context.Cause(running), f.stdout.Bytes(), f.stderr.Bytes())
	}
	return f
}

// awaitStdout waits until the function's standard output satisfies cond. The
// output comes through a pipe that may lag the invocation's answer a little;
// the bound only keeps a missing line from hanging the test.
func (f *function) awaitStdout(t *testing.T, cond func(stdout []byte) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = f.stdout.Await(ctx, cond)
}

// tail keeps the end of a long output for failure messages.
func tail(b []byte) []byte {
	const max = 16 << 10
	if len(b) > max {
		return append([]byte("…"), b[len(b)-max:]...)
	}
	return b
}

// call is one invocation: the payload, and who and where (default: the
// cloud's credential, account and region; timeout 60 s).
type call struct {
	payload []byte
	key     *cred.Credential
	timeout time.Duration
	region  string
	account string
}

// invoke runs one invocation and returns what the function answered.
func (f *function) invoke(t *testing.T, c call) fcemu.Result {
	t.Helper()
	res, err := f.tryInvoke(c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil && len(res.Error.StackTrace) > 0 && string(res.Error.StackTrace) != "null" {
		t.Errorf("the function panicked: %s: %s\n%s", res.Error.ErrorType, res.Error.ErrorMessage, res.Error.StackTrace)
	}
	return res
}

func (f *function) tryInvoke(c call) (fcemu.Result, error) {
	k := f.cloud.Credentials
	if c.key != nil {
		k = *c.key
	}
	if c.timeout == 0 {
		c.timeout = 60 * time.Second
	}
	if c.region == "" {
		c.region = f.cloud.Region
	}
	if c.account == "" {
		c.account = f.cloud.AccountID
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout+15*time.Second)
	defer cancel()
	return f.rt.Invoke(ctx, fcemu.Invocation{
		Payload:         c.payload,
		AccessKeyID:     k.AccessKeyID,
		AccessKeySecret: k.AccessKeySecret,
		SecurityToken:   k.SecurityToken,
		Timeout:         c.timeout,
		Region:          c.region,
		AccountID:       c.account,
	})
}

// report is the report every trigger answers with; Findings is set for HTTP.
type report struct {
	ScanID     string            `json:"scanId"`
	Trigger    string            `json:"trigger"`
	StartedAt  string            `json:"startedAt"`
	DurationMs int64             `json:"durationMs"`
	Complete   bool              `json:"complete"`
	Summary    summary           `json:"summary"`
	Delivery   delivery          `json:"delivery"`
	Findings   []json.RawMessage `json:"findings"`
	Error      *apiError         `json:"error"`
}

type summary struct {
	Connections       int `json:"connections"`
	Authorizations    int `json:"authorizations"`
	Pass              int `json:"pass"`
	Fail              int `json:"fail"`
	Error             int `json:"error"`
	Suppressed        int `json:"suppressed"`
	APICalls          int `json:"api_calls"`
	APIRetries        int `json:"api_retries"`
	Throttled         int `json:"throttled"`
	FindingsDelivered int `json:"findings_delivered"`
}

func (s summary) findings() int { return s.Pass + s.Fail + s.Error + s.Suppressed }

type delivery struct {
	Sink      string `json:"sink"`
	Project   string `json:"project"`
	Logstore  string `json:"logstore"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// httpResponse is the answer to an HTTP trigger event.
type httpResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// asReport decodes a successful invocation's answer as a report.
func asReport(t *testing.T, res fcemu.Result) report {
	t.Helper()
	if res.Error != nil {
		t.Fatalf("invocation failed: %s: %s", res.Error.ErrorType, res.Error.ErrorMessage)
	}
	var r report
	if err := json.Unmarshal(res.Response, &r); err != nil {
		t.Fatalf("answer is not a report: %v\n%s", err, res.Response)
	}
	if r.ScanID == "" {
		t.Fatalf("answer has no scanId: %s", res.Response)
	}
	return r
}

// asHTTP decodes a successful invocation's answer as an HTTP trigger response.
func asHTTP(t *testing.T, res fcemu.Result) httpResponse {
	t.Helper()
	if res.Error != nil {
		t.Fatalf("invocation failed: %s: %s", res.Error.ErrorType, res.Error.ErrorMessage)
	}
	var r httpResponse
	if err := json.Unmarshal(res.Response, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("answer is not an HTTP response (%v): %s", err, res.Response)
	}
	if r.IsBase64Encoded {
		t.Fatalf("response body is base64; vpnauthz answers JSON: %s", res.Response)
	}
	return r
}

// httpEvent is the sample POST /scans event with the changes made by edit.
func httpEvent(t *testing.T, edit func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "http-post-scans.json"), &ev); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ev)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withRequest sets the method, path, body and the headers given (nil value:
// removed) of an HTTP event.
func withRequest(method, path, body string, headers map[string]any) func(map[string]any) {
	return func(ev map[string]any) {
		ev["rawPath"] = path
		ev["body"] = body
		rc := ev["requestContext"].(map[string]any)
		h := rc["http"].(map[string]any)
		h["method"], h["path"] = method, path
		hs := ev["headers"].(map[string]any)
		delete(hs, "Content-Length")
		for k, v := range headers {
			if v == nil {
				delete(hs, k)
			} else {
				hs[k] = v
			}
		}
	}
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored returns the findings stored in Log Service for a scan.
func (c *cloud) stored(scanID string) []map[string]string {
	var out []map[string]string
	for _, l := range c.SLS.LogsByTopic(c.Project, c.Logstore, finding.TopicFinding) {
		if l.Contents["scan_id"] == scanID {
			out = append(out, l.Contents)
		}
	}
	return out
}

// storedSummary returns the scan summary logs stored for a scan.
func (c *cloud) storedSummary(scanID string) []slsemu.Log {
	var out []slsemu.Log
	for _, l := range c.SLS.LogsByTopic(c.Project, c.Logstore, finding.TopicScan) {
		if l.Contents["scan_id"] == scanID {
			out = append(out, l)
		}
	}
	return out
}

// countStatuses counts findings by status, as a summary does.
func countStatuses(fs []map[string]string) summary {
	var s summary
	for _, f := range fs {
		switch f["status"] {
		case finding.StatusPass:
			s.Pass++
		case finding.StatusFail:
			s.Fail++
		case finding.StatusError:
			s.Error++
		case finding.StatusSuppressed:
			s.Suppressed++
		}
	}
	return s
}

// jsonLines decodes the lines of out that are JSON objects.
func jsonLines(out []byte) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// findingLines returns the findings of a scan written to standard output.
func findingLines(out []byte, scanID string) []map[string]any {
	var fs []map[string]any
	for _, l := range jsonLines(out) {
		if _, ok := l["finding_uid"]; ok && l["scan_id"] == scanID {
			fs = append(fs, l)
		}
	}
	return fs
}

// panics reports signs of a panic in a process's output.
func panics(out []byte) []string {
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "panic:") || strings.Contains(line, "goroutine ") && strings.Contains(line, "[running]") ||
			strings.Contains(line, "stackTrace") {
			found = append(found, line)
		}
	}
	return found
}

// vpcCalls is the number of calls the emulated VPC API received.
func (c *cloud) vpcCalls() int { return c.VPC.Stats().Total().Calls }

// fcResult is what the function answered to one invocation.
type fcResult = fcemu.Result
