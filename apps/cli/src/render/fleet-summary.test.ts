import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  groupErrorsByCode,
  renderFleetSummary,
  type SummaryNodeResult,
  slowestNodes,
} from './fleet-summary.js';

const ok = (node: string, ms: number): SummaryNodeResult => ({
  node,
  status: 'success',
  duration_ms: ms,
  error: null,
});
const bad = (
  node: string,
  code: string,
  status: SummaryNodeResult['status'] = 'failure',
  ms = 10,
): SummaryNodeResult => ({
  node,
  status,
  duration_ms: ms,
  error: { code, message: `${code} on ${node}` },
});

const results: SummaryNodeResult[] = [
  ok('web01', 120),
  ok('web02', 2_410),
  bad('web03', 'CONNECTION_REFUSED', 'failure', 5),
  bad('web04', 'PLUGIN_FAILED', 'failure', 900),
  bad('web05', 'CONNECTION_REFUSED', 'failure', 6),
  bad('web06', 'MAX_FAILURES_EXCEEDED', 'skipped', 0),
  ok('web07', 61_000),
];
const totals = {
  action: 'check-disk',
  trace_id: '0123456789abcdef0123456789abcdef',
  total: 7,
  succeeded: 3,
  partial: 0,
  failed: 3,
  skipped: 1,
  duration_ms: 63_200,
  exit_code: 3,
};

describe('fleet summary', () => {
  it('groups errors by code, most frequent first', () => {
    expect(groupErrorsByCode(results)).toEqual([
      {
        code: 'CONNECTION_REFUSED',
        nodes: ['web03', 'web05'],
        example: 'CONNECTION_REFUSED on web03',
      },
      {
        code: 'MAX_FAILURES_EXCEEDED',
        nodes: ['web06'],
        example: 'MAX_FAILURES_EXCEEDED on web06',
      },
      { code: 'PLUGIN_FAILED', nodes: ['web04'], example: 'PLUGIN_FAILED on web04' },
    ]);
  });

  it('lists the slowest nodes that ran', () => {
    expect(slowestNodes(results, 3).map((r) => r.node)).toEqual(['web07', 'web02', 'web04']);
    expect(slowestNodes([bad('x', 'RUN_CANCELLED', 'skipped')], 3)).toEqual([]);
  });

  it('formats durations', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(2_414)).toBe('2.41s');
    expect(formatDuration(185_000)).toBe('3m05s');
  });

  it('renders counts, policy, slowest nodes and errors', () => {
    const text = renderFleetSummary(results, totals, {
      color: false,
      slowest: 2,
      policy: { concurrency: 50, canary: 2, max_failures: '10%', deadline_ms: 300_000 },
    });
    expect(text).toBe(
      [
        'Summary  check-disk on 7 nodes in 1m03s',
        '  succeeded 3   failed 3   skipped 1',
        '  policy: concurrency 50, canary 2, max failures 10%, deadline 5m00s',
        '',
        'Slowest nodes',
        '  web07    1m01s  success',
        '  web02    2.41s  success',
        '',
        'Errors by code',
        '  CONNECTION_REFUSED (2)  web03, web05',
        '    e.g. CONNECTION_REFUSED on web03',
        '  MAX_FAILURES_EXCEEDED (1)  web06',
        '    e.g. MAX_FAILURES_EXCEEDED on web06',
        '  PLUGIN_FAILED (1)  web04',
        '    e.g. PLUGIN_FAILED on web04',
        '',
        'trace 0123456789abcdef0123456789abcdef  exit 3',
        '',
      ].join('\n'),
    );
  });

  it('truncates long node lists, marks interruption, shows partial only when present', () => {
    const many = Array.from({ length: 12 }, (_, i) => bad(`n${i}`, 'RUN_CANCELLED', 'skipped'));
    const text = renderFleetSummary(
      many,
      { ...totals, total: 12, succeeded: 0, failed: 0, skipped: 12, partial: 0 },
      { color: false, namesPerError: 3, interrupted: true },
    );
    expect(text).toContain('(interrupted)');
    expect(text).toContain('RUN_CANCELLED (12)  n0, n1, n2 +9 more');
    expect(text).not.toContain('partial');
    expect(text).not.toContain('Slowest');
    const partial = renderFleetSummary(
      [ok('a', 1)],
      { ...totals, total: 1, partial: 1 },
      { color: true },
    );
    expect(partial).toContain('partial 1');
    expect(partial).toContain('\x1b[');
  });
});
