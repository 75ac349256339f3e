import { describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import type { AuditRecord } from './audit-log.js';
import { selectRerun } from './audit-rerun.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

function record(fields: Partial<AuditRecord>): AuditRecord {
  return {
    v: 2,
    event: 'run',
    run_id: 'r1',
    operator: 'ops',
    action: 'params',
    plugin: null,
    node: null,
    transport: 'ssh',
    status: 'success',
    error_code: null,
    error_message: null,
    duration_ms: null,
    trace_id: TRACE,
    params: null,
    metadata: {},
    timestamp: '2026-01-01T00:00:00Z',
    host: 'control',
    prev_hash: '0',
    hash: '0',
    ...fields,
  };
}

const intent = (fields: Partial<AuditRecord> = {}): AuditRecord =>
  record({
    event: 'intent',
    status: 'started',
    nodes: ['a', 'b', 'c', 'd'],
    params: {
      name: 'x',
      secret: '[REDACTED]',
      blob: { truncated: true, bytes: 2000, sha256: 'f'.repeat(64) },
    },
    ...fields,
  });

describe('selectRerun', () => {
  const log = [
    intent(),
    record({ node: 'a', status: 'success' }),
    record({ node: 'b', status: 'failure' }),
    record({ node: 'c', status: 'skipped' }),
    // d never recorded an outcome (rune was killed)
  ];

  it('failed: failures, skipped nodes and nodes without an outcome, in run order', () => {
    const selection = selectRerun(log, TRACE, 'failed');
    expect(selection.nodes).toEqual(['b', 'c', 'd']);
    expect(selection.outcomes).toEqual({
      a: 'success',
      b: 'failure',
      c: 'skipped',
      d: 'no-outcome',
    });
    expect(selection.transports).toEqual({ b: 'ssh', c: 'ssh', d: 'ssh' });
  });

  it('keeps recorded values and names those the audit never held', () => {
    const selection = selectRerun(log, TRACE, 'all');
    expect(selection.nodes).toEqual(['a', 'b', 'c', 'd']);
    expect(selection.parameters).toEqual({ name: 'x' });
    expect(selection.unrecordedParameters).toEqual(['secret', 'blob']);
  });

  it('refuses when the log cannot name every node of the run', () => {
    const big = [intent({ nodes_total: 150 }), record({ node: 'e', status: 'failure' })];
    expect(catchRuneError(() => selectRerun(big, TRACE, 'failed')).code).toBe('INVALID_ARGUMENT');
    // Every node beyond the listed ones recorded an outcome: it can.
    const known = [
      intent({ nodes: ['a'], nodes_total: 2 }),
      record({ node: 'a', status: 'success' }),
      record({ node: 'z', status: 'failure' }),
    ];
    expect(selectRerun(known, TRACE, 'failed').nodes).toEqual(['z']);
  });

  it('refuses a malformed trace id, a dry run and an unknown trace', () => {
    expect(catchRuneError(() => selectRerun(log, 'nope', 'all')).message).toContain(
      '32 lowercase hex',
    );
    const dry = [record({ event: 'dry-run', status: 'planned' })];
    expect(catchRuneError(() => selectRerun(dry, TRACE, 'all')).message).toContain('only dry-run');
    expect(catchRuneError(() => selectRerun([], TRACE, 'all')).message).toContain('has no record');
  });
});
