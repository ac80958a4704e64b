// Command vpnauthz is the vpnauthz function for Alibaba Cloud Function Compute 3.0,
// and a local CLI when not run by FC.
//
// Built with -tags fc it is the function alone: the command line and the
// emulated cloud it starts are left out of the binary FC runs.
package main

import (
	"os"

	"vpnauthz/internal/function"
)

func main() {
	// FC's runtime sets FC_RUNTIME_API; anywhere else the binary is the CLI.
	if os.Getenv("FC_RUNTIME_API") != "" {
		function.Start()
		return
	}
	os.Exit(commandLine(os.Args[1:]))
}
