/**
 * One bootstrap exec on one session channel, as a small state machine: stdin written and closed,
 * stdout and stderr captured (both always drained), the bootstrap's status lines split from the
 * plugin's stderr, and the run bounded in time whatever the node does.
 *
 * The states: *starting* (the bootstrap has its own bound, so a slow session start never eats the
 * plugin's time) -> *running* (from the `pgid` line; the request's timeout counts from here) ->
 * *exited* (the exit status arrived: output still flowing is drained, but a channel that stays
 * silent and open is held by something that escaped the run marker and is closed after
 * {@link EXIT_DRAIN_IDLE_MS}) -> *closed*. A timeout or an abort sends the control side's sweep
 * over a second channel ({@link sweepRemote}) and closes the channel in bounded time; the remote
 * watchdog finishes the job if even that fails. A channel that closes with no exit status that we
 * did not kill is CONNECTION_LOST, never exit 0.
 */
import { RuneError } from '@rune/protocol';
import {
  HeadCapture,
  parseSweepOutput,
  type SweepOutcome,
  TailCapture,
  type TransportExecRequest,
} from '@rune/transport';
import type { ClientChannel } from 'ssh2';
import type { SshConnection } from './connection-pool.js';
import { BootstrapStderr, buildKillCommand, MAX_COMMAND_BYTES } from './remote-command.js';

/** How long the bootstrap may take to start the plugin before the run counts as timed out. */
const BOOTSTRAP_START_TIMEOUT_MS = 60_000;
/** Least time allowed for uploading a plugin on a cache miss. */
const UPLOAD_TIMEOUT_MS = 60_000;
/** After a kill, how long to wait for the channel to close before closing it ourselves. */
const FORCE_CLOSE_MS = 5_000;
/** After a timeout or abort before the plugin started, how long to wait for its pgid. */
const FORCE_CLOSE_UNSTARTED_MS = 10_000;
/**
 * After the exit status arrived, how long the channel may stay silent before the transport closes
 * it: only a process that escaped the run marker can still hold the output open then.
 */
export const EXIT_DRAIN_IDLE_MS = 2_000;
/** How long the control side's sweep may take. */
const SWEEP_TIMEOUT_MS = 10_000;

/** What the control side's sweep over a second channel achieved. */
export interface ControlSweep {
  outcome: SweepOutcome | undefined;
  /** Why there is no outcome (the channel could not be opened, no answer, ...). */
  failure: string | undefined;
}

/** Raw outcome of one bootstrap exec. */
export interface RawRun {
  exitCode: number | null;
  signal: string | null;
  stdout: HeadCapture;
  stderr: TailCapture;
  bootstrap: BootstrapStderr;
  interrupted: 'timeout' | 'cancelled' | undefined;
  /** The channel closed without an exit status and we did not kill it. */
  lost: RuneError | undefined;
  /** The control side's sweep, when a timeout or cancel sent one (settles in bounded time). */
  sweep: Promise<ControlSweep> | undefined;
  /** The exit status arrived but the output stayed open until the transport closed it. */
  heldOpen: boolean;
}

/** What one bootstrap exec runs: `plugin` starts a plugin under `marker`, `upload` stores one. */
export interface BootstrapExec {
  connection: SshConnection;
  command: string;
  stdin: Uint8Array;
  request: TransportExecRequest;
  runAs: string | undefined;
  phase: 'plugin' | 'upload';
  marker?: string;
}

/**
 * Runs one bootstrap exec to its end: streams captured, timeout and cancellation enforced.
 * Resolves in bounded time; rejects only when the channel cannot be opened (and the request was
 * not aborted meanwhile).
 */
