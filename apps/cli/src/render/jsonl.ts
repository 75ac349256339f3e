/**
 * The streaming machine output of `rune run --output jsonl`: one line `{"type":"node",...}` per
 * node as soon as it finishes, then one final line `{"type":"summary",...}` that has the shape
 * of the JSON document minus `nodes`. A refused run prints only the summary line, with `error`.
 */
import type { NodeRunResult } from '@rune/core';
import type { RunResultDocument } from './json.js';

/** One node line. */
export function formatNodeLine(result: NodeRunResult, traceId: string): string {
  return `${JSON.stringify({ type: 'node', trace_id: traceId, ...result })}\n`;
}

/** The final summary line. */
export function formatSummaryLine(document: RunResultDocument): string {
  const { nodes: _nodes, ...rest } = document;
  return `${JSON.stringify({ type: 'summary', ...rest })}\n`;
}
