# shellcheck shell=bash
# service.sh — restart a systemd unit and wait, bounded, until it is active and answering.
# @rune-library drop-unused-functions
# @rune-library strip-comment-lines
# (the assembler leaves out the functions a plugin never names: Bash parses every definition.)
# Include it after bpcs.sh. The plugin defines two functions before calling svc_restart_plugin:
#   svc_health  — returns 0 when the service answers; may set SVC_HEALTH_DETAIL and SVC_VERSION.
#                 Its first argument is the number of seconds it may take.
#   svc_version — sets SVC_VERSION (best effort, may leave it empty).
# Every external call is bounded with `timeout`, and the wait loop by a deadline, so the plugin
# always answers before the control node's timeout when wait_timeout_s fits in it.

SVC_LOAD=unknown
SVC_ACTIVE=unknown
SVC_SUB=unknown
SVC_PID=0
SVC_VERSION=
SVC_HEALTH_DETAIL=
SVC_POLL_INTERVAL=${SVC_POLL_INTERVAL:-0.5}

# svc_state UNIT — reads LoadState/ActiveState/SubState/MainPID into SVC_*; returns 1 when
# systemctl cannot answer.
svc_state() {
  local unit=$1 out line
  SVC_LOAD=unknown
  SVC_ACTIVE=unknown
  SVC_SUB=unknown
  SVC_PID=0
  out=$(timeout 15 systemctl show -p LoadState -p ActiveState -p SubState -p MainPID "$unit" 2>&1) || {
    SVC_HEALTH_DETAIL=${out:0:500}
    return 1
  }
  while IFS= read -r line; do
    case $line in
      LoadState=*) SVC_LOAD=${line#*=} ;;
      ActiveState=*) SVC_ACTIVE=${line#*=} ;;
      SubState=*) SVC_SUB=${line#*=} ;;
      MainPID=*) SVC_PID=${line#*=} ;;
    esac
  done <<<"$out"
  [[ $SVC_PID =~ ^[0-9]{1,10}$ ]] || SVC_PID=0
  return 0
}

# svc_state_json — the current SVC_* state (and SVC_VERSION) as a JSON object in REPLY.
svc_state_json() {
  local version=null
  if [[ -n $SVC_VERSION ]]; then
    bpcs_json_string "$SVC_VERSION"
    version=$REPLY
  fi
  bpcs_json_object str load_state "$SVC_LOAD" str active_state "$SVC_ACTIVE" \
    str sub_state "$SVC_SUB" int main_pid "$SVC_PID" json version "$version"
}

_svc_remaining_s() { # deadline_ms → whole seconds left (at least 1) in REPLY
  local deadline=$1
  bpcs_now_ms
  local left=$(((deadline - REPLY + 999) / 1000))
  ((left < 1)) && left=1
  REPLY=$left
}