export async function runBootstrap(exec: BootstrapExec): Promise<RawRun> {
  const { connection, command, stdin, request, runAs, phase, marker } = exec;
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) {
    throw new RuneError('PAYLOAD_TOO_LARGE', 'the remote command line is too long');
  }
  const stdout = new HeadCapture(request.limits.maxStdoutBytes);
  const stderr = new TailCapture(request.limits.maxStderrBytes);
  const bootstrap = new BootstrapStderr((chunk) => stderr.push(chunk));
  const raw: RawRun = {
    exitCode: null,
    signal: null,
    stdout,
    stderr,
    bootstrap,
    interrupted: undefined,
    lost: undefined,
    sweep: undefined,
    heldOpen: false,
  };
  let channel: ClientChannel;
  let exitArrived = false;
  let exitListener: (() => void) | undefined;
  try {
    // The exit status is recorded from the moment the channel exists (see SshConnection.exec):
    // it can come in the same read as the exec reply, before the listeners below are attached.
    channel = await connection.exec(command, request.signal, (opened) => {
      opened.on('exit', (code: number | null, signal?: string) => {
        if (exitArrived) return;
        exitArrived = true;
        if (typeof code === 'number') raw.exitCode = code;
        else if (typeof signal === 'string')
          raw.signal = signal.startsWith('SIG') ? signal : `SIG${signal}`;
        exitListener?.();
      });
    });
  } catch (error) {
    if (request.signal.aborted) {
      raw.interrupted = 'cancelled';
      return raw;
    }
    throw error;
  }
  return new Promise<RawRun>((resolve) => {
    let sawExit = false;
    let finished = false;
    let forceTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(forceTimer);
      clearTimeout(drainTimer);
      request.signal.removeEventListener('abort', onAbort);
      removeCloseListener();
      bootstrap.flush();
      if (!sawExit && raw.interrupted === undefined) {
        raw.lost = new RuneError(
          'CONNECTION_LOST',
          `the connection to ${connection.description} was lost while the plugin was running; its outcome is unknown`,
          {
            details: {
              connection: connection.description,
              stdout_bytes: stdout.totalBytes,
              stderr_bytes: stderr.totalBytes,
              started: bootstrap.pgid !== undefined,
            },
          },
        );
      }
      resolve(raw);
    };
    // Closes the channel ourselves, and resolves even if the close is never confirmed.
    const forceClose = (): void => {
      channel.close();
      setTimeout(finish, 500);
    };
    const kill = (): void => {
      if (raw.sweep !== undefined || finished || marker === undefined) return;
      if (bootstrap.pgid === undefined) return; // retried when the plugin has started
      raw.sweep = sweepRemote(connection, marker, runAs);
    };
    const interrupt = (reason: 'timeout' | 'cancelled'): void => {
      if (finished || raw.interrupted !== undefined) return;
      raw.interrupted = reason;
      kill();
      // Resolve in bounded time whatever happens remotely (the watchdog finishes the job):
      // give a bootstrap that has not announced itself time to do so, then close.
      forceTimer = setTimeout(
        forceClose,
        bootstrap.pgid === undefined && phase === 'plugin'
          ? FORCE_CLOSE_UNSTARTED_MS
          : FORCE_CLOSE_MS,
      );
    };
    const onAbort = (): void => interrupt('cancelled');
    // After the exit status, the run is over: output that is still flowing is drained, but a
    // channel that stays silent and open is held by something that escaped the marker.
    const armDrain = (): void => {
      if (!sawExit || finished || raw.interrupted !== undefined) return;
      clearTimeout(drainTimer);
      drainTimer = setTimeout(() => {
        raw.heldOpen = true;
        forceClose();
      }, EXIT_DRAIN_IDLE_MS);
    };
    const onExit = (): void => {
      sawExit = true;
      // The plugin has ended: a later timer must not turn its result into a timeout.
      clearTimeout(timer);
      armDrain();
    };
    // The plugin's timeout starts when it starts (the pgid line); until then the bootstrap
    // (and an upload) get their own bound, so a slow session start never eats the plugin's time.
    let timer = setTimeout(
      () => interrupt('timeout'),
      phase === 'upload'
        ? Math.max(UPLOAD_TIMEOUT_MS, request.timeoutMs)
        : BOOTSTRAP_START_TIMEOUT_MS,
    );
    request.signal.addEventListener('abort', onAbort, { once: true });
    const removeCloseListener = connection.onClose(() => setImmediate(finish));

    channel.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      armDrain();
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      armDrain();
      const hadPgid = bootstrap.pgid !== undefined;
      bootstrap.push(chunk);
      if (hadPgid || bootstrap.pgid === undefined) return;
      if (raw.interrupted !== undefined) {
        kill();
      } else if (!sawExit) {
        clearTimeout(timer);
        timer = setTimeout(() => interrupt('timeout'), request.timeoutMs);
      }
    });
    channel.on('error', () => undefined);
    // ssh2 emits 'exit' while it parses a read. When the exit status arrives in the same read
    // as the reply to the exec request (a fast command, a busy event loop), it fires before this
    // function resumes after the `await`: the recorder attached in the exec callback kept it, and
    // it is acted on here. Relying on 'close' to repeat it is not enough: a process that escaped
    // the run marker can hold the channel open, and the run would wait for its timeout.
    exitListener = onExit;
    if (exitArrived) onExit();
    // 'close' comes only after the streams ended and repeats the status (ssh2 passes the exit
    // code, or null and the signal name). With no exit status at all, ssh2 passes undefined.
    channel.on('close', (code?: number | null, signal?: string) => {
      if (!sawExit && typeof code === 'number') {
        sawExit = true;
        raw.exitCode = code;
      } else if (!sawExit && code === null && typeof signal === 'string') {
        sawExit = true;
        raw.signal = signal.startsWith('SIG') ? signal : `SIG${signal}`;
      }
      finish();
    });
    channel.end(Buffer.from(stdin.buffer, stdin.byteOffset, stdin.byteLength));
    if (request.signal.aborted) onAbort();
  });
}

/**
 * Sweeps run `marker` on the node from a second channel (outside the session limit, as the
 * run-as user) and reads the sweep's `<killed> <complete>` line. Settles in bounded time and never
 * rejects: a failure is reported in `failure`.
 */
export function sweepRemote(
  connection: SshConnection,
  marker: string,
  runAs: string | undefined,
): Promise<ControlSweep> {
  return new Promise<ControlSweep>((resolve) => {
    let settled = false;
    const settle = (result: ControlSweep): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(
      () => settle({ outcome: undefined, failure: `no answer within ${SWEEP_TIMEOUT_MS} ms` }),
      SWEEP_TIMEOUT_MS,
    );
    let output = '';
    connection
      .execUnlimited(buildKillCommand(marker, runAs))
      .then((sweeper) => {
        sweeper.on('data', (chunk: Buffer) => {
          if (output.length < 4096) output += chunk.toString('latin1');
        });
        sweeper.stderr.on('data', () => undefined);
        sweeper.on('error', () => undefined);
        sweeper.on('close', () => {
          const outcome = parseSweepOutput(output);
          settle(
            outcome === undefined
              ? { outcome: undefined, failure: `unexpected sweep output ${JSON.stringify(output)}` }
              : { outcome, failure: undefined },
          );
        });
        sweeper.end();
      })
      .catch((error: unknown) =>
        settle({
          outcome: undefined,
          failure: `the kill channel could not be opened: ${error instanceof Error ? error.message : String(error)}`,
        }),
      );
  });
}
