/**
 * The remote side of the SSH transport: one small, FIXED POSIX `sh` bootstrap and the command
 * lines that invoke it.
 *
 * Why a fixed bootstrap: the hot path must be one exec round trip, and nothing a user supplies may
 * ever reach a shell command line. So the command is always `sh -c '<BOOTSTRAP>' rune <op> <sha256>
 * <location> <watchdog-seconds> <run-marker> [<required-command>...]`: the script text never
 * changes, and its positional arguments are values that match strict grammars (an operation name,
 * 64 hex digits, a validated path, an integer, 32 hex digits, command names of
 * `[A-Za-z0-9._+-]{1,64}`) — quoted anyway. The RCS document travels alone on stdin, untouched by
 * any shell.
 *
 * Why hash-then-exec by path is safe: before anything is hashed, the cache directory (operation
 * `ship`, `upload`) or the plugin file (operation `preinstalled`) must pass `rune_safe_path`
 * (SAFE_PATH_FUNCTION_SH from @rune/transport): every component from `/` down, symlinks resolved, is
 * owned by the remote user or root and writable by nobody else (a root-owned sticky parent such as
 * /tmp excepted), and the last component is not a symlink. The cache directory must also be owned
 * by the user, and a cached file must be a regular file owned by the user that nobody else can
 * write. Then no other user can rename, replace or rewrite anything between `sha256sum` and the
 * exec, so the bytes that were hashed are the bytes that run. Missing directories are created one
 * component at a time with umask 077; nothing is chmodded before the check, so a symlink planted
 * in the path can never redirect a chmod. A failed check is the status line `unsafe <component>`
 * (the transport's PLUGIN_CACHE_UNSAFE) and nothing runs.
 *
 * Preflight: the required commands (the manifest's `requires.commands`) are looked up with
 * `command -v` (rune_preflight, PREFLIGHT_FUNCTION_SH from @rune/transport) in the same round trip,
 * after the path checks and before the cache lookup (`ship`: a node that lacks a command gets no
 * upload) or the start (`preinstalled`). Any missing one is the status line `missing <name>...`
 * and nothing starts.
 *
 * What the bootstrap does (operation `ship`): check the cache dir, check that `<dir>/<sha256>`
 * exists and hashes to `<sha256>` (a missing, altered or wrongly owned file is removed and
 * reported as `miss`; the transport then uploads the plugin with operation `upload`: stdin =
 * plugin bytes → temp file in the private dir → sha256 check → chmod 700 → mv), announce itself
 * (`pgid <pid>`), start the remote watchdog, then run the plugin in the FOREGROUND as
 * `RUNE_RUN_MARKER=<marker> <plugin>` (a prefix assignment: the bootstrap itself, the watchdog
 * and the sweeps never carry the marker). The plugin inherits stdin/stdout/stderr directly (no
 * copy, binary-safe). When the plugin exits, the bootstrap stops the watchdog, runs `rune_sweep
 * <marker>` (every process the run started that is still alive, including ones that called
 * setsid or hold stdout open, is killed), prints the trailer `end exit <status> swept <killed>
 * <complete>` and exits with the plugin's status. The shell reports a plugin killed by signal n
 * as status 128+n, so the transport reads such a status as that signal (the convention of every
 * POSIX shell; a plugin that exits 128+n on purpose looks the same).
 *
 * The watchdog is a detached subshell (stdio on /dev/null, so it never holds the channel open)
 * that sleeps the watchdog seconds and then sweeps the marker: a plugin that outlives a vanished
 * control node is still contained. The bootstrap kills it (and its `sleep`) when the plugin ends.
 *
 * Status lines go to stderr, each starting with the marker {@link BOOTSTRAP_MARKER} (ASCII RS +
 * `RUNE:`): all of them *before* the plugin starts (the last one is `pgid <n>`), plus the trailer
 * after it ended. The transport strips them from the captured stderr and believes only the LAST
 * trailer, and only when it matches the channel's exit status, so a plugin cannot forge one.
 */
import {
  PREFLIGHT_FUNCTION_SH,
  RUN_MARKER_PATTERN,
  RUN_MARKER_VARIABLE,
  SAFE_PATH_FUNCTION_SH,
  SWEEP_FUNCTION_SH,
  type SweepOutcome,
  validatePreflightCommands,
} from '@rune/transport';

