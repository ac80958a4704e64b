package statestore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/lifecycle"
)

func TestParseStateStore(t *testing.T) {
	cases := []struct {
		in      string
		want    Location
		wantErr string
	}{
		{"", Location{}, ""},
		{"  ", Location{}, ""},
		{"tablestore://vpnauthz/state", Location{"vpnauthz", "state"}, ""},
		{"tablestore://my-inst01/vpnauthz_state/", Location{"my-inst01", "vpnauthz_state"}, ""},
		{"vpnauthz/state", Location{}, `STATE_STORE "vpnauthz/state": no scheme`},
		{"ots://vpnauthz/state", Location{}, `scheme "ots" is not supported`},
		{"tablestore://vpnauthz", Location{}, "no table"},
		{"tablestore://vpnauthz/", Location{}, "no table"},
		{"tablestore://1inst/state", Location{}, `instance "1inst" is not a Tablestore instance name`},
		{"tablestore://ab/state", Location{}, `instance "ab"`},
		{"tablestore://inst-/state", Location{}, `instance "inst-"`},
		{"tablestore://vpnauthz/9state", Location{}, `table "9state" is not a Tablestore table name`},
		{"tablestore://vpnauthz/a/b", Location{}, `table "a/b"`},
		{"tablestore://vpnauthz/state?x=1", Location{}, "a query or fragment"},
		{"tablestore://admin:hunter2@vpnauthz/state", Location{}, "holds a user or password (value not shown)"},
	}
	for _, c := range cases {
		got, err := ParseStateStore(c.in)
		if c.wantErr == "" {
			if err != nil || got != c.want {
				t.Errorf("ParseStateStore(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "STATE_STORE") {
			t.Errorf("ParseStateStore(%q) error %v, want one naming STATE_STORE and %q", c.in, err, c.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseStateStore(%q) shows the password: %v", c.in, err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	creds := Credentials{AccessKeyID: "id", AccessKeySecret: "secret"}
	s, err := New(Options{Location: testLoc, Region: "cn-hangzhou", Credentials: creds})
	if err != nil || s.endpoint != "https://vpnauthz.cn-hangzhou.ots.aliyuncs.com" {
		t.Errorf("default endpoint: %v %v", s, err)
	}
	// A bare loopback address is an emulator, spoken to in plain HTTP.
	if s, err := New(Options{Location: testLoc, Credentials: creds, Endpoint: "127.0.0.1:1"}); err != nil || s.endpoint != "http://127.0.0.1:1" {
		t.Errorf("loopback endpoint: %v %v", s, err)
	}
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no location", Options{Credentials: creds, Region: "cn-hangzhou"}, "set STATE_STORE"},
		{"no region", Options{Location: testLoc, Credentials: creds}, "no region for the default endpoint"},
		{"no key", Options{Location: testLoc, Region: "cn-hangzhou"}, "no access key"},
		{"bad endpoint", Options{Location: testLoc, Credentials: creds, Endpoint: "https://127.0.0.1:1/path"}, "no path, query or user"},
		{"plain http to the cloud", Options{Location: testLoc, Credentials: creds, Endpoint: "http://vpnauthz.cn-hangzhou.ots.aliyuncs.com"}, "http:// is allowed only for a loopback host"},
		{"short ttl", Options{Location: testLoc, Credentials: creds, Region: "cn-hangzhou", TTL: time.Hour}, "under Tablestore's minimum"},
		{"bad table", Options{Location: Location{"vpnauthz", "a-b"}, Credentials: creds, Region: "cn-hangzhou"}, `table "a-b"`},
	}
	for _, c := range cases {
		if _, err := New(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// fakeClock is the emulator's clock, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTTL: a record rewritten by each scan stays; one no longer written
// (resolved) expires DefaultTTL after its last write, and a write expecting
// it then fails as for a missing row.
// (Tablestore judges expiry on cell versions, its own write times.)
func TestTTL(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	srv := startOTS(t, otsemu.Options{Now: clock.Now})
	s := newStore(t, srv, nil)
	if _, err := s.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	open, resolved := record("1234567890123456", "cn-hangzhou", 1), record("1234567890123456", "cn-hangzhou", 2)
	resolved.Lifecycle, resolved.ResolvedAt, resolved.ResolvedReason = lifecycle.LifecycleResolved, t0, lifecycle.ReasonPassed
	mustWrite(t, s, creates(open, resolved))

	// Scans every 100 days rewrite the open record only; the clock is the
	// emulator's, the only one TTL is judged on, and moves in the open
	// between calls, never while a request is served.
	for rev := int64(2); rev <= 5; rev++ {
		clock.Add(100 * 24 * time.Hour)
		next := open
		next.Revision, next.Lifecycle = rev, lifecycle.LifecycleOpen
		mustWrite(t, s, []lifecycle.Write{{Record: next, ExpectRevision: rev - 1}})
		open = next
	}
	clock.Add(24 * time.Hour) // 401 days after the resolved record's write
	got, err := s.Load(context.Background(), open.AccountID, open.Region)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].FindingUID != open.FindingUID || got[0].Revision != 5 {
		t.Errorf("after 400 days: %+v, want the open record only", got)
	}
	again := resolved
	again.Revision = 2
	errs, err := s.Write(context.Background(), []lifecycle.Write{{Record: again, ExpectRevision: 1}})
	if err != nil || !errors.Is(errs[0], lifecycle.ErrConflict) {
		t.Errorf("write on an expired record: %v %v, want ErrConflict", errs, err)
	}
}
