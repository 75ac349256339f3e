/**
 * The `local` transport: runs a plugin as a child process of the control node.
 *
 * The plugin file is executed directly (`spawn(file, [])`, no shell), so nothing user-supplied
 * can be interpreted by a shell; the RCS document goes on stdin, which is then closed. The child
 * gets its own process group (`detached`), so a timeout or cancellation kills the plugin and
 * everything it started: SIGTERM to the group, then SIGKILL after a grace period. When the plugin
 * exits, any process it left behind in its group is killed too — nothing keeps running unseen.
 *
 * Ship mode runs the registry's file in place (`plugin.localPath`) after re-hashing it right
 * before exec (PLUGIN_INTEGRITY_FAILED when it changed since planning); without a local path, or
 * when that file is not executable (a built-in plugin installed by a package manager that dropped
 * its mode bits), the verified content is written once into a private (0700) temporary
 * directory, named by its sha256, and runs from there.
 * Preinstalled mode runs `plugin.remotePath` (PLUGIN_NOT_INSTALLED when absent).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { interruptedResult } from './interrupted-result.js';
import { HeadCapture, TailCapture } from './output-capture.js';
import {
  type TargetNode,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportExecRequest,
  type TransportExecResult,
} from './transport.js';

/** Default time between SIGTERM and SIGKILL when a run is stopped. */
export const DEFAULT_KILL_GRACE_MS = 2000;

