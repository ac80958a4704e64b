package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/testutil"
)

// openPTY opens a pseudo-terminal and returns its terminal side and the
// side that reads what is written to it.
func openPTY(t *testing.T) (tty, master *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock the pty: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty, master
}

func TestIsTerminalOnAPTY(t *testing.T) {
	tty, _ := openPTY(t)
	if !isTerminal(tty) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}

// TestInvokeShowsProgressOnATerminal holds a scan, with standard error on a
// pseudo-terminal, until its progress line shows what it read so far, and
// then lets it finish. (A pipe or a file shows none: isTerminal refuses them,
// TestProgressNotOnANonTerminal.)
func TestInvokeShowsProgressOnATerminal(t *testing.T) {
	c := liveEnv(t, emulator.Options{})
	t.Setenv("SCAN_TARGETS", "cn-shanghai:* cn-hangzhou:*")
	// cn-shanghai is read at once; cn-hangzhou's calls wait for release.
	release := make(chan struct{})
	c.VPC.SetArrivalHook(func(k vpcemu.CallKey) {
		if k.Region == "cn-hangzhou" {
			<-release
		}
	})

	tty, master := openPTY(t)
	seen := &testutil.Buffer{}
	go func() { _, _ = io.Copy(seen, master) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"invoke", "--live", "--log-level", "error"}, &stdout, tty) }()
	want := "1 account, 2 connections read, 0 errors so far"
	err := seen.Await(ctx, func(b []byte) bool { return strings.Contains(string(b), want) })
	close(release)
	if err != nil {
		t.Fatalf("the terminal shows no %q: %q", want, seen.String())
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stdout:\n%s", code, stdout.String())
	}
	if !strings.Contains(seen.String(), "\r\x1b[Kvpnauthz: scanning for 3s: ") {
		t.Errorf("the first progress line is not drawn after %v: %q", progressDelay, seen.String())
	}
	if strings.Contains(stdout.String(), "scanning for") {
		t.Error("progress went to standard output")
	}
}
