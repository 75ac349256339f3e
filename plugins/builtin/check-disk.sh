#!/usr/bin/env bash
# check-disk — disk space (and inode) usage of the given paths against warning and critical
# thresholds, read with `df -P` (and `df -Pi`).
#   all below warning                    -> success
#   any at/above warning, none critical  -> partial (warnings in output_data.warnings), exit 0
#   any at/above critical                -> failure, exit 1, PLUGIN_FAILED
#   a path that does not exist           -> invalid input, exit 2, INVALID_PARAMETERS
#   df did not answer (e.g. hung NFS)    -> that mount gets status "error"; result partial
# A path need not be a mount point: the filesystem holding it is checked and its mount point is
# reported. Read-only; a dry run reports what it would check.
set -euo pipefail
# shellcheck source=../lib/bpcs.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/bpcs.sh" # @rune-include bpcs.sh

bpcs_init check-disk 1.0.0
bpcs_params_allow mounts warning_percent critical_percent include_inodes

bpcs_param_array mounts string /
mounts=("${BPCS_ARRAY[@]}")
((${#mounts[@]} >= 1 && ${#mounts[@]} <= 64)) ||
  bpcs_fail 2 INVALID_PARAMETERS "parameter 'mounts' must list 1 to 64 paths"
bpcs_param_int warning_percent 80 1 100
warn=$REPLY
bpcs_param_int critical_percent 90 1 100
crit=$REPLY
((warn <= crit)) ||
  bpcs_fail 2 INVALID_PARAMETERS "warning_percent ($warn) must not exceed critical_percent ($crit)"
bpcs_param_bool include_inodes true
inodes=$REPLY

for path in "${mounts[@]}"; do
  if [[ $path != /* || ${#path} -gt 4096 || $path == *$'\n'* ]]; then
    bpcs_json_object str path "${path:0:200}"
    bpcs_fail 2 INVALID_PARAMETERS "mount path must be absolute: '${path:0:200}'" "$REPLY"
  fi
done

bpcs_json_object int warning_percent "$warn" int critical_percent "$crit"
bpcs_out json thresholds "$REPLY"
bpcs_out bool dry_run "$BPCS_DRY_RUN"

if bpcs_dry_run; then
  bpcs_json_array str "${mounts[@]}"
  bpcs_out json would_check "$REPLY"
  bpcs_success "dry run: would check ${#mounts[@]} path(s) against ${warn}%/${crit}%"
fi

bpcs_require_cmd df
have_timeout=0
command -v timeout >/dev/null 2>&1 && have_timeout=1

# Runs df with a bound when `timeout` exists (a hung network mount must not hang the plugin).
run_df() {
  if ((have_timeout)); then timeout 10 df "$@"; else df "$@"; fi
}

# The last line of df -P output for one path: FS BLOCKS USED AVAIL CAPACITY MOUNTPOINT.
df_line() {
  local out
  out=$(run_df "$@" 2>&1) || { REPLY=${out:0:300}; return 1; }
  REPLY=${out##*$'\n'}
}

# Status of one percentage against the thresholds (percent may be "-" when unknown).
status_of() {
  local percent=$1
  if [[ ! $percent =~ ^[0-9]{1,3}$ ]]; then
    REPLY=ok
  elif ((10#$percent >= crit)); then
    REPLY=critical
  elif ((10#$percent >= warn)); then
    REPLY=warning
  else
    REPLY=ok
  fi
}

entries=()
critical=()
warnings=0
errors=0
for path in "${mounts[@]}"; do
  if [[ ! -e $path ]]; then
    bpcs_json_object str path "$path"
    bpcs_fail 2 INVALID_PARAMETERS "path does not exist on this node: $path" "$REPLY"
  fi
  if ! df_line -P -k -- "$path"; then
    errors=$((errors + 1))
    bpcs_warn "df did not answer for $path: $REPLY"
    bpcs_json_object str path "$path" str status error str error "$REPLY"
    entries+=("$REPLY")
    continue
  fi
  read -r fs blocks used avail capacity mountpoint <<<"$REPLY" || true
  percent=${capacity%\%}
  if [[ ! $blocks =~ ^[0-9]+$ || ! $used =~ ^[0-9]+$ || ! $avail =~ ^[0-9]+$ || ! $percent =~ ^[0-9]{1,3}$ ]]; then
    errors=$((errors + 1))
    bpcs_warn "could not parse df output for $path"
    bpcs_json_object str path "$path" str status error str error "unparsable df output: ${REPLY:0:200}"
    entries+=("$REPLY")
    continue
  fi
  status_of "$percent"
  status=$REPLY
  worst_percent=$percent
  inode_json=null
  if [[ $inodes == true ]] && df_line -P -i -- "$path"; then
    read -r _ itotal iused ifree ipercent _ <<<"$REPLY" || true
    ipercent=${ipercent%\%}
    if [[ $itotal =~ ^[0-9]+$ && $iused =~ ^[0-9]+$ && $ifree =~ ^[0-9]+$ ]]; then
      ipercent_json=null
      if [[ $ipercent =~ ^[0-9]{1,3}$ ]]; then
        ipercent_json=$((10#$ipercent))
        status_of "$ipercent"
        case $REPLY in
          critical) status=critical ;;
          warning) [[ $status == ok ]] && status=warning ;;
        esac
        ((10#$ipercent > 10#$worst_percent)) && worst_percent=$ipercent
      fi
      bpcs_json_object int total "$itotal" int used "$iused" int free "$ifree" json used_percent "$ipercent_json"
      inode_json=$REPLY
    fi
  fi
  bpcs_json_object str path "$path" str filesystem "$fs" str mount_point "$mountpoint" \
    int size_kb "$blocks" int used_kb "$used" int available_kb "$avail" \
    int used_percent "$((10#$percent))" json inodes "$inode_json" str status "$status"
  entries+=("$REPLY")
  case $status in
    critical) critical+=("$path (${worst_percent}%)") ;;
    warning)
      warnings=$((warnings + 1))
      bpcs_warn "$path is at ${worst_percent}% (warning at ${warn}%)"
      ;;
  esac
done

bpcs_json_array json "${entries[@]}"
bpcs_out json mounts "$REPLY"

if ((${#critical[@]} > 0)); then
  bpcs_json_array str "${critical[@]}"
  bpcs_fail 1 PLUGIN_FAILED "critical disk usage: ${critical[*]} (critical at ${crit}%)" "{\"critical\":$REPLY}"
fi
if ((warnings > 0 || errors > 0)); then
  bpcs_partial "${#mounts[@]} path(s) checked: $warnings warning(s), $errors error(s)"
fi
bpcs_success "${#mounts[@]} path(s) checked: all below ${warn}%"
