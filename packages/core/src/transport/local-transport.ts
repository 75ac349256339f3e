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
 * How it runs: the file is executed directly (`spawn(file, [])`, no shell), so nothing
 * user-supplied can be interpreted by a shell; the RCS document goes on stdin, which is then
 * closed. The environment is minimal (plugin-environment.ts: no RUNE_* secrets, AWS_*,
 * SSH_AUTH_SOCK or tokens) plus `RUNE_RUN_MARKER=<fresh marker>`.
 *
 * When it ends: the run ends when the plugin process exits, or is killed on timeout or cancel
 * (SIGTERM to its process group, SIGKILL after `killGraceMs`). At that moment the run-marker sweep
 * (local-sweep.ts) kills every process carrying the marker — children in the group, children that
 * called `setsid`, a background child still holding stdout open — and then the process group. The
 * output captured so far is kept and judged as usual; a leftover child neither delays the result
 * nor turns it into a timeout. `containment` in the result says what was killed and whether that
 * was complete (without /proc it is not: `process-group`, `complete: false`).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { lstat, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { RuneError } from '@rune/protocol';
import {
  type ContainmentReport,
  createRunMarker,
  findUnsafePathComponent,
  HeadCapture,
  mergeContainment,
  notStartedResult,
  RUN_MARKER_VARIABLE,
  sha256Hex,
  sweepLocalRun,
  TailCapture,
  type TargetNode,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportExecRequest,
  type TransportExecResult,
} from '@rune/transport';
import { minimalPluginEnvironment } from './plugin-environment.js';
import { createPrivatePluginCache, effectiveUid } from './private-plugin-cache.js';

/** Default time between SIGTERM and SIGKILL when a run is stopped. */
export const DEFAULT_KILL_GRACE_MS = 2000;

/**
 * Default time to wait, after the plugin exited and its leftovers were killed, for the output pipes
 * to close. They close at once unless a process outside the run (not marked, not in the group)
 * holds them; then the output so far is kept and containment is reported incomplete.
 */
export const DEFAULT_OUTPUT_DRAIN_MS = 1000;

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
  /** Time to wait for the output pipes after the run ended; default {@link DEFAULT_OUTPUT_DRAIN_MS}. */
  drainMs?: number;
  /**
   * Which nodes count as "this machine". Default: name or address is localhost, local,
   * 127.0.0.1, ::1 or the host name. Other nodes are refused with HOST_UNREACHABLE, so a
   * misrouted remote node never runs on the control node.
   */
  isLocalNode?: (node: TargetNode) => boolean;
  /**
   * Called with the path about to be executed, after every check and right before the spawn.
   * For tests that need to act inside that window (e.g. swap a file) and for tracing.
   */
  beforeSpawn?: (path: string) => void | Promise<void>;
}

/** Node names the local transport accepts by default (plus the control node's host name). */
export const LOCAL_TRANSPORT_NODE_NAMES: readonly string[] = [
  'localhost',
  'local',
  '127.0.0.1',
  '::1',
];

function defaultIsLocalNode(node: TargetNode): boolean {
  const names = [...LOCAL_TRANSPORT_NODE_NAMES, hostname()];
  return names.includes(node.address ?? node.name);
}

const component = 'transport-local';

