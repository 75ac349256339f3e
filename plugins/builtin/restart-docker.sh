#!/usr/bin/env bash
# restart-docker — restarts the Docker daemon (systemctl restart docker.service) and waits,
# bounded by wait_timeout_s, until the unit is active and `docker info` answers. Reports the
# state before and after (active state, main pid, server version). A dry run reports what it
# would do and changes nothing.
set -euo pipefail
# shellcheck source=../lib/bpcs.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/bpcs.sh" # @rune-include bpcs.sh
# shellcheck source=../lib/service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/service.sh" # @rune-include service.sh

bpcs_init restart-docker 1.0.0

svc_health() {
  local seconds=$1 out
  ((seconds > 10)) && seconds=10
  if out=$(timeout "$seconds" docker info --format '{{.ServerVersion}}' 2>&1); then
    out=${out%%$'\n'*}
    [[ -n $out ]] && SVC_VERSION=${out:0:64}
    SVC_HEALTH_DETAIL="docker info answered (server $out)"
    return 0
  fi
  SVC_HEALTH_DETAIL=${out:0:500}
  return 1
}

svc_version() {
  local out
  if out=$(timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null); then
    SVC_VERSION=${out%%$'\n'*}
    SVC_VERSION=${SVC_VERSION:0:64}
  fi
  return 0
}

svc_restart_plugin docker.service 'docker info' docker