/** Prefix of the bootstrap's status lines on stderr (ASCII record separator + `RUNE:`). */
export const BOOTSTRAP_MARKER = '\x1eRUNE:';

/** Exit code of the bootstrap when it did not start the plugin (the markers say why). */
export const BOOTSTRAP_EXIT_CODE = 125;

/** Largest remote command line the transport sends (well below Linux MAX_ARG_STRLEN, 128 KiB). */
export const MAX_COMMAND_BYTES = 64 * 1024;

/**
 * The bootstrap script. It contains no single quote and no user data; it is the same for every
 * node and every run (tests assert both).
 */
export const BOOTSTRAP_SCRIPT = [
  'set -u',
  'op=$1 sha=$2 loc=$3 wd=$4 mk=$5',
  // What is left are the commands the plugin requires (preflight), each one argument.
  'shift 5',
  'say() { printf "\\036RUNE:%s\\n" "$*" >&2; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  'case $loc in "~") loc=$HOME ;; "~/"*) loc=$HOME/${loc#"~/"} ;; esac',
  SAFE_PATH_FUNCTION_SH,
  SWEEP_FUNCTION_SH,
  PREFLIGHT_FUNCTION_SH,
  // Before anything is uploaded or started: a missing command is reported and nothing runs.
  'preflight() {',
  '  [ "$#" -gt 0 ] || return 0',
  '  if ! pm=$(rune_preflight "$@"); then say missing $pm; exit 125; fi',
  '}',
  'hash_of() {',
  '  if command -v sha256sum >/dev/null 2>&1; then h=$(sha256sum < "$1") || return 1',
  '  elif command -v shasum >/dev/null 2>&1; then h=$(shasum -a 256 < "$1") || return 1',
  '  else return 2; fi',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  printf "%s" "${h%% *}"',
  '}',
  // Creates each missing component of an absolute path (umask 077 => 0700); touches nothing that
  // exists, and never follows a dangling symlink (the safe-path check refuses it afterwards).
  'make_dirs() {',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  _md="" _mr=${1#/}',
  '  while [ -n "$_mr" ]; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    _mc=${_mr%%/*}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '    case $_mr in */*) _mr=${_mr#*/} ;; *) _mr="" ;; esac',
  '    [ -n "$_mc" ] || continue',
  '    _md=$_md/$_mc',
  '    [ -e "$_md" ] || [ -L "$_md" ] || mkdir -- "$_md" 2>/dev/null || [ -d "$_md" ] || return 1',
  '  done',
  '}',
  'private_dir() {',
  '  umask 077',
  '  case $loc in /*) ;; *) say "error cache-dir-relative"; exit 125 ;; esac',
  '  make_dirs "$loc" || { say "error cache-dir-create"; exit 125; }',
  '  if ! u=$(rune_safe_path "$loc"); then say "unsafe $u"; exit 125; fi',
  '  [ -d "$loc" ] && [ -O "$loc" ] || { say "unsafe $loc"; exit 125; }',
  // Safe only now: $loc is no symlink, and nobody else can write any directory above it.
  '  chmod 700 -- "$loc" 2>/dev/null || { say "error cache-dir-chmod"; exit 125; }',
  '}',
  'start() {',
  '  case $mk in *[!0-9a-f]*) say "error bad-marker"; exit 125 ;; esac',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  [ "${#mk}" -eq 32 ] || { say "error bad-marker"; exit 125; }',
  '  say "pgid $$"',
  '  wp=""',
  '  if [ "$wd" -gt 0 ]; then',
  '    (trap "kill \\$! 2>/dev/null; exit 0" TERM; sleep "$wd" & wait $!; rune_sweep "$mk") </dev/null >/dev/null 2>&1 &',
  '    wp=$!',
  '  fi',
  `  ${RUN_MARKER_VARIABLE}=$mk "$1"`,
  '  rc=$?',
  '  if [ -n "$wp" ]; then kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null; fi',
  '  sw=$(rune_sweep "$mk")',
  '  say "end exit $rc swept $sw"',
  '  exit "$rc"',
  '}',
  'case $op in',
  '  ship)',
  '    private_dir',
  '    preflight "$@"',
  '    f=$loc/$sha',
  '    if [ -L "$f" ] || [ ! -f "$f" ] || [ ! -O "$f" ]; then rm -f -- "$f" 2>/dev/null; say miss; exit 125; fi',
  '    m=$(stat -c %a -- "$f") || { say miss; exit 125; }',
  '    if [ $((0$m & 022)) -ne 0 ]; then rm -f -- "$f"; say miss; exit 125; fi',
  '    h=$(hash_of "$f"); rc=$?',
  '    if [ "$rc" -eq 2 ]; then say "error no-sha256"; exit 125; fi',
  '    if [ "$h" != "$sha" ]; then rm -f -- "$f"; say miss; exit 125; fi',
  '    start "$f" ;;',
  '  upload)',
  '    private_dir',
  '    t=$(mktemp "$loc/.upload.XXXXXXXX") || { say "error cache-dir-write"; exit 125; }',
  '    if ! cat > "$t"; then rm -f -- "$t"; say "error cache-dir-write"; exit 125; fi',
  '    h=$(hash_of "$t"); rc=$?',
  '    if [ "$rc" -eq 2 ]; then rm -f -- "$t"; say "error no-sha256"; exit 125; fi',
  '    if [ "$h" != "$sha" ]; then rm -f -- "$t"; say "integrity $h"; exit 125; fi',
  '    if ! chmod 700 -- "$t" || ! mv -f -- "$t" "$loc/$sha"; then rm -f -- "$t"; say "error cache-dir-write"; exit 125; fi',
  '    say stored; exit 0 ;;',
  '  preinstalled)',
  '    if [ ! -f "$loc" ]; then say notinstalled; exit 125; fi',
  '    if ! u=$(rune_safe_path "$loc"); then say "unsafe $u"; exit 125; fi',
  '    preflight "$@"',
  '    start "$loc" ;;',
  '  *) say "error bad-op"; exit 125 ;;',
  'esac',
].join('\n');

