/**
 * The one runner of a plugin as a child process of this machine, used by core's local transport
 * and by the plugin test kit (and open to spawn-based third-party transports).
 *
 * How it runs: `spawn(command, args)` with no shell, in a process group of its own, with exactly
 * the environment given plus `RUNE_RUN_MARKER=<fresh marker>`; stdin is written and closed;
 * stdout is kept from its head and stderr from its tail, bounded by the limits.
 *
 * When it ends: when the process exits, or is stopped on timeout or abort (SIGTERM to its group,
 * then after `killGraceMs` the run-marker sweep, which SIGKILLs whatever is left). At that moment
 * the sweep (`sweepLocalRun`) kills every process carrying the marker — children in the group,
 * children that called `setsid`, a background child still holding stdout open — and then the
 * group. The output captured so far is kept; if something outside the run still holds the pipes
 * after `drainMs`, they are closed and containment is reported incomplete.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { RuneError, type RuneErrorOptions } from '@rune/protocol';
import { mergeContainment, sweepLocalRun } from './local-sweep.js';
import { HeadCapture, TailCapture } from './output-capture.js';
import { createRunMarker, RUN_MARKER_VARIABLE } from './run-marker.js';
import { TIMEOUT_GRACE_MS } from './timeout-rule.js';
import type { ContainmentReport, OutputLimits, Termination } from './transport.js';

/** Default time to wait for the output pipes after the run ended and its leftovers were killed. */
export const DEFAULT_OUTPUT_DRAIN_MS = 1000;

/** Options of {@link runLocalProcess}. */
export interface LocalProcessOptions {
  /** The file to execute (directly, no shell). */
  command: string;
  args?: readonly string[];
  /** Written to stdin, which is then closed. */
  stdin: Uint8Array;
  /** The complete environment of the process; `RUNE_RUN_MARKER` is added. */
  env: Readonly<Record<string, string>>;
  cwd?: string;
  /** Stop the process after this long and report `termination: 'timeout'`. */
  timeoutMs: number;
  /** Aborting stops the process and reports `termination: 'cancelled'`. */
  signal?: AbortSignal;
  limits: OutputLimits;
  /** Time between SIGTERM and the SIGKILL sweep; default the timeout rule's grace. */
  killGraceMs?: number;
  /** Time to wait for the output pipes after the run ended; default {@link DEFAULT_OUTPUT_DRAIN_MS}. */
  drainMs?: number;
  /** POSIX shell that runs the sweep; default `/bin/sh`. */
  sweepShell?: string;
  /**
   * Arguments put before the sweep script's own (`sweepShell ...sweepShellArgs -c SCRIPT`): e.g.
   * `sweepShell: 'sudo'` with `['-n', '-u', 'root', '--', '/bin/sh']` sweeps as that user.
   */
  sweepShellArgs?: readonly string[];
  /**
   * The run marker to use (default: a fresh one). A caller that must pass the marker itself — a
   * command through sudo, which drops the environment — creates it with `createRunMarker()`.
   */
  marker?: string;
  /** Called right after the spawn, e.g. to sweep the run when the caller shuts down first. */
  onSpawn?: (running: { pid: number; marker: string }) => void;
  /** Source and trace id for the RuneError of a process that cannot be started. */
  errorOptions?: Pick<RuneErrorOptions, 'source' | 'traceId'>;
}

