//go:build !fc

package main

import (
	"os"

	"vpnauthz/internal/cli"
)

func commandLine(args []string) int { return cli.Main(args, os.Stdout, os.Stderr) }
