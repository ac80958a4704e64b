#!/usr/bin/env bash
# Deploys vpnauthz with Serverless Devs (s.yaml): checks what the deployment
# needs, builds, creates the findings logstore and its index, then deploys.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for v in VPNAUTHZ_ROLE_ARN VPNAUTHZ_SLS_PROJECT VPNAUTHZ_FAILURE_DESTINATION SCAN_TARGETS; do
  [ -n "${!v:-}" ] || missing+=("$v")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "set these first: ${missing[*]} (see README, Deployment)" >&2
  exit 2
fi
command -v s >/dev/null || { echo "Serverless Devs (s) is needed: npm install -g @serverless-devs/s" >&2; exit 2; }

bash scripts/build.sh
# The logstore and its field index, idempotently, with the deployer's credentials.
SLS_PROJECT=$VPNAUTHZ_SLS_PROJECT SLS_LOGSTORE=${VPNAUTHZ_SLS_LOGSTORE:-vpnauthz-findings} \
  SLS_ENDPOINT=${SLS_ENDPOINT:-https://${VPNAUTHZ_REGION:-cn-hangzhou}.log.aliyuncs.com} \
  go run . setup-sls --live
s deploy -y "$@"
