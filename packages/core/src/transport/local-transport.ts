/**
 * The `local` transport: runs a plugin as a child process of the control node.
 *
 * What runs: never the registry's file by path. In ship mode the transport takes the bytes the
 * execution step read and hashed (`plugin.content`, checked against the planned `plugin.sha256`), writes
 * them into a private content-addressed cache (private-plugin-cache.ts: a 0700 directory that
 * passes the safe-path rule, a 0700 copy created with O_EXCL and verified) and executes that
 * copy, so a plugin file swapped on disk after planning can never run: the planned bytes run, or
 * nothing (PLUGIN_INTEGRITY_FAILED, PLUGIN_CACHE_UNSAFE). Preinstalled mode runs
 * `plugin.remotePath` in place, only when that path passes the same safe-path rule
 * (PLUGIN_CACHE_UNSAFE otherwise); the sha256 of the bytes it read right before exec is reported
 * in the result's metadata (`preinstalled_sha256`).
 *
 * How it runs: through the one local process runner (`runLocalProcess` in @rune/transport, which
 * the plugin test kit uses too). The file is executed directly (`spawn(file, [])`, no shell), so nothing
 * user-supplied can be interpreted by a shell; the RCS document goes on stdin, which is then
 * closed. The environment is minimal (plugin-environment.ts: no RUNE_* secrets, AWS_*,
 * SSH_AUTH_SOCK or tokens) plus `RUNE_RUN_MARKER=<fresh marker>`.
 *
 * Preflight and privilege: when the request lists required commands (`request.preflight`, from the
 * manifest's `requirements.commands`) they are looked up with the shared `rune_preflight` rule
 * (PREFLIGHT_FUNCTION_SH) by `/bin/sh`, as the user the plugin will run as, right before the
 * plugin starts; a missing one rejects with PLUGIN_PRECONDITION_FAILED naming it and the plugin is
 * never started. `runAs` (e.g. `root` for a manifest that says `privilege: root`) runs the plugin
 * directly when this process already is that user, and otherwise through non-interactive
 * `sudo -n -H -u root` (never a password prompt; other users are UNSUPPORTED_FEATURE locally, as
 * they could not read the plugin from this user's private cache): the preflight step then also runs through sudo,
 * so a sudo that wants a password (PRIVILEGE_PASSWORD_REQUIRED) or refuses
 * (PRIVILEGE_DENIED) fails before the plugin is started. The run marker reaches the plugin through
 * `env` on sudo's command line (sudo resets the environment), and the containment sweep runs
 * through the same sudo so that it can see and kill the plugin's processes.
 *
 * When it ends: the run ends when the plugin process exits, or is killed on timeout or cancel
 * (SIGTERM to its process group, SIGKILL after `killGraceMs`). At that moment the run-marker sweep
 * (local-sweep.ts) kills every process carrying the marker — children in the group, children that
 * called `setsid`, a background child still holding stdout open — and then the process group. The
 * output captured so far is kept and judged as usual; a leftover child neither delays the result
 * nor turns it into a timeout. `containment` in the result says what was killed and whether that
 * was complete (without /proc it is not: `process-group`, `complete: false`).
 */
import { spawn } from 'node:child_process';
import { lstat, readFile, unlink } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { isAbsolute } from 'node:path';
import { RuneError } from '@rune/protocol';
import {
  type ContainmentReport,
  createRunMarker,
  DEFAULT_OUTPUT_DRAIN_MS,
  findUnsafePathComponent,
  notStartedResult,
  PREFLIGHT_FUNCTION_SH,
  preflightFailure,
  RUN_MARKER_VARIABLE,
  runLocalProcess,
  sha256Hex,
  sweepLocalRun,
  type TargetNode,
  TIMEOUT_GRACE_MS,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportExecRequest,
  type TransportExecResult,
  validatePreflightCommands,
  withPhaseSpan,
} from '@rune/transport';
import { isThisMachine, LOCAL_TRANSPORT } from '../planning/targets.js';
import { minimalPluginEnvironment } from './plugin-environment.js';
import { createPrivatePluginCache, effectiveUid } from './private-plugin-cache.js';

