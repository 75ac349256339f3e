/**
 * The machine output of `rune run --output json`: ONE run-result document (`@rune/protocol` run
 * v1, built by its `runResultDocument`), always the same shape, also when the run was refused or
 * crashed (then `nodes` is empty and `error` is the EPS error). docs/cli.md describes it.
 */
export { type RunResultParts, runResultDocument } from '@rune/protocol';

/** Serializes a document for stdout (pretty-printed, newline-terminated). */
export function formatJson(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
