package cli

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator"
)

// liveEnv points the environment at a "live" account that is an emulated
// cloud: the configuration from the variables, the credentials from the
// standard chain.
func liveEnv(t *testing.T, opts emulator.Options) *emulator.Cloud {
	t.Helper()
	c, err := emulator.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	policy, err := emulator.WriteDemoPolicy(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Env() {
		t.Setenv(k, v)
	}
	for k, v := range emulator.DemoEnv(policy) {
		t.Setenv(k, v)
	}
	return c
}

func TestLiveFindsTheAccountWithSTS(t *testing.T) {
	c := liveEnv(t, emulator.Options{})
	t.Setenv("FC_ACCOUNT_ID", "")
	t.Setenv("SCAN_TARGETS", "cn-hangzhou:*")

	code, out, errOut := runCLI(t, "invoke", "--live", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	if !strings.Contains(errOut, "account "+emulator.DemoAccountID+" (from STS GetCallerIdentity)") {
		t.Errorf("stderr does not name the account STS gave:\n%s", errOut)
	}
	if got := c.STS.Stats().GetCallerIdentity; got != 1 {
		t.Errorf("%d GetCallerIdentity calls, want 1", got)
	}
	// The account owns the findings of the connection without
	// authorizations, as it would with FC_ACCOUNT_ID set.
	rows := tableRows(t, out)
	noAuth := 0
	for _, r := range rows {
		if r.connection == emulator.DemoNoAuth {
			noAuth++
			if r.account != emulator.DemoAccountID {
				t.Errorf("%s %s owned by %q, want %s", r.connection, r.rule, r.account, emulator.DemoAccountID)
			}
		}
	}
	if noAuth != 4 {
		t.Errorf("%d findings for %s, want 4", noAuth, emulator.DemoNoAuth)
	}
	checkVerdicts(t, rows, []string{emulator.DemoTrusted, emulator.DemoPartner, emulator.DemoNoAuth})

	t.Run("FC_ACCOUNT_ID set: STS is not asked", func(t *testing.T) {
		t.Setenv("FC_ACCOUNT_ID", emulator.DemoAccountID)
		before := c.STS.Stats().GetCallerIdentity
		if code, _, errOut := runCLI(t, "invoke", "--live", "--dry-run"); code != 0 || !strings.Contains(errOut, "(from FC_ACCOUNT_ID)") {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		if got := c.STS.Stats().GetCallerIdentity; got != before {
			t.Errorf("GetCallerIdentity called %d times with FC_ACCOUNT_ID set", got-before)
		}
	})

	t.Run("serve", func(t *testing.T) {
		m := startCommand(t, regexp.MustCompile(`listening on \S+ \((.*)\)`), "serve", "--live", "--dry-run", "--addr", "127.0.0.1:0")
		if !strings.Contains(m[1], "account "+emulator.DemoAccountID+" (from STS GetCallerIdentity)") {
			t.Errorf("serve runs on %q, want the account STS gave", m[1])
		}
	})

	t.Run("STS unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		t.Setenv("STS_ENDPOINT", closed)
		for _, args := range [][]string{{"invoke", "--live", "--dry-run"}, {"serve", "--live", "--dry-run", "--addr", "127.0.0.1:0"}} {
			code, _, errOut := runCLI(t, args...)
			if code != 1 || !strings.Contains(errOut, "FC_ACCOUNT_ID is not set") || !strings.Contains(errOut, "GetCallerIdentity") {
				t.Errorf("%s: exit %d, stderr %q; want 1 naming FC_ACCOUNT_ID and GetCallerIdentity", args[0], code, errOut)
			}
		}
	})

	t.Run("STS refuses the credentials", func(t *testing.T) {
		t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")
		code, _, errOut := runCLI(t, "invoke", "--live", "--dry-run")
		if code != 1 || !strings.Contains(errOut, "FC_ACCOUNT_ID is not set") || strings.Contains(errOut, "not-the-secret") {
			t.Errorf("exit %d, stderr %q; want 1 naming FC_ACCOUNT_ID, without the secret", code, errOut)
		}
	})

	t.Run("bad STS_ENDPOINT", func(t *testing.T) {
		t.Setenv("STS_ENDPOINT", "http://sts.example.com")
		code, _, errOut := runCLI(t, "invoke", "--live", "--dry-run")
		if code != 1 || !strings.Contains(errOut, "STS_ENDPOINT") {
			t.Errorf("exit %d, stderr %q; want 1 naming STS_ENDPOINT", code, errOut)
		}
	})
}
