/**
 * The streaming machine output of `rune run --output jsonl`: one line `{"type":"node",...}` per
 * node as soon as it finishes, then one final line `{"type":"summary",...}` that has the shape
 * of the JSON document minus `nodes` (`@rune/protocol` run v1 output lines, built by its
 * `runNodeLine` / `runSummaryLine`). A refused run prints only the summary line, with `error`.
 */
import type { NodeRunResult } from '@rune/core';
import { type RunResultDocument, runNodeLine, runSummaryLine } from '@rune/protocol';

/** One node line. */
export function formatNodeLine(result: NodeRunResult, traceId: string): string {
  return `${JSON.stringify(runNodeLine(result, traceId))}\n`;
}

/** The final summary line. */
export function formatSummaryLine(document: RunResultDocument): string {
  return `${JSON.stringify(runSummaryLine(document))}\n`;
}
