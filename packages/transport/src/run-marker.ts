/**
 * Containment by run marker: how a transport finds *everything* a plugin run started.
 *
 * A process group is not enough: a plugin that calls `setsid` (or a daemonizing tool that does)
 * leaves the group, and a kill of the group misses it while the result claims the run was
 * stopped. So every transport starts the plugin with one extra environment variable,
 * {@link RUN_MARKER_VARIABLE}`=<random hex>`, which every descendant inherits through `fork` and
 * `exec` whatever group or session it moves to. To stop a run, the node-side sweep
 * ({@link SWEEP_FUNCTION_SH}) finds every process whose *initial* environment (Linux
 * `/proc/<pid>/environ`) holds exactly that assignment, stops them all with SIGSTOP (so none can
 * fork while the sweep runs), repeats until a scan finds no new one, then SIGKILLs them.
 *
 * Why the initial environment: it is fixed when a process image is exec'd, so a shell that sets
 * the variable only as a prefix assignment (`RUNE_RUN_MARKER=… plugin`) does not mark itself or
 * the helper processes it forks; only the plugin and its descendants carry it.
 *
 * What it cannot do, and the docs say so (docs/security.md): a plugin that deliberately clears its
 * environment before exec (`env -i`), or hands work to another service (systemd, cron, at), is not
 * found. Reading another process's environ needs the same user (or root), which is the user the
 * plugin runs as. Without `/proc` (not Linux) the sweep reports itself incomplete.
 */
import { randomBytes } from 'node:crypto';

/** Name of the environment variable that marks every process of one run. */
export const RUN_MARKER_VARIABLE = 'RUNE_RUN_MARKER';

/** The grammar of a run marker: 32 lowercase hex digits. */
export const RUN_MARKER_PATTERN = /^[0-9a-f]{32}$/;

/** A fresh, unguessable run marker. */
export function createRunMarker(): string {
  return randomBytes(16).toString('hex');
}

/**
 * A POSIX `sh` function (dash, bash, busybox ash) that kills every process carrying run marker
 * `$1` and prints `<killed> <complete>` on stdout: the number of distinct processes it killed,
 * and `1` when it could scan `/proc`, `0` when it could not (nothing can be promised then).
 *
 * It needs `grep` with `-z` (GNU grep, busybox grep); it never kills the shell that runs it.
 * Cost: one `grep` over every `/proc/<pid>/environ` per scan; one scan when nothing is left over.
 */
export const SWEEP_FUNCTION_SH = [
  'rune_sweep() {',
  '  _rm=$1 _all="" _n=0 _round=0',
  '  if [ ! -r /proc/self/environ ]; then echo "0 0"; return 0; fi',
  '  while [ "$_round" -lt 50 ]; do',
  '    _round=$((_round + 1)) _new=""',
  `    for _f in $(grep -lzxF "${RUN_MARKER_VARIABLE}=$_rm" /proc/[0-9]*/environ 2>/dev/null); do`,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '      _p=${_f#/proc/}; _p=${_p%/environ}',
  '      [ "$_p" = "$$" ] && continue',
  '      case " $_all " in *" $_p "*) continue ;; esac',
  '      kill -s STOP "$_p" 2>/dev/null && _new="$_new $_p"',
  '    done',
  '    [ -z "$_new" ] && break',
  '    _all="$_all$_new"',
  '  done',
  '  for _p in $_all; do kill -s KILL "$_p" 2>/dev/null && _n=$((_n + 1)); done',
  // kill(2) returns once SIGKILL is queued; a loaded machine may schedule the victim much later.
  // "Nothing keeps running" must hold when the sweep reports, so wait (at most ~2 s) until each
  // killed process is gone or a zombie (it can no longer run code either way).
  '  _round=0',
  '  while [ -n "$_all" ] && [ "$_round" -lt 200 ]; do',
  '    _left=""',
  '    for _p in $_all; do',
  '      { read -r _s < "/proc/$_p/stat"; } 2>/dev/null || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '      _s=${_s##*) }',
  '      case $_s in Z*|X*) ;; *) _left="$_left $_p" ;; esac',
  '    done',
  '    _all=$_left _round=$((_round + 1))',
  '    [ -n "$_all" ] && { sleep 0.01 2>/dev/null || sleep 1; }',
  '  done',
  '  echo "$_n 1"',
  '}',
].join('\n');

/** What {@link SWEEP_FUNCTION_SH} printed. */
export interface SweepOutcome {
  killed: number;
  complete: boolean;
}

/** Parses the `<killed> <complete>` line of the sweep; undefined when it is not one. */
export function parseSweepOutput(line: string): SweepOutcome | undefined {
  const match = /^(\d{1,9}) ([01])$/.exec(line.trim());
  if (match === null) return undefined;
  return { killed: Number(match[1]), complete: match[2] === '1' };
}
