// Package e2e holds the end-to-end tests of vpnauthz: the built binary runs
// under the emulated Function Compute runtime API, configured through its
// environment as Function Compute would configure it, against the emulated
// VPC API and Log Service. The tests check what an operator would check: the
// answers of every trigger, the findings stored in Log Service, the
// function's own output, its behaviour under faults, deadlines and
// concurrent invocations, and that no secret ever leaves it.
//
// The binary is built once per run; set VPNAUTHZ_BINARY to test a binary
// built beforehand instead.
package e2e
