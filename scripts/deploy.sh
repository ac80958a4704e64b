#!/usr/bin/env bash
# Deploys vpnauthz with Serverless Devs (s.yaml): checks what the deployment
# needs, builds, creates the logstores (the findings one with its index, the
# function's log without ours), writes s.deploy.yaml without the optional
# parts that are not configured, then deploys that.
#   scripts/deploy.sh [--dry-run] [s deploy flags...]
# --dry-run stops before anything is created: it prints the checks' result
# and writes s.deploy.yaml for review.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=false
if [ "${1:-}" = --dry-run ]; then dry_run=true; shift; fi

missing=()
for v in VPNAUTHZ_ROLE_ARN VPNAUTHZ_SLS_PROJECT SCAN_TARGETS; do
  [ -n "${!v:-}" ] || missing+=("$v")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "set these first: ${missing[*]} (see README, Deploying)" >&2
  exit 2
fi
# Defaults of the optional settings s.yaml reads from the environment. Empty
# means "not set": the function then takes the policy file's value or its own
# default, so nothing here overrides the policy file.
export VPNAUTHZ_REGION=${VPNAUTHZ_REGION:-cn-hangzhou}
export VPNAUTHZ_SLS_LOGSTORE=${VPNAUTHZ_SLS_LOGSTORE:-vpnauthz-findings}
export VPNAUTHZ_FUNCTION_LOGSTORE=${VPNAUTHZ_FUNCTION_LOGSTORE:-vpnauthz-function-logs}
if [ "$VPNAUTHZ_FUNCTION_LOGSTORE" = "$VPNAUTHZ_SLS_LOGSTORE" ]; then
  echo "VPNAUTHZ_FUNCTION_LOGSTORE and VPNAUTHZ_SLS_LOGSTORE must differ: the function's log keeps FC's index" >&2
  exit 2
fi
# Optional: FC hands failed asynchronous invocations to it (MNS queue or
# topic, or a function). Empty: no destination block is deployed.
export VPNAUTHZ_FAILURE_DESTINATION=${VPNAUTHZ_FAILURE_DESTINATION:-}
export TRUSTED_ACCOUNT_IDS=${TRUSTED_ACCOUNT_IDS:-} TRUSTED_CEN_IDS=${TRUSTED_CEN_IDS:-}
export MAX_AUTHORIZATION_AGE_DAYS=${MAX_AUTHORIZATION_AGE_DAYS:-}
export VPC_API_RATE=${VPC_API_RATE:-} SCAN_CONCURRENCY=${SCAN_CONCURRENCY:-}
export HTTP_AUTH_TOKEN=${HTTP_AUTH_TOKEN:-} POLICY_FILE='' SLS_ENDPOINT=${SLS_ENDPOINT:-}
# Organisations, fan-out and state: empty keeps the one-account, stateless
# behaviour; the function applies its own defaults to what is empty.
export ACCOUNTS=${ACCOUNTS:-} ACCOUNTS_EXCLUDE=${ACCOUNTS_EXCLUDE:-}
export MEMBER_ROLE_NAME=${MEMBER_ROLE_NAME:-} MEMBER_ROLE_EXTERNAL_ID=${MEMBER_ROLE_EXTERNAL_ID:-}
export TRUST_ORGANIZATION=${TRUST_ORGANIZATION:-} FANOUT_ACCOUNTS_PER_INVOCATION=${FANOUT_ACCOUNTS_PER_INVOCATION:-}
export STATE_STORE=${STATE_STORE:-}
export STS_ENDPOINT=${STS_ENDPOINT:-} RESOURCEMANAGER_ENDPOINT=${RESOURCEMANAGER_ENDPOINT:-}
export FC_ENDPOINT=${FC_ENDPOINT:-} TABLESTORE_ENDPOINT=${TABLESTORE_ENDPOINT:-}
# Optional: the trail's project (in the function's region) turns on the Log
# Service trigger; ActionTrail names the logstore actiontrail_<trail name>.
export TRAIL_PROJECT=${TRAIL_PROJECT:-}
if [ -n "$TRAIL_PROJECT" ]; then
  export TRAIL_LOGSTORE=${TRAIL_LOGSTORE:-actiontrail_${TRAIL_NAME:-vpnauthz-trail}}
else
  export TRAIL_LOGSTORE=''
fi

# The template to deploy: s.yaml without what is not configured.
go run ./scripts/sdeploy -in s.yaml -out s.deploy.yaml
echo "wrote s.deploy.yaml (failure destination: ${VPNAUTHZ_FAILURE_DESTINATION:-none}, trail trigger: ${TRAIL_PROJECT:+$TRAIL_PROJECT/$TRAIL_LOGSTORE})"
if $dry_run; then
  echo "dry run: nothing created or deployed"
  exit 0
fi

command -v s >/dev/null || { echo "Serverless Devs (s) is needed: npm install -g @serverless-devs/s" >&2; exit 2; }

# With the deployer's credentials, idempotently: the findings logstore and
# its field index (loading the configuration here also checks the policy
# file before anything is deployed), and the logstore of the function's own
# log, which FC writes with the function's role and which keeps FC's index.
sls_endpoint=${SLS_ENDPOINT:-https://$VPNAUTHZ_REGION.log.aliyuncs.com}
SLS_PROJECT=$VPNAUTHZ_SLS_PROJECT SLS_LOGSTORE=$VPNAUTHZ_SLS_LOGSTORE SLS_ENDPOINT=$sls_endpoint \
  POLICY_FILE=${VPNAUTHZ_POLICY:-} go run . setup-sls --live
go run ./scripts/slslogstore -endpoint "$sls_endpoint" -project "$VPNAUTHZ_SLS_PROJECT" -logstore "$VPNAUTHZ_FUNCTION_LOGSTORE"

# A policy file ships inside the code package, which FC mounts at /code;
# s.yaml's pre-deploy action builds the binary beside it.
mkdir -p target
rm -f target/policy.yaml
if [ -n "${VPNAUTHZ_POLICY:-}" ]; then
  cp "$VPNAUTHZ_POLICY" target/policy.yaml
  export POLICY_FILE=/code/policy.yaml
fi
s deploy -t s.deploy.yaml -y "$@"