/**
 * The control side's kill: sweeps every process carrying run marker `$1` and prints the sweep's
 * `<killed> <complete>` line on stdout.
 */
export const SWEEP_SCRIPT = [
  SWEEP_FUNCTION_SH,
  'case $1 in *[!0-9a-f]*|"") echo "0 0"; exit 0 ;; esac',
  'rune_sweep "$1"',
].join('\n');

/** Strict grammars for the only values that reach a command line. */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;
/** Login/run-as user names (POSIX portable, as useradd accepts by default). */
export const USER_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
/** Remote directories: absolute or `~/`-relative, safe characters only, no `..` segment. */
export const REMOTE_PATH_PATTERN = /^(~|~\/[A-Za-z0-9._+/-]*|\/[A-Za-z0-9._+/-]*)$/;

/** True for a remote path the transport accepts (see {@link REMOTE_PATH_PATTERN}). */
export function isSafeRemotePath(path: string): boolean {
  return REMOTE_PATH_PATTERN.test(path) && !path.split('/').includes('..');
}

/** POSIX single-quoting; the values quoted here already match strict grammars. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The wrapper for run-as root: a login user that already is root (uid 0) runs the command
 * itself, so root logins work where sudo is not installed; anyone else goes through
 * non-interactive sudo as for every other run-as user. Decided on the node, in the same exec (no
 * extra round trip); the wrapped command comes as arguments, so nothing is quoted twice.
 */
export const ROOT_WRAPPER_SCRIPT =
  'if [ "$(id -u)" -eq 0 ]; then exec "$@"; fi; exec sudo -n -H -u root -- "$@"';

function withRunAs(command: string, runAs: string | undefined): string {
  // `exec` so that the login shell is replaced and a fatal signal reaches sshd as such.
  if (runAs === undefined) return `exec ${command}`;
  if (!USER_NAME_PATTERN.test(runAs)) throw new TypeError(`invalid run-as user name: ${runAs}`);
  if (runAs === 'root') return `exec sh -c ${shellQuote(ROOT_WRAPPER_SCRIPT)} rune-root ${command}`;
  return `exec sudo -n -H -u ${shellQuote(runAs)} -- ${command}`;
}

/** What one bootstrap invocation does. */
export interface BootstrapInvocation {
  op: 'ship' | 'upload' | 'preinstalled';
  /** sha256 of the plugin (ship, upload); `-` for preinstalled. */
  sha256?: string;
  /** Cache directory (ship, upload) or plugin path (preinstalled). */
  location: string;
  /** Remote watchdog in whole seconds; 0 disables it. */
  watchdogSeconds: number;
  /** The run marker the plugin is started with (ship, preinstalled): 32 hex digits. */
  marker?: string;
  /**
   * Run through `sudo -n -H -u <runAs>`; `root` runs without sudo when the login user is uid 0
   * (see {@link ROOT_WRAPPER_SCRIPT}).
   */
  runAs?: string;
  /**
   * Commands the plugin requires (ship, preinstalled): looked up with `command -v` right before
   * the plugin would start, each passed as its own argument after the fixed ones.
   */
  preflight?: readonly string[];
}

