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
  } else if (/^[0-9]+$/.test(trimmed)) {
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
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw invalid(`concurrency must be a positive integer, not ${concurrency}`, { concurrency });
  if (canary !== undefined && (!Number.isInteger(canary) || canary < 0))
    throw invalid(`canary must be a non-negative integer, not ${canary}`, { canary });
  if (maxFailures !== undefined) {
    const value = 'count' in maxFailures ? maxFailures.count : maxFailures.percent;
    const ok =
      'count' in maxFailures
        ? Number.isInteger(value) && value >= 0
        : Number.isFinite(value) && value >= 0 && value <= 100;
    if (!ok)
      throw invalid(`max failures must be a count >= 0 or a percentage 0-100, not ${value}`, {
        maxFailures,
      });
  }
  if (deadlineMs !== undefined && (!Number.isFinite(deadlineMs) || deadlineMs < 0))
    throw invalid(`deadline must be a non-negative number of ms, not ${deadlineMs}`, {
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

/**
 * Parses a duration: plain milliseconds (`1500`) or a number with a unit (`500ms`, `30s`, `5m`,
 * `1h`). Throws INVALID_ARGUMENT otherwise. `label` names the option in the message.
 */
export function parseDuration(text: string, label = 'duration'): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (match !== null) {
    const value = Number(match[1]) * (units[match[2] ?? 'ms'] ?? 1);
    if (Number.isFinite(value) && value > 0) return Math.round(value);
  }
  throw invalid(`${label} must be a duration such as 1500, 500ms, 30s, 5m or 1h, not "${text}"`, {
    value: text,
  });
}
