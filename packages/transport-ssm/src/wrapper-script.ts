/**
 * The fixed shell wrapper that carries a plugin run through `AWS-RunShellScript`.
 *
 * SSM has no stdin: the agent joins `commands` into a script run by `sh` as root with stdin at
 * /dev/null. So the plugin and the RCS request travel *inside* the command, gzip-compressed and
 * base64-encoded (the base64 alphabet is safe inside single quotes; nothing user-supplied is ever
 * interpolated as shell text). The wrapper runs as root, so every file it touches is first proven
 * to be out of reach of other users:
 *
 * 1. **The work directory.** The cache dir (`remote_cache_dir`) is checked with the shared
 *    `rune_safe_path` rule (core's safe-path.ts) *before* anything is created or changed in it:
 *    every symlink on the configured path must belong to root (or the user running the wrapper),
 *    the deepest existing directory and everything above it must pass the rule, missing
 *    components are created under `umask 077` below the *physical* path just checked, and the
 *    result is checked again. Nothing existing is ever chmodded (so no symlink can make root
 *    chmod a directory of someone else's choosing). An unsafe path stops the run with stage
 *    `cache-unsafe` (a preinstalled plugin: `plugin-unsafe`) naming the first unsafe component,
 *    which the transport reports as PLUGIN_CACHE_UNSAFE. Each run then gets a private
 *    `mktemp -d` directory there.
 * 2. **The bytes that run.** The shipped plugin is decoded, or the preinstalled file copied, into
 *    that private directory, and exactly one sha256 check happens, on that copy, right before it
 *    is executed: nobody else can write the copy, so the file that runs is the file that was
 *    hashed. (The shipped bytes travel in every command anyway, so there is no persistent plugin
 *    cache to trust or to poison.)
 * 3. **Containment.** The plugin starts with the run marker as a prefix assignment
 *    (`RUNE_RUN_MARKER=<marker> plugin`, never exported), so it and every descendant carry it,
 *    whatever process group or session they move to. When the plugin exits, the wrapper sweeps
 *    the marker (core's `rune_sweep`) and reports `killed=N contained=0|1`. SSM's timeout and
 *    CancelCommand SIGKILL the command's process group, which misses a child that called
 *    `setsid`; so before the plugin, the wrapper starts a detached reaper (own session, stdio on
 *    /dev/null, no marker) that waits until the wrapper's pid is gone — or the execution timeout
 *    plus a margin has passed — and then sweeps the marker and removes the work directory. After
 *    a normal run the wrapper kills the reaper itself.
 * 4. **The result.** One line first on stdout (`RUNE-SSM-RESULT v2 ...`: the real exit code, the
 *    byte counts and sha256 of what follows, how each stream is encoded, the sweep), then the
 *    head of the plugin's stdout, and the tail of its stderr on stderr. The line is short and
 *    first, so SSM's 24,000-character cap never cuts it. A stream is sent as it is only when it
 *    is printable ASCII (plus tab, CR, LF); otherwise it is sent base64 (`outenc=b64`), because
 *    the API carries text: invalid UTF-8 would come back replaced, and the run would be judged on
 *    bytes the plugin never wrote.
 * 5. **The exit code.** 0 when the plugin exited 0 and 1 otherwise. The real code only travels in
 *    the result line, so a plugin can never hand the agent a reserved exit code: **194** (the
 *    agent reboots the instance) or **137** (the agent reports a timeout).
 * 6. **Preflight and root.** Before anything is written on the node, the wrapper checks what the
 *    request requires, in the same command (no second SendCommand): with `requireRoot` (a request
 *    to run as root, which SSM does without sudo) that it really runs as uid 0 (else stage
 *    `not-root`), and the commands the manifest requires, looked up with the shared
 *    `rune_preflight` (`PREFLIGHT_FUNCTION_SH`) and the PATH the plugin gets. Missing ones stop
 *    the run before the plugin starts, with stage `preflight` and `missing=` (base64 of the
 *    names, one per line). The names are validated (`validatePreflightCommands`: nothing but
 *    `[A-Za-z0-9._+-]`) and written as single-quoted arguments, never as shell code.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  PREFLIGHT_COMMAND_PATTERN,
  PREFLIGHT_FUNCTION_SH,
  RUN_MARKER_PATTERN,
  RUN_MARKER_VARIABLE,
  SAFE_PATH_FUNCTION_SH,
  SWEEP_FUNCTION_SH,
  sha256Hex,
  validatePreflightCommands,
} from '@rune/transport';

/** Prefix of the result line the wrapper prints first on stdout. */
export const RESULT_LINE_PREFIX = 'RUNE-SSM-RESULT v2 ';

