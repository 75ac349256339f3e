/**
 * Fan-out scheduling with blast-radius control, independent of what a "run" is.
 *
 * The scheduler decides *when* each node starts and *whether* it starts at all: bounded
 * concurrency, a canary wave that must fully succeed before the rest start, a failure budget
 * that stops new starts once exceeded (in-flight nodes finish), an overall deadline, and
 * cancellation. Every node ends in exactly one outcome, so callers can always print a complete
 * summary and write one audit record per node.
 */
import type { ErrorCode } from '@rune/protocol';
import pLimit from 'p-limit';

/** The failure budget: an absolute count or a percentage of all nodes. */
export type FailureBudget = { count: number } | { percent: number };

/** How a fan-out proceeds. */
export interface FleetPolicy {
  /** Nodes running at once (>= 1). */
  concurrency: number;
  /** Run this many nodes first; start the rest only when every canary succeeded. */
  canary?: number;
  /** Stop starting nodes once more than this many have failed. */
  maxFailures?: FailureBudget;
  /** Overall deadline in ms from the start of the fan-out; nodes not started by then are skipped. */
  deadlineMs?: number;
}

/** Why a node was not started. */
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
  /** Called as soon as each node's outcome is known (completed or skipped). */
  onOutcome?: (outcome: ScheduledOutcome<Node, Result>) => void;
}

/** Number of failures a budget allows for a fleet of `total` nodes. */
export function failureAllowance(budget: FailureBudget, total: number): number {
  return 'count' in budget ? budget.count : Math.floor((budget.percent / 100) * total);
}

/**
 * Runs `run` on every node under `policy`. `isFailure` tells the scheduler which results count
 * against the canary and the failure budget. `run` must not throw: it returns its own failure
 * results (a throw is reported to the caller by rejecting, which is a bug in the caller).
 * Outcomes are returned in node order.
 */
export async function scheduleFleet<Node, Result>(
  nodes: readonly Node[],
  policy: FleetPolicy,
  run: (node: Node, signal: AbortSignal) => Promise<Result>,
  isFailure: (result: Result) => boolean,
  options: ScheduleOptions<Node, Result> = {},
): Promise<ScheduledOutcome<Node, Result>[]> {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const controller = new AbortController();
  const forwardAbort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) forwardAbort();
  else options.signal?.addEventListener('abort', forwardAbort, { once: true });

  const outcomes: ScheduledOutcome<Node, Result>[] = new Array(nodes.length);
  const allowance =
    policy.maxFailures === undefined
      ? Number.POSITIVE_INFINITY
      : failureAllowance(policy.maxFailures, nodes.length);
  let failures = 0;
  let haltReason: SkipReason | undefined;
  const canaryCount = Math.min(Math.max(policy.canary ?? 0, 0), nodes.length);

  const record = (outcome: ScheduledOutcome<Node, Result>): void => {
    outcomes[outcome.index] = outcome;
    options.onOutcome?.(outcome);
  };

  const gate = (): SkipReason | undefined => {
    if (controller.signal.aborted) return 'RUN_CANCELLED';
    if (haltReason !== undefined) return haltReason;
    if (policy.deadlineMs !== undefined && now() - startedAt >= policy.deadlineMs)
      return 'DEADLINE_EXCEEDED';
    return undefined;
  };

  const limit = pLimit(Math.max(1, Math.floor(policy.concurrency)));
  const runWave = (indexes: readonly number[], canary: boolean): Promise<unknown> =>
    Promise.all(
      indexes.map((index) =>
        limit(async () => {
          const node = nodes[index] as Node;
          const blocked = gate();
          if (blocked !== undefined) {
            record({ node, index, status: 'skipped', reason: blocked, canary });
            return;
          }
          options.onStart?.(node, index);
          const result = await run(node, controller.signal);
          if (isFailure(result)) {
            failures++;
            if (failures > allowance && haltReason === undefined)
              haltReason = 'MAX_FAILURES_EXCEEDED';
          }
          record({ node, index, status: 'completed', result, canary });
        }),
      ),
    );

  try {
    const all = nodes.map((_, index) => index);
    if (canaryCount > 0) {
      await runWave(all.slice(0, canaryCount), true);
      const canaryFailed = outcomes
        .slice(0, canaryCount)
        .some((outcome) => outcome.status === 'skipped' || isFailure(outcome.result));
      if (canaryFailed && haltReason === undefined) haltReason = 'CANARY_FAILED';
      await runWave(all.slice(canaryCount), false);
    } else {
      await runWave(all, false);
    }
  } finally {
    options.signal?.removeEventListener('abort', forwardAbort);
  }
  return outcomes;
}
