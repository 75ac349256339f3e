/**
 * The totals of a run: {@link RunSummary}, the aggregate exit code (the most severe failure wins)
 * and the exit code of a single EPS error.
 */
import { type EpsError, exitCodeFor, isErrorCode } from '@rune/protocol';
import type { FleetPolicyRecord } from '../fleet/policy.js';
import type { ExecutionPlan } from '../planning/plan-run.js';
import type { NodeRunResult, NodeRunStatus } from './node-result.js';

/** Totals of a run. */
export interface RunSummary {
  trace_id: string;
  action: string;
  total: number;
  succeeded: number;
  partial: number;
  failed: number;
  skipped: number;
  duration_ms: number;
  /** Aggregate CLI exit code; see {@link aggregateExitCode}. */
  exit_code: number;
  /** The fleet policy the run used (concurrency, canary, max_failures, deadline_ms). */
  policy?: FleetPolicyRecord;
}

/**
 * Severity of CLI exit codes, most severe first: a bug in RUNE (70), a cancelled run (130), a
 * broken plugin protocol (6), a timeout (5), a policy refusal (4), an unreachable node (3), bad
 * input (2), a plugin that reported failure (1).
 */
export const EXIT_CODE_SEVERITY: readonly number[] = [70, 130, 6, 5, 4, 3, 2, 1];

/** The exit code of a set of nodes: 0 when all succeeded, else the most severe failure's code. */
export function aggregateExitCode(results: readonly Pick<NodeRunResult, 'exit_code'>[]): number {
  let worst = 0;
  let worstRank = Number.POSITIVE_INFINITY;
  for (const { exit_code: code } of results) {
    if (code === 0) continue;
    const rank = EXIT_CODE_SEVERITY.indexOf(code);
    const effective = rank === -1 ? EXIT_CODE_SEVERITY.length : rank;
    if (effective < worstRank) {
      worstRank = effective;
      worst = code;
    }
  }
  return worst;
}

/** The CLI exit code of an EPS error (1 for codes outside the catalog, e.g. a plugin's own). */
export function exitCodeForError(error: Pick<EpsError, 'code'>): number {
  return isErrorCode(error.code) ? exitCodeFor(error.code) : 1;
}

/** Summarizes node results. */
export function summarizeRun(
  plan: Pick<ExecutionPlan, 'trace_id' | 'action'>,
  nodes: readonly NodeRunResult[],
  durationMs: number,
): RunSummary {
  const count = (status: NodeRunStatus) => nodes.filter((node) => node.status === status).length;
  return {
    trace_id: plan.trace_id,
    action: plan.action,
    total: nodes.length,
    succeeded: count('success'),
    partial: count('partial'),
    failed: count('failure'),
    skipped: count('skipped'),
    duration_ms: durationMs,
    exit_code: aggregateExitCode(nodes),
  };
}
