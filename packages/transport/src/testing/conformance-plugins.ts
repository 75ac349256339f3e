/**
 * The plugins the transport conformance suite runs: tiny Bash scripts, each probing one part of
 * the Transport contract. They take their input only from stdin (never from the command line or
 * the environment), validate it with a `case` pattern before using it, and need nothing on the
 * node beyond bash and coreutils (`cat`, `sha256sum`, `wc`, `seq`, `sleep`, `mktemp`, `tr`), plus
 * `setsid` (util-linux) and `grep` for the containment probes.
 */
import type { TransportPlugin } from '../transport.js';
import { createTestPlugin } from './test-plugin.js';

/** Copies stdin to stdout unchanged. */
export const ECHO_SCRIPT = `#!/usr/bin/env bash
exec cat
`;

/** Prints `<byte count> <sha256>` of its stdin. */
export const DIGEST_SCRIPT = `#!/usr/bin/env bash
set -eu
file=$(mktemp)
trap 'rm -f "$file"' EXIT
cat > "$file"
printf '%s %s\\n' "$(wc -c < "$file" | tr -d ' ')" "$(sha256sum < "$file" | cut -d' ' -f1)"
`;

/** Writes two lines to each stream, interleaved. */
export const STREAMS_SCRIPT = `#!/usr/bin/env bash
printf 'out-1\\n'
printf 'err-1\\n' >&2
printf 'out-2\\n'
printf 'err-2\\n' >&2
`;

/** Exits with the code read from stdin (99 when stdin is not a number). */
export const EXIT_CODE_SCRIPT = `#!/usr/bin/env bash
read -r code || true
case "$code" in ''|*[!0-9]*) exit 99 ;; esac
exit "$code"
`;

/** Kills itself with the signal named on stdin (TERM, KILL, INT or HUP). */
export const SIGNAL_SCRIPT = `#!/usr/bin/env bash
read -r name || true
case "$name" in TERM|KILL|INT|HUP) kill -s "$name" $$ ;; *) exit 99 ;; esac
sleep 5
exit 98
`;

/**
 * Starts a background child, writes "<own pid> <child pid>" to
 * `${TMPDIR:-/tmp}/rune-conformance-<token>.pids` (token read from stdin), prints that path and
 * waits. Only killing the whole process group ends both processes.
 */
export const SLEEPER_SCRIPT = `#!/usr/bin/env bash
read -r token || true
case "$token" in ''|*[!a-z0-9]*) exit 99 ;; esac
pidfile="\${TMPDIR:-/tmp}/rune-conformance-$token.pids"
sleep 300 &
child=$!
printf '%s %s\\n' "$$" "$child" > "$pidfile"
printf '%s\\n' "$pidfile"
wait
`;

/**
 * Reads a token from stdin and reports whether the processes the sleeper recorded under it are
 * gone: prints `gone`, `missing` (no pid file: the sleeper never started) or `alive <pids>`.
 * Waits up to 5 s for them to vanish; zombies count as gone; survivors are killed so that a
 * failing transport leaves nothing behind.
 */
export const PROCESS_CHECK_SCRIPT = `#!/usr/bin/env bash
read -r token || true
case "$token" in ''|*[!a-z0-9]*) exit 99 ;; esac
pidfile="\${TMPDIR:-/tmp}/rune-conformance-$token.pids"
if [ ! -f "$pidfile" ]; then echo missing; exit 0; fi
read -r -a pids < "$pidfile" || true
deadline=$((SECONDS + 5))
while :; do
  alive=""
  for pid in "\${pids[@]}"; do
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    if kill -0 "$pid" 2>/dev/null; then
      state=""
      if [ -r "/proc/$pid/stat" ]; then state=$(sed -e 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1); fi
      [ "$state" = Z ] || alive="$alive $pid"
    fi
  done
  if [ -z "$alive" ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
  sleep 0.1
done
rm -f "$pidfile"
if [ -z "$alive" ]; then echo gone; exit 0; fi
for pid in $alive; do kill -9 "$pid" 2>/dev/null || true; done
echo "alive$alive"
`;

/**
 * Starts a child that calls `setsid` (leaving the plugin's process group and session) and keeps
 * stdout and stderr open, named `rune-conformance-left-<token>-setsid` on its command line (token
 * read from stdin), prints `started <pid>` once it runs, then hangs. Only a transport that finds
 * every process the run started (the run marker) kills the child on timeout or cancel.
 */
