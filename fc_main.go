//go:build fc

package main

import (
	"fmt"
	"os"
)

// commandLine explains why there is none: this build serves Function
// Compute only.
func commandLine([]string) int {
	fmt.Fprintln(os.Stderr, "vpnauthz: this build serves Function Compute only (FC_RUNTIME_API is not set); "+
		"build without -tags fc for the command line")
	return 2
}
