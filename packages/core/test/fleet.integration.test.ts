/**
 * Fleet fan-out end to end through createRune: selections + inventory -> plan -> scheduler
 * -> real bash processes (local transport for every inventory node) -> audit log. Checks the
 * blast-radius behaviour the CLI relies on: canary, failure budget, deadline and cancellation,
 * with one audit record per node and no process left behind.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Rune, RuneRunOptions } from '../src/index.js';
import { parseInventory } from '../src/inventory/inventory.js';
import type { FixtureEnv } from './fixture-env.js';
import { createFleetProbe, type FleetProbe } from './fleet-probe.js';

const inventory = parseInventory(
  `
defaults: { transport: local }
nodes:
  ok01: { tags: [web] }
  ok02: { tags: [web] }
  fail01: { tags: [web] }
  ok03: { tags: [web] }
  fail02: {}
  slow01: {}
  slow02: {}
  ok04: {}
  ok05: {}
groups:
  canary-bad: [fail01, ok01, ok02, ok03]
  budget: [fail01, slow01, fail02, ok01, ok02, ok03, ok04]
  slow: ['slow*', ok01, ok02, ok03]
`,
  { file: 'fleet.yaml' },
);

let fleet: FleetProbe;
let fx: FixtureEnv;
let rune: Rune;
let pidDir: string;

beforeAll(() => {
  fleet = createFleetProbe();
  ({ fx, rune, pidDir } = fleet);
});
afterAll(() => fleet.close());
afterEach(() => {
  // No plugin process may outlive its run.
  for (const name of readdirSync(pidDir)) {
    for (const pid of readFileSync(join(pidDir, name), 'utf8').trim().split(' ').map(Number))
      expect(isProcessAlive(pid), `${name} pid ${pid}`).toBe(false);
  }
});

async function fleetRun(
  selection: string,
  options: RuneRunOptions & { concurrency?: number } = {},
) {
  const report = await rune.run(
    {
      action: 'fleet-probe',
      selections: [selection],
      inventory,
      concurrency: options.concurrency ?? 50,
      timeout: 60_000,
      confirmDangerous: true,
    },
    options,
  );
  const outcome = report.outcome;
  if (outcome === null) throw new Error('dry run');
  const audit = readFileSync(fx.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => record.trace_id === report.plan.trace_id);
  return {
    outcome,
    audit,
    statuses: Object.fromEntries(
      outcome.nodes.map((n) => [
        n.node,
        n.error === null ? n.status : `${n.status}:${n.error.code}`,
      ]),
    ),
  };
}

describe('fleet runs', () => {
  it('runs every selected node and audits each with the policy', async () => {
    const { outcome, audit } = await fleetRun('@all,!slow*', { concurrency: 3 });
    expect(outcome.nodes.map((n) => n.node)).toEqual([
      'ok01',
      'ok02',
      'fail01',
      'ok03',
      'fail02',
      'ok04',
      'ok05',
    ]);
    expect(outcome.summary).toMatchObject({
      total: 7,
      succeeded: 5,
      failed: 2,
      skipped: 0,
      exit_code: 1,
    });
    expect(outcome.summary.policy).toEqual({
      concurrency: 3,
      canary: null,
      max_failures: null,
      deadline_ms: null,
    });
    // One intent written before anything ran, then one outcome per node.
    expect(audit.map((r) => r.event)).toEqual(['intent', ...Array(7).fill('run')]);
    expect(audit[0]?.nodes).toHaveLength(7);
    expect(new Set(audit.map((r) => r.run_id)).size).toBe(1);
    expect(audit[1]?.metadata).toMatchObject({ fleet_policy: { concurrency: 3 } });
  });

  it('canary failure: the rest are skipped with CANARY_FAILED, and audited', async () => {
    const { outcome, audit, statuses } = await fleetRun('@canary-bad', {
      policy: { canary: 1 },
    });
    expect(statuses).toEqual({
      fail01: 'failure:PLUGIN_FAILED',
      ok01: 'skipped:CANARY_FAILED',
      ok02: 'skipped:CANARY_FAILED',
      ok03: 'skipped:CANARY_FAILED',
    });
    expect(outcome.summary.exit_code).toBe(4);
    expect(audit.filter((r) => r.event === 'run').map((r) => r.node)).toEqual(
      expect.arrayContaining(['fail01', 'ok01', 'ok02', 'ok03']),
    );
    expect(
      audit.every(
        (r) => (r.metadata as { fleet_policy: { canary: number } }).fleet_policy.canary === 1,
      ),
    ).toBe(true);
  });

  it('canary success: the rest run', async () => {
    const { outcome } = await fleetRun('tag:web,!fail01', { policy: { canary: 2 } });
    expect(outcome.summary).toMatchObject({ succeeded: 3, skipped: 0 });
  });

  it('max-failures: stops new starts once exceeded while in-flight nodes finish', async () => {
    // concurrency 3: fail01, slow01, fail02 start together; the first failure exceeds a budget
    // of 0 and halts: fail02 and slow01 are in flight and finish (slow01 only ends when the
    // overall deadline kills it), the rest never start.
    const { outcome, statuses } = await fleetRun('@budget', {
      concurrency: 3,
      policy: { maxFailures: { count: 0 }, deadlineMs: 1500 },
    });
    expect(statuses).toEqual({
      fail01: 'failure:PLUGIN_FAILED',
      slow01: 'failure:DEADLINE_EXCEEDED',
      fail02: 'failure:PLUGIN_FAILED',
      ok01: 'skipped:MAX_FAILURES_EXCEEDED',
      ok02: 'skipped:MAX_FAILURES_EXCEEDED',
      ok03: 'skipped:MAX_FAILURES_EXCEEDED',
      ok04: 'skipped:MAX_FAILURES_EXCEEDED',
    });
    expect(outcome.summary.policy).toMatchObject({ max_failures: '0', deadline_ms: 1500 });
    expect(existsSync(join(pidDir, 'slow01'))).toBe(true);
  });

  it('cancellation mid-run: running plugins are killed, the rest skipped, every node audited', async () => {
    const controller = new AbortController();
    const started: string[] = [];
    const done = fleetRun('@slow', {
      concurrency: 2,
      signal: controller.signal,
      onNodeStart: (node) => {
        started.push(node.target.name);
        if (started.length === 2) setTimeout(() => controller.abort(), 300);
      },
    });
    const { outcome, audit, statuses } = await done;
    expect(statuses).toEqual({
      slow01: 'failure:RUN_CANCELLED',
      slow02: 'failure:RUN_CANCELLED',
      ok01: 'skipped:RUN_CANCELLED',
      ok02: 'skipped:RUN_CANCELLED',
      ok03: 'skipped:RUN_CANCELLED',
    });
    expect(outcome.summary.exit_code).toBe(130);
    expect(audit.filter((r) => r.event === 'run')).toHaveLength(5);
    expect(audit.filter((r) => r.event === 'intent')).toHaveLength(1);
  });
});
