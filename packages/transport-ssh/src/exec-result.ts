/**
 * What one bootstrap run means in the contract's terms: the termination (exit, signal, timeout,
 * cancelled) and the containment report, from the channel's exit status and the bootstrap's
 * trailer — which is believed only when it is the last thing on stderr and names the status the
 * channel ended with, so a plugin cannot forge its own result.
 */
import type { ContainmentReport, TransportExecResult } from '@rune/transport';
import type { ControlSweep, RawRun } from './exec-session.js';
import { type BootstrapTrailer, signalOfShellStatus } from './remote-command.js';

/** The containment of a run that never started a plugin. */
export const NOTHING_RAN: ContainmentReport = { method: 'run-marker', killed: 0, complete: true };

/**
 * The bootstrap's trailer when it can be believed: it is the last thing on stderr (a plugin's
 * forgery before it is passed through as text) and it names the status the bootstrap exited with.
 */
export function trustedTrailer(raw: RawRun): BootstrapTrailer | undefined {
  const trailer = raw.bootstrap.trailer;
  if (trailer === undefined || raw.signal !== null || raw.exitCode !== trailer.status)
    return undefined;
  return trailer;
}

/** What the run left behind and whether all of it was found and killed. */
export function containmentOf(raw: RawRun, sweep: ControlSweep | undefined): ContainmentReport {
  if (raw.bootstrap.pgid === undefined) {
    // Stopped before the plugin started: if the bootstrap still starts it, the watchdog sweeps.
    return raw.interrupted === undefined
      ? NOTHING_RAN
      : {
          method: 'run-marker',
          killed: 0,
          complete: false,
          detail:
            'the run was stopped before the bootstrap started the plugin; the remote watchdog sweeps it if it starts later',
        };
  }
  // Either sweep, complete, leaves nothing marked alive: the control side's stops and kills
  // everything at timeout/cancel, the bootstrap's runs once the plugin has ended.
  const trailer = trustedTrailer(raw);
  const killed = (sweep?.outcome?.killed ?? 0) + (trailer?.killed ?? 0);
  const swept = sweep?.outcome?.complete === true || trailer?.complete === true;
  if (swept && !raw.heldOpen) return { method: 'run-marker', killed, complete: true };
  const details: string[] = [];
  if (raw.heldOpen) {
    details.push(
      'the output stayed open after the plugin ended: a process without the run marker holds it',
    );
  }
  if (sweep !== undefined && sweep.outcome === undefined) {
    details.push(`the control-side sweep failed: ${sweep.failure ?? 'unknown'}`);
  }
  if (sweep?.outcome?.complete === false || trailer?.complete === false) {
    details.push('the node has no readable /proc: processes the plugin started cannot be found');
  }
  if (trailer === undefined && !swept) details.push('the bootstrap did not report its final sweep');
  return { method: 'run-marker', killed, complete: false, detail: details.join('; ') };
}

/** Everything in a result but how it ended. */
export type ResultBase = Omit<TransportExecResult, 'termination' | 'exitCode' | 'signal'>;

/**
 * The result of a run that started the plugin (or was interrupted before it could), given its
 * captured output, timings and metadata in `base`.
 */
export function execResultOf(raw: RawRun, base: ResultBase): TransportExecResult {
  if (raw.interrupted !== undefined) {
    return { termination: raw.interrupted, exitCode: null, signal: null, ...base };
  }
  const trailer = trustedTrailer(raw);
  if (trailer !== undefined) {
    // The bootstrap ran the plugin in the foreground: sh reports its death by signal n as
    // 128+n, which is read back as the signal (what `exec` used to give sshd directly).
    const signal = signalOfShellStatus(trailer.status);
    if (signal !== undefined) return { termination: 'signal', exitCode: null, signal, ...base };
    return { termination: 'exit', exitCode: trailer.status, signal: null, ...base };
  }
  if (raw.signal !== null) {
    return { termination: 'signal', exitCode: null, signal: raw.signal, ...base };
  }
  return { termination: 'exit', exitCode: raw.exitCode, signal: null, ...base };
}
