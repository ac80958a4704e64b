package main

import (
	"testing"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/scan"
)

// TestEnsure: the function's log logstore is created once, a second run
// finds it, neither gives it an index, and a refusal is an error naming it.
func TestEnsure(t *testing.T) {
	c, err := emulator.Start(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	creds := scan.Credentials{AccessKeyID: c.Credentials.AccessKeyID, AccessKeySecret: c.Credentials.AccessKeySecret, SecurityToken: c.Credentials.SecurityToken}

	for i, want := range []bool{true, false} {
		created, err := ensure(c.SLS.Endpoint(), c.Project, "vpnauthz-function-logs", creds)
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if created != want {
			t.Errorf("run %d: created %v, want %v", i+1, created, want)
		}
	}
	if _, ok := c.SLS.Index(c.Project, "vpnauthz-function-logs"); ok {
		t.Error("the function's log logstore was given an index")
	}

	bad := creds
	bad.AccessKeySecret = "wrong"
	if _, err := ensure(c.SLS.Endpoint(), c.Project, "other", bad); err == nil {
		t.Error("a refused signature was not an error")
	}
	if _, err := ensure(c.SLS.Endpoint(), "no-such-project", "other", creds); err == nil {
		t.Error("a missing project was not an error")
	}
}
