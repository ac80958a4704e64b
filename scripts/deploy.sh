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
# Defaults of the optional settings s.yaml reads from the environment.
export VPNAUTHZ_REGION=${VPNAUTHZ_REGION:-cn-hangzhou}
export VPNAUTHZ_SLS_LOGSTORE=${VPNAUTHZ_SLS_LOGSTORE:-vpnauthz-findings}
export TRUSTED_ACCOUNT_IDS=${TRUSTED_ACCOUNT_IDS:-} TRUSTED_CEN_IDS=${TRUSTED_CEN_IDS:-}
export MAX_AUTHORIZATION_AGE_DAYS=${MAX_AUTHORIZATION_AGE_DAYS:-0} POLICY_FILE=
export VPC_API_RATE=${VPC_API_RATE:-10} SCAN_CONCURRENCY=${SCAN_CONCURRENCY:-8}
export HTTP_AUTH_TOKEN=${HTTP_AUTH_TOKEN:-}

command -v s >/dev/null || { echo "Serverless Devs (s) is needed: npm install -g @serverless-devs/s" >&2; exit 2; }

bash scripts/build.sh
# A policy file ships inside the code package, which FC mounts at /code.
if [ -n "${VPNAUTHZ_POLICY:-}" ]; then
  cp "$VPNAUTHZ_POLICY" target/policy.yaml
  export POLICY_FILE=/code/policy.yaml
fi
# The logstore and its field index, idempotently, with the deployer's credentials.
SLS_PROJECT=$VPNAUTHZ_SLS_PROJECT SLS_LOGSTORE=$VPNAUTHZ_SLS_LOGSTORE \
  SLS_ENDPOINT=${SLS_ENDPOINT:-https://$VPNAUTHZ_REGION.log.aliyuncs.com} \
  go run . setup-sls --live
s deploy -y "$@"
