#!/usr/bin/env bash
# noop — does nothing, and says so: echoes the parameters, options and routing it received.
# Use it to check that RUNE can reach a node and run a plugin there end to end. `sleep_ms`
# makes it linger (tests and benchmarks of timeouts); a dry run reports and skips the sleep.
set -euo pipefail
# shellcheck source=../lib/bpcs.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/bpcs.sh" # @rune-include bpcs.sh

bpcs_init noop 1.0.0
bpcs_params_allow message sleep_ms

bpcs_param_string message ''
message=$REPLY
(( ${#message} <= 4096 )) || bpcs_fail 2 INVALID_PARAMETERS "parameter 'message' is longer than 4096 bytes"
bpcs_param_int sleep_ms 0 0 600000
sleep_ms=$REPLY

bpcs_json_at payload data input_parameters
parameters=$REPLY
bpcs_json_at payload data options
options=$REPLY
bpcs_json_at routing
routing=$REPLY
bpcs_json_object json input_parameters "$parameters" json options "$options" json routing "$routing"
bpcs_out json received "$REPLY"
bpcs_out str message "$message"

slept=0
if (( sleep_ms > 0 )); then
  if bpcs_dry_run; then
    bpcs_log "dry run: would sleep ${sleep_ms} ms"
  else
    printf -v seconds '%d.%03d' $(( sleep_ms / 1000 )) $(( sleep_ms % 1000 ))
    sleep "$seconds"
    slept=$sleep_ms
  fi
fi
bpcs_out int slept_ms "$slept"
bpcs_out bool dry_run "$BPCS_DRY_RUN"

# USER from the environment when the transport set it; else the prompt escape \u (bash >= 4.4
# looks the name up itself), so the common path starts no process; id only on older bash.
user=${USER:-}
if [[ -z $user ]]; then
  user_escape='\u'
  if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
    user=${user_escape@P}
  else
    user=$(id -un 2>/dev/null || echo "uid-$EUID")
  fi
fi
host=${HOSTNAME:-$(uname -n)}
bpcs_json_object str hostname "$host" str user "$user" int uid "$EUID" \
  str bash_version "$BASH_VERSION" str json_parser "$BPCS_JSON_PARSER"
bpcs_out json runtime "$REPLY"

if [[ -n $message ]]; then
  bpcs_success "noop: $message"
fi
bpcs_success "noop on $host"
