#!/usr/bin/env bash
# restart-nomad — restarts the Nomad agent (systemctl restart nomad.service) and waits, bounded
# by wait_timeout_s, until the unit is active and the agent answers: `nomad node status -self`
# for a client agent, or `nomad agent-info` for a server-only agent. Reports the state before
# and after (active state, main pid, version). A dry run reports what it would do and changes
# nothing. The nomad CLI talks to the local agent (NOMAD_ADDR defaults to 127.0.0.1:4646).
set -euo pipefail
# shellcheck source=../lib/bpcs.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/bpcs.sh" # @rune-include bpcs.sh
# shellcheck source=../lib/service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/service.sh" # @rune-include service.sh

bpcs_init restart-nomad 1.0.0

svc_health() {
  local seconds=$1 out
  ((seconds > 10)) && seconds=10
  if out=$(timeout "$seconds" nomad node status -self 2>&1); then
    SVC_HEALTH_DETAIL='nomad node status -self answered'
    return 0
  fi
  SVC_HEALTH_DETAIL=${out:0:500}
  if out=$(timeout "$seconds" nomad agent-info 2>&1); then
    SVC_HEALTH_DETAIL='nomad agent-info answered (server-only agent)'
    return 0
  fi
  return 1
}

svc_version() {
  local out
  if out=$(timeout 10 nomad version 2>/dev/null); then
    out=${out%%$'\n'*}
    out=${out#Nomad }
    SVC_VERSION=${out:0:64}
  fi
  return 0
}

svc_restart_plugin nomad.service 'nomad node status -self' nomad
