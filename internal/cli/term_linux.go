package cli

import (
	"os"
	"syscall"
	"unsafe"
)

// fileIsTerminal asks the terminal driver for f's settings, which only a
// terminal has (a character device such as /dev/null has none).
func fileIsTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TCGETS), uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
