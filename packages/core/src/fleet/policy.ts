/**
 * Fleet policy values as operators write them (`--max-failures 3`, `--max-failures 10%`,
 * `--canary 2`, `--concurrency 50`, `--deadline 5m`) and as results and audit records store them.
 * Parsing lives here, next to the scheduler, so the CLI and the API accept the same spellings.
 */
import { RuneError } from '@rune/protocol';

/** The failure budget: an absolute count or a percentage of all nodes. */
export type FailureBudget = { count: number } | { percent: number };

/** How a fan-out proceeds. */
export interface FleetPolicy {
  /** Nodes running at once (a positive integer). */
  concurrency: number;
  /** Run this many nodes first; start the rest only when every canary succeeded. */
  canary?: number;
  /** Stop starting nodes once more than this many have failed. */
  maxFailures?: FailureBudget;
  /**
   * Overall deadline in ms from the start of the fan-out: nodes not started by then are
   * skipped, nodes still running are cancelled.
   */
  deadlineMs?: number;
}

/** Default number of nodes running at once (config `[execution] concurrency`). */
export const DEFAULT_CONCURRENCY = 50;

/**
 * Most nodes running at once. Each running node holds sockets and buffers on the control node;
 * beyond this a typo (`--concurrency 1e21`) would only exhaust file descriptors.
 */
export const MAX_CONCURRENCY = 10_000;

/** Largest canary wave and failure count: far above any fleet, far below float trouble. */
export const MAX_POLICY_COUNT = 1_000_000;

/**
 * Longest overall deadline: 7 days. Node timers overflow above 2^31-1 ms (24.8 days) and then
 * fire at once, which would turn a typo into an immediate cancellation.
 */
export const MAX_DEADLINE_MS = 7 * 24 * 3_600_000;

/**
 * Parses a policy count as the operator typed it: decimal digits only (no sign, fraction,
 * exponent or `0x`), within `[min, max]`. Throws INVALID_ARGUMENT naming `flag` otherwise.
 */
export function parsePolicyInteger(text: string, flag: string, min: number, max: number): number {
  const trimmed = text.trim();
  const value = /^[0-9]{1,16}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(
      `${flag} must be a whole number from ${min} to ${max}, not "${text.slice(0, 40)}"`,
      {
        flag,
        value: text.slice(0, 100),
        minimum: min,
        maximum: max,
      },
    );
  }
  return value;
}

function invalid(message: string, details: Record<string, unknown>): RuneError {
  return new RuneError('INVALID_ARGUMENT', message, {
    details,
    source: { component: 'rune-core' },
  });
}

/** Parses `N` or `P%` (e.g. `3`, `10%`, `2.5%`). Throws INVALID_ARGUMENT otherwise. */
export function parseFailureBudget(text: string): FailureBudget {
  const trimmed = text.trim();
  const percent = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(trimmed);
  if (percent !== null) {
    const value = Number(percent[1]);
    if (value <= 100) return { percent: value };
  } else if (/^[0-9]{1,16}$/.test(trimmed) && Number(trimmed) <= MAX_POLICY_COUNT) {
    return { count: Number(trimmed) };
  }
  throw invalid(
    `--max-failures must be a count (e.g. 3) or a percentage 0-100% (e.g. 10%), not "${text}"`,
    { value: text },
  );
}

/** The budget as written: `3` or `10%`. */
export function formatFailureBudget(budget: FailureBudget): string {
  return 'count' in budget ? String(budget.count) : `${budget.percent}%`;
}

/** Number of failures a budget allows for a fleet of `total` nodes (the run halts at one more). */
export function failureAllowance(budget: FailureBudget, total: number): number {
  return 'count' in budget ? budget.count : Math.floor((budget.percent / 100) * total);
}

/** Throws INVALID_ARGUMENT when a policy value is out of range. */
export function validateFleetPolicy(policy: FleetPolicy): void {
  const { concurrency, canary, maxFailures, deadlineMs } = policy;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY)
    throw invalid(
      `concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, not ${concurrency}`,
      {
        concurrency,
      },
    );
  if (
    canary !== undefined &&
    (!Number.isInteger(canary) || canary < 0 || canary > MAX_POLICY_COUNT)
  )
    throw invalid(`canary must be an integer from 0 to ${MAX_POLICY_COUNT}, not ${canary}`, {
      canary,
    });
  if (maxFailures !== undefined) {
    const value = 'count' in maxFailures ? maxFailures.count : maxFailures.percent;
    const ok =
      'count' in maxFailures
        ? Number.isInteger(value) && value >= 0 && value <= MAX_POLICY_COUNT
        : Number.isFinite(value) && value >= 0 && value <= 100;
    if (!ok)
      throw invalid(`max failures must be a count >= 0 or a percentage 0-100, not ${value}`, {
        maxFailures,
      });
  }
  if (
    deadlineMs !== undefined &&
    (!Number.isFinite(deadlineMs) || deadlineMs < 0 || deadlineMs > MAX_DEADLINE_MS)
  )
    throw invalid(`deadline must be from 0 to ${MAX_DEADLINE_MS} ms (7 days), not ${deadlineMs}`, {
      deadlineMs,
    });
}

/** The policy in results and audit records (snake_case, budget as written). */
export interface FleetPolicyRecord {
  concurrency: number;
  canary: number | null;
  max_failures: string | null;
  deadline_ms: number | null;
}

/** The policy as recorded in results and audit records. */
export function fleetPolicyRecord(policy: FleetPolicy): FleetPolicyRecord {
  return {
    concurrency: policy.concurrency,
    canary: policy.canary ?? null,
    max_failures: policy.maxFailures === undefined ? null : formatFailureBudget(policy.maxFailures),
    deadline_ms: policy.deadlineMs ?? null,
  };
}