/** What the process did. */
export interface LocalProcessResult {
  termination: Termination;
  /** The exit code when `termination` is `exit`, else null. */
  exitCode: number | null;
  /** The signal when `termination` is `signal`, else null. */
  signal: string | null;
  stdout: Uint8Array;
  stdoutTruncated: boolean;
  /** Bytes the process wrote to stdout in total (kept or not). */
  stdoutTotalBytes: number;
  stderr: Uint8Array;
  stderrTruncated: boolean;
  stderrTotalBytes: number;
  containment: ContainmentReport;
  pid: number;
  /** From the spawn to the result, in ms. */
  execMs: number;
  /** True when the runner sent SIGTERM (timeout or abort). */
  stopped: boolean;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Runs one process to its end (see the module header). Rejects only when it cannot be started:
 * PLUGIN_NOT_EXECUTABLE for EACCES, ENOEXEC and ENOENT, INTERNAL_ERROR otherwise.
 */
export function runLocalProcess(options: LocalProcessOptions): Promise<LocalProcessResult> {
  const killGraceMs = options.killGraceMs ?? TIMEOUT_GRACE_MS;
  const drainMs = options.drainMs ?? DEFAULT_OUTPUT_DRAIN_MS;
  const marker = options.marker ?? createRunMarker();
  // The sweep must not carry the marker (it would stop itself); it needs only PATH.
  const sweepEnv = options.env.PATH === undefined ? undefined : { PATH: options.env.PATH };
  const sweep = (pid: number) =>
    sweepLocalRun(marker, {
      processGroup: pid,
      ...(sweepEnv === undefined ? {} : { env: sweepEnv }),
      ...(options.sweepShell === undefined ? {} : { shell: options.sweepShell }),
      ...(options.sweepShellArgs === undefined ? {} : { shellArgs: options.sweepShellArgs }),
    });
  const stdout = new HeadCapture(options.limits.maxStdoutBytes);
  const stderr = new TailCapture(options.limits.maxStderrBytes);
  const notExecutable = (error: NodeJS.ErrnoException): RuneError => {
    const code = error.code;
    const errorCode =
      code === 'EACCES' || code === 'ENOEXEC' || code === 'ENOENT'
        ? 'PLUGIN_NOT_EXECUTABLE'
        : 'INTERNAL_ERROR';
    return new RuneError(
      errorCode,
      `cannot execute plugin ${options.command}: ${code ?? error.message}`,
      { ...options.errorOptions, cause: error, details: { path: options.command, errno: code } },
    );
  };

  return new Promise<LocalProcessResult>((resolve, reject) => {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(options.command, [...(options.args ?? [])], {
        detached: true,
        shell: false,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...options.env, [RUN_MARKER_VARIABLE]: marker },
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      });
    } catch (error) {
      // Some exec failures (ENOEXEC: no #! line) are thrown by spawn itself.
      reject(notExecutable(error as NodeJS.ErrnoException));
      return;
    }
    const pid = child.pid;
    if (pid !== undefined) options.onSpawn?.({ pid, marker });
    const execStarted = performance.now();
    let stopReason: 'timeout' | 'cancelled' | undefined;
    let containment: ContainmentReport | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let graceSweep: Promise<void> | undefined;
    let exited = false;
    let settled = false;
    const closed = new Promise<void>((resolveClosed) => child.once('close', () => resolveClosed()));

    const stop = (reason: 'timeout' | 'cancelled'): void => {
      if (stopReason !== undefined || exited || pid === undefined) return;
      stopReason = reason;
      // SIGTERM first so the plugin's traps can run; whatever is left is swept at the grace end.
      killGroup(pid, 'SIGTERM');
      graceTimer = setTimeout(() => {
        if (exited) return;
        graceSweep = sweep(pid).then((report) => {
          containment = mergeContainment(containment, report);
        });
      }, killGraceMs);
      graceTimer.unref?.();
    };
    const timer = setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = (): void => stop('cancelled');
    if (options.signal?.aborted) queueMicrotask(onAbort);
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      options.signal?.removeEventListener('abort', onAbort);
    };

    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // A plugin that exits without reading stdin makes the write fail with EPIPE: not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(options.stdin);

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
        containment = mergeContainment(containment, await sweep(pid));
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
        const termination =
          stopReason ?? (exitSignal !== null && exitCode === null ? 'signal' : 'exit');
        resolve({
          termination,
          exitCode: termination === 'exit' ? exitCode : null,
          signal: termination === 'signal' ? exitSignal : null,
          stdout: stdout.bytes(),
          stdoutTruncated: stdout.truncated,
          stdoutTotalBytes: stdout.totalBytes,
          stderr: stderr.bytes(),
          stderrTruncated: stderr.truncated,
          stderrTotalBytes: stderr.totalBytes,
          containment,
          pid,
          execMs: Math.round(performance.now() - execStarted),
          stopped: stopReason !== undefined,
        });
      })();
    });
  });
}
