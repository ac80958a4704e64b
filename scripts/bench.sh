#!/usr/bin/env bash
# Benchmarks the scheduled scan against the VPC API quota, a naive peer and
# the quota's lower bound, and the function's cold start; prints a Markdown
# table with the built binary's CPU time per VPC call, the allocations per
# call and the peak heap. Flags go to scripts/benchtable: --sizes
# 100,1000,10000 --runs 3 --scale 10, --peer=false (vpnauthz only),
# --cpuprofile FILE, or --smoke (size 100, one run) for CI.
# --org 50x4x100 runs an organisation scenario instead (accounts x regions x
# connections): one timer scan of the built binary entering every member
# through STS, and the same scan in-process for allocations and heap,
# against the bound.
# --lifecycle 10000 runs the finding-lifecycle scenario instead: the same
# single-account scan of the built binary without STATE_STORE, then with it
# twice (first, steady), printing the overhead and the state calls per scan.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The binary FC runs, built as scripts/build.sh builds it (stripped); it also
# serves the emulated cloud in a process of its own, so that the emulators'
# memory stays out of the heap measured.
GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath \
  -ldflags="-s -w -X vpnauthz/internal/version.Release=bench" -o "$work/main" .

go run ./scripts/benchtable --binary "$work/main" "$@"