/** Exit codes the SSM agent gives a meaning of its own; no plugin exit code may reach it. */
export const SSM_RESERVED_EXIT_CODES: readonly number[] = [137, 194];

/** Seconds the reaper waits beyond the execution timeout before it sweeps a still-running run. */
export const REAPER_MARGIN_S = 5;

/** Absolute path made of safe characters only: it is written into the script verbatim. */
const SAFE_ABSOLUTE_PATH = /^\/(?:[A-Za-z0-9._-]+\/?)*$/;

/** True when `path` may be written into the wrapper (absolute, no `..`, no shell metacharacters). */
export function isSafeRemotePath(path: string): boolean {
  return (
    path.length > 1 &&
    path.length <= 1024 &&
    SAFE_ABSOLUTE_PATH.test(path) &&
    !path.split('/').includes('..')
  );
}

/** Inputs of {@link buildWrapperScript}. */
export interface WrapperScriptOptions {
  /** Lowercase hex sha256 of the plugin. */
  sha256: string;
  /** Plugin bytes (deploy mode `ship`). */
  content?: Uint8Array;
  /** Absolute path of a preinstalled plugin (deploy mode `preinstalled`). */
  remotePath?: string;
  /** Exact bytes of the plugin's stdin (the RCS document). */
  stdin: Uint8Array;
  /** Private cache directory on the node (absolute). */
  cacheDir: string;
  /** At most this many bytes of stdout are printed after the result line. */
  maxStdoutBytes: number;
  /** At most this many trailing bytes of stderr are printed (3/4 of it when sent base64). */
  maxStderrBytes: number;
  /** The command's `executionTimeout` in seconds: the reaper's deadline (plus a margin). */
  executionTimeoutS: number;
  /** Run marker (32 hex digits) every process of the run carries (tests may fix it). */
  runMarker: string;
  /** Random token that ties the result line to this run (tests may fix it). */
  nonce?: string;
  /**
   * Commands the plugin requires (`request.preflight.commands`), looked up on the node before
   * anything is written there; a missing one stops the run (stage `preflight`). Validated with
   * `validatePreflightCommands` (INVALID_ARGUMENT otherwise).
   */
  preflight?: readonly string[];
  /** Refuse to run (stage `not-root`) unless the wrapper runs as uid 0 (a request to run as root). */
  requireRoot?: boolean;
}

/** A generated wrapper and the facts the transport needs to read its output. */
export interface WrapperScript {
  script: string;
  nonce: string;
}

function encode(bytes: Uint8Array): string {
  return gzipSync(bytes, { level: 9 }).toString('base64');
}

/**
 * `rune_link_owner PATH`: every component of the literal PATH that is a symlink belongs to root
 * or the current user; else prints it and returns 1. The safe-path rule judges the physical
 * path; this keeps another user's symlink from choosing *which* safe directory gets used.
 */
const LINK_OWNER_FUNCTION_SH = [
  'rune_link_owner() {',
  '  _lo_c=$1 _lo_u=$(id -u)',
  '  while [ -n "$_lo_c" ] && [ "$_lo_c" != / ] && [ "$_lo_c" != . ]; do',
  '    if [ -L "$_lo_c" ]; then',
  '      _lo_o=$(stat -c %u -- "$_lo_c" 2>/dev/null) || { printf "%s\\n" "$_lo_c"; return 1; }',
  '      if [ "$_lo_o" != 0 ] && [ "$_lo_o" != "$_lo_u" ]; then printf "%s\\n" "$_lo_c"; return 1; fi',
  '    fi',
  '    _lo_c=$(dirname -- "$_lo_c")',
  '  done',
  '}',
].join('\n');

