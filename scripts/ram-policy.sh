#!/usr/bin/env bash
# Prints the function role's RAM policy with the account, the findings logstore
# and, optionally, the scanned regions filled in:
#   scripts/ram-policy.sh ACCOUNT_ID SLS_REGION SLS_PROJECT SLS_LOGSTORE [REGION ...]
# With regions, the VPC statements name only those regions instead of "*".
# The log statement also names the logstore of the function's own log
# (FC writes it with the same role): $VPNAUTHZ_FUNCTION_LOGSTORE, by default
# vpnauthz-function-logs.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
account=$1 sls_region=$2 project=$3 logstore=$4 fnlogstore=${VPNAUTHZ_FUNCTION_LOGSTORE:-vpnauthz-function-logs}
shift 4
[[ $account =~ ^[0-9]{1,20}$ ]] || { echo "ACCOUNT_ID must be digits: $account" >&2; exit 2; }
for r in "$sls_region" "$@"; do
  [[ $r =~ ^[a-z]{2,}(-[a-z0-9]+){1,4}$ ]] || { echo "not a region id: $r" >&2; exit 2; }
done
[[ $project =~ ^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] || { echo "not an SLS project name: $project" >&2; exit 2; }
for l in "$logstore" "$fnlogstore"; do
  [[ $l =~ ^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$ ]] || { echo "not an SLS logstore name: $l" >&2; exit 2; }
done

regions=("$@")
[ ${#regions[@]} -eq 0 ] && regions=("*")
list() { # list PATTERN: the JSON list of PATTERN with REGION replaced by each region
  local out="" r
  for r in "${regions[@]}"; do out+="${out:+, }\"${1//REGION/$r}\""; done
  printf '[%s]' "$out"
}
cat <<JSON
{
  "Version": "1",
  "Statement": [
    {
      "Sid": "ListVpnConnectionsOfScannedRegions",
      "Effect": "Allow",
      "Action": ["vpc:DescribeVpnConnections"],
      "Resource": $(list "acs:vpc:REGION:${account}:*")
    },
    {
      "Sid": "ReadCrossAccountAuthorizations",
      "Effect": "Allow",
      "Action": ["vpc:DescribeVpnCrossAccountAuthorizations"],
      "Resource": $(list "acs:vpc:REGION:${account}:vpnconnection/*")
    },
    {
      "Sid": "WriteFindingsAndTheFunctionLog",
      "Effect": "Allow",
      "Action": ["log:PostLogStoreLogs"],
      "Resource": [
        "acs:log:${sls_region}:${account}:project/${project}/logstore/${logstore}",
        "acs:log:${sls_region}:${account}:project/${project}/logstore/${fnlogstore}"
      ]
    }
  ]
}
JSON