/** Default time between SIGTERM and SIGKILL when a run is stopped: the timeout rule's grace (stage 3). */
export const DEFAULT_KILL_GRACE_MS = TIMEOUT_GRACE_MS;

/** Default time to wait for the output pipes after the run ended (the shared runner's default). */
export { DEFAULT_OUTPUT_DRAIN_MS };

/** Options of {@link createLocalTransport}. */
export interface LocalTransportOptions {
  /** Time between SIGTERM and SIGKILL of the process group. Default {@link DEFAULT_KILL_GRACE_MS}. */
  killGraceMs?: number;
  /**
   * The plugin's environment, used exactly as given (plus `RUNE_RUN_MARKER`). Default: the minimal
   * environment from `process.env` (`minimalPluginEnvironment()`: PATH, HOME, USER, LOGNAME, LANG,
   * LANGUAGE, LC_*, TZ, TMPDIR). Whoever passes this decides what the plugin sees.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Working directory of the plugin; default the control node's cwd. */
  cwd?: string;
  /**
   * A persistent private cache for ship mode (e.g. `$XDG_CACHE_HOME/rune/plugins`); it must pass
   * the safe-path rule. Default: a fresh 0700 temporary directory, removed by `close()`.
   */
  cacheDir?: string;
  /** POSIX shell that runs the containment sweep; default `/bin/sh`. */
  sweepShell?: string;
  /** The sudo binary used for `runAs` another user; default `sudo` (looked up on PATH). */
  sudo?: string;
  /** Time to wait for the output pipes after the run ended; default {@link DEFAULT_OUTPUT_DRAIN_MS}. */
  drainMs?: number;
  /**
   * Which nodes count as "this machine". Default: planning's `isThisMachine` rule (the address,
   * or the name without one, is localhost, local, 127.0.0.1, ::1 or the host name). Other nodes are refused with HOST_UNREACHABLE, so a
   * misrouted remote node never runs on the control node.
   */
  isLocalNode?: (node: TargetNode) => boolean;
  /**
   * Called with the path about to be executed, after every check and right before the spawn.
   * For tests that need to act inside that window (e.g. swap a file) and for tracing.
   */
  beforeSpawn?: (path: string) => void | Promise<void>;
}

/** User names `runAs` may carry (POSIX portable, as useradd accepts by default). */
export const RUN_AS_USER_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Printed by the preflight script once it runs, so a sudo refusal is told from a missing command. */
const PREFLIGHT_STARTED = 'rune-preflight-started';

function defaultIsLocalNode(node: TargetNode): boolean {
  return isThisMachine(node, hostname());
}

const component = 'transport-local';

/** What the transport executes for one request. */
interface PreparedPlugin {
  file: string;
  metadata: Record<string, unknown>;
}

/** One plugin process, as `close()` needs to see it. */
interface RunningPlugin {
  pid: number;
  marker: string;
  sweep: (marker: string, processGroup: number | undefined) => Promise<ContainmentReport>;
}

/** True when this process runs as `user` (by name, or root by uid 0). */
function isCurrentUser(user: string): boolean {
  if (user === 'root' && effectiveUid() === 0) return true;
  try {
    return userInfo().username === user && process.geteuid?.() === process.getuid?.();
  } catch {
    return false;
  }
}

/** `sudo -n -H -u USER -- COMMAND...`: non-interactive, never a password prompt. */
function sudoArgs(user: string, command: readonly string[]): string[] {
  return ['-n', '-H', '-u', user, '--', ...command];
}

interface CommandOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MAX_PREFLIGHT_OUTPUT = 16 * 1024;

/** Runs a short helper command (preflight, sudo check) and collects its bounded output. */
function runHelper(
  file: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  signal: AbortSignal,
): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    const child = spawn(file, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env, signal });
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_PREFLIGHT_OUTPUT) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_PREFLIGHT_OUTPUT) stderr += chunk.toString('utf8');
    });
    child.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ code: null, stdout, stderr: `${stderr}${file}: ${error.code ?? error.message}` }),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Creates the local transport. */
