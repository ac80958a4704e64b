package cli

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"vpnauthz/internal/finding"
)

// lockedBuffer is written by the progress goroutine while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestProgressShowsOnlyForALongScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		p := startProgress(out, true)
		p.finding(&finding.Finding{OwnerAccountID: "1", Region: "r", VpnConnectionID: "vco-a", Status: finding.StatusPass})
		p.finding(&finding.Finding{OwnerAccountID: "1", Region: "r", VpnConnectionID: "vco-a", Status: finding.StatusFail})
		time.Sleep(progressDelay - time.Millisecond)
		synctest.Wait()
		if got := out.String(); got != "" {
			t.Fatalf("progress before %v: %q", progressDelay, got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := out.String(); !strings.Contains(got, "scanning for 3s: 1 account, 1 connection read, 0 errors so far") {
			t.Fatalf("after %v: %q", progressDelay, got)
		}
		p.finding(&finding.Finding{OwnerAccountID: "2", Region: "r", VpnConnectionID: "*", Status: finding.StatusError})
		p.finding(&finding.Finding{OwnerAccountID: "1", Region: "r", VpnConnectionID: "vco-b", Status: finding.StatusPass})
		time.Sleep(progressEvery)
		synctest.Wait()
		if got := out.String(); !strings.HasSuffix(got, "\r\033[Kvpnauthz: scanning for 4s: 2 accounts, 2 connections read, 1 error so far") {
			t.Fatalf("redrawn: %q", got)
		}
		p.end()
		if got := out.String(); !strings.HasSuffix(got, "so far\r\033[K") {
			t.Errorf("the line is not cleared at the end: %q", got)
		}
	})
}

func TestProgressQuickScanPrintsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		p := startProgress(out, true)
		time.Sleep(progressDelay / 2)
		p.end()
		time.Sleep(2 * progressDelay)
		synctest.Wait()
		if got := out.String(); got != "" {
			t.Errorf("a scan shorter than %v printed %q", progressDelay, got)
		}
	})
}

func TestProgressNotOnANonTerminal(t *testing.T) {
	if p := startProgress(&lockedBuffer{}, false); p != nil {
		t.Fatal("progress started for a non-terminal")
	}
	var p *progress // what invoke holds then: every call is a no-op
	p.finding(&finding.Finding{})
	p.end()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for name, w := range map[string]io.Writer{"pipe": w, "/dev/null": devNull, "buffer": &bytes.Buffer{}} {
		if isTerminal(w) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}
