#!/usr/bin/env bash
# Prints the function role's RAM policy for the features the environment
# configures (the same variables deploy.sh reads):
#   scripts/ram-policy.sh [-setup] ACCOUNT_ID SLS_REGION SLS_PROJECT SLS_LOGSTORE [REGION ...]
# With regions, the VPC statements name only those regions instead of "*".
# -setup prints what the person running setup-sls / setup-state needs instead.
# The actions and the features that need them are listed once, in
# internal/ramactions; scripts/rampolicy renders them.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/rampolicy" ./scripts/rampolicy
"$bin/rampolicy" "$@"