# svc_restart_plugin UNIT HEALTH_LABEL COMMAND... — the whole restart plugin: parameters,
# preconditions, dry run, restart, bounded wait, before/after report. COMMAND... are the tools
# the plugin needs besides systemctl (their absence is a precondition failure, exit 3).
svc_restart_plugin() {
  local unit=$1 health_label=$2
  shift 2
  bpcs_params_allow wait_timeout_s
  bpcs_param_int wait_timeout_s 60 1 600
  local wait=$REPLY requested=$REPLY
  # Leave the control node's timeout room for our answer: wait at most timeout - 5 s.
  local budget=$((BPCS_TIMEOUT_MS / 1000 - 5))
  ((budget < 1)) && budget=1
  if ((wait > budget)); then
    bpcs_warn "wait_timeout_s=$requested exceeds the run's timeout; waiting at most $budget s"
    wait=$budget
  fi
  bpcs_out str unit "$unit"
  bpcs_out int wait_timeout_s "$wait"
  bpcs_out bool dry_run "$BPCS_DRY_RUN"

  bpcs_require_cmd systemctl timeout "$@"
  if ! svc_state "$unit"; then
    bpcs_fail 3 PLUGIN_PRECONDITION_FAILED "systemctl cannot query $unit (is systemd running?): $SVC_HEALTH_DETAIL"
  fi
  if [[ $SVC_LOAD != loaded ]]; then
    bpcs_json_object str unit "$unit" str load_state "$SVC_LOAD"
    bpcs_fail 3 PLUGIN_PRECONDITION_FAILED "unit $unit is not installed on this node (LoadState=$SVC_LOAD)" "$REPLY"
  fi
  SVC_VERSION=
  if [[ $SVC_ACTIVE == active ]]; then svc_version; fi
  svc_state_json
  local before=$REPLY before_pid=$SVC_PID
  bpcs_out json before "$before"

  if bpcs_dry_run; then
    bpcs_json_array str "systemctl restart $unit" "wait up to ${wait}s for systemctl is-active $unit" \
      "wait up to ${wait}s for $health_label to answer"
    bpcs_out json would_run "$REPLY"
    bpcs_out bool restarted false
    bpcs_success "dry run: would restart $unit (now $SVC_ACTIVE) and wait up to ${wait}s for $health_label"
  fi

  bpcs_require_root
  bpcs_now_ms
  local start=$REPLY deadline=$((REPLY + wait * 1000)) rc=0 err
  bpcs_log "restarting $unit (wait up to ${wait}s)"
  err=$(timeout "$wait" systemctl restart "$unit" 2>&1) || rc=$?
  bpcs_out bool restarted true
  if ((rc != 0)); then
    svc_state "$unit" || true
    svc_state_json
    bpcs_out json after "$REPLY"
    bpcs_json_object str unit "$unit" int systemctl_exit "$rc" str stderr "${err:0:2000}"
    local details=$REPLY
    if ((rc == 124)); then
      bpcs_fail 5 PLUGIN_OPERATION_TIMEOUT "systemctl restart $unit did not finish within ${wait}s" "$details"
    elif [[ $err == *"Access denied"* || $err == *"authentication required"* || $err == *"Permission denied"* ]]; then
      bpcs_fail 4 PLUGIN_PERMISSION_DENIED "not allowed to restart $unit: ${err:0:300}" "$details"
    fi
    bpcs_fail 1 PLUGIN_FAILED "systemctl restart $unit failed (exit $rc): ${err:0:300}" "$details"
  fi

  # Wait until active and answering, polling; bounded by the deadline and an iteration cap.
  local answered=0 active='' iterations=0 max_iterations=$((wait * 20 + 20))
  SVC_HEALTH_DETAIL=
  while ((iterations < max_iterations)); do
    iterations=$((iterations + 1))
    active=$(timeout 10 systemctl is-active "$unit" 2>/dev/null) || true
    if [[ $active == active ]]; then
      _svc_remaining_s "$deadline"
      if svc_health "$REPLY"; then
        answered=1
        break
      fi
    elif [[ $active == failed ]]; then
      break
    fi
    bpcs_now_ms
    ((REPLY >= deadline)) && break
    sleep "$SVC_POLL_INTERVAL"
  done
  bpcs_now_ms
  local elapsed=$((REPLY - start))
  bpcs_out int elapsed_ms "$elapsed"
  svc_state "$unit" || true
  if ((answered)); then
    [[ -n $SVC_VERSION ]] || svc_version
  fi
  svc_state_json
  bpcs_out json after "$REPLY"
  bpcs_out bool pid_changed "$([[ $SVC_PID != "$before_pid" ]] && echo true || echo false)"
  bpcs_json_object str check "$health_label" bool ok "$([[ $answered == 1 ]] && echo true || echo false)" \
    str detail "${SVC_HEALTH_DETAIL:0:1000}"
  bpcs_out json health "$REPLY"

  if ((answered)); then
    bpcs_success "$unit restarted and answering ($health_label) after $((elapsed / 1000))s; pid $before_pid -> $SVC_PID"
  fi
  bpcs_json_object str unit "$unit" str active_state "${active:-unknown}" str health_detail "${SVC_HEALTH_DETAIL:0:1000}"
  local details=$REPLY
  if [[ $active == failed ]]; then
    bpcs_fail 1 PLUGIN_FAILED "$unit entered the failed state after the restart" "$details"
  fi
  if [[ $active != active ]]; then
    bpcs_fail 5 PLUGIN_OPERATION_TIMEOUT "$unit did not become active within ${wait}s (is-active: ${active:-unknown})" "$details"
  fi
  bpcs_fail 5 PLUGIN_OPERATION_TIMEOUT "$unit is active but $health_label did not answer within ${wait}s" "$details"
}
