/**
 * The "workdir" transport: an example of a complete third-party RUNE transport.
 *
 * Each node is a directory under `rootDir` (`<rootDir>/<node name>`), provisioned beforehand by
 * whoever sets up the sandbox; a node whose directory does not exist is unreachable. A plugin runs
 * on this machine as `/bin/sh -c 'cd "$1" && exec "$2"' rune-workdir <node dir> <plugin path>`,
 * with HOME and TMPDIR inside the node directory. The shell script is a constant: paths travel as
 * positional parameters and the RCS document only on stdin, so nothing a user supplies is ever
 * interpolated into a command line.
 *
 * What it shows a transport author:
 * - ship mode: the plugin is written content-addressed (file named by its sha256, private 0700
 *   directory) and its digest is verified before every run;
 * - containment: the plugin starts with `RUNE_RUN_MARKER=<fresh marker>` in its environment, which
 *   every process it starts inherits, even one that calls `setsid`. The run ends when the plugin
 *   exits (or is killed on timeout or abort); then `sweepLocalRun` from `@rune/transport` kills every
 *   process carrying the marker and the plugin's process group, and the result's `containment`
 *   says how many and whether that was complete — so a background child never keeps running unseen
 *   and never holds the result back by keeping stdout open;
 * - output is captured with core's HeadCapture (stdout) and TailCapture (stderr);
 * - only "could not reach / could not start" throws (a RuneError); everything a process did is a
 *   TransportExecResult.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { RuneError } from '@rune/protocol';
import {
  type ContainmentReport,
  createRunMarker,
  type FetchedArtifact,
  HeadCapture,
  notStartedResult,
  RUN_MARKER_VARIABLE,
  sweepLocalRun,
  TailCapture,
  type TargetNode,
  type Termination,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  type TransportExecRequest,
  type TransportExecResult,
} from '@rune/transport';

/** Version of this example transport package. */
export const VERSION = '0.1.0';

/** Default number of simultaneous runs per node. */
export const DEFAULT_WORKDIR_MAX_CONCURRENT_EXECS = 8;

/** Default time to wait for the streams to close after the run's processes were killed. */
export const DEFAULT_WORKDIR_DRAIN_MS = 2000;

/** Options of {@link createWorkdirTransport}. */
export interface WorkdirTransportOptions {
  /** Directory holding one subdirectory per node; a node without one is unreachable. */
  rootDir: string;
  /** The shell that starts plugins; defaults to `/bin/sh`. */
  shell?: string;
  /** Extra environment for plugins (PATH defaults to this process's PATH). */
  env?: Readonly<Record<string, string>>;
  /** Simultaneous runs per node that core should allow; defaults to 8. */
  maxConcurrentExecsPerNode?: number;
  /** How long to wait for the output streams to close once the run ended; defaults to 2 s. */
  drainMs?: number;
}

/** The constant launcher script; `$1` is the node directory, `$2` the plugin path. */
const LAUNCHER = 'cd "$1" && exec "$2"';

const COMPONENT = 'transport-workdir';

const sha256Hex = (content: Uint8Array): string =>
  createHash('sha256').update(content).digest('hex');

/** Kills a process group, ignoring "no such process". */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}

class WorkdirTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = 'workdir';
  readonly capabilities: TransportCapabilities;
  /** Running plugins and their run markers, for close(). */
  private readonly running = new Map<ChildProcess, string>();
  private closed = false;

  constructor(private readonly options: WorkdirTransportOptions) {
    this.capabilities = {
      deployModes: ['ship', 'preinstalled'],
      artifacts: true,
      runAs: false,
      maxConcurrentExecsPerNode:
        options.maxConcurrentExecsPerNode ?? DEFAULT_WORKDIR_MAX_CONCURRENT_EXECS,
    };
  }

  async exec(request: TransportExecRequest): Promise<TransportExecResult> {
    const started = performance.now();
    const error = (code: RuneError['code'], message: string, cause?: unknown) =>
      new RuneError(code, message, {
        source: { component: COMPONENT, node: request.node.name, action: request.plugin.action },
        traceId: request.traceId,
        cause,
      });
    if (this.closed) throw error('TRANSPORT_UNAVAILABLE', 'the workdir transport is closed');
    if (request.runAs !== undefined || request.node.runAs !== undefined) {
      throw error(
        'UNSUPPORTED_FEATURE',
        'the workdir transport cannot run plugins as another user',
      );
    }
    const nodeDir = await this.nodeDirectory(request.node, request.traceId);
    if (request.signal.aborted) return cancelledBeforeStart(started);
    const pluginPath = await this.placePlugin(request, nodeDir, error);
    if (request.signal.aborted) return cancelledBeforeStart(started);
    return this.run(request, nodeDir, pluginPath, started, error);
  }

  async fetchArtifact(
    node: TargetNode,
    remotePath: string,
    signal: AbortSignal,
  ): Promise<FetchedArtifact> {
    const nodeDir = await this.nodeDirectory(node);
    const fail = (message: string, cause?: unknown) =>
      new RuneError('ARTIFACT_FETCH_FAILED', message, {
        source: { component: COMPONENT, node: node.name },
        details: { path: remotePath },
        cause,
      });
    if (!isAbsolute(remotePath)) throw fail('artifact path must be absolute');
    let resolved: string;
    try {
      resolved = await realpath(remotePath);
    } catch (cause) {
      throw fail('artifact does not exist', cause);
    }
    const inside = relative(await realpath(nodeDir), resolved);
    if (inside.startsWith('..') || isAbsolute(inside)) {
      throw fail("artifact path is outside the node's working directory");
    }
    try {
      return { content: new Uint8Array(await readFile(resolved, { signal })) };
    } catch (cause) {
      throw fail('artifact could not be read', cause);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.running];
    this.running.clear();
    await Promise.all(
      running.map(([child, marker]) =>
        sweepLocalRun(marker, child.pid === undefined ? {} : { processGroup: child.pid }),
      ),
    );
  }

  /** `<rootDir>/<node name>`, which must exist; the name may not escape rootDir. */
  private async nodeDirectory(node: TargetNode, traceId?: string): Promise<string> {
    const source = { component: COMPONENT, node: node.name };
    const name = node.address ?? node.name;
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
      throw new RuneError('INVALID_TARGET', `node name "${name}" cannot name a directory`, {
        source,
        traceId,
      });
    }
    const nodeDir = join(this.options.rootDir, name);
    try {
      if ((await stat(nodeDir)).isDirectory()) return nodeDir;
    } catch (cause) {
      throw new RuneError('HOST_UNREACHABLE', `node directory ${nodeDir} does not exist`, {
        source,
        traceId,
        cause,
      });
    }
    throw new RuneError('HOST_UNREACHABLE', `${nodeDir} is not a directory`, { source, traceId });
  }

  /** Ship: write (or reuse) `<node>/.rune/plugins/<sha256>` after verifying the digest. */
  private async placePlugin(
    request: TransportExecRequest,
    nodeDir: string,
    error: (code: RuneError['code'], message: string, cause?: unknown) => RuneError,
  ): Promise<string> {
    const { plugin } = request;
    if (request.deployMode === 'preinstalled') {
      if (plugin.remotePath === undefined || !isAbsolute(plugin.remotePath)) {
        throw error(
          'PLUGIN_NOT_INSTALLED',
          'deploy mode preinstalled needs an absolute remotePath',
        );
      }
      try {
        await stat(plugin.remotePath);
      } catch (cause) {
        throw error('PLUGIN_NOT_INSTALLED', `${plugin.remotePath} does not exist`, cause);
      }
      return plugin.remotePath;
    }
    if (!/^[0-9a-f]{64}$/.test(plugin.sha256) || sha256Hex(plugin.content) !== plugin.sha256) {
      throw error('PLUGIN_INTEGRITY_FAILED', 'plugin content does not match its sha256');
    }
    const cacheDir = join(nodeDir, '.rune', 'plugins');
    const pluginPath = join(cacheDir, plugin.sha256);
    try {
      await mkdir(cacheDir, { recursive: true, mode: 0o700 });
      await chmod(cacheDir, 0o700);
      await mkdir(join(nodeDir, 'tmp'), { recursive: true, mode: 0o700 });
      const cached = await readFile(pluginPath).catch(() => null);
      if (cached === null || sha256Hex(cached) !== plugin.sha256) {
        // Write to a unique name first so concurrent runs never execute a half-written file.
        const partial = `${pluginPath}.${process.pid}.${Math.random().toString(16).slice(2)}`;
        await writeFile(partial, plugin.content, { mode: 0o700 });
        await rename(partial, pluginPath);
      }
    } catch (cause) {
      throw error('PLUGIN_NOT_EXECUTABLE', `could not place the plugin in ${cacheDir}`, cause);
    }
    return pluginPath;
  }

  private run(
    request: TransportExecRequest,
    nodeDir: string,
    pluginPath: string,
    started: number,
    error: (code: RuneError['code'], message: string, cause?: unknown) => RuneError,
  ): Promise<TransportExecResult> {
    const stdout = new HeadCapture(request.limits.maxStdoutBytes);
    const stderr = new TailCapture(request.limits.maxStderrBytes);
    const drainMs = this.options.drainMs ?? DEFAULT_WORKDIR_DRAIN_MS;
    // Inherited by everything the plugin starts; the sweep finds them by it.
    const marker = createRunMarker();
    return new Promise<TransportExecResult>((resolve, reject) => {
      const execStarted = performance.now();
      let child: ChildProcess;
      try {
        child = spawn(
          this.options.shell ?? '/bin/sh',
          ['-c', LAUNCHER, 'rune-workdir', nodeDir, pluginPath],
          {
            detached: true,
            stdio: ['pipe', 'pipe', 'pipe'],
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              HOME: nodeDir,
              TMPDIR: join(nodeDir, 'tmp'),
              LANG: 'C.UTF-8',
              ...this.options.env,
              [RUN_MARKER_VARIABLE]: marker,
            },
          },
        );
      } catch (cause) {
        reject(error('TRANSPORT_UNAVAILABLE', 'could not start the shell', cause));
        return;
      }
      this.running.set(child, marker);
      let forced: Termination | null = null;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let containment: ContainmentReport | undefined;
      let streamsClosed = false;
      let drainTimer: NodeJS.Timeout | undefined;
      let settled = false;

      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timeoutTimer);
        clearTimeout(drainTimer);
        request.signal.removeEventListener('abort', onAbort);
        this.running.delete(child);
        const termination: Termination =
          forced ?? (exit?.signal != null ? 'signal' : exit?.code != null ? 'exit' : 'signal');
        const now = performance.now();
        resolve({
          termination,
          exitCode: termination === 'exit' ? (exit?.code ?? null) : null,
          signal: termination === 'signal' ? (exit?.signal ?? 'SIGKILL') : null,
          stdout: stdout.bytes(),
          stdoutTruncated: stdout.truncated,
          stderr: stderr.bytes(),
          stderrTruncated: stderr.truncated,
          timings: { connectMs: 0, execMs: now - execStarted, totalMs: now - started },
          metadata: { workdir: nodeDir, plugin_path: pluginPath },
          ...(containment === undefined ? {} : { containment }),
        });
      };
      const kill = (reason: Termination) => {
        if (forced !== null || settled || exit !== null) return;
        forced = reason;
        // The plugin dies; its 'exit' below sweeps whatever it started.
        killGroup(child);
      };
      const onAbort = () => kill('cancelled');
      const timeoutTimer = setTimeout(() => kill('timeout'), request.timeoutMs);
      request.signal.addEventListener('abort', onAbort, { once: true });

      child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.stdin?.on('error', () => {
        // EPIPE: the plugin exited without reading all of its stdin; its exit tells the story.
      });
      child.stdin?.end(request.stdin);
      child.on('error', (cause) => {
        this.running.delete(child);
        clearTimeout(timeoutTimer);
        request.signal.removeEventListener('abort', onAbort);
        reject(error('TRANSPORT_UNAVAILABLE', 'could not start the plugin', cause));
      });
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        clearTimeout(timeoutTimer);
        // The run ends here: kill every process it started (marked, or in the plugin's group).
        void sweepLocalRun(marker, child.pid === undefined ? {} : { processGroup: child.pid }).then(
          (report) => {
            containment = report;
            if (streamsClosed) return finish();
            // Only a process outside the run can still hold our pipes; stop waiting after drainMs.
            drainTimer = setTimeout(() => {
              child.stdout?.destroy();
              child.stderr?.destroy();
              containment = {
                ...report,
                complete: false,
                detail: 'a process outside the run still held its output open',
              };
              finish();
            }, drainMs);
          },
        );
      });
      child.on('close', () => {
        streamsClosed = true;
        if (containment !== undefined) finish();
      });
    });
  }
}

function cancelledBeforeStart(started: number): TransportExecResult {
  const totalMs = performance.now() - started;
  return notStartedResult({ connectMs: 0, execMs: 0, totalMs }, { started: false });
}

/**
 * Creates a workdir transport: plugins run on this machine, one working directory per node under
 * `options.rootDir`. See the module documentation for the sandbox it provides (and does not).
 */
export function createWorkdirTransport(options: WorkdirTransportOptions): Transport {
  return new WorkdirTransport(options);
}
