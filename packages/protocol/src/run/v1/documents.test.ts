import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runNodeLine, runResultDocument, runSummaryLine } from './documents.js';
import { validateRunOutputLine, validateRunResultDocument } from './parse.js';
import type { RunPlan, RunResultDocument } from './schema.js';

const examples = new URL('../../../../../specs/examples/run/valid/', import.meta.url);
const load = (file: string): RunResultDocument =>
  JSON.parse(readFileSync(new URL(file, examples), 'utf8')) as RunResultDocument;

const noop = load('result.cli-noop-success.json');
const dryRun = load('result.cli-dry-run-sensitive-redacted.json');
const refused = load('result.cli-unknown-action.json');

const valid = (result: { ok: boolean; error?: unknown }): unknown =>
  result.ok ? 'ok' : result.error;

describe('the run document builder', () => {
  it('rebuilds the corpus documents member for member, and they validate', () => {
    for (const document of [noop, dryRun, refused]) {
      const { schema: _schema, ...parts } = document;
      const built = runResultDocument(parts);
      // The builder always writes `warnings` (optional in the schema, older documents lack it).
      const expected = { ...document, warnings: document.warnings ?? [] };
      expect(built).toEqual(expected);
      expect(Object.keys(built)).toEqual(Object.keys(expected));
      expect(valid(validateRunResultDocument(built))).toBe('ok');
    }
  });

  it('builds the document of a refusal from the error alone (trace id from the error)', () => {
    const error = refused.error;
    if (error === null) throw new Error('fixture has no error');
    const built = runResultDocument({ exit_code: 3, error, action: 'nope' });
    expect(built).toMatchObject({ trace_id: error.trace_id, nodes: [], summary: null, plan: null });
    expect(valid(validateRunResultDocument(built))).toBe('ok');
  });

  it('builds JSONL node and summary lines that validate as output lines', () => {
    const [node] = noop.nodes;
    if (node === undefined || noop.trace_id === null) throw new Error('fixture has no node');
    const line = runNodeLine(node, noop.trace_id);
    expect(valid(validateRunOutputLine(line))).toBe('ok');
    const summary = runSummaryLine(noop);
    expect('nodes' in summary).toBe(false);
    expect(summary.type).toBe('summary');
    expect(valid(validateRunOutputLine(summary))).toBe('ok');
    expect(valid(validateRunOutputLine(runSummaryLine(dryRun)))).toBe('ok');
    expect((runSummaryLine(dryRun).plan as RunPlan).schema).toBe('rune-execution-plan/v1');
  });
});
