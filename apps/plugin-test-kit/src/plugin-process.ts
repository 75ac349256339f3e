/**
 * Running one plugin as a local child process the way a transport would: no shell, its own
 * process group (killed whole on timeout and after exit), stdin written then closed, stdout and
 * stderr bounded by the HeadCapture/TailCapture of @rune/transport.
 */
import { spawn } from 'node:child_process';
import { access, constants, open } from 'node:fs/promises';
import { RuneError } from '@rune/protocol';
import { HeadCapture, TailCapture } from '@rune/transport';

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

/** Runs the plugin to completion or timeout; never throws for what the plugin did. */
export async function runPluginProcess(
  options: PluginProcessOptions,
): Promise<PluginProcessResult> {
  const [command, args] = await pluginCommand(options.file);
  const stdout = new HeadCapture(options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES);
  const stderr = new TailCapture(options.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES);
  const started = performance.now();
  return new Promise<PluginProcessResult>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let timedOut = false;
    let exit: { code: number | null; signal: string | null } | null = null;
    let settled = false;
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      resolve({
        exitCode: timedOut ? null : (exit?.code ?? null),
        signal: timedOut ? null : (exit?.signal ?? null),
        timedOut,
        stdout: stdout.bytes(),
        stdoutTruncated: stdout.truncated,
        stderr: stderr.bytes(),
        stderrTruncated: stderr.truncated,
        durationMs: performance.now() - started,
      });
    };
    let drainTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2000);
    }, options.timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin?.on('error', () => {
      // EPIPE: the plugin did not read all of its stdin.
    });
    child.stdin?.end(options.stdin);
    child.on('error', (cause) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new RuneError('PLUGIN_NOT_EXECUTABLE', `cannot start ${options.file}: ${cause.message}`, {
          cause,
        }),
      );
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Anything the plugin left running in its group dies with it.
      killGroup();
    });
    child.on('close', () => {
      if (exit === null) exit = { code: child.exitCode, signal: child.signalCode };
      finish();
    });
  });
}
