/**
 * Scripted stand-ins for systemctl, docker, nomad, journalctl, dmesg and df. Each reads its
 * behaviour from files in the shim state dir (written by the test with `shims.set`) and logs
 * every call to state/calls.log.
 */
import type { ShimDir } from './harness.js';

/** Reads a state file with a default: `$(get name default)`. */
const GET = `get() { if [[ -f "$STATE/$1" ]]; then cat "$STATE/$1"; else printf '%s' "$2"; fi; }`;

/**
 * systemctl: `show` prints LoadState/ActiveState/SubState/MainPID; `restart` sleeps
 * restart_sleep, prints restart_stderr, exits restart_exit and marks the unit restarted;
 * `is-active` prints active_before or (after a restart) active_after.
 */
export function addSystemctl(shims: ShimDir): void {
  shims.add(
    'systemctl',
    `${GET}
state() { if [[ -f "$STATE/restarted" ]]; then get active_after active; else get active_before active; fi; }
pid() { if [[ -f "$STATE/restarted" ]]; then echo 2222; else echo 1111; fi; }
case "$1" in
  show)
    echo "LoadState=$(get load_state loaded)"
    echo "ActiveState=$(state)"
    echo "SubState=running"
    echo "MainPID=$(pid)"
    ;;
  restart)
    sleep "$(get restart_sleep 0)"
    touch "$STATE/restarted"
    get restart_stderr '' >&2
    exit "$(get restart_exit 0)"
    ;;
  is-active)
    s=$(state); echo "$s"; [[ $s == active ]]
    ;;
  *) echo "systemctl shim: unsupported $*" >&2; exit 1 ;;
esac`,
  );
}

/** docker: `info` exits docker_info_exit (after a restart) and prints the server version. */
export function addDocker(shims: ShimDir): void {
  shims.add(
    'docker',
    `${GET}
case "$1" in
  info)
    code=$(get docker_info_exit 0)
    if [[ $code == 0 ]]; then echo 24.0.7; else echo 'Cannot connect to the Docker daemon' >&2; fi
    exit "$code"
    ;;
  version) echo 24.0.7 ;;
  *) exit 1 ;;
esac`,
  );
}

/** nomad: `node status -self` exits nomad_node_exit, `agent-info` nomad_agent_exit. */
export function addNomad(shims: ShimDir): void {
  shims.add(
    'nomad',
    `${GET}
case "$1" in
  node) exit "$(get nomad_node_exit 0)" ;;
  agent-info) exit "$(get nomad_agent_exit 1)" ;;
  version) echo 'Nomad v1.7.2'; echo 'BuildDate 2024-01-01' ;;
  *) exit 1 ;;
esac`,
  );
}

/** journalctl: prints state/journal (raw bytes) and exits journal_exit. */
export function addJournalctl(shims: ShimDir): void {
  shims.add(
    'journalctl',
    `${GET}
[[ -f "$STATE/journal" ]] && cat "$STATE/journal"
get journal_stderr '' >&2
exit "$(get journal_exit 0)"`,
  );
}

/** dmesg: prints state/dmesg and exits dmesg_exit. */
export function addDmesg(shims: ShimDir): void {
  shims.add(
    'dmesg',
    `${GET}
[[ -f "$STATE/dmesg" ]] && cat "$STATE/dmesg"
exit "$(get dmesg_exit 0)"`,
  );
}

/**
 * df: usage per path from state/df (lines "PATH PERCENT INODE_PERCENT"); -i switches to inode
 * output; a path not listed exits 1 like df on a missing file; hang_path sleeps forever.
 */
export function addDf(shims: ShimDir): void {
  shims.add(
    'df',
    `${GET}
inodes=0; path=
for arg in "$@"; do case $arg in -i) inodes=1 ;; -*) ;; *) path=$arg ;; esac; done
if [[ $path == "$(get hang_path none)" ]]; then sleep 60; fi
while read -r p pct ipct; do
  [[ $p == "$path" ]] || continue
  if ((inodes)); then
    echo 'Filesystem Inodes IUsed IFree IUse% Mounted on'
    echo "/dev/shim 1000 $((ipct * 10)) $((1000 - ipct * 10)) $ipct% $path"
  else
    echo 'Filesystem 1024-blocks Used Available Capacity Mounted on'
    echo "/dev/shim 1000000 $((pct * 10000)) $((1000000 - pct * 10000)) $pct% $path"
  fi
  exit 0
done <"$STATE/df"
echo "df: $path: No such file or directory" >&2
exit 1`,
  );
}