/**
 * The detached reaper, run as `setsid sh -c "$RUNE_REAPER" rune-reaper WRAPPER_PID MARKER
 * LIMIT_S WORKDIR`. It is passed in single quotes, so it must not contain one.
 */
const REAPER_SH = [
  SWEEP_FUNCTION_SH,
  'if sleep 0.2 2>/dev/null; then _rt=0.2 _rn=$(($3 * 5)); else _rt=1 _rn=$3; fi',
  '_ri=0',
  'while kill -0 "$1" 2>/dev/null && [ "$_ri" -lt "$_rn" ]; do sleep "$_rt"; _ri=$((_ri + 1)); done',
  'rune_sweep "$2" >/dev/null',
  'kill -0 "$1" 2>/dev/null || rm -rf "$4"',
].join('\n');

/**
 * Builds the wrapper script. Every value written into it is either base64, lowercase hex, a
 * decimal integer or a path checked by {@link isSafeRemotePath}; the caller validates paths.
 */
export function buildWrapperScript(options: WrapperScriptOptions): WrapperScript {
  const nonce = options.nonce ?? randomBytes(8).toString('hex');
  if (!/^[0-9a-f]{64}$/.test(options.sha256)) throw new TypeError('sha256 must be 64 hex digits');
  if (!/^[0-9a-f]{8,64}$/.test(nonce)) throw new TypeError('nonce must be hex');
  if (!RUN_MARKER_PATTERN.test(options.runMarker)) throw new TypeError('run marker must be hex');
  if (!isSafeRemotePath(options.cacheDir)) throw new TypeError('unsafe cache dir');
  const ship = options.remotePath === undefined;
  if (!ship && !isSafeRemotePath(options.remotePath!)) throw new TypeError('unsafe plugin path');
  if (REAPER_SH.includes("'")) throw new TypeError('the reaper must not contain a single quote');
  // Re-checked here, whoever the caller is: each name becomes a single-quoted word of the script.
  const required = validatePreflightCommands(options.preflight ?? []);
  const preflight =
    required.length === 0
      ? ''
      : `${PREFLIGHT_FUNCTION_SH}PF=$(rune_preflight ${required.map((name) => `'${name}'`).join(' ')}) || rune_fail preflight "$PF" missing\n`;
  const rootCheck = options.requireRoot ? '[ "$(id -u)" = 0 ] || rune_fail not-root\n' : '';
  const maxOut = Math.max(0, Math.floor(options.maxStdoutBytes));
  const maxErr = Math.max(0, Math.floor(options.maxStderrBytes));
  const reaperLimitS = Math.max(1, Math.ceil(options.executionTimeoutS)) + REAPER_MARGIN_S;
  const plugin = ship ? encode(options.content ?? new Uint8Array()) : '';
  const request = encode(options.stdin);
  const requestSha = sha256Hex(options.stdin);

  const script = `# rune-ssm-wrapper v2: generated by @rune/transport-ssm (docs/ssm.md). Runs one RUNE plugin.
set -u
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH
N='${nonce}'
D='${options.cacheDir}'
S='${options.sha256}'
Q='${requestSha}'
M='${ship ? 'ship' : 'preinstalled'}'
X='${ship ? '' : options.remotePath}'
O=${maxOut}
E=${maxErr}
K='${options.runMarker}'
L=${reaperLimitS}
W=''
RP=''
rune_fail() {
  if [ $# -gt 1 ]; then
    printf 'RUNE-SSM-RESULT v2 nonce=%s stage=%s %s=%s\\n' "$N" "$1" "\${3:-component}" "$(printf '%s' "$2" | base64 | tr -d '\\n')"
  else
    printf 'RUNE-SSM-RESULT v2 nonce=%s stage=%s\\n' "$N" "$1"
  fi
  [ -n "$RP" ] && kill -9 "$RP" 2>/dev/null
  [ -n "$W" ] && rm -rf "$W"
  exit 1
}
rune_sha() { sha256sum | cut -c1-64; }
rune_ascii() { [ "$(LC_ALL=C tr -d '\\011\\012\\015\\040-\\176' | head -c 1 | wc -c)" -eq 0 ]; }
${SAFE_PATH_FUNCTION_SH}
${LINK_OWNER_FUNCTION_SH}
${SWEEP_FUNCTION_SH}
RUNE_REAPER='${REAPER_SH}'
for _t in base64 gzip sha256sum mktemp wc head tail cut tr stat grep id dirname basename cp setsid find; do
  command -v "$_t" >/dev/null 2>&1 || rune_fail "missing-tool-$_t"
done
${rootCheck}${preflight}U=$(rune_link_owner "$D") || rune_fail cache-unsafe "$U"
A=$D
while [ ! -e "$A" ] && [ ! -L "$A" ]; do A=$(dirname -- "$A"); done
U=$(rune_safe_path "$A") || rune_fail cache-unsafe "$U"
[ -d "$A" ] || rune_fail cache-dir
P=$(cd -P -- "$A" && pwd -P) || rune_fail cache-dir
R=\${D#"$A"}
mkdir -p -- "\${P%/}$R" 2>/dev/null || rune_fail cache-dir
C=$(cd -P -- "\${P%/}$R" && pwd -P) || rune_fail cache-dir
U=$(rune_safe_path "$C") || rune_fail cache-unsafe "$U"
find "$C" -maxdepth 1 -type d -name 'rune-run.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null
W=$(mktemp -d "$C/rune-run.XXXXXXXX") || rune_fail cache-dir
trap 'rm -rf "$W"' EXIT
if [ "$M" = ship ]; then
  printf '%s' '${plugin}' | base64 -d | gzip -dc > "$W/plugin" || rune_fail decode
else
  if [ ! -e "$X" ] && [ ! -L "$X" ]; then rune_fail not-installed; fi
  U=$(rune_link_owner "$X") || rune_fail plugin-unsafe "$U"
  U=$(rune_safe_path "$X") || rune_fail plugin-unsafe "$U"
  [ -f "$X" ] || rune_fail not-installed
  cp -- "$X" "$W/plugin" || rune_fail not-installed
fi
chmod 700 "$W/plugin" || rune_fail cache-dir
printf '%s' '${request}' | base64 -d | gzip -dc > "$W/in" || rune_fail decode
[ "$(rune_sha < "$W/in")" = "$Q" ] || rune_fail decode
setsid sh -c "$RUNE_REAPER" rune-reaper "$$" "$K" "$L" "$W" </dev/null >/dev/null 2>&1 &
RP=$!
[ "$(rune_sha < "$W/plugin")" = "$S" ] || rune_fail integrity
${RUN_MARKER_VARIABLE}="$K" "$W/plugin" < "$W/in" > "$W/out" 2> "$W/err"
Z=$?
SW=$(rune_sweep "$K")
kill -9 "$RP" 2>/dev/null
RP=''
case "$SW" in [0-9]*' '[01]) ;; *) SW='0 0' ;; esac
OE=raw
head -c "$O" "$W/out" | rune_ascii || OE=b64
EE=raw
tail -c "$E" "$W/err" | rune_ascii || { EE=b64; E=$((E * 3 / 4)); }
OB=$(wc -c < "$W/out" | tr -d ' ')
EB=$(wc -c < "$W/err" | tr -d ' ')
OS=$(head -c "$O" "$W/out" | rune_sha)
ON=$(head -c "$O" "$W/out" | wc -c | tr -d ' ')
ES=$(tail -c "$E" "$W/err" | rune_sha)
EN=$(tail -c "$E" "$W/err" | wc -c | tr -d ' ')
printf 'RUNE-SSM-RESULT v2 nonce=%s stage=done exit=%s out=%s outsent=%s outsha=%s outenc=%s err=%s errsent=%s errsha=%s errenc=%s killed=%s contained=%s\\n' "$N" "$Z" "$OB" "$ON" "$OS" "$OE" "$EB" "$EN" "$ES" "$EE" "\${SW% *}" "\${SW#* }"
if [ "$OE" = b64 ]; then head -c "$O" "$W/out" | base64; else head -c "$O" "$W/out"; fi
if [ "$EE" = b64 ]; then tail -c "$E" "$W/err" | base64 >&2; else tail -c "$E" "$W/err" >&2; fi
if [ "$Z" -eq 0 ]; then exit 0; fi
exit 1
`;
  return { script, nonce };
}