export function createLocalTransport(options: LocalTransportOptions = {}): Transport {
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const drainMs = options.drainMs ?? DEFAULT_OUTPUT_DRAIN_MS;
  const isLocalNode = options.isLocalNode ?? defaultIsLocalNode;
  const baseEnv: Record<string, string> =
    options.env === undefined
      ? minimalPluginEnvironment()
      : Object.fromEntries(
          Object.entries(options.env).filter(
            (entry): entry is [string, string] => entry[1] !== undefined,
          ),
        );
  // The sweep must not carry any marker (it would stop itself); it needs only PATH.
  const sweepEnv = { PATH: baseEnv.PATH ?? minimalPluginEnvironment().PATH! };
  const sweep = (marker: string, processGroup: number | undefined) =>
    sweepLocalRun(marker, {
      env: sweepEnv,
      ...(options.sweepShell === undefined ? {} : { shell: options.sweepShell }),
      ...(processGroup === undefined ? {} : { processGroup }),
    });
  const cache = createPrivatePluginCache(
    options.cacheDir === undefined ? {} : { dir: options.cacheDir },
  );
  const running = new Set<RunningPlugin>();
  const sudoBinary = options.sudo ?? 'sudo';
  /** The sweep, run as `user` through sudo: only then can it see and kill that user's processes. */
  const sudoSweep =
    (user: string) =>
    (marker: string, processGroup: number | undefined): Promise<ContainmentReport> =>
      sweepLocalRun(marker, {
        env: sweepEnv,
        shell: sudoBinary,
        shellArgs: sudoArgs(user, [options.sweepShell ?? '/bin/sh']),
        ...(processGroup === undefined ? {} : { processGroup }),
      });

  /**
   * The preflight step (see the module comment): required commands, and — when the plugin runs
   * through sudo — whether sudo lets it, both before the plugin is started.
   */
  async function preflight(request: TransportExecRequest, sudoUser: string | undefined) {
    const commands = validatePreflightCommands(request.preflight?.commands ?? []);
    if (commands.length === 0 && sudoUser === undefined) return;
    const errorOptions = {
      source: { component, node: request.node.name, action: request.plugin.action },
      traceId: request.traceId,
    };
    const script = `${PREFLIGHT_FUNCTION_SH}\nprintf '%s\\n' ${PREFLIGHT_STARTED}\nrune_preflight "$@"`;
    const shellCommand = ['/bin/sh', '-c', script, 'rune-preflight', ...commands];
    const outcome =
      sudoUser === undefined
        ? await runHelper(shellCommand[0]!, shellCommand.slice(1), baseEnv, request.signal)
        : await runHelper(sudoBinary, sudoArgs(sudoUser, shellCommand), baseEnv, request.signal);
    const lines = outcome.stdout.split('\n').filter((line) => line !== '');
    if (lines[0] !== PREFLIGHT_STARTED) {
      if (request.signal.aborted) return;
      if (sudoUser !== undefined) throw await sudoRefusal(sudoUser, outcome, errorOptions);
      throw new RuneError(
        'INTERNAL_ERROR',
        `the preflight check could not run: ${outcome.stderr.trim().slice(0, 200)}`,
        { ...errorOptions, details: { exit_code: outcome.code } },
      );
    }
    const missing = lines.slice(1).filter((line) => commands.includes(line));
    if (missing.length > 0) {
      const error = preflightFailure(missing, { node: request.node.name, transport: 'local' });
      throw new RuneError(error.code, error.message, {
        ...errorOptions,
        details: { ...error.details },
      });
    }
  }

  /**
   * Why sudo did not run the preflight. sudo -n says "a password is required" both when a rule
   * wants a password and (to hide its policy) when nothing allows the command; `sudo -n -l` tells
   * them apart when it can, else the answer is "password required" (as the SSH transport does).
   */
  async function sudoRefusal(
    user: string,
    outcome: CommandOutcome,
    errorOptions: { source: { component: string; node: string; action: string }; traceId: string },
  ): Promise<RuneError> {
    const text = outcome.stderr.trim().slice(0, 500);
    let code: 'PRIVILEGE_PASSWORD_REQUIRED' | 'PRIVILEGE_DENIED' = 'PRIVILEGE_DENIED';
    if (/password is required|a terminal is required|askpass/i.test(text)) {
      const check = await runHelper(
        sudoBinary,
        ['-n', '-l', '-u', user, '--', '/bin/sh', '-c', 'true'],
        baseEnv,
        new AbortController().signal,
      );
      if (check.code === 0 || /password is required/i.test(check.stderr)) {
        code = 'PRIVILEGE_PASSWORD_REQUIRED';
      }
    }
    return new RuneError(
      code,
      code === 'PRIVILEGE_PASSWORD_REQUIRED'
        ? `sudo needs a password to run the plugin as ${user}; RUNE only uses non-interactive sudo (add a NOPASSWD rule, or run rune as ${user}); nothing was executed`
        : `this user may not run the plugin as ${user} through sudo: ${text || `exit ${outcome.code}`}; nothing was executed`,
      { ...errorOptions, details: { run_as: user, sudo_message: text, exit_code: outcome.code } },
    );
  }

  async function preparePlugin(request: TransportExecRequest): Promise<PreparedPlugin> {
    const { plugin, node } = request;
    const errorOptions = {
      source: { component, node: node.name, action: plugin.action },
      traceId: request.traceId,
    };
    if (request.deployMode !== 'preinstalled') {
      const file = await cache.materialize(plugin.content, plugin.sha256, errorOptions);
      return {
        file,
        metadata: {
          shipped: true,
          ...(plugin.localPath === undefined ? {} : { source_path: plugin.localPath }),
        },
      };
    }
    const path = plugin.remotePath;
    if (path === undefined || !isAbsolute(path)) {
      throw new RuneError(
        'PLUGIN_NOT_INSTALLED',
        'deploy mode preinstalled needs an absolute plugin path',
        { ...errorOptions, ...(path === undefined ? {} : { details: { path } }) },
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new RuneError('PLUGIN_NOT_INSTALLED', `plugin ${path} is not installed on this node`, {
        ...errorOptions,
        cause: error,
        details: { path },
      });
    }
    // Checked after the read so that the bytes hashed are those of a file nobody else can change.
    const unsafe = await findUnsafePathComponent(path, effectiveUid());
    if (unsafe !== undefined) {
      throw new RuneError(
        'PLUGIN_CACHE_UNSAFE',
        `preinstalled plugin ${path} is not safe: ${unsafe} is a symlink, not owned by this user or root, or writable by others; nothing was executed`,
        { ...errorOptions, details: { path, component: unsafe } },
      );
    }
    return { file: path, metadata: { shipped: false, preinstalled_sha256: sha256Hex(bytes) } };
  }

  async function exec(request: TransportExecRequest): Promise<TransportExecResult> {
    const started = performance.now();
    const source = { component, node: request.node.name, action: request.plugin.action };
    if (!isLocalNode(request.node)) {
      throw new RuneError(
        'HOST_UNREACHABLE',
        `the local transport only runs plugins on this machine; "${request.node.name}" is not local`,
        { source, traceId: request.traceId, details: { node: request.node.name } },
      );
    }
    const runAs = request.runAs ?? request.node.runAs;
    if (runAs !== undefined && !RUN_AS_USER_PATTERN.test(runAs)) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `run_as "${runAs.slice(0, 40)}" is not a valid user name (${RUN_AS_USER_PATTERN.source})`,
        { source, traceId: request.traceId, details: { run_as: runAs.slice(0, 64) } },
      );
    }
    // No sudo when this process already is that user (e.g. `privilege: root` run by root).
    const sudoUser = runAs === undefined || isCurrentUser(runAs) ? undefined : runAs;
    if (sudoUser !== undefined && sudoUser !== 'root') {
      // Another unprivileged user could not read the plugin from this user's private cache.
      throw new RuneError(
        'UNSUPPORTED_FEATURE',
        `the local transport runs plugins as this user or as root, not as ${sudoUser}`,
        { source, traceId: request.traceId, details: { run_as: sudoUser } },
      );
    }
    const notStarted = (): TransportExecResult =>
      notStartedResult(
        { connectMs: 0, execMs: 0, totalMs: Math.round(performance.now() - started) },
        { started: false },
      );
    if (request.signal.aborted) return notStarted();
    const prepared = await preparePlugin(request);
    await preflight(request, sudoUser);
    await options.beforeSpawn?.(prepared.file);
    if (request.signal.aborted) return notStarted();
    const file = prepared.file;
    // Through sudo the environment is dropped, so the marker travels as an env(1) argument and
    // the sweep runs as the same user (only then can it see and kill that user's processes).
    const marker = createRunMarker();
    const sweepAs = sudoUser === undefined ? sweep : sudoSweep(sudoUser);
    let entry: RunningPlugin | undefined;
    try {
      const run = await runLocalProcess({
        ...(sudoUser === undefined
          ? { command: file }
          : {
              command: sudoBinary,
              args: sudoArgs(sudoUser, ['/usr/bin/env', `${RUN_MARKER_VARIABLE}=${marker}`, file]),
              sweepShell: sudoBinary,
              sweepShellArgs: sudoArgs(sudoUser, [options.sweepShell ?? '/bin/sh']),
            }),
        marker,
        stdin: request.stdin,
        env: baseEnv,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        timeoutMs: request.timeoutMs,
        signal: request.signal,
        limits: request.limits,
        killGraceMs,
        drainMs,
        ...(sudoUser !== undefined || options.sweepShell === undefined
          ? {}
          : { sweepShell: options.sweepShell }),
        onSpawn: (spawned) => {
          entry = { ...spawned, sweep: sweepAs };
          running.add(entry);
        },
        errorOptions: { source, traceId: request.traceId },
      });
      return {
        termination: run.termination,
        exitCode: run.exitCode,
        signal: run.signal,
        stdout: run.stdout,
        stdoutTruncated: run.stdoutTruncated,
        stderr: run.stderr,
        stderrTruncated: run.stderrTruncated,
        timings: {
          connectMs: 0,
          execMs: run.execMs,
          totalMs: Math.round(performance.now() - started),
        },
        metadata: {
          pid: run.pid,
          path: file,
          ...prepared.metadata,
          ...(runAs === undefined ? {} : { run_as: runAs, sudo: sudoUser !== undefined }),
          stdout_bytes: run.stdoutTotalBytes,
          stderr_bytes: run.stderrTotalBytes,
          ...(run.stopped ? { killed_signal_on_stop: 'SIGTERM' } : {}),
        },
        containment: run.containment,
      };
    } finally {
      if (entry !== undefined) running.delete(entry);
    }
  }

  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    name: LOCAL_TRANSPORT,
    capabilities: {
      deployModes: ['ship', 'preinstalled'],
      artifacts: true,
      runAs: true,
      maxConcurrentExecsPerNode: 16,
    },
    // One phase: a local run has no connection, and its upload is a private copy.
    exec: (request) => withPhaseSpan(request, 'exec', () => exec(request)),
    async fetchArtifact(node, remotePath, signal) {
      try {
        return { content: await readFile(remotePath, { signal }) };
      } catch (error) {
        throw new RuneError('ARTIFACT_FETCH_FAILED', `cannot read artifact ${remotePath}`, {
          source: { component, node: node.name },
          cause: error,
          details: { path: remotePath },
        });
      }
    },
    async removeArtifact(node, remotePath, signal) {
      const failed = (why: string, cause?: unknown): RuneError =>
        new RuneError('ARTIFACT_REMOVE_FAILED', `cannot remove artifact ${remotePath}: ${why}`, {
          source: { component, node: node.name },
          details: { path: remotePath, phase: 'remove' },
          ...(cause === undefined ? {} : { cause }),
        });
      signal.throwIfAborted();
      let stat: Awaited<ReturnType<typeof lstat>>;
      try {
        // lstat: a symlink in the last component is reported as such, never followed.
        stat = await lstat(remotePath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw failed((error as NodeJS.ErrnoException).code ?? 'lstat failed', error);
      }
      if (!stat.isFile())
        throw failed('not a regular file (a link, directory or device is left alone)');
      try {
        // unlink removes the directory entry itself; swapped for a link meanwhile, the link goes.
        await unlink(remotePath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw failed((error as NodeJS.ErrnoException).code ?? 'unlink failed', error);
      }
    },
    async close() {
      const stopping = [...running];
      running.clear();
      await Promise.all(stopping.map((run) => run.sweep(run.marker, run.pid)));
      await cache.close();
    },
  };
}
