// Package version says which release of vpnauthz is running.
package version

import "runtime/debug"

// Release is set at build time with
// -ldflags "-X vpnauthz/internal/version.Release=…".
var Release = "dev"

// String is Release, or when that was not set at build time, the module
// version or source revision the binary was built from.
func String() string {
	if Release != "dev" {
		return Release
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Release
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return Release
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return Release + "+" + rev
}
