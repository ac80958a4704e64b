#!/usr/bin/env bash
# Creates the ActionTrail trail the Log Service trigger reads: write events of
# every region (and, with --organization, of every member of the Resource
# Directory: run it from the management account), delivered to the Log
# Service project TRAIL_PROJECT, then starts it:
#   scripts/create-trail.sh [--dry-run] [--organization]
# --dry-run       prints the aliyun CLI calls instead of making them
# --organization  a multi-account trail (IsOrganizationTrail); implied by
#                 ACCOUNTS=resource-directory
# Environment:
#   ACCOUNT_ID       the account that owns TRAIL_PROJECT (required)
#   TRAIL_PROJECT    an existing Log Service project in the function's region (required)
#   VPNAUTHZ_REGION  the function's region, where the project is (default cn-hangzhou)
#   TRAIL_NAME       default vpnauthz-trail; ActionTrail creates the logstore
#                    actiontrail_<TRAIL_NAME> (TRAIL_LOGSTORE for deploy.sh)
# Events take a few minutes to arrive after StartLogging.
set -euo pipefail

dry_run=false org=false
[ "${ACCOUNTS:-}" = resource-directory ] && org=true
for arg in "$@"; do
  case $arg in
    --dry-run) dry_run=true ;;
    --organization) org=true ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

account=${ACCOUNT_ID:-}
[[ $account =~ ^[0-9]{1,20}$ ]] || { echo "ACCOUNT_ID must be the digits of the account owning TRAIL_PROJECT: '$account'" >&2; exit 2; }
project=${TRAIL_PROJECT:-}
[[ $project =~ ^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] || { echo "TRAIL_PROJECT: not a Log Service project name: '$project'" >&2; exit 2; }
region=${VPNAUTHZ_REGION:-cn-hangzhou}
[[ $region =~ ^[a-z]{2,}(-[a-z0-9]+){1,4}$ ]] || { echo "VPNAUTHZ_REGION: not a region id: '$region'" >&2; exit 2; }
name=${TRAIL_NAME:-vpnauthz-trail}
# ActionTrail's rule: 6 to 36 characters, a lowercase letter first, then
# lowercase letters, digits, hyphens and underscores.
[[ $name =~ ^[a-z][a-z0-9_-]{5,35}$ ]] || { echo "TRAIL_NAME: 6-36 characters, a lowercase letter first, then [a-z0-9_-]: '$name'" >&2; exit 2; }

call() { # call ARGS...: run the aliyun CLI, or print what would run
  if $dry_run; then
    local out="aliyun" a
    for a in "$@"; do out+=" $(printf '%q' "$a")"; done
    echo "$out"
  else
    aliyun "$@"
  fi
}
$dry_run || command -v aliyun >/dev/null || { echo "the aliyun CLI is needed: https://github.com/aliyun/aliyun-cli" >&2; exit 2; }

create=(actiontrail CreateTrail --region "$region" --Name "$name"
  --SlsProjectArn "acs:log:$region:$account:project/$project"
  --TrailRegion All --EventRW Write)
$org && create+=(--IsOrganizationTrail true)
call "${create[@]}"
call actiontrail StartLogging --region "$region" --Name "$name"
$dry_run || echo "trail $name delivers to $project/actiontrail_$name; set TRAIL_PROJECT=$project (and TRAIL_NAME=$name) for deploy.sh"
