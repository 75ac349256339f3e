import type { ExecutionPlan, NodeRunResult } from '@rune/core';
import { describe, expect, it } from 'vitest';
import { formatErrorPretty } from './errors.js';
import { renderFleetSummary } from './fleet-summary.js';
import { formatNodePretty, formatPlanPretty, formatSummaryPretty } from './pretty.js';
import { renderProgressLine } from './progress.js';
import { terminalSafe } from './terminal-text.js';

/** Every trick of the issue: clear screen, window title, CR overwrite, C1 CSI, bidi override. */
const HOSTILE = 'ok\x1b[2J\x1b]0;pwned\x07\rFAKE\x9b31m\u202egnp.exe\x7f\x00';
/** Bytes a terminal obeys; none may reach it from a renderer. */
const OBEYED =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

describe('terminalSafe', () => {
  it('shows control characters as visible escapes', () => {
    expect(terminalSafe('a\x1b[2Jb')).toBe('a\\x1b[2Jb');
    expect(terminalSafe('\x1b]0;t\x07')).toBe('\\x1b]0;t\\x07');
    expect(terminalSafe('x\ry')).toBe('x\\ry');
    expect(terminalSafe('\x9b1m')).toBe('\\x9b1m');
    expect(terminalSafe('\x7f\x00')).toBe('\\x7f\\x00');
    expect(terminalSafe('\u202eabc\u2066')).toBe('\\u202eabc\\u2066');
    expect(terminalSafe('lone \ud800 surrogate')).toBe('lone \\ud800 surrogate');
  });

  it('keeps tabs, printable Unicode and well-formed pairs; newlines only when multiline', () => {
    expect(terminalSafe('a\tb ✔ é 😀')).toBe('a\tb ✔ é 😀');
    expect(terminalSafe('one\ntwo')).toBe('one\\ntwo');
    expect(terminalSafe('one\ntwo', { multiline: true })).toBe('one\ntwo');
  });
});

const hostileResult = (overrides: Partial<NodeRunResult> = {}): NodeRunResult => ({
  node: `web1${HOSTILE}`,
  transport: 'ssh',
  status: 'failure',
  message_id: '00000000-0000-4000-8000-000000000000',
  response: {
    message_metadata: { trace_id: 'a'.repeat(32), timestamp: '2026-01-01T00:00:00Z' },
    payload: {
      schema_version: 'bpcs_v1',
      result: 'failure',
      summary: `summary ${HOSTILE}\nsecond line`,
      output_data: { [`key${HOSTILE}`]: `value${HOSTILE}` },
    },
    error: null,
  } as unknown as NodeRunResult['response'],
  error: {
    code: 'PLUGIN_FAILED',
    category: 'plugin',
    message: `message ${HOSTILE}`,
    retryable: false,
    source: { component: 'plugin' },
    trace_id: 'a'.repeat(32),
    timestamp: '2026-01-01T00:00:00Z',
  },
  exit_code: 1,
  plugin_exit_code: 1,
  signal: null,
  termination: 'exit',
  started_at: null,
  duration_ms: 10,
  stderr_tail: `stderr ${HOSTILE}\nline two ${HOSTILE}\n`,
  stderr_truncated: false,
  stdout_bytes: 10,
  stdout_truncated: false,
  metadata: {},
  containment: null,
  artifacts: [
    { path: `/tmp/a${HOSTILE}`, status: 'skipped', local_path: null },
  ] as unknown as NodeRunResult['artifacts'],
  ...overrides,
});

describe('every human renderer neutralizes text from nodes', () => {
  it('node lines (summary, error message, stderr, output_data, artifacts) in verbose mode', () => {
    for (const result of [hostileResult(), hostileResult({ error: null, status: 'success' })]) {
      const text = formatNodePretty(result, { color: false, verbose: true });
      expect(text).not.toMatch(OBEYED);
      expect(text).toContain('\\x1b[2J');
    }
    // Colour still works: the only ESC bytes are RUNE's own SGR sequences.
    const colored = formatNodePretty(hostileResult(), { color: true, verbose: true });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: RUNE's own SGR colour sequences.
    expect(colored.replace(/\x1b\[[0-9;]*m/g, '')).not.toMatch(OBEYED);
  });

  it('fleet summary, one-line summary, errors and the progress label', () => {
    const results = [hostileResult(), hostileResult({ node: `web2${HOSTILE}` })];
    const totals = {
      trace_id: 'a'.repeat(32),
      action: `noop${HOSTILE}`,
      total: 2,
      succeeded: 0,
      partial: 0,
      failed: 2,
      skipped: 0,
      duration_ms: 5,
      exit_code: 1,
    };
    expect(renderFleetSummary(results, totals, { color: false })).not.toMatch(OBEYED);
    expect(formatSummaryPretty(totals, false)).not.toMatch(OBEYED);
    const error = hostileResult().error;
    if (error === null) throw new Error('fixture has an error');
    expect(formatErrorPretty({ ...error, code: `X${HOSTILE}` }, false)).not.toMatch(OBEYED);
    const line = renderProgressLine(
      {
        total: 2,
        running: 1,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        elapsedMs: 0,
        label: `x${HOSTILE}`,
      },
      { columns: 200, color: false },
    );
    expect(line).not.toMatch(OBEYED);
  });

  it('the dry-run plan', () => {
    const plan = {
      trace_id: 'a'.repeat(32),
      action: 'noop',
      plugin: {
        version: '1.0.0',
        inferred: false,
        path: `/plugins/noop${HOSTILE}.sh`,
        sha256: 'b'.repeat(64),
        source: 'user',
      },
      timeout_ms: 1000,
      timeout_source: 'manifest',
      deploy_mode: 'ship',
      concurrency: 1,
      parameters: { name: `x${HOSTILE}` },
      nodes: [
        {
          target: { name: `web1${HOSTILE}`, address: `10.0.0.1${HOSTILE}`, user: 'ops' },
          transport: 'ssh',
          would_run: `ssh ${HOSTILE}`,
          request: { payload: { data: { input_parameters: { name: `x${HOSTILE}` } } } },
        },
      ],
    } as unknown as ExecutionPlan;
    expect(formatPlanPretty(plan, { color: false, verbose: true })).not.toMatch(OBEYED);
  });
});
