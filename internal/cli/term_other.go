//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package cli

import "os"

// fileIsTerminal: where the terminal driver cannot be asked, no progress is
// shown.
func fileIsTerminal(*os.File) bool { return false }
