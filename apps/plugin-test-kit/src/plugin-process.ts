/**
 * Running one plugin as a local child process the way the local transport does — with the same
 * runner, `runLocalProcess` from @rune/transport: no shell, its own process group, a run marker
 * swept when it ends (killed whole on timeout and after exit), stdin written then closed, stdout
 * and stderr bounded. What the test kit adds: starting source files that lack the executable bit
 * through their `#!` interpreter, and the environment (PATH shims, sandbox HOME/TMPDIR) its caller
 * builds.
 */
import { access, constants, open } from 'node:fs/promises';
import { runLocalProcess } from '@rune/transport';

/** Default stdout cap: 1 MiB, as core's `max_stdout_bytes`. */
export const DEFAULT_MAX_STDOUT_BYTES = 1024 * 1024;
/** Default stderr cap: 64 KiB, as core's `max_stderr_bytes`. */
export const DEFAULT_MAX_STDERR_BYTES = 64 * 1024;

/** Options of {@link runPluginProcess}. */
export interface PluginProcessOptions {
  /** The plugin file. */
  file: string;
  stdin: Uint8Array;
  /** Complete environment of the plugin. */
  env: Record<string, string>;
  cwd: string;
  timeoutMs: number;
  maxStdoutBytes?: number;
  maxStderrBytes?: number;
}

/** What the plugin process did. */
export interface PluginProcessResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: Uint8Array;
  stdoutTruncated: boolean;
  stderr: Uint8Array;
  stderrTruncated: boolean;
  durationMs: number;
}

/**
 * How to start a plugin file: directly when it is executable, else through the interpreter named
 * by its `#!` line (source trees often lack the executable bit), else bash for `.sh` files.
 */
export async function pluginCommand(file: string): Promise<[string, string[]]> {
  try {
    await access(file, constants.X_OK);
    return [file, []];
  } catch {
    // Not executable: look at the shebang.
  }
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(256);
    const { bytesRead } = await handle.read(buffer, 0, 256, 0);
    const head = buffer.subarray(0, bytesRead).toString('utf8');
    if (head.startsWith('#!')) {
      const words = head.slice(2).split('\n')[0]!.trim().split(/\s+/);
      const [interpreter, ...rest] = words;
      if (interpreter !== undefined && interpreter !== '') return [interpreter, [...rest, file]];
    }
  } finally {
    await handle.close();
  }
  return ['/bin/bash', [file]];
}

/**
 * After the timeout the test kit kills at once (no SIGTERM grace): a case that ran past its
 * timeout has already failed, and waiting for traps would only slow the run.
 */
const KILL_GRACE_MS = 0;
/** How long the pipes may stay open after the plugin ended before the output so far is judged. */
const DRAIN_MS = 2000;

/**
 * Runs the plugin to completion or timeout through the one local process runner of
 * @rune/transport (`runLocalProcess`, the local transport's too): leftovers of the plugin are
 * swept by its run marker. Never throws for what the plugin did; PLUGIN_NOT_EXECUTABLE when it
 * cannot be started.
 */
export async function runPluginProcess(
  options: PluginProcessOptions,
): Promise<PluginProcessResult> {
  const [command, args] = await pluginCommand(options.file);
  const started = performance.now();
  const run = await runLocalProcess({
    command,
    args,
    stdin: options.stdin,
    env: options.env,
    cwd: options.cwd,
    timeoutMs: options.timeoutMs,
    limits: {
      maxStdoutBytes: options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES,
      maxStderrBytes: options.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES,
    },
    killGraceMs: KILL_GRACE_MS,
    drainMs: DRAIN_MS,
  });
  const timedOut = run.termination === 'timeout';
  return {
    exitCode: run.exitCode,
    signal: run.signal,
    timedOut,
    stdout: run.stdout,
    stdoutTruncated: run.stdoutTruncated,
    stderr: run.stderr,
    stderrTruncated: run.stderrTruncated,
    durationMs: performance.now() - started,
  };
}
