#!/usr/bin/env bash
# Rolls the member role out to every member account of Resource Directory
# folders with a service-managed ROS stack group (scripts/member-role/
# ros-template.yaml), run from the management account or a delegated
# administrator of ROS:
#   scripts/member-role.sh [--dry-run] [--update]
# --dry-run prints the aliyun CLI calls instead of making them (the
#           ExternalId shown as <MEMBER_ROLE_EXTERNAL_ID>);
# --update  updates an existing stack group and its instances instead of
#           creating them.
# Environment:
#   VPNAUTHZ_ROLE_ARN        the function's role, acs:ram::UID:role/NAME (required)
#   MEMBER_ROLE_EXTERNAL_ID  the ExternalId the member role requires (required, 8+ characters)
#   RD_FOLDER_IDS            Resource Directory folder ids, comma-separated (required;
#                            the root folder covers every member)
#   MEMBER_ROLE_NAME         default vpnauthz-auditor
#   ROS_REGION               where the stack group lives, default $VPNAUTHZ_REGION or cn-hangzhou
#   STACK_GROUP_NAME         default vpnauthz-member-role
# RAM roles are global: one stack instance per member, in ROS_REGION, is enough.
# New members of the folders get the role automatically (AutoDeployment).
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=false update=false
for arg in "$@"; do
  case $arg in
    --dry-run) dry_run=true ;;
    --update) update=true ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

role_arn=${VPNAUTHZ_ROLE_ARN:-}
[[ $role_arn =~ ^acs:ram::([0-9]{1,20}):role/([A-Za-z0-9._-]{1,64})$ ]] ||
  { echo "VPNAUTHZ_ROLE_ARN must be acs:ram::UID:role/NAME, the function's role: '$role_arn'" >&2; exit 2; }
scanning_account=${BASH_REMATCH[1]} function_role=${BASH_REMATCH[2]}
external_id=${MEMBER_ROLE_EXTERNAL_ID:-}
[ ${#external_id} -ge 8 ] || { echo "MEMBER_ROLE_EXTERNAL_ID must be set, at least 8 characters" >&2; exit 2; }
member_role=${MEMBER_ROLE_NAME:-vpnauthz-auditor}
[[ $member_role =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "MEMBER_ROLE_NAME: not a RAM role name: '$member_role'" >&2; exit 2; }
region=${ROS_REGION:-${VPNAUTHZ_REGION:-cn-hangzhou}}
[[ $region =~ ^[a-z]{2,}(-[a-z0-9]+){1,4}$ ]] || { echo "ROS_REGION: not a region id: '$region'" >&2; exit 2; }
group=${STACK_GROUP_NAME:-vpnauthz-member-role}
[[ $group =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$ ]] || { echo "STACK_GROUP_NAME: not a stack group name: '$group'" >&2; exit 2; }
folders=()
IFS=', ' read -r -a folders <<<"${RD_FOLDER_IDS:-}"
[ ${#folders[@]} -gt 0 ] || { echo "RD_FOLDER_IDS must name at least one Resource Directory folder (fd-...)" >&2; exit 2; }
folder_json=""
for f in "${folders[@]}"; do
  [[ $f =~ ^(fd|r)-[A-Za-z0-9]+$ ]] || { echo "RD_FOLDER_IDS: not a folder id: '$f'" >&2; exit 2; }
  folder_json+="${folder_json:+,}\"$f\""
done
targets="{\"RdFolderIds\":[$folder_json]}"

template=$(cat scripts/member-role/ros-template.yaml)
shown_id=$external_id
$dry_run && shown_id='<MEMBER_ROLE_EXTERNAL_ID>'
params=(
  --Parameters.1.ParameterKey RoleName --Parameters.1.ParameterValue "$member_role"
  --Parameters.2.ParameterKey ScanningAccountId --Parameters.2.ParameterValue "$scanning_account"
  --Parameters.3.ParameterKey FunctionRoleName --Parameters.3.ParameterValue "$function_role"
  --Parameters.4.ParameterKey ExternalId --Parameters.4.ParameterValue "$shown_id"
)

call() { # call ARGS...: run the aliyun CLI, or print what would run
  if $dry_run; then
    local out="aliyun" a
    for a in "$@"; do
      if [ "$a" = "$template" ]; then out+=" \"\$(cat scripts/member-role/ros-template.yaml)\""; else out+=" $(printf '%q' "$a")"; fi
    done
    echo "$out"
  else
    aliyun "$@"
  fi
}
$dry_run || command -v aliyun >/dev/null || { echo "the aliyun CLI is needed: https://github.com/aliyun/aliyun-cli" >&2; exit 2; }

if $update; then
  call ros UpdateStackGroup --RegionId "$region" --StackGroupName "$group" --PermissionModel SERVICE_MANAGED \
    --TemplateBody "$template" "${params[@]}" --RegionIds "[\"$region\"]" --DeploymentTargets "$targets"
else
  call ros CreateStackGroup --RegionId "$region" --StackGroupName "$group" --PermissionModel SERVICE_MANAGED \
    --AutoDeployment '{"Enabled":true,"RetainStacksOnAccountRemoval":false}' \
    --TemplateBody "$template" "${params[@]}"
  call ros CreateStackInstances --RegionId "$region" --StackGroupName "$group" \
    --RegionIds "[\"$region\"]" --DeploymentTargets "$targets"
fi
$dry_run || echo "stack group $group: operation started; follow it with: aliyun ros ListStackGroupOperations --RegionId $region --StackGroupName $group"
