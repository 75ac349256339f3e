/**
 * Throttling decisions as a pure function of the alert, the rule's settings and what the store
 * says about the alert's group and the storm window — so windows are unit-tested with an
 * injected clock, and the state they read lives in the store (a restart re-reads it).
 *
 * Order of the checks (specs/alert-rules-v1.md, "Throttling"):
 * 1. `once_after`: the alert must have been firing for this long; before that it is `pending`
 *    and is decided again when due (unless it resolves first).
 * 2. `accumulate_within` + `threshold`: act only once `threshold` distinct firing alerts (or
 *    firing episodes of one alert) of the group arrived within the window since the group's last
 *    run; before that `throttled`.
 * 3. `once_within`: at most one run per group per window; inside it `throttled`.
 * 4. The storm breaker (all rules): when `max_runs` automatic runs started within `window`, the
 *    alert is `held` for a person to release (or it expires).
 */
import type { StormSettings, ThrottleSettings } from './rules.js';

/** What the store knows, at `now`, about the alert's group and the storm window. */
export interface ThrottleFacts {
  now: number;
  /** When the alert started firing (ms). */
  startsAt: number;
  /** decided_at of the group's last run (ran or released), if any. */
  lastRunAt?: number;
  /**
   * Distinct firing episodes (fingerprint + start) of the group received within
   * `accumulate_within` and after the group's last run, this alert included.
   */
  episodesInWindow: number;
  /** Automatic runs started within the storm window. */
  stormRuns: number;
}

/** The decision. */
export type ThrottleDecision =
  | { kind: 'run' }
  | { kind: 'pending'; dueAt: number; reason: string }
  | { kind: 'throttled'; reason: string }
  | { kind: 'held'; until: number; reason: string };

const seconds = (ms: number): string =>
  ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0
      ? `${ms / 60_000}m`
      : `${Math.ceil(ms / 1000)}s`;

/** Decides what becomes of a matching alert. `skipOnceAfter` when a pending alert is due. */
export function decideThrottle(
  settings: ThrottleSettings,
  storm: StormSettings,
  facts: ThrottleFacts,
  skipOnceAfter = false,
): ThrottleDecision {
  const { now } = facts;
  if (!skipOnceAfter && settings.onceAfterMs !== undefined) {
    const dueAt = facts.startsAt + settings.onceAfterMs;
    if (now < dueAt) {
      return {
        kind: 'pending',
        dueAt,
        reason: `once_after ${seconds(settings.onceAfterMs)}: waits until the alert has fired that long`,
      };
    }
  }
  if (settings.accumulateWithinMs !== undefined && settings.threshold !== undefined) {
    if (facts.episodesInWindow < settings.threshold) {
      return {
        kind: 'throttled',
        reason: `accumulate_within ${seconds(settings.accumulateWithinMs)}: ${facts.episodesInWindow} of ${settings.threshold} alerts`,
      };
    }
  }
  if (
    settings.onceWithinMs !== undefined &&
    facts.lastRunAt !== undefined &&
    now - facts.lastRunAt < settings.onceWithinMs
  ) {
    return {
      kind: 'throttled',
      reason: `once_within ${seconds(settings.onceWithinMs)}: the group ran ${seconds(now - facts.lastRunAt)} ago`,
    };
  }
  if (facts.stormRuns >= storm.maxRuns) {
    return {
      kind: 'held',
      until: now + storm.holdExpiresMs,
      reason: `storm breaker: ${facts.stormRuns} automatic runs within ${seconds(storm.windowMs)} (max_runs ${storm.maxRuns}); a person must release this alert`,
    };
  }
  return { kind: 'run' };
}
