import type { ExecutionPlan } from '@rune/core';
import { describe, expect, it } from 'vitest';
import { formatPlanPretty } from './pretty.js';

const plannedNode = (name: string, target: Record<string, unknown>, transport = 'ssh') => ({
  target: { name, ...target },
  transport,
  request: { routing: { node: name } },
  remote_path: null,
  would_run: `bootstrap on ${name}`,
});

const plan = {
  schema: 'rune-execution-plan/v1',
  trace_id: 'b'.repeat(32),
  action: 'noop',
  created_at: '2026-01-01T00:00:00.000Z',
  dry_run: true,
  plugin: { version: '1.0.0', path: '/p/noop.sh', sha256: 'c'.repeat(64), source: 'builtin' },
  parameters: {},
  sensitive_parameters: [],
  timeout_ms: 30_000,
  timeout_source: 'manifest',
  deploy_mode: 'ship',
  concurrency: 50,
  limits: { max_stdout_bytes: 1, max_stderr_bytes: 1 },
  run_as: null,
  fetch_artifacts: false,
  artifact_dir: '/a',
  nodes: [
    plannedNode('web1', { address: '10.0.0.1', port: 2222, user: 'ops' }),
    plannedNode('v6', { address: '::1', port: 22 }),
    plannedNode('db1', { instanceId: 'i-0123456789abcdef0' }, 'ssm'),
    plannedNode('localhost', {}, 'local'),
  ],
} as unknown as ExecutionPlan;

describe('formatPlanPretty', () => {
  it('lists every resolved node with its transport and destination', () => {
    const text = formatPlanPretty(plan, { color: false });
    expect(text).toContain('nodes (4)');
    expect(text).toMatch(/web1\s+ssh\s+ops@10\.0\.0\.1:2222/);
    expect(text).toMatch(/v6\s+ssh\s+\[::1\]:22/);
    expect(text).toMatch(/db1\s+ssm\s+i-0123456789abcdef0/);
    expect(text).toMatch(/localhost\s+local\s+localhost/);
  });

  it('details the first node only, unless verbose', () => {
    const short = formatPlanPretty(plan, { color: false });
    expect(short.match(/would run:/g)).toHaveLength(1);
    expect(short).toContain('3 more node(s)');
    const verbose = formatPlanPretty(plan, { color: false, verbose: true });
    expect(verbose.match(/would run:/g)).toHaveLength(4);
    expect(verbose).not.toContain('more node(s)');
  });
});
