/**
 * Fan-out scheduling with blast-radius control, independent of what a "run" is.
 *
 * The scheduler decides *when* each node starts and *whether* it starts at all: bounded
 * concurrency, a canary wave that must fully succeed before the rest start, a failure budget
 * that stops new starts once exceeded (in-flight nodes finish), an overall deadline (nodes not
 * started are skipped, running ones are cancelled), and cancellation. Every node ends in exactly
 * one outcome, so callers can always print a complete summary and write one audit record per node.
 *
 * It is a small worker pool over one cursor rather than a generic limiter: when the run halts,
 * every node not yet started is skipped *at once* (and reported through `onOutcome`), instead of
 * trickling out as slots free up — a progress display and the audit trail see the halt immediately.
 */
import { setMaxListeners } from 'node:events';
import { type ErrorCode, RuneError } from '@rune/protocol';
import {
  type FailureBudget,
  type FleetPolicy,
  failureAllowance,
  validateFleetPolicy,
} from './policy.js';

export type { FailureBudget, FleetPolicy };
export { failureAllowance };

/** Why a node was not started (or, for the abort reason, why a running node was cancelled). */
export type SkipReason = Extract<
  ErrorCode,
  'CANARY_FAILED' | 'MAX_FAILURES_EXCEEDED' | 'DEADLINE_EXCEEDED' | 'RUN_CANCELLED'
>;

/** The outcome of one node: it ran (with the caller's result) or it was skipped, and why. */
export type ScheduledOutcome<Node, Result> =
  | { node: Node; index: number; status: 'completed'; result: Result; canary: boolean }
  | { node: Node; index: number; status: 'skipped'; reason: SkipReason; canary: boolean };

/** Hooks and inputs of {@link scheduleFleet}. */
export interface ScheduleOptions<Node, Result> {
  /** Aborting stops new starts; the signal passed to `run` aborts too, so in-flight runs cancel. */
  signal?: AbortSignal;
  /** Clock, injectable for tests. */
  now?: () => number;
  /** Called when a node starts. */
  onStart?: (node: Node, index: number) => void;
  /** Called as soon as each node's outcome is known (completed or skipped), in that order. */
  onOutcome?: (outcome: ScheduledOutcome<Node, Result>) => void;
}

/**
 * Why the signal handed to `run` was aborted: DEADLINE_EXCEEDED when the overall deadline
 * passed, RUN_CANCELLED otherwise (or undefined when it was not aborted). The execution step uses it
 * to report a cancelled node with the right EPS code.
 */
export function abortReasonCode(signal: AbortSignal): SkipReason | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  return RuneError.is(reason) && reason.code === 'DEADLINE_EXCEEDED'
    ? 'DEADLINE_EXCEEDED'
    : 'RUN_CANCELLED';
}

/**
 * Runs `run` on every node under `policy`. `isFailure` tells the scheduler which results count
 * against the canary and the failure budget. `run` must not throw: it returns its own failure
 * results. (A throw is a bug in the caller: no further node starts, in-flight ones finish, and
 * the promise rejects with that error.) Outcomes are returned in node order.
 *
 * Throws INVALID_ARGUMENT for a policy out of range (concurrency < 1, negative canary, ...).
 */
export async function scheduleFleet<Node, Result>(
  nodes: readonly Node[],
  policy: FleetPolicy,
  run: (node: Node, signal: AbortSignal) => Promise<Result>,
  isFailure: (result: Result) => boolean,
  options: ScheduleOptions<Node, Result> = {},
): Promise<ScheduledOutcome<Node, Result>[]> {
  validateFleetPolicy(policy);
  const now = options.now ?? Date.now;
  const startedAt = now();
  const total = nodes.length;
  const canaryCount = Math.min(policy.canary ?? 0, total);
  const allowance =
    policy.maxFailures === undefined
      ? Number.POSITIVE_INFINITY
      : failureAllowance(policy.maxFailures, total);

  const outcomes: ScheduledOutcome<Node, Result>[] = new Array(total);
  const controller = new AbortController();
  // Every running node listens on this one signal: hundreds of listeners are expected, not a leak.
  setMaxListeners(0, controller.signal);
  let cursor = 0;
  let failures = 0;
  let canaryFailed = false;
  let haltReason: SkipReason | undefined;
  let callerError: { error: unknown } | undefined;

  const record = (outcome: ScheduledOutcome<Node, Result>): void => {
    outcomes[outcome.index] = outcome;
    options.onOutcome?.(outcome);
  };

  /** Stops new starts and skips every node not started yet, right away. */
  const halt = (reason: SkipReason): void => {
    if (haltReason === undefined) haltReason = reason;
    while (cursor < total) {
      const index = cursor++;
      record({
        node: nodes[index] as Node,
        index,
        status: 'skipped',
        reason: haltReason,
        canary: index < canaryCount,
      });
    }
  };

  const cancel = (code: 'RUN_CANCELLED' | 'DEADLINE_EXCEEDED', cause?: unknown): void => {
    halt(code);
    if (!controller.signal.aborted) {
      const message =
        code === 'DEADLINE_EXCEEDED'
          ? `the overall deadline of ${policy.deadlineMs} ms passed`
          : 'the run was cancelled';
      controller.abort(new RuneError(code, message, { cause, source: { component: 'rune-core' } }));
    }
  };

  const onExternalAbort = (): void => cancel('RUN_CANCELLED', options.signal?.reason);
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  const deadlinePassed = (): boolean =>
    policy.deadlineMs !== undefined && now() - startedAt >= policy.deadlineMs;

  const worker = async (waveEnd: number): Promise<void> => {
    while (cursor < waveEnd) {
      if (haltReason !== undefined) return;
      if (deadlinePassed()) {
        cancel('DEADLINE_EXCEEDED');
        return;
      }
      const index = cursor++;
      const node = nodes[index] as Node;
      const canary = index < canaryCount;
      options.onStart?.(node, index);
      let result: Result;
      try {
        result = await run(node, controller.signal);
      } catch (error) {
        callerError ??= { error };
        halt('RUN_CANCELLED');
        return;
      }
      if (isFailure(result)) {
        failures++;
        if (canary) canaryFailed = true;
      }
      record({ node, index, status: 'completed', result, canary });
      if (canary && canaryFailed) halt('CANARY_FAILED');
      else if (failures > allowance) halt('MAX_FAILURES_EXCEEDED');
    }
  };

  const runWave = async (waveEnd: number): Promise<void> => {
    const workers = Math.min(policy.concurrency, waveEnd - cursor);
    await Promise.all(Array.from({ length: Math.max(workers, 0) }, () => worker(waveEnd)));
  };

  try {
    if (options.signal?.aborted) onExternalAbort();
    else options.signal?.addEventListener('abort', onExternalAbort, { once: true });
    if (policy.deadlineMs !== undefined && haltReason === undefined) {
      deadlineTimer = setTimeout(() => cancel('DEADLINE_EXCEEDED'), policy.deadlineMs);
      deadlineTimer.unref?.();
    }
    if (canaryCount > 0) {
      await runWave(canaryCount);
      if (canaryFailed) halt('CANARY_FAILED');
    }
    await runWave(total);
  } finally {
    options.signal?.removeEventListener('abort', onExternalAbort);
    if (deadlineTimer !== undefined) clearTimeout(deadlineTimer);
  }
  if (callerError !== undefined) throw callerError.error;
  return outcomes;
}