function killGroup(pid: number | undefined, signal: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** What the transport executes for one request. */
interface PreparedPlugin {
  file: string;
  metadata: Record<string, unknown>;
}

/** One plugin process, as `close()` needs to see it. */
interface RunningPlugin {
  pid: number;
  marker: string;
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
    if (request.runAs !== undefined || request.node.runAs !== undefined) {
      throw new RuneError('UNSUPPORTED_FEATURE', 'the local transport does not support run_as', {
        source,
        traceId: request.traceId,
      });
    }
    const notStarted = (): TransportExecResult =>
      notStartedResult(
        { connectMs: 0, execMs: 0, totalMs: Math.round(performance.now() - started) },
        { started: false },
      );
    if (request.signal.aborted) return notStarted();
    const prepared = await preparePlugin(request);
    await options.beforeSpawn?.(prepared.file);
    if (request.signal.aborted) return notStarted();
    const file = prepared.file;
    const marker = createRunMarker();
    const stdout = new HeadCapture(request.limits.maxStdoutBytes);
    const stderr = new TailCapture(request.limits.maxStderrBytes);

    const notExecutable = (error: NodeJS.ErrnoException): RuneError => {
      const code = error.code;
      const errorCode =
        code === 'EACCES' || code === 'ENOEXEC' || code === 'ENOENT'
          ? 'PLUGIN_NOT_EXECUTABLE'
          : 'INTERNAL_ERROR';
      return new RuneError(errorCode, `cannot execute plugin ${file}: ${code ?? error.message}`, {
        source,
        traceId: request.traceId,
        cause: error,
        details: { path: file, errno: code },
      });
    };

    return new Promise<TransportExecResult>((resolve, reject) => {
      let child: ChildProcessWithoutNullStreams;
      try {
        child = spawn(file, [], {
          detached: true,
          shell: false,
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...baseEnv, [RUN_MARKER_VARIABLE]: marker },
          ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        });
      } catch (error) {
        // Some exec failures (ENOEXEC: no #! line) are thrown by spawn itself.
        reject(notExecutable(error as NodeJS.ErrnoException));
        return;
      }
      const pid = child.pid;
      const entry: RunningPlugin | undefined = pid === undefined ? undefined : { pid, marker };
      if (entry !== undefined) running.add(entry);
      const execStarted = performance.now();
      let stopReason: 'timeout' | 'cancelled' | undefined;
      let containment: ContainmentReport | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      let graceSweep: Promise<void> | undefined;
      let exited = false;
      let settled = false;
      const closed = new Promise<void>((resolveClosed) =>
        child.once('close', () => resolveClosed()),
      );

      const stop = (reason: 'timeout' | 'cancelled'): void => {
        if (stopReason !== undefined || exited) return;
        stopReason = reason;
        // SIGTERM first so the plugin's traps can run; whatever is left is swept at the grace end.
        killGroup(pid, 'SIGTERM');
        graceTimer = setTimeout(() => {
          if (exited) return;
          graceSweep = sweep(marker, pid).then((report) => {
            containment = mergeContainment(containment, report);
          });
        }, killGraceMs);
        graceTimer.unref?.();
      };
      const timer = setTimeout(() => stop('timeout'), request.timeoutMs);
      const onAbort = (): void => stop('cancelled');
      request.signal.addEventListener('abort', onAbort, { once: true });

      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        request.signal.removeEventListener('abort', onAbort);
        if (entry !== undefined) running.delete(entry);
      };

      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // A plugin that exits without reading stdin makes the write fail with EPIPE: not an error.
      child.stdin.on('error', () => {});
      child.stdin.end(request.stdin);

      child.on('error', (error: NodeJS.ErrnoException) => {
        if (settled || exited) return;
        cleanup();
        reject(notExecutable(error));
      });

      child.on('exit', (exitCode, exitSignal) => {
        // No pid: the spawn failed and 'error' reports it.
        if (pid === undefined || exited) return;
        exited = true;
        clearTimeout(timer);
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        void (async () => {
          await graceSweep;
          // THE RULE: the run ended now. Kill everything it started, then read what is left.
          containment = mergeContainment(containment, await sweep(marker, pid));
          let drained = true;
          let drainTimer: NodeJS.Timeout | undefined;
          await Promise.race([
            closed,
            new Promise<void>((resolveDrain) => {
              drainTimer = setTimeout(() => {
                drained = false;
                resolveDrain();
              }, drainMs);
            }),
          ]);
          clearTimeout(drainTimer);
          if (!drained) {
            child.stdout.destroy();
            child.stderr.destroy();
            containment = mergeContainment(containment, {
              method: containment.method,
              killed: 0,
              complete: false,
              detail:
                "a process outside the run marker and the plugin's process group still held its output open",
            });
          }
          if (settled) return;
          cleanup();
          const now = performance.now();
          const termination =
            stopReason ?? (exitSignal !== null && exitCode === null ? 'signal' : 'exit');
          resolve({
            termination,
            exitCode: termination === 'exit' ? exitCode : null,
            signal: termination === 'signal' ? exitSignal : null,
            stdout: stdout.bytes(),
            stdoutTruncated: stdout.truncated,
            stderr: stderr.bytes(),
            stderrTruncated: stderr.truncated,
            timings: {
              connectMs: 0,
              execMs: Math.round(now - execStarted),
              totalMs: Math.round(now - started),
            },
            metadata: {
              pid: pid ?? null,
              path: file,
              ...prepared.metadata,
              stdout_bytes: stdout.totalBytes,
              stderr_bytes: stderr.totalBytes,
              ...(stopReason === undefined ? {} : { killed_signal_on_stop: 'SIGTERM' }),
            },
            containment,
          });
        })();
      });
    });
  }

  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    name: 'local',
    capabilities: {
      deployModes: ['ship', 'preinstalled'],
      artifacts: true,
      runAs: false,
      maxConcurrentExecsPerNode: 16,
    },
    exec,
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
        new RuneError('ARTIFACT_FETCH_FAILED', `cannot remove artifact ${remotePath}: ${why}`, {
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
      await Promise.all(stopping.map((run) => sweep(run.marker, run.pid)));
      await cache.close();
    },
  };
}
