// Package faults holds the in-process fault and security tests of vpnauthz:
// scans through the real scanner, the VPC API adapter and the Log Service
// sink, over real HTTP, against the emulated VPC API and Log Service while
// they throttle, fail, reset connections, answer late, lose connections and
// authorizations mid-scan, refuse credentials or go down; and checks that no
// secret leaks, that requests cannot be steered to other hosts, and that the
// function's RAM policy grants exactly the calls the function makes.
//
// The package has no code of its own: everything is in its tests.
package faults