/**
 * The full remote command line for one bootstrap invocation. Throws TypeError on bad input
 * (RuneError INVALID_ARGUMENT for a required command name outside the manifest grammar).
 */
export function buildBootstrapCommand(invocation: BootstrapInvocation): string {
  const sha = invocation.sha256 ?? '-';
  if (invocation.op !== 'preinstalled' && !SHA256_HEX_PATTERN.test(sha)) {
    throw new TypeError('invalid sha256');
  }
  if (!isSafeRemotePath(invocation.location)) {
    throw new TypeError(`unsafe remote path: ${invocation.location}`);
  }
  const seconds = invocation.watchdogSeconds;
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new TypeError('invalid watchdog');
  const marker = invocation.marker ?? '-';
  if (invocation.op !== 'upload' && !RUN_MARKER_PATTERN.test(marker)) {
    throw new TypeError('invalid run marker');
  }
  // Each name matches the manifest grammar (validatePreflightCommands throws otherwise) and is
  // quoted anyway; the bootstrap only ever passes them as arguments to `command -v`.
  const preflight =
    invocation.op === 'upload' ? [] : validatePreflightCommands(invocation.preflight ?? []);
  const args = [invocation.op, sha, invocation.location, String(seconds), marker, ...preflight].map(
    shellQuote,
  );
  return withRunAs(
    `sh -c ${shellQuote(BOOTSTRAP_SCRIPT)} rune ${args.join(' ')}`,
    invocation.runAs,
  );
}

/**
 * The command that kills every remote process carrying run `marker` (as `runAs` when set, the
 * user the plugin runs as); it prints the sweep's `<killed> <complete>` line on stdout.
 */
export function buildKillCommand(marker: string, runAs?: string): string {
  if (!RUN_MARKER_PATTERN.test(marker)) throw new TypeError('invalid run marker');
  return withRunAs(`sh -c ${shellQuote(SWEEP_SCRIPT)} rune ${shellQuote(marker)}`, runAs);
}

/**
 * Linux signal numbers, for reading a shell's 128+n status; empty where the signal cannot end a
 * process (CHLD, CONT, STOP, TSTP, TTIN, TTOU, URG, WINCH), so such a status stays an exit.
 */
const LINUX_SIGNALS: readonly string[] = [
  '',
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGKILL',
  'SIGUSR1',
  'SIGSEGV',
  'SIGUSR2',
  'SIGPIPE',
  'SIGALRM',
  'SIGTERM',
  'SIGSTKFLT',
  '',
  '',
  '',
  '',
  '',
  '',
  '',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGVTALRM',
  'SIGPROF',
  '',
  'SIGIO',
  'SIGPWR',
  'SIGSYS',
];

/**
 * The signal a shell status stands for: sh reports a child killed by signal n as 128+n. Returns
 * undefined for an ordinary exit status (0..128, or above 128+31).
 */
export function signalOfShellStatus(status: number): string | undefined {
  if (!Number.isSafeInteger(status) || status <= 128) return undefined;
  const name = LINUX_SIGNALS[status - 128];
  return name === undefined || name === '' ? undefined : name;
}

/** `sudo -n -l` for the bootstrap's command: exit 0 when sudoers allows it (maybe with a password). */
export function buildSudoCheckCommand(runAs: string): string {
  if (!USER_NAME_PATTERN.test(runAs)) throw new TypeError(`invalid run-as user name: ${runAs}`);
  return `exec sudo -n -l -u ${shellQuote(runAs)} -- sh -c true`;
}

/** One status line of the bootstrap. */
export interface BootstrapStatus {
  kind: string;
  args: string[];
}

/** The bootstrap's final line: the plugin's exit status and what the sweep after it killed. */
export interface BootstrapTrailer extends SweepOutcome {
  /** The plugin's status as the shell saw it (128+n for a plugin killed by signal n). */
  status: number;
}

/** The trailer after {@link BOOTSTRAP_MARKER} (the marker itself is compared as bytes). */
const TRAILER_PATTERN = /^end exit (\d{1,3}) swept (\d{1,9}) ([01])\n$/;