/** Options of {@link createLocalTransport}. */
export interface LocalTransportOptions {
  /** Time between SIGTERM and SIGKILL of the process group. Default {@link DEFAULT_KILL_GRACE_MS}. */
  killGraceMs?: number;
  /** Environment of the plugin process; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Working directory of the plugin; default the control node's cwd. */
  cwd?: string;
  /**
   * Which nodes count as "this machine". Default: name or address is localhost, local,
   * 127.0.0.1, ::1 or the host name. Other nodes are refused with HOST_UNREACHABLE, so a
   * misrouted remote node never runs on the control node.
   */
  isLocalNode?: (node: TargetNode) => boolean;
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

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Creates the local transport. */
export function createLocalTransport(options: LocalTransportOptions = {}): Transport {
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const isLocalNode = options.isLocalNode ?? defaultIsLocalNode;
  let cacheDir: Promise<string> | undefined;
  const materialized = new Map<string, Promise<string>>();
  const running = new Set<number>();

  /** Writes `content` (already checked against `request.plugin.sha256`) to a private file. */
  async function materialize(
    request: TransportExecRequest,
    content: Uint8Array = request.plugin.content,
  ): Promise<string> {
    const { plugin } = request;
    let path = materialized.get(plugin.sha256);
    if (path === undefined) {
      cacheDir ??= mkdtemp(join(tmpdir(), 'rune-local-plugins-'));
      path = (async () => {
        const dir = await cacheDir!;
        const file = join(dir, plugin.sha256);
        await writeFile(file, content, { mode: 0o700, flag: 'wx' });
        return file;
      })();
      materialized.set(plugin.sha256, path);
    }
    return path;
  }

  async function pluginFile(request: TransportExecRequest): Promise<string> {
    const { plugin, node } = request;
    const source = { component, node: node.name, action: plugin.action };
    if (request.deployMode === 'preinstalled') {
      const path = plugin.remotePath;
      if (path === undefined) {
        throw new RuneError('PLUGIN_NOT_INSTALLED', 'no plugin path given for preinstalled mode', {
          source,
          traceId: request.traceId,
        });
      }
      try {
        await access(path, fsConstants.F_OK);
      } catch {
        throw new RuneError(
          'PLUGIN_NOT_INSTALLED',
          `plugin ${path} is not installed on this node`,
          {
            source,
            traceId: request.traceId,
            details: { path },
          },
        );
      }
      return path;
    }
    if (plugin.localPath === undefined) {
      if (sha256(plugin.content) !== plugin.sha256) {
        throw new RuneError('PLUGIN_INTEGRITY_FAILED', 'plugin content does not match its sha256', {
          source,
          traceId: request.traceId,
        });
      }
      return materialize(request);
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(plugin.localPath);
    } catch (error) {
      throw new RuneError('PLUGIN_INTEGRITY_FAILED', `plugin ${plugin.localPath} cannot be read`, {
        source,
        traceId: request.traceId,
        cause: error,
        details: { path: plugin.localPath },
      });
    }
    const actual = sha256(bytes);
    if (actual !== plugin.sha256) {
      throw new RuneError(
        'PLUGIN_INTEGRITY_FAILED',
        `plugin ${plugin.localPath} changed since it was planned (sha256 ${actual.slice(0, 12)}…, expected ${plugin.sha256.slice(0, 12)}…); nothing was executed`,
        {
          source,
          traceId: request.traceId,
          details: { path: plugin.localPath, expected: plugin.sha256, actual },
        },
      );
    }
    // The registry accepts built-in plugins without an execute bit (package managers drop it):
    // run the bytes just verified from a private copy rather than failing with EACCES.
    const executable = await access(plugin.localPath, fsConstants.X_OK).then(
      () => true,
      () => false,
    );
    return executable ? plugin.localPath : materialize(request, bytes);
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
    if (request.signal.aborted) {
      return interruptedResult(
        'cancelled',
        { connectMs: 0, execMs: 0, totalMs: 0 },
        { started: false },
      );
    }
    const file = await pluginFile(request);
    const stdout = new HeadCapture(request.limits.maxStdoutBytes);
    const stderr = new TailCapture(request.limits.maxStderrBytes);

    return new Promise<TransportExecResult>((resolve, reject) => {
      const child = spawn(file, [], {
        detached: true,
        shell: false,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: (options.env ?? process.env) as NodeJS.ProcessEnv,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      });
      const pid = child.pid;
      if (pid !== undefined) running.add(pid);
      const execStarted = performance.now();
      let stopReason: 'timeout' | 'cancelled' | undefined;
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      let leftoversKilled = false;
      let graceTimer: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;
      let settled = false;

      const stop = (reason: 'timeout' | 'cancelled'): void => {
        if (stopReason !== undefined || settled) return;
        stopReason = reason;
        killGroup(pid, 'SIGTERM');
        graceTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), killGraceMs);
        graceTimer.unref?.();
      };
      const timer = setTimeout(() => stop('timeout'), request.timeoutMs);
      const onAbort = (): void => stop('cancelled');
      request.signal.addEventListener('abort', onAbort, { once: true });

      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        if (drainTimer !== undefined) clearTimeout(drainTimer);
        request.signal.removeEventListener('abort', onAbort);
        if (pid !== undefined) running.delete(pid);
      };

      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // A plugin that exits without reading stdin makes the write fail with EPIPE: not an error.
      child.stdin.on('error', () => {});
      child.stdin.end(request.stdin);

      child.on('error', (error: NodeJS.ErrnoException) => {
        if (settled) return;
        cleanup();
        const code = error.code;
        const errorCode =
          code === 'EACCES' || code === 'ENOEXEC' || code === 'ENOENT'
            ? 'PLUGIN_NOT_EXECUTABLE'
            : 'INTERNAL_ERROR';
        reject(
          new RuneError(errorCode, `cannot execute plugin ${file}: ${code ?? error.message}`, {
            source,
            traceId: request.traceId,
            cause: error,
            details: { path: file, errno: code },
          }),
        );
      });
      child.on('exit', (code, signal) => {
        exitCode = code;
        exitSignal = signal;
        // Kill whatever the plugin left running in its group; it also closes pipes they hold.
        leftoversKilled = killGroup(pid, 'SIGKILL');
        drainTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, 2000);
        drainTimer.unref?.();
      });
      child.on('close', () => {
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
            stdout_bytes: stdout.totalBytes,
            stderr_bytes: stderr.totalBytes,
            ...(leftoversKilled ? { leftover_processes_killed: true } : {}),
            ...(stopReason === undefined ? {} : { killed_signal_on_stop: 'SIGTERM' }),
          },
        });
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
    async close() {
      for (const pid of running) killGroup(pid, 'SIGKILL');
      running.clear();
      const dir = cacheDir;
      cacheDir = undefined;
      materialized.clear();
      if (dir !== undefined) await rm(await dir, { recursive: true, force: true });
    },
  };
}