/** How the wrapper sent a stream: as it is (printable ASCII only) or base64. */
export type StreamEncoding = 'raw' | 'b64';

/** What the result line of a finished run says. */
export interface WrapperDoneLine {
  stage: 'done';
  exitCode: number;
  stdoutBytes: number;
  stdoutSent: number;
  stdoutSha256: string;
  stdoutEncoding: StreamEncoding;
  stderrBytes: number;
  stderrSent: number;
  stderrSha256: string;
  stderrEncoding: StreamEncoding;
  /** Processes the sweep killed after the plugin exited. */
  killed: number;
  /** False when the node could not scan for them (no readable /proc). */
  contained: boolean;
}

/** Where the wrapper stopped before the plugin ran (and what it names, when it names something). */
export interface WrapperStopLine {
  stage: string;
  /** The unsafe path component (stages `cache-unsafe`, `plugin-unsafe`). */
  component?: string;
  /** Required commands the node lacks (stage `preflight`), each matching the manifest grammar. */
  missing?: string[];
}

/** What the result line says: a finished run, or the stage where the wrapper stopped. */
export type WrapperResultLine = WrapperDoneLine | WrapperStopLine;

/** The result line parsed out of the wrapper's stdout, and the bytes after it. */
export interface ParsedWrapperOutput {
  result: WrapperResultLine;
  /** Everything after the result line. */
  body: Uint8Array;
}