/**
 * Separates the bootstrap's status lines from the plugin's stderr. Until the `pgid` line, stderr
 * is read line by line: marker lines become {@link BootstrapStatus}es, other lines (e.g. sudo's
 * complaints) are passed through and remembered in `preamble`. After `pgid`, every byte is the
 * plugin's and is passed through untouched — except the trailer the bootstrap prints when the
 * plugin ended: the bytes from the last ASCII RS on are held back (a trailer is short) and, at
 * the end of the stream, become {@link trailer} when they are exactly one trailer line. A trailer
 * the plugin printed itself is followed by the bootstrap's own, so it is passed through as text.
 */
export class BootstrapStderr {
  readonly statuses: BootstrapStatus[] = [];
  /** Non-marker text seen before the plugin started (bounded). */
  preamble = '';
  pgid: number | undefined;
  /** The bootstrap's trailer, once the stream ended with one (see {@link flush}). */
  trailer: BootstrapTrailer | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private held: Buffer = Buffer.alloc(0);
  private started = false;
  private static readonly MAX_PENDING = 64 * 1024;
  private static readonly MAX_PREAMBLE = 8 * 1024;
  private static readonly MAX_TRAILER = 128;

  constructor(private readonly sink: (chunk: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    if (this.started) {
      this.pluginBytes(chunk);
      return;
    }
    this.pending =
      this.pending.byteLength === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.started) {
        const rest = this.pending;
        this.pending = Buffer.alloc(0);
        if (rest.byteLength > 0) this.pluginBytes(rest);
        return;
      }
      const newline = this.pending.indexOf(0x0a);
      if (newline === -1) break;
      const line = this.pending.subarray(0, newline + 1);
      this.pending = this.pending.subarray(newline + 1);
      this.line(line);
    }
    if (this.pending.byteLength > BootstrapStderr.MAX_PENDING) this.flushPending();
  }

  /** Ends the stream: reads a held-back trailer, passes on anything else (an incomplete line). */
  flush(): void {
    this.flushPending();
    if (this.held.byteLength > 0) {
      const text = this.held.toString('latin1');
      const match = text.startsWith(BOOTSTRAP_MARKER)
        ? TRAILER_PATTERN.exec(text.slice(BOOTSTRAP_MARKER.length))
        : null;
      if (match === null) this.sink(this.held);
      else {
        this.trailer = {
          status: Number(match[1]),
          killed: Number(match[2]),
          complete: match[3] === '1',
        };
      }
    }
    this.held = Buffer.alloc(0);
  }

  /** The first status of `kind`, if any. */
  find(kind: string): BootstrapStatus | undefined {
    return this.statuses.find((status) => status.kind === kind);
  }

  private flushPending(): void {
    if (this.pending.byteLength > 0) {
      this.remember(this.pending);
      this.sink(this.pending);
    }
    this.pending = Buffer.alloc(0);
  }

  private pluginBytes(chunk: Uint8Array): void {
    const data =
      this.held.byteLength === 0 ? Buffer.from(chunk) : Buffer.concat([this.held, chunk]);
    this.held = Buffer.alloc(0);
    const rs = data.lastIndexOf(0x1e);
    if (rs === -1 || data.byteLength - rs > BootstrapStderr.MAX_TRAILER) {
      if (data.byteLength > 0) this.sink(data);
      return;
    }
    if (rs > 0) this.sink(data.subarray(0, rs));
    this.held = Buffer.from(data.subarray(rs));
  }

  private line(line: Buffer): void {
    const text = line.toString('latin1');
    if (text.startsWith(BOOTSTRAP_MARKER)) {
      const [kind = '', ...args] = text.slice(BOOTSTRAP_MARKER.length).trim().split(' ');
      this.statuses.push({ kind, args });
      if (kind === 'pgid') {
        const pgid = Number(args[0]);
        if (Number.isSafeInteger(pgid) && pgid > 1) this.pgid = pgid;
        this.started = true;
      }
      return;
    }
    this.remember(line);
    this.sink(line);
  }

  private remember(bytes: Buffer): void {
    if (this.preamble.length < BootstrapStderr.MAX_PREAMBLE) {
      this.preamble += bytes
        .toString('utf8')
        .slice(0, BootstrapStderr.MAX_PREAMBLE - this.preamble.length);
    }
  }
}