export const SETSID_HANG_SCRIPT = `#!/usr/bin/env bash
read -r token || true
case "$token" in ''|*[!a-z0-9]*) exit 99 ;; esac
name="rune-conformance-left-$token-setsid"
setsid bash -c 'exec -a "$0" sleep 300' "$name" &
child=$!
for _ in $(seq 1 100); do
  [ -d /proc ] || break
  tr '\\0' ' ' < "/proc/$child/cmdline" 2>/dev/null | grep -q "^$name " && break
  sleep 0.05
done
printf 'started %s\\n' "$child"
sleep 300
`;

/**
 * Starts two children that keep stdout and stderr open — one in the plugin's process group
 * (`rune-conformance-left-<token>-group`), one that called `setsid`
 * (`rune-conformance-left-<token>-setsid`) — waits until both run, prints one result line
 * `{"conformance":"leaver","token":"<token>"}` and exits 0. The run ends there: the transport
 * must return that output at once with exit 0 (not wait for stdout EOF) and kill both children.
 */
export const LEAVER_SCRIPT = `#!/usr/bin/env bash
read -r token || true
case "$token" in ''|*[!a-z0-9]*) exit 99 ;; esac
base="rune-conformance-left-$token"
bash -c 'exec -a "$0" sleep 300' "$base-group" &
group=$!
setsid bash -c 'exec -a "$0" sleep 300' "$base-setsid" &
escaped=$!
running() { tr '\\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q "^$2 "; }
for _ in $(seq 1 100); do
  [ -d /proc ] || break
  running "$group" "$base-group" && running "$escaped" "$base-setsid" && break
  sleep 0.05
done
printf '{"conformance":"leaver","token":"%s"}\\n' "$token"
exit 0
`;

/** The exact stdout of {@link LEAVER_SCRIPT} for `token`. */
export function expectedLeaverOutput(token: string): string {
  return `{"conformance":"leaver","token":"${token}"}\n`;
}

/** The command-line fragment every child left by the containment probes carries. */
export function leftoverCommandLineFragment(token: string): string {
  return `rune-conformance-left-${token}`;
}

/** Prints N numbered lines (N from stdin) to stdout (`out-000001`...) and to stderr (`err-...`). */
export const LINES_SCRIPT = `#!/usr/bin/env bash
read -r lines || true
case "$lines" in ''|*[!0-9]*) exit 99 ;; esac
seq -f 'out-%06g' 1 "$lines"
seq -f 'err-%06g' 1 "$lines" >&2
`;

/** Waits half a second, then copies stdin to stdout: overlapping runs expose crosstalk. */
export const DELAYED_ECHO_SCRIPT = `#!/usr/bin/env bash
sleep 0.5
exec cat
`;

/** The conformance plugins, ready to hand to a transport. */
export interface ConformancePlugins {
  echo: TransportPlugin;
  digest: TransportPlugin;
  streams: TransportPlugin;
  exitCode: TransportPlugin;
  signal: TransportPlugin;
  sleeper: TransportPlugin;
  processCheck: TransportPlugin;
  lines: TransportPlugin;
  delayedEcho: TransportPlugin;
  setsidHang: TransportPlugin;
  leaver: TransportPlugin;
}

/** Builds every conformance plugin (action names `conformance-<probe>`). */
export function createConformancePlugins(): ConformancePlugins {
  const make = (action: string, script: string) =>
    createTestPlugin(script, { action: `conformance-${action}` });
  return {
    echo: make('echo', ECHO_SCRIPT),
    digest: make('digest', DIGEST_SCRIPT),
    streams: make('streams', STREAMS_SCRIPT),
    exitCode: make('exit-code', EXIT_CODE_SCRIPT),
    signal: make('signal', SIGNAL_SCRIPT),
    sleeper: make('sleeper', SLEEPER_SCRIPT),
    processCheck: make('process-check', PROCESS_CHECK_SCRIPT),
    lines: make('lines', LINES_SCRIPT),
    delayedEcho: make('delayed-echo', DELAYED_ECHO_SCRIPT),
    setsidHang: make('setsid-hang', SETSID_HANG_SCRIPT),
    leaver: make('leaver', LEAVER_SCRIPT),
  };
}

/** The bytes {@link LINES_SCRIPT} writes for `count` lines with a prefix (`out` or `err`). */
export function expectedLines(prefix: 'out' | 'err', count: number): string {
  let text = '';
  for (let i = 1; i <= count; i++) text += `${prefix}-${String(i).padStart(6, '0')}\n`;
  return text;
}