/** True for the result line of a run that reached the plugin. */
export function isDoneLine(result: WrapperResultLine): result is WrapperDoneLine {
  return result.stage === 'done' && 'exitCode' in result;
}

/**
 * Finds the wrapper's result line at the start of `stdout` (bytes as SSM or S3 returned them)
 * and checks the nonce. Returns undefined when the wrapper never printed it (killed before the
 * end, or not our output at all).
 */
export function parseWrapperOutput(
  stdout: Uint8Array,
  nonce: string,
): ParsedWrapperOutput | undefined {
  const newline = stdout.indexOf(0x0a);
  if (newline < 0) return undefined;
  const line = Buffer.from(stdout.subarray(0, newline)).toString('utf8');
  if (!line.startsWith(RESULT_LINE_PREFIX)) return undefined;
  const fields = new Map<string, string>();
  for (const part of line.slice(RESULT_LINE_PREFIX.length).split(' ')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  if (fields.get('nonce') !== nonce) return undefined;
  const stage = fields.get('stage');
  if (stage === undefined || !/^[a-z0-9-]{1,64}$/.test(stage)) return undefined;
  const body = stdout.subarray(newline + 1);
  if (stage !== 'done') {
    const decoded = (key: string): string | undefined => {
      const encoded = fields.get(key);
      return encoded !== undefined && /^[A-Za-z0-9+/=]{1,8192}$/.test(encoded)
        ? Buffer.from(encoded, 'base64').toString('utf8')
        : undefined;
    };
    const result: WrapperStopLine = { stage };
    const component = decoded('component');
    if (component !== undefined) result.component = component;
    const missing = decoded('missing');
    if (missing !== undefined) {
      // Only names of the manifest grammar: whatever else the node printed is not a command name.
      result.missing = missing.split('\n').filter((name) => PREFLIGHT_COMMAND_PATTERN.test(name));
    }
    return { result, body };
  }
  const int = (key: string): number | undefined => {
    const value = fields.get(key);
    return value !== undefined && /^[0-9]{1,15}$/.test(value) ? Number(value) : undefined;
  };
  const hex = (key: string): string | undefined => {
    const value = fields.get(key);
    return value !== undefined && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
  };
  const encoding = (key: string): StreamEncoding | undefined => {
    const value = fields.get(key);
    return value === 'raw' || value === 'b64' ? value : undefined;
  };
  const exitCode = int('exit');
  const stdoutBytes = int('out');
  const stdoutSent = int('outsent');
  const stdoutSha256 = hex('outsha');
  const stdoutEncoding = encoding('outenc');
  const stderrBytes = int('err');
  const stderrSent = int('errsent');
  const stderrSha256 = hex('errsha');
  const stderrEncoding = encoding('errenc');
  const killed = int('killed');
  const contained = fields.get('contained');
  if (
    exitCode === undefined ||
    stdoutBytes === undefined ||
    stdoutSent === undefined ||
    stdoutSha256 === undefined ||
    stdoutEncoding === undefined ||
    stderrBytes === undefined ||
    stderrSent === undefined ||
    stderrSha256 === undefined ||
    stderrEncoding === undefined ||
    killed === undefined ||
    (contained !== '0' && contained !== '1')
  ) {
    return undefined;
  }
  return {
    result: {
      stage,
      exitCode,
      stdoutBytes,
      stdoutSent,
      stdoutSha256,
      stdoutEncoding,
      stderrBytes,
      stderrSent,
      stderrSha256,
      stderrEncoding,
      killed,
      contained: contained === '1',
    },
    body,
  };
}

/** True when `bytes` are exactly what the wrapper said it sent (length and sha256). */
export function isIntact(bytes: Uint8Array, sent: number, sha256: string): boolean {
  return bytes.byteLength === sent && sha256Hex(bytes) === sha256;
}

/** One stream as received, decoded back to the plugin's bytes. */
export interface ReceivedStream {
  /** The plugin's bytes, or the longest prefix that survived a cut. */
  bytes: Uint8Array;
  /** Exactly what the wrapper sent (length and sha256 match). */
  intact: boolean;
  /** SSM cut it (its truncation marker, or fewer bytes than the wrapper sent). */
  cut: boolean;
}

function decodeBase64Prefix(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes)
    .toString('latin1')
    .replace(/[^A-Za-z0-9+/=]/g, '');
  const whole = text.slice(0, text.length - (text.length % 4));
  return new Uint8Array(Buffer.from(whole, 'base64'));
}

