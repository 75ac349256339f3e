/**
 * Running the run-marker sweep on the control node, for transports that start plugins as local
 * child processes (the local transport; spawn-based third-party transports may use it too).
 *
 * There is one implementation of the sweep, the POSIX sh function in run-marker.ts that the SSH
 * and SSM transports send to their nodes; running the same text here through `/bin/sh` means a fix
 * to it fixes every transport. The sweep process is started with an environment that does not
 * carry the marker, so it never finds (and stops) itself or its `grep`.
 */
import { spawn } from 'node:child_process';
import { parseSweepOutput, SWEEP_FUNCTION_SH } from './run-marker.js';
import type { ContainmentReport } from './transport.js';

/** Default shell that runs the sweep. */
export const DEFAULT_SWEEP_SHELL = '/bin/sh';

/** Default time the sweep may take before it is given up (containment then incomplete). */
export const DEFAULT_SWEEP_TIMEOUT_MS = 10_000;

/** Options of {@link sweepLocalRun}. */
export interface LocalSweepOptions {
  /** The POSIX shell to run the sweep with; default {@link DEFAULT_SWEEP_SHELL}. */
  shell?: string;
  /**
   * Arguments given to `shell` before `-c SCRIPT`: with `shell: 'sudo'` and
   * `['-n', '-u', USER, '--', '/bin/sh']` the sweep runs as the user whose processes it must kill.
   */
  shellArgs?: readonly string[];
  /** Environment of the sweep (must not contain the marker); default PATH only. */
  env?: Readonly<Record<string, string>>;
  /** Give up after this long; default {@link DEFAULT_SWEEP_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** The plugin's process group, SIGKILLed after the sweep (it also catches unmarked members). */
  processGroup?: number;
}

const MAX_SWEEP_OUTPUT = 4096;

function runSweep(
  marker: string,
  options: LocalSweepOptions,
): Promise<{ line: string } | { error: string }> {
  return new Promise((resolve) => {
    let output = '';
    let settled = false;
    const done = (value: { line: string } | { error: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const child = spawn(
      options.shell ?? DEFAULT_SWEEP_SHELL,
      [
        ...(options.shellArgs ?? []),
        '-c',
        `${SWEEP_FUNCTION_SH}\nrune_sweep "$1"`,
        'rune-sweep',
        marker,
      ],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
        env: options.env ?? { PATH: '/usr/local/bin:/usr/bin:/bin' },
      },
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({
        error: `the sweep did not finish within ${options.timeoutMs ?? DEFAULT_SWEEP_TIMEOUT_MS} ms`,
      });
    }, options.timeoutMs ?? DEFAULT_SWEEP_TIMEOUT_MS);
    timer.unref?.();
    child.stdout.on('data', (chunk: Buffer) => {
      if (output.length < MAX_SWEEP_OUTPUT) output += chunk.toString('utf8');
    });
    child.on('error', (error: NodeJS.ErrnoException) =>
      done({ error: `the sweep could not start: ${error.code ?? error.message}` }),
    );
    child.on('close', (code) => {
      if (code !== 0) done({ error: `the sweep exited with ${code ?? 'a signal'}` });
      else done({ line: output });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}

/**
 * Kills every process that carries `marker` (the sweep), then the whole process group
 * `options.processGroup`, and reports how: `run-marker` and `complete: true` when the sweep could
 * scan `/proc`; `process-group` and `complete: false` with a `detail` when it could not (no
 * `/proc`, no shell, no `grep -z`) — a child that called `setsid` may then still be running.
 */
export async function sweepLocalRun(
  marker: string,
  options: LocalSweepOptions = {},
): Promise<ContainmentReport> {
  const swept = await runSweep(marker, options);
  killGroup(options.processGroup);
  if ('error' in swept) {
    return {
      method: 'process-group',
      killed: 0,
      complete: false,
      detail: `${swept.error}; only the plugin's process group was killed (not counted), a child that left it may still run`,
    };
  }
  const outcome = parseSweepOutput(swept.line);
  if (outcome === undefined) {
    return {
      method: 'process-group',
      killed: 0,
      complete: false,
      detail: `the sweep printed ${JSON.stringify(swept.line.slice(0, 80))}; only the plugin's process group was killed (not counted), a child that left it may still run`,
    };
  }
  if (!outcome.complete) {
    return {
      method: 'process-group',
      killed: 0,
      complete: false,
      detail:
        "/proc is not readable on this machine; only the plugin's process group was killed (not counted), a child that left it may still run",
    };
  }
  return { method: 'run-marker', killed: outcome.killed, complete: true };
}

/** Adds up two containment reports of one run (e.g. the sweep at timeout and the one at exit). */
export function mergeContainment(
  first: ContainmentReport | undefined,
  second: ContainmentReport,
): ContainmentReport {
  if (first === undefined) return second;
  const complete = first.complete && second.complete;
  const detail = [first.detail, second.detail].filter((part) => part !== undefined);
  return {
    method: complete ? 'run-marker' : first.complete ? second.method : first.method,
    killed: first.killed + second.killed,
    complete,
    ...(detail.length === 0 ? {} : { detail: [...new Set(detail)].join('; ') }),
  };
}
