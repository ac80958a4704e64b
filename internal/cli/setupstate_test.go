package cli

import (
	"strings"
	"testing"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/otsemu"
)

func TestSetupStateDemo(t *testing.T) {
	code, out, errOut := runCLI(t, "setup-state")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"emulated demo cloud", "state table tablestore://vpnauthz/vpnauthz_state", "created",
		"time to live 400 days", "as stored by the emulated Tablestore: primary key [partition:STRING finding_uid:STRING]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSetupStateLiveTwice(t *testing.T) {
	c := liveEnv(t, emulator.Options{NoStateTable: true})
	t.Setenv("STATE_STORE", "tablestore://"+c.OTS.Instance()+"/audit_state")
	for i, want := range []string{"created", "exists"} {
		code, out, errOut := runCLI(t, "setup-state", "--live")
		if code != 0 || !strings.Contains(out, "state table tablestore://vpnauthz/audit_state at "+c.OTS.Endpoint()+": "+want+", time to live 400 days") {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, code, out, errOut)
		}
	}
	info, ok := c.OTS.Table("audit_state")
	if !ok || info.TimeToLive != 400*24*3600 || strings.Join(info.PrimaryKey, " ") != "partition:STRING finding_uid:STRING" {
		t.Errorf("stored table %+v", info)
	}
	if got := c.OTS.Stats().Calls[otsemu.OpCreateTable]; got != 2 {
		t.Errorf("%d CreateTable calls, want 2 (the second finds the table)", got)
	}
}

func TestSetupStateErrors(t *testing.T) {
	c := liveEnv(t, emulator.Options{})
	tests := []struct {
		name     string
		env      map[string]string
		wantCode int
		want     string
	}{
		{"no STATE_STORE", map[string]string{"STATE_STORE": ""}, 2, "STATE_STORE is not set"},
		{"bad STATE_STORE", map[string]string{"STATE_STORE": "ots://vpnauthz/state"}, 2, `STATE_STORE "ots://vpnauthz/state"`},
		{"bad table", map[string]string{"STATE_STORE": "tablestore://vpnauthz/9lives"}, 2, "STATE_STORE"},
		{"bad TABLESTORE_ENDPOINT", map[string]string{"TABLESTORE_ENDPOINT": "http://ots.example.com"}, 2, "TABLESTORE_ENDPOINT"},
		{"wrong instance", map[string]string{"STATE_STORE": "tablestore://other/state"}, 1, "other"},
		{"refused credentials", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret"}, 1, "tablestore://vpnauthz/vpnauthz_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runCLI(t, "setup-state", "--live")
			if code != tt.wantCode || !strings.Contains(errOut, tt.want) || strings.Contains(errOut+out, "not-the-secret") {
				t.Errorf("exit %d, stderr %q; want %d naming %q", code, errOut, tt.wantCode, tt.want)
			}
		})
	}

	t.Run("Tablestore down", func(t *testing.T) {
		c.OTS.SetDown(true)
		t.Cleanup(func() { c.OTS.SetDown(false) })
		code, _, errOut := runCLI(t, "setup-state", "--live")
		if code != 1 || !strings.Contains(errOut, "create the table") {
			t.Errorf("exit %d, stderr %q; want 1 saying the table could not be created", code, errOut)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"setup-state", "--timeout", "0s"}, {"setup-state", "extra"}} {
			if code, _, _ := runCLI(t, args...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
	})
}
