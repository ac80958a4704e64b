// Command vpnauthz is the vpnauthz function for Alibaba Cloud Function Compute 3.0,
// and a local CLI when not run by FC.
package main

import (
	"os"

	"github.com/aliyun/fc-runtime-go-sdk/fc"

	"vpnauthz/internal/cli"
)

func main() {
	// FC's runtime sets FC_RUNTIME_API; anywhere else the binary is the CLI.
	if os.Getenv("FC_RUNTIME_API") != "" {
		fc.Start(cli.FCHandler())
		return
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