/**
 * Decodes one stream as SSM (API or S3) returned it: checks it against the result line first,
 * then, if that fails, removes the agent's truncation marker and keeps what is left.
 */
export function receiveStream(
  received: Uint8Array,
  encoding: StreamEncoding,
  sent: number,
  sha256: string,
): ReceivedStream {
  const decode = (bytes: Uint8Array): Uint8Array =>
    encoding === 'b64' ? decodeBase64Prefix(bytes) : bytes;
  const whole = decode(received);
  if (isIntact(whole, sent, sha256)) return { bytes: whole, intact: true, cut: false };
  const stripped = stripTruncationSuffix(received);
  const bytes = decode(stripped);
  const cut = stripped.byteLength < received.byteLength || bytes.byteLength < sent;
  return { bytes, intact: false, cut };
}

/** Suffixes the SSM agent appends when it truncates output. */
export const SSM_TRUNCATION_SUFFIXES = ['\n---Output truncated---', '\n---Error truncated----'];

/** Removes the agent's truncation suffix, if any. */
export function stripTruncationSuffix(bytes: Uint8Array): Uint8Array {
  for (const suffix of SSM_TRUNCATION_SUFFIXES) {
    const tail = Buffer.from(suffix, 'utf8');
    if (
      bytes.byteLength >= tail.byteLength &&
      Buffer.from(bytes.subarray(bytes.byteLength - tail.byteLength)).equals(tail)
    ) {
      return bytes.subarray(0, bytes.byteLength - tail.byteLength);
    }
  }
  return bytes;
}
