import type { NodeRunResult, RunSummary } from '@rune/core';
import { describe, expect, it } from 'vitest';
import { colorAllowed, colorChoiceOf } from '../cli-io.js';
import { formatErrorPretty } from './errors.js';
import { runResultDocument } from './json.js';
import { formatNodeLine, formatSummaryLine } from './jsonl.js';
import { formatDuration, formatNodePretty, formatSummaryPretty } from './pretty.js';

const node = (overrides: Partial<NodeRunResult> = {}): NodeRunResult => ({
  node: 'web1',
  transport: 'ssh',
  status: 'success',
  message_id: '00000000-0000-4000-8000-000000000000',
  response: null,
  error: null,
  exit_code: 0,
  plugin_exit_code: 0,
  signal: null,
  termination: 'exit',
  started_at: null,
  duration_ms: 1234,
  stderr_tail: '',
  stderr_truncated: false,
  stdout_bytes: 10,
  stdout_truncated: false,
  metadata: {},
  artifacts: [],
  containment: { method: 'run-marker', killed: 0, complete: true },
  ...overrides,
});

const summary: RunSummary = {
  trace_id: 'a'.repeat(32),
  action: 'noop',
  total: 2,
  succeeded: 1,
  partial: 0,
  failed: 1,
  skipped: 0,
  duration_ms: 2000,
  exit_code: 5,
};

const eps = {
  code: 'PLUGIN_TIMEOUT',
  category: 'timeout' as const,
  message: 'plugin ran past its timeout',
  retryable: true,
  source: { component: 'rune-core' },
  trace_id: 'a'.repeat(32),
  timestamp: '2026-01-01T00:00:00.000Z',
};

