/**
 * The remote side of the SSH transport: one small, FIXED POSIX `sh` bootstrap and the command
 * lines that invoke it.
 *
 * Why a fixed bootstrap: the hot path must be one exec round trip, and nothing a user supplies may
 * ever reach a shell command line. So the command is always `sh -c '<BOOTSTRAP>' rune <op> <sha256>
 * <location> <watchdog-seconds>`: the script text never changes, and its positional arguments are
 * values that match strict grammars (an operation name, 64 hex digits, a validated path, an
 * integer) — quoted anyway. The RCS document travels alone on stdin, untouched by any shell.
 *
 * What the bootstrap does (operation `ship`): make the per-user cache dir (umask 077, chmod 700,
 * must be a directory we own, not a symlink), check that `<dir>/<sha256>` exists and hashes to
 * `<sha256>`, announce the process group on stderr, then `exec timeout -s KILL <n> <plugin>`: the
 * plugin inherits stdin/stdout/stderr directly (no copy, binary-safe), `timeout` is a remote
 * watchdog that kills the whole process group even if the control node vanishes, and it re-raises
 * a child's fatal signal so a killed plugin is reported as a signal, not as exit 128+n. A missing
 * or altered cache file is reported as a `miss` and the transport uploads the plugin with operation
 * `upload` (stdin = plugin bytes → temp file in the private dir → sha256 check → chmod 700 → mv).
 * Operation `preinstalled` runs an operator-installed file.
 *
 * Bootstrap status lines go to stderr, each starting with the marker {@link BOOTSTRAP_MARKER}
 * (ASCII RS + `RUNE:`), and always *before* the plugin starts; the last one is `pgid <n>`. The
 * transport strips them from the captured stderr.
 */

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
  'op=$1 sha=$2 loc=$3 wd=$4',
  'say() { printf "\\036RUNE:%s\\n" "$*" >&2; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  'case $loc in "~") loc=$HOME ;; "~/"*) loc=$HOME/${loc#"~/"} ;; esac',
  'hash_of() {',
  '  if command -v sha256sum >/dev/null 2>&1; then h=$(sha256sum < "$1") || return 1',
  '  elif command -v shasum >/dev/null 2>&1; then h=$(shasum -a 256 < "$1") || return 1',
  '  else return 2; fi',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  printf "%s" "${h%% *}"',
  '}',
  'private_dir() {',
  '  umask 077',
  '  if [ -L "$loc" ]; then say "error cache-dir-symlink"; exit 125; fi',
  '  mkdir -p -- "$loc" 2>/dev/null || { say "error cache-dir-create"; exit 125; }',
  '  [ -d "$loc" ] && [ -O "$loc" ] || { say "error cache-dir-owner"; exit 125; }',
  '  chmod 700 -- "$loc" 2>/dev/null || { say "error cache-dir-chmod"; exit 125; }',
  '}',
  'start() {',
  '  say "pgid $$"',
  '  if [ "$wd" -gt 0 ] && command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$wd" "$1"; fi',
  '  exec "$1"',
  '}',
  'case $op in',
  '  ship)',
  '    private_dir',
  '    f=$loc/$sha',
  '    if [ ! -f "$f" ] || [ -L "$f" ] || [ ! -O "$f" ]; then say miss; exit 125; fi',
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
  '    start "$loc" ;;',
  '  *) say "error bad-op"; exit 125 ;;',
  'esac',
].join('\n');

/** Kills a process group, then the leader alone if the group does not exist yet. */
export const KILL_SCRIPT =
  'kill -s KILL -- "-$1" 2>/dev/null || kill -s KILL "$1" 2>/dev/null; sleep 0.2; kill -s KILL -- "-$1" 2>/dev/null; exit 0';

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

function withRunAs(command: string, runAs: string | undefined): string {
  // `exec` so that the login shell is replaced and a fatal signal reaches sshd as such.
  if (runAs === undefined) return `exec ${command}`;
  if (!USER_NAME_PATTERN.test(runAs)) throw new TypeError(`invalid run-as user name: ${runAs}`);
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
  /** Run through `sudo -n -H -u <runAs>`. */
  runAs?: string;
}

/** The full remote command line for one bootstrap invocation. Throws TypeError on bad input. */
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
  const args = [invocation.op, sha, invocation.location, String(seconds)].map(shellQuote);
  return withRunAs(
    `sh -c ${shellQuote(BOOTSTRAP_SCRIPT)} rune ${args.join(' ')}`,
    invocation.runAs,
  );
}

/** The command that kills remote process group `pgid` (as `runAs` when set). */
export function buildKillCommand(pgid: number, runAs?: string): string {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new TypeError('invalid pgid');
  return withRunAs(`sh -c ${shellQuote(KILL_SCRIPT)} rune ${pgid}`, runAs);
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

/**
 * Separates the bootstrap's status lines from the plugin's stderr. Until the `pgid` line, stderr
 * is read line by line: marker lines become {@link BootstrapStatus}es, other lines (e.g. sudo's
 * complaints) are passed through and remembered in `preamble`. After `pgid`, every byte is the
 * plugin's and is passed through untouched.
 */
export class BootstrapStderr {
  readonly statuses: BootstrapStatus[] = [];
  /** Non-marker text seen before the plugin started (bounded). */
  preamble = '';
  pgid: number | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private started = false;
  private static readonly MAX_PENDING = 64 * 1024;
  private static readonly MAX_PREAMBLE = 8 * 1024;

  constructor(private readonly sink: (chunk: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    if (this.started) {
      this.sink(chunk);
      return;
    }
    this.pending =
      this.pending.byteLength === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.started) {
        if (this.pending.byteLength > 0) this.sink(this.pending);
        this.pending = Buffer.alloc(0);
        return;
      }
      const newline = this.pending.indexOf(0x0a);
      if (newline === -1) break;
      const line = this.pending.subarray(0, newline + 1);
      this.pending = this.pending.subarray(newline + 1);
      this.line(line);
    }
    if (this.pending.byteLength > BootstrapStderr.MAX_PENDING) this.flush();
  }

  /** Passes on any incomplete line (call at the end of the stream). */
  flush(): void {
    if (this.pending.byteLength > 0) {
      this.remember(this.pending);
      this.sink(this.pending);
    }
    this.pending = Buffer.alloc(0);
  }

  /** The first status of `kind`, if any. */
  find(kind: string): BootstrapStatus | undefined {
    return this.statuses.find((status) => status.kind === kind);
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
