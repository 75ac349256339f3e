/**
 * The final summary table of a fleet run (pretty output): counts by status, the slowest nodes,
 * and errors grouped by EPS code — the three questions an operator asks after a fan-out
 * ("did it work?", "what was slow?", "what broke, and where?"). A pure function over the
 * execution step's node results, so it renders the same for a finished, halted or cancelled run.
 */
import type { FleetPolicyRecord, NodeRunResult, RunSummary } from '@rune/core';
import type { EpsError } from '@rune/protocol';
import pc from 'picocolors';
import { terminalSafe } from './terminal-text.js';

/** The part of a node result the summary reads (tests may build just these fields). */
export type SummaryNodeResult = Pick<NodeRunResult, 'node' | 'status' | 'duration_ms'> & {
  error: Pick<EpsError, 'code' | 'message'> | null;
};

/** The part of a run summary it reads. */
export type SummaryTotals = Omit<RunSummary, 'policy'>;

/** The fleet policy as recorded (see `fleetPolicyRecord` in @rune/core). */
export type SummaryPolicy = Partial<FleetPolicyRecord>;

/** Options of {@link renderFleetSummary}. */
export interface FleetSummaryOptions {
  color: boolean;
  /** How many of the slowest nodes to list. Default 5. */
  slowest?: number;
  /** How many node names to list per error code before "+N more". Default 8. */
  namesPerError?: number;
  policy?: SummaryPolicy;
  /** Set when the operator interrupted the run (Ctrl-C). */
  interrupted?: boolean;
}

/** An error code with the nodes that hit it. */
export interface ErrorGroup {
  code: string;
  nodes: string[];
  /** The message of the first node with this code (messages usually differ only by node). */
  example: string;
}

/** Groups failed and skipped nodes by EPS code, most frequent first (ties by code). */
export function groupErrorsByCode(results: readonly SummaryNodeResult[]): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>();
  for (const result of results) {
    if (result.error === null) continue;
    const group = groups.get(result.error.code);
    if (group === undefined)
      groups.set(result.error.code, {
        code: result.error.code,
        nodes: [result.node],
        example: result.error.message,
      });
    else group.nodes.push(result.node);
  }
  return [...groups.values()].sort(
    (a, b) => b.nodes.length - a.nodes.length || a.code.localeCompare(b.code),
  );
}

/** The `count` slowest nodes that ran (skipped nodes excluded), slowest first. */
export function slowestNodes(
  results: readonly SummaryNodeResult[],
  count: number,
): SummaryNodeResult[] {
  return results
    .filter((result) => result.status !== 'skipped')
    .map((result, order) => ({ result, order }))
    .sort((a, b) => b.result.duration_ms - a.result.duration_ms || a.order - b.order)
    .slice(0, count)
    .map((entry) => entry.result);
}

/** Milliseconds as `850ms`, `2.41s` or `3m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

function describePolicy(policy: SummaryPolicy | undefined): string | undefined {
  if (policy === undefined) return undefined;
  const parts: string[] = [];
  if (policy.concurrency !== undefined) parts.push(`concurrency ${policy.concurrency}`);
  if (policy.canary !== undefined && policy.canary !== null && policy.canary > 0)
    parts.push(`canary ${policy.canary}`);
  if (policy.max_failures !== undefined && policy.max_failures !== null)
    parts.push(`max failures ${policy.max_failures}`);
  if (policy.deadline_ms !== undefined && policy.deadline_ms !== null)
    parts.push(`deadline ${formatDuration(policy.deadline_ms)}`);
  return parts.length === 0 ? undefined : parts.join(', ');
}

/** Renders the summary block (ends with a newline). */
export function renderFleetSummary(
  results: readonly SummaryNodeResult[],
  totals: SummaryTotals,
  options: FleetSummaryOptions,
): string {
  const c = pc.createColors(options.color);
  const lines: string[] = [];
  const nodesWord = totals.total === 1 ? 'node' : 'nodes';
  const heading = `${terminalSafe(totals.action)} on ${totals.total} ${nodesWord} in ${formatDuration(totals.duration_ms)}`;
  lines.push(
    `${c.bold('Summary')}  ${heading}${options.interrupted === true ? c.yellow('  (interrupted)') : ''}`,
  );
  const count = (label: string, value: number, paint: (text: string) => string): string =>
    value > 0 ? paint(`${label} ${value}`) : `${label} ${value}`;
  const counts = [
    count('succeeded', totals.succeeded, c.green),
    ...(totals.partial > 0 ? [count('partial', totals.partial, c.yellow)] : []),
    count('failed', totals.failed, c.red),
    count('skipped', totals.skipped, c.yellow),
  ];
  lines.push(`  ${counts.join('   ')}`);
  const policy = describePolicy(options.policy);
  if (policy !== undefined) lines.push(c.dim(`  policy: ${policy}`));

  const slowest = slowestNodes(results, options.slowest ?? 5);
  if (results.length > 1 && slowest.length > 0) {
    lines.push('', c.bold('Slowest nodes'));
    const names = slowest.map((result) => terminalSafe(result.node));
    const width = Math.max(...names.map((name) => name.length));
    for (const [index, result] of slowest.entries()) {
      const status = result.status === 'failure' ? c.red(result.status) : result.status;
      lines.push(
        `  ${names[index]?.padEnd(width)}  ${formatDuration(result.duration_ms).padStart(7)}  ${status}`,
      );
    }
  }

  const groups = groupErrorsByCode(results);
  if (groups.length > 0) {
    lines.push('', c.bold('Errors by code'));
    const limit = options.namesPerError ?? 8;
    for (const group of groups) {
      const shown = group.nodes
        .slice(0, limit)
        .map((node) => terminalSafe(node))
        .join(', ');
      const more = group.nodes.length > limit ? ` +${group.nodes.length - limit} more` : '';
      lines.push(`  ${c.red(terminalSafe(group.code))} (${group.nodes.length})  ${shown}${more}`);
      lines.push(c.dim(`    e.g. ${terminalSafe(group.example)}`));
    }
  }
  lines.push('', c.dim(`trace ${terminalSafe(totals.trace_id)}  exit ${totals.exit_code}`));
  return `${lines.join('\n')}\n`;
}