describe('renderers', () => {
  it('colour only on a TTY without NO_COLOR', () => {
    expect(colorAllowed(true, { TERM: 'xterm-256color' })).toBe(true);
    expect(colorAllowed(false, {})).toBe(false);
    expect(colorAllowed(true, { NO_COLOR: '' })).toBe(false);
    expect(colorAllowed(true, { TERM: 'dumb' })).toBe(false);
  });

  it('FORCE_COLOR and --color override the terminal check', () => {
    expect(colorAllowed(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorAllowed(false, { FORCE_COLOR: '' })).toBe(true);
    expect(colorAllowed(true, { FORCE_COLOR: '0', TERM: 'xterm-256color' })).toBe(false);
    expect(colorAllowed(false, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(true);
    expect(colorAllowed(false, { NO_COLOR: '1' }, 'always')).toBe(true);
    expect(colorAllowed(true, { FORCE_COLOR: '1', TERM: 'xterm' }, 'never')).toBe(false);
    expect(colorChoiceOf(['run', 'noop', '--color', 'always'])).toBe('always');
    expect(colorChoiceOf(['--color=never', 'list-actions'])).toBe('never');
    expect(colorChoiceOf(['--color=rainbow'])).toBeUndefined();
  });

  it('formats durations', () => {
    expect(formatDuration(87)).toBe('87 ms');
    expect(formatDuration(1234)).toBe('1.2 s');
    expect(formatDuration(125_000)).toBe('2 m 5 s');
  });

  it('pretty: a failed node shows its code, a hint and the stderr tail', () => {
    const text = formatNodePretty(
      node({ status: 'failure', error: eps, exit_code: 5, stderr_tail: 'one\ntwo\n' }),
      { color: false, verbose: false },
    );
    expect(text).toContain('✖ failure web1');
    expect(text).toContain('PLUGIN_TIMEOUT: plugin ran past its timeout');
    expect(text).toContain('hint: raise --timeout');
    expect(text).toContain('│ two');
    expect(text).not.toContain('\u001b[');
    expect(formatSummaryPretty(summary, false)).toContain('noop on 2 nodes: 1 succeeded, 1 failed');
  });

  it('pretty --verbose: output_data as indented JSON, bounded', () => {
    const response = (output_data: Record<string, unknown>): NodeRunResult['response'] => ({
      message_metadata: { trace_id: 'a'.repeat(32), timestamp: '2026-11-22T00:00:00.000Z' },
      payload: { schema_version: 'bpcs_v1', result: 'success', summary: 'ok', output_data },
      error: null,
    });
    const small = formatNodePretty(node({ response: response({ used_percent: 42 }) }), {
      color: false,
      verbose: true,
    });
    expect(small).toContain('    output_data:');
    expect(small).toContain('│   "used_percent": 42');
    const quiet = formatNodePretty(node({ response: response({ used_percent: 42 }) }), {
      color: false,
      verbose: false,
    });
    expect(quiet).not.toContain('output_data');
    const lines = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]));
    const big = formatNodePretty(node({ response: response(lines) }), {
      color: false,
      verbose: true,
    });
    expect(big.split('\n').filter((line) => line.startsWith('    │ ')).length).toBe(201);
    expect(big).toContain('more line(s); -o json shows all');
  });

  it('pretty: warns when containment was incomplete, on success too; silent when complete', () => {
    const incomplete = formatNodePretty(
      node({
        containment: {
          method: 'process-group',
          killed: 0,
          complete: false,
          detail: '/proc is not readable on this machine',
        },
      }),
      { color: false, verbose: false },
    );
    expect(incomplete).toContain(
      'warning: could not make sure nothing is left running on web1: /proc is not readable on this machine',
    );
    expect(formatNodePretty(node(), { color: false, verbose: false })).not.toContain('warning');
    expect(
      formatNodePretty(node({ containment: null }), { color: false, verbose: false }),
    ).not.toContain('warning');
  });

  it('json and jsonl carry containment per node', () => {
    const reported = { method: 'run-marker' as const, killed: 2, complete: true };
    const document = runResultDocument({ exit_code: 0, nodes: [node({ containment: reported })] });
    expect(JSON.parse(JSON.stringify(document)).nodes[0].containment).toEqual(reported);
    expect(
      JSON.parse(formatNodeLine(node({ containment: reported }), 'b'.repeat(32))).containment,
    ).toEqual(reported);
  });

  it('pretty error: one line with code, then a hint', () => {
    const text = formatErrorPretty({ ...eps, code: 'UNKNOWN_ACTION', message: 'nope' }, false);
    expect(text.split('\n')[0]).toBe('error UNKNOWN_ACTION: nope');
    expect(text).toContain('hint: see `rune list-actions`');
  });

  it('json document has a stable shape, also for errors', () => {
    const document = runResultDocument({ exit_code: 2, error: { ...eps, code: 'NO_TARGETS' } });
    expect(Object.keys(document)).toEqual([
      'schema',
      'trace_id',
      'action',
      'dry_run',
      'exit_code',
      'summary',
      'nodes',
      'plan',
      'error',
      'warnings',
    ]);
    expect(document.warnings).toEqual([]);
    expect(document.trace_id).toBe(eps.trace_id);
    expect(document.nodes).toEqual([]);
  });

  it('jsonl: node lines and a summary line without nodes', () => {
    const line = JSON.parse(formatNodeLine(node(), 'b'.repeat(32)));
    expect(line).toMatchObject({ type: 'node', node: 'web1', trace_id: 'b'.repeat(32) });
    const last = JSON.parse(formatSummaryLine(runResultDocument({ exit_code: 5, summary })));
    expect(last.type).toBe('summary');
    expect(last.nodes).toBeUndefined();
    expect(last.summary.exit_code).toBe(5);
  });

  it('a multi-line plugin error stays on its node line (newlines shown as \\n, no escapes obeyed)', () => {
    const text = formatNodePretty(
      node({
        status: 'failure',
        error: {
          ...eps,
          code: 'PLUGIN_FAILED',
          message: 'first line\nsecond \x1b[32mgreen\x1b[0m\r\nthird',
        },
        exit_code: 1,
      }),
      { color: false, verbose: false, nameWidth: 8 },
    );
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toContain(
      'PLUGIN_FAILED: first line\\nsecond \\x1b[32mgreen\\x1b[0m\\r\\nthird',
    );
    // Any further line is RUNE's own (hint, stderr), indented under the node.
    for (const line of lines.slice(1)) expect(line).toMatch(/^ {4}/);
  });
});
