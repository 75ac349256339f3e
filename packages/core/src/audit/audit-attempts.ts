/**
 * Attempts without an outcome: an `intent` record says a run was about to start on some nodes;
 * each node that ended has a `run` record with the same `run_id`. A node listed in an intent
 * without such a record was attempted — the plugin may well have run — and its outcome was never
 * recorded: the run is still going, `rune` was killed, or the outcome could not be written.
 */
import type { AuditRecord } from './audit-log.js';

/** The status `rune audit` shows for an attempt without an outcome record. */
export const NO_OUTCOME_STATUS = 'no-outcome';

/** One intent whose nodes did not all get an outcome record. */
export interface RunWithoutOutcome {
  run_id: string;
  trace_id: string;
  action: string;
  operator: string;
  timestamp: string;
  /** seq of the intent record. */
  seq: number | null;
  status: typeof NO_OUTCOME_STATUS;
  /** Listed nodes with no outcome record. */
  nodes: string[];
  /** Nodes of the intent in all (may exceed the listed ones). */
  nodes_total: number;
  /** Outcome records found for this run. */
  outcomes: number;
}

/** Finds the intents of `records` (a whole log, in order) that lack outcome records. */
export function findRunsWithoutOutcome(records: readonly AuditRecord[]): RunWithoutOutcome[] {
  const outcomes = new Map<string, Set<string>>();
  for (const record of records) {
    if (record.event !== 'run' || record.run_id === undefined || record.node === null) continue;
    let nodes = outcomes.get(record.run_id);
    if (nodes === undefined) {
      nodes = new Set();
      outcomes.set(record.run_id, nodes);
    }
    nodes.add(record.node);
  }
  const missing: RunWithoutOutcome[] = [];
  for (const record of records) {
    if (record.event !== 'intent' || record.run_id === undefined) continue;
    const done = outcomes.get(record.run_id) ?? new Set<string>();
    const listed = record.nodes ?? [];
    const total = record.nodes_total ?? listed.length;
    const without = listed.filter((node) => !done.has(node));
    // Nodes beyond the listed ones are judged by count.
    if (without.length === 0 && done.size >= total) continue;
    missing.push({
      run_id: record.run_id,
      trace_id: record.trace_id,
      action: record.action,
      operator: record.operator,
      timestamp: record.timestamp,
      seq: record.seq ?? null,
      status: NO_OUTCOME_STATUS,
      nodes: without,
      nodes_total: total,
      outcomes: done.size,
    });
  }
  return missing;
}
