package faults

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/ramactions"
)

// ramPolicy is a RAM policy document as the function's policy may write
// it: other fields (NotAction, NotResource, Deny statements' shapes) are
// refused by the strict decoding.
type ramPolicy struct {
	Version   string
	Statement []struct {
		Sid       string
		Condition map[string]any
		Effect    string
		Action    []string
		Resource  []string
	}
}

func parsePolicy(t *testing.T, data []byte) ramPolicy {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p ramPolicy
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("not a RAM policy document: %v\n%s", err, data)
	}
	return p
}

// actionsOf returns the policy's actions by resource, failing on anything
// but Allow statements with explicit actions.
func actionsOf(t *testing.T, p ramPolicy) map[string][]string {
	t.Helper()
	if p.Version != "1" {
		t.Errorf("Version %q, want \"1\"", p.Version)
	}
	out := map[string][]string{}
	for i, st := range p.Statement {
		if st.Effect != "Allow" {
			t.Errorf("statement %d: Effect %q", i, st.Effect)
		}
		if len(st.Resource) == 0 {
			t.Errorf("statement %d: no Resource", i)
		}
		for _, a := range st.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %d: wildcard action %q", i, a)
			}
			out[a] = append(out[a], st.Resource...)
		}
	}
	return out
}

// TestRAMPolicy: the function role's policy for a first deployment grants
// exactly the calls a scan makes (taken from what the emulated services saw
// during a scan of every kind of target, mapped to RAM actions through the
// one table in internal/ramactions), with every resource in the one account
// and the findings' logstore.
func TestRAMPolicy(t *testing.T) {
	cfg, err := ramactions.ConfigFromEnv([]string{"1234567890123456", "cn-hangzhou", "vpn-audit", "vpnauthz-findings"},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ramactions.FunctionPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	granted := actionsOf(t, parsePolicy(t, doc.JSON()))

	// The RAM action of each API, from the table.
	actionOf := map[string]string{}
	for _, a := range ramactions.Table {
		for _, api := range a.APIs {
			actionOf[api] = a.RAM
		}
	}

	// The calls a full scan makes, wildcard and explicit targets, findings
	// and summary delivered.
	cloud := startCloud(t, emulator.Demo(time.Now()))
	rep := runScan(t, newScanner(t, cloud, nil), cloud, scanRequest(t, cloudCreds(cloud),
		"cn-hangzhou:*", "cn-shanghai:"+emulator.DemoRogue, "ap-southeast-1:*"))
	if !rep.Delivery.Delivered {
		t.Fatalf("scan not delivered: %+v", rep.Delivery)
	}
	made := map[string]bool{}
	for key := range cloud.VPC.Stats().ByKey {
		a, ok := actionOf[key.Action]
		if !ok {
			t.Errorf("the scan called %s, which the RAM action table does not list", key.Action)
		}
		made[a] = true
	}
	if cloud.SLS.Stats().PutLogsOK > 0 {
		made[actionOf["PutLogs"]] = true
	}
	if got, want := slices.Sorted(maps.Keys(granted)), slices.Sorted(maps.Keys(made)); !slices.Equal(got, want) {
		t.Errorf("policy grants %v; the function calls %v", got, want)
	}
	for action, resources := range granted {
		for _, r := range resources {
			service, _, _ := strings.Cut(action, ":")
			parts := strings.SplitN(r, ":", 5)
			if len(parts) != 5 || parts[0] != "acs" || parts[1] != service || parts[3] != "1234567890123456" {
				t.Errorf("%s on %q: want acs:%s:REGION:1234567890123456:…", action, r, service)
			}
		}
	}
}

// TestRAMPolicyScript: scripts/ram-policy.sh renders the same policy with
// the account, logstore and regions filled in, as valid JSON, and refuses
// values that would change its meaning.
func TestRAMPolicyScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run scripts/ram-policy.sh")
	}
	script := filepath.Join("..", "..", "scripts", "ram-policy.sh")
	wantActions := []string{"log:PostLogStoreLogs", "vpc:DescribeVpnConnections", "vpc:DescribeVpnCrossAccountAuthorizations"}
	// No feature of the environment this test runs in reaches the script.
	var baseEnv []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "VPNAUTHZ_") && !strings.HasPrefix(k, "ACCOUNTS") && !strings.HasPrefix(k, "TRAIL_") &&
			!slices.Contains([]string{"STATE_STORE", "MEMBER_ROLE_NAME", "FANOUT_ACCOUNTS_PER_INVOCATION"}, k) {
			baseEnv = append(baseEnv, kv)
		}
	}
	run := func(env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bash, append([]string{script}, args...)...)
		cmd.Env = append(slices.Clone(baseEnv), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), 0
	}

	good := []struct {
		name        string
		args        []string
		wantRegions []string // of the VPC resources
	}{
		{"no region", []string{"1234567890123456", "cn-hangzhou", "vpn-audit", "vpnauthz-findings"}, []string{"*"}},
		{"one region", []string{"1234567890123456", "cn-hangzhou", "vpn-audit", "vpnauthz-findings", "cn-shanghai"}, []string{"cn-shanghai"}},
		{"three regions", []string{"1234567890123456", "ap-southeast-1", "vpn-audit", "vpnauthz_findings", "cn-hangzhou", "cn-shanghai", "ap-southeast-1"},
			[]string{"ap-southeast-1", "cn-hangzhou", "cn-shanghai"}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(nil, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			granted := actionsOf(t, parsePolicy(t, []byte(out)))
			if got := slices.Sorted(maps.Keys(granted)); !slices.Equal(got, wantActions) {
				t.Errorf("actions %v, want %v", got, wantActions)
			}
			account, slsRegion, project, logstore := tc.args[0], tc.args[1], tc.args[2], tc.args[3]
			for action, resources := range granted {
				var regions []string
				for _, r := range resources {
					parts := strings.SplitN(r, ":", 5)
					if len(parts) != 5 || parts[3] != account {
						t.Errorf("%s on %q: not in account %s", action, r, account)
						continue
					}
					regions = append(regions, parts[2])
				}
				slices.Sort(regions)
				if strings.HasPrefix(action, "log:") {
					want := []string{
						"acs:log:" + slsRegion + ":" + account + ":project/" + project + "/logstore/" + logstore,
						"acs:log:" + slsRegion + ":" + account + ":project/" + project + "/logstore/vpnauthz-function-logs",
					}
					if !slices.Equal(resources, want) {
						t.Errorf("%s on %v, want %v", action, resources, want)
					}
				} else if !slices.Equal(regions, tc.wantRegions) {
					t.Errorf("%s in regions %v, want %v", action, regions, tc.wantRegions)
				}
			}
			for _, placeholder := range []string{"ACCOUNT_ID", "SLS_REGION", "SLS_PROJECT", "SLS_LOGSTORE", "FUNCTION_LOGSTORE", "REGION"} {
				if strings.Contains(out, placeholder) {
					t.Errorf("placeholder %s left in:\n%s", placeholder, out)
				}
			}
		})
	}

	// A feature turned on in the environment reaches the policy.
	t.Run("trail from the environment", func(t *testing.T) {
		out, errOut, code := run([]string{"TRAIL_PROJECT=org-audit"}, "1234567890123456", "cn-hangzhou", "vpn-audit", "vpnauthz-findings")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		got := actionsOf(t, parsePolicy(t, []byte(out)))["log:GetCursorOrData"]
		if want := []string{"acs:log:cn-hangzhou:1234567890123456:project/org-audit/logstore/actiontrail_vpnauthz-trail"}; !slices.Equal(got, want) {
			t.Errorf("log:GetCursorOrData on %v, want %v", got, want)
		}
	})

	// Every refusal is tested in internal/ramactions; these show that the
	// script passes them on as a failed exit with a reason and no policy.
	bad := []struct {
		name string
		env  []string
		args []string
	}{
		{"no argument", nil, nil},
		{"region with a quote", nil, []string{"1234567890123456", "cn-hangzhou", "vpn-audit", "findings", `cn-shanghai"],"Action":["*`}},
		{"logstore wildcard", nil, []string{"1234567890123456", "cn-hangzhou", "vpn-audit", "*"}},
		{"destination wildcard", []string{"VPNAUTHZ_FAILURE_DESTINATION=acs:mns:cn-hangzhou:1234567890123456:/queues/*/messages"},
			[]string{"1234567890123456", "cn-hangzhou", "vpn-audit", "findings"}},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			out, errOut, code := run(tc.env, tc.args...)
			if code == 0 || out != "" || errOut == "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want a non-zero exit, a reason and no policy", code, out, errOut)
			}
		})
	}
}
