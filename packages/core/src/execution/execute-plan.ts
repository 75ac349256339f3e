/**
 * The execution: executes an {@link ExecutionPlan} through transports and turns whatever
 * happens into one {@link NodeRunResult} per node — never a throw.
 *
 * This module is the fleet wiring: nodes are scheduled by `scheduleFleet` (bounded concurrency;
 * canary, failure budget and deadline pass through), each node runs through `runPlannedNode`
 * (run-node.ts: plugin bytes, transport checks, guarded exec, judgement, artifacts), nodes the
 * scheduler never started get a `skipped` result saying why, each result is emitted as soon as its
 * node finishes, and the summary (run-summary.ts) closes the run. Timeouts follow the one timeout
 * rule of @rune/transport (timeout-rule.ts); this step owns only its stage 4 (guarded-exec.ts).
 */
import { readFile } from 'node:fs/promises';
import { RuneError } from '@rune/protocol';
import { fleetPolicyRecord } from '../fleet/policy.js';
import {
  type FleetPolicy,
  type ScheduledOutcome,
  type SkipReason,
  scheduleFleet,
} from '../fleet/scheduler.js';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';
import { assemblePluginSource } from '../plugins/assemble-plugin.js';
import { emptyNodeResult, type NodeRunResult } from './node-result.js';
import { planPluginLoader } from './plugin-bytes.js';
import { type NodeRunContext, runPlannedNode } from './run-node.js';
import { type RunSummary, summarizeRun } from './run-summary.js';
import type { TransportRegistry } from './transport-registry.js';

export type { ArtifactRecord, NodeRunResult, NodeRunStatus } from './node-result.js';
export {
  aggregateExitCode,
  EXIT_CODE_SEVERITY,
  exitCodeForError,
  type RunSummary,
  summarizeRun,
} from './run-summary.js';

/** The result of executing a plan. */
export interface RunOutcome {
  plan: ExecutionPlan;
  nodes: NodeRunResult[];
  summary: RunSummary;
}

/** Options of {@link executePlan}. */
export interface ExecutePlanOptions {
  transports: TransportRegistry;
  /** Aborting cancels the run: running plugins are killed, unstarted nodes are skipped. */
  signal?: AbortSignal;
  /** Called when a node starts. */
  onNodeStart?: (node: PlannedNode, index: number) => void;
  /** Called as soon as each node has its final result (in completion order). */
  onNodeResult?: (result: NodeRunResult, index: number) => void | Promise<void>;
  /** Fleet policy fields passed through to `scheduleFleet` (canary, maxFailures, deadline). */
  policy?: Omit<FleetPolicy, 'concurrency'>;
  /** Wall clock in ms (injectable). */
  now?: () => number;
  /** Reads a plugin file and returns the bytes that run (injectable); default: read and assemble it. */
  readPluginFile?: (path: string) => Promise<Uint8Array>;
  /**
   * Extra time beyond the plan timeout after which the execution step gives up on a transport that
   * has not returned (it aborts the exec and reports PLUGIN_TIMEOUT). Default: stage 4 of the
   * timeout rule (`timeoutStages` in @rune/transport), 30 s.
   */
  transportGraceMs?: number;
}

const SKIP_MESSAGES: Record<SkipReason, string> = {
  RUN_CANCELLED: 'the run was cancelled before this node started',
  CANARY_FAILED: 'the canary nodes did not all succeed; this node was not started',
  MAX_FAILURES_EXCEEDED: 'the failure budget was exceeded; this node was not started',
  DEADLINE_EXCEEDED: 'the run deadline passed before this node started',
};

/** The result of a node the scheduler ran, or the `skipped` result of one it did not start. */
function outcomeToResult(
  plan: ExecutionPlan,
  outcome: ScheduledOutcome<PlannedNode, NodeRunResult>,
): NodeRunResult {
  if (outcome.status === 'completed') return outcome.result;
  const result = emptyNodeResult(outcome.node);
  const error = new RuneError(outcome.reason, SKIP_MESSAGES[outcome.reason], {
    source: { component: 'rune-core', node: outcome.node.target.name, action: plan.action },
    traceId: plan.trace_id,
  });
  result.status = 'skipped';
  result.error = error.toJSON();
  result.exit_code = error.exitCode;
  return result;
}

/** Executes a plan. Never throws for node failures; each node ends in a {@link NodeRunResult}. */
export async function executePlan(
  plan: ExecutionPlan,
  options: ExecutePlanOptions,
): Promise<RunOutcome> {
  const now = options.now ?? Date.now;
  const runStarted = now();
  const context: NodeRunContext = {
    plan,
    transports: options.transports,
    loadPlugin: planPluginLoader(
      plan.plugin,
      options.readPluginFile ??
        // Assembled as the registry did, so the planned sha256 covers its libraries too.
        (async (path: string) => assemblePluginSource(await readFile(path), path).content),
    ),
    now,
    ...(options.transportGraceMs === undefined
      ? {}
      : { transportGraceMs: options.transportGraceMs }),
  };

  const results: NodeRunResult[] = new Array(plan.nodes.length);
  const pending: Promise<void>[] = [];
  const emit = (result: NodeRunResult, index: number): void => {
    results[index] = result;
    if (options.onNodeResult !== undefined) {
      pending.push(
        (async () => {
          await options.onNodeResult?.(result, index);
        })(),
      );
    }
  };

  await scheduleFleet(
    plan.nodes,
    { ...options.policy, concurrency: plan.concurrency },
    (planned, signal) => runPlannedNode(context, planned, signal),
    (result) => result.status === 'failure',
    {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onStart: (node, index) => options.onNodeStart?.(node, index),
      onOutcome: (outcome) => emit(outcomeToResult(plan, outcome), outcome.index),
    },
  );
  const errors = await Promise.allSettled(pending);
  const rejected = errors.find((settled) => settled.status === 'rejected');
  if (rejected !== undefined && rejected.status === 'rejected')
    throw RuneError.from(rejected.reason);

  const nodes = plan.nodes.map((planned, index) => results[index] ?? emptyNodeResult(planned));
  const summary = summarizeRun(plan, nodes, Math.round(now() - runStarted));
  summary.policy = fleetPolicyRecord({ ...options.policy, concurrency: plan.concurrency });
  return { plan, nodes, summary };
}
