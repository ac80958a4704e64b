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
# Defaults of the optional settings s.yaml reads from the environment. Empty
# means "not set": the function then takes the policy file's value or its own
# default, so nothing here overrides the policy file.
export VPNAUTHZ_REGION=${VPNAUTHZ_REGION:-cn-hangzhou}
export VPNAUTHZ_SLS_LOGSTORE=${VPNAUTHZ_SLS_LOGSTORE:-vpnauthz-findings}
export VPNAUTHZ_FUNCTION_LOGSTORE=${VPNAUTHZ_FUNCTION_LOGSTORE:-vpnauthz-function-logs}
export TRUSTED_ACCOUNT_IDS=${TRUSTED_ACCOUNT_IDS:-} TRUSTED_CEN_IDS=${TRUSTED_CEN_IDS:-}
export MAX_AUTHORIZATION_AGE_DAYS=${MAX_AUTHORIZATION_AGE_DAYS:-}
export VPC_API_RATE=${VPC_API_RATE:-} SCAN_CONCURRENCY=${SCAN_CONCURRENCY:-}
export HTTP_AUTH_TOKEN=${HTTP_AUTH_TOKEN:-} POLICY_FILE=

command -v s >/dev/null || { echo "Serverless Devs (s) is needed: npm install -g @serverless-devs/s" >&2; exit 2; }

# The findings logstore and its field index, and the logstore of the
# function's own log (where findings go as JSON lines when Log Service
# refuses them), idempotently, with the deployer's credentials. Loading the
# configuration here also checks the policy file before anything is deployed.
sls_endpoint=${SLS_ENDPOINT:-https://$VPNAUTHZ_REGION.log.aliyuncs.com}
for logstore in "$VPNAUTHZ_SLS_LOGSTORE" "$VPNAUTHZ_FUNCTION_LOGSTORE"; do
  SLS_PROJECT=$VPNAUTHZ_SLS_PROJECT SLS_LOGSTORE=$logstore SLS_ENDPOINT=$sls_endpoint \
    POLICY_FILE=${VPNAUTHZ_POLICY:-} go run . setup-sls --live
done

# A policy file ships inside the code package, which FC mounts at /code;
# s.yaml's pre-deploy action builds the binary beside it.
mkdir -p target
rm -f target/policy.yaml
if [ -n "${VPNAUTHZ_POLICY:-}" ]; then
  cp "$VPNAUTHZ_POLICY" target/policy.yaml
  export POLICY_FILE=/code/policy.yaml
fi
s deploy -y "$@"
