/**
 * The run handle (`rune.start()`) end to end: real bash plugins through the real local transport,
 * the real file audit sink. Every stream is checked with the protocol's own
 * `validateRunEventStream` (schema of each event plus the stream rules), and cancellation is
 * triggered only once the plugins announced they are running (their pid files).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type RunEvent, RuneError, validateRunEventStream } from '@rune/protocol';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditSink,
  createLocalTransport,
  createMemoryAuditSink,
  createRune,
  type Rune,
  type RunHandle,
} from '../src/index.js';
import type { FixtureEnv } from './fixture-env.js';
import { createFleetProbe, type FleetProbe, probeRequest } from './fleet-probe.js';

let fleet: FleetProbe;
let fx: FixtureEnv;
let rune: Rune;
let pidDir: string;

beforeAll(() => {
  fleet = createFleetProbe();
  ({ fx, rune, pidDir } = fleet);
});
afterAll(() => fleet.close());

const probe = probeRequest;

async function collect(events: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const seen: RunEvent[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

/** The stream validates against the protocol; returns it for further checks. */
function checkStream(events: RunEvent[]): RunEvent[] {
  const verdict = validateRunEventStream(events);
  expect(verdict.ok ? 'ok' : verdict.error.toJSON()).toBe('ok');
  return events;
}

async function refusal(start: () => Promise<unknown>): Promise<RuneError> {
  try {
    await start();
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

/** Removes the pid files a previous run left, so that readiness means this run's plugin. */
function clearPids(nodes: readonly string[]): void {
  for (const node of nodes) rmSync(join(pidDir, node), { force: true });
}

/** Resolves once the slow plugin for `node` wrote "<sleep pid> <plugin pid>" (its readiness). */
async function pidsOf(node: string): Promise<number[]> {
  const file = join(pidDir, node);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (/^\d+ \d+\n$/.test(text)) return text.trim().split(' ').map(Number);
    if (Date.now() > deadline) throw new Error(`${node} never became ready`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const auditRecords = (traceId: string): Record<string, unknown>[] =>
  readFileSync(fx.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => record.trace_id === traceId);

describe('rune.start(): the run handle', () => {
  it('streams run-start, node-start/node-end per node and run-end, in order, valid', async () => {
    const handle = await rune.start(probe(['ok01', 'fail01', 'ok02']), {
      policy: { canary: 0 },
    });
    expect(handle.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(handle.traceId).toBe(handle.plan.trace_id);
    const events = checkStream(await collect(handle.events));
    const outcome = await handle.result;

    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    expect(events[0]?.type).toBe('run-start');
    expect(events.at(-1)?.type).toBe('run-end');
    expect(events.every((event) => event.run_id === handle.id)).toBe(true);
    expect(events.every((event) => event.trace_id === handle.traceId)).toBe(true);
    for (const node of ['ok01', 'fail01', 'ok02']) {
      const mine = events.filter(
        (event) =>
          (event.type === 'node-start' && event.node === node) ||
          (event.type === 'node-end' && event.result.node === node),
      );
      expect(mine.map((event) => event.type)).toEqual(['node-start', 'node-end']);
    }
    const end = events.at(-1);
    if (end?.type !== 'run-end') throw new Error('no run-end');
    expect(end).toMatchObject({ status: 'partial', exit_code: 1, error: null });
    expect(end.summary).toEqual(outcome.summary);
    expect(outcome.status).toBe('partial');
    expect(outcome.id).toBe(handle.id);
    // The events carry exactly the results the outcome holds.
    const ends = events.flatMap((event) => (event.type === 'node-end' ? [event.result] : []));
    expect([...ends].sort((a, b) => a.node.localeCompare(b.node))).toEqual(
      [...outcome.nodes].sort((a, b) => a.node.localeCompare(b.node)),
    );

    // The audit records and the events share the run id.
    expect(outcome.audit.run_id).toBe(handle.id);
    const audit = auditRecords(handle.traceId);
    expect(audit.map((record) => record.event)).toEqual(['intent', 'run', 'run', 'run']);
    expect(audit.every((record) => record.run_id === handle.id)).toBe(true);
  });

  it('uses the run id the caller chose for events and audit records, and refuses a malformed one', async () => {
    const runId = '0190a8e5-7c4b-4d2e-9f1a-3b5c7d9e1f20';
    const handle = await rune.start(probe(['ok01']), { runId });
    expect(handle.id).toBe(runId);
    const events = checkStream(await collect(handle.events));
    expect(events.every((event) => event.run_id === runId)).toBe(true);
    expect((await handle.result).audit.run_id).toBe(runId);
    expect(auditRecords(handle.traceId).every((record) => record.run_id === runId)).toBe(true);
    const refused = await refusal(() => rune.start(probe(['ok01']), { runId: 'RUN-1' }));
    expect(refused.code).toBe('INVALID_ARGUMENT');
  });

  it('gives a late consumer and several concurrent consumers every event', async () => {
    const handle = await rune.start(probe(['ok01', 'ok02']));
    const [first, second] = await Promise.all([collect(handle.events), collect(handle.events)]);
    await handle.result;
    const late = await collect(handle.events);
    checkStream(late);
    expect(first).toEqual(late);
    expect(second).toEqual(late);
    // node-end follows the node's audit record, so the next node may already have started.
    expect(late.map((event) => event.type).sort()).toEqual(
      ['run-start', 'node-start', 'node-end', 'node-start', 'node-end', 'run-end'].sort(),
    );
    const end = late.at(-1);
    expect(end?.type === 'run-end' && end.status).toBe('succeeded');
    // A consumer that stops early does not disturb the others.
    for await (const event of handle.events) {
      expect(event.type).toBe('run-start');
      break;
    }
    expect(await collect(handle.events)).toEqual(late);
  });

  it('cancel() mid-run: one node-end per node, run-end cancelled, the plugins gone', async () => {
    const nodes = ['slow01', 'slow02', 'ok01', 'ok02'];
    clearPids(nodes);
    const handle: RunHandle = await rune.start(probe(nodes, { concurrency: 2 }));
    const consumer = collect(handle.events);
    // Both slow plugins are running (and wrote their pids) before anything is cancelled.
    const pids = [...(await pidsOf('slow01')), ...(await pidsOf('slow02'))];
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid} before cancel`).toBe(true);
    handle.cancel('operator pressed stop');
    handle.cancel('a second cancel is a no-op');
    const events = checkStream(await consumer);
    const outcome = await handle.result;

    const ends = events.flatMap((event) => (event.type === 'node-end' ? [event.result] : []));
    expect(ends.map((result) => result.node).sort()).toEqual([...nodes].sort());
    expect(
      Object.fromEntries(
        ends.map((result) => [result.node, `${result.status}:${result.error?.code}`]),
      ),
    ).toEqual({
      slow01: 'failure:RUN_CANCELLED',
      slow02: 'failure:RUN_CANCELLED',
      ok01: 'skipped:RUN_CANCELLED',
      ok02: 'skipped:RUN_CANCELLED',
    });
    expect(
      events.filter((event) => event.type === 'node-start').map((event) => event.node),
    ).toEqual(expect.arrayContaining(['slow01', 'slow02']));
    expect(events.filter((event) => event.type === 'node-start')).toHaveLength(2);
    const end = events.at(-1);
    if (end?.type !== 'run-end') throw new Error('no run-end');
    expect(end.status).toBe('cancelled');
    expect(end.exit_code).toBe(130);
    expect(end.error?.code).toBe('RUN_CANCELLED');
    expect(end.error?.message).toBe('operator pressed stop');
    expect(outcome.status).toBe('cancelled');
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid} after cancel`).toBe(false);
    // Every node audited under the handle's run id.
    const audit = auditRecords(handle.traceId);
    expect(audit.filter((record) => record.event === 'run')).toHaveLength(4);
    expect(audit.every((record) => record.run_id === handle.id)).toBe(true);
  });

  it('an external AbortSignal cancels the handle the same way', async () => {
    const controller = new AbortController();
    clearPids(['slow01']);
    const handle = await rune.start(probe(['slow01']), { signal: controller.signal });
    const pids = await pidsOf('slow01');
    controller.abort();
    const events = checkStream(await collect(handle.events));
    const end = events.at(-1);
    expect(end?.type === 'run-end' && end.status).toBe('cancelled');
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
  });

  it('an outcome record that cannot be written: results kept, run-end interrupted with AUDIT_WRITE_FAILED', async () => {
    const memory = createMemoryAuditSink();
    const sink: AuditSink = {
      append: (entry) =>
        entry.event === 'run'
          ? Promise.reject(new RuneError('AUDIT_WRITE_FAILED', 'disk full (test sink)'))
          : memory.append(entry),
    };
    const audited = createRune({
      env: fx.env,
      home: fx.home,
      cwd: fx.root,
      auditSink: sink,
      pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
      transports: {
        local: () =>
          createLocalTransport({ env: fx.env, killGraceMs: 300, isLocalNode: () => true }),
      },
    });
    try {
      const handle = await audited.start(probe(['ok01', 'ok02']));
      const events = checkStream(await collect(handle.events));
      const outcome = await handle.result;
      expect(events.filter((event) => event.type === 'node-end')).toHaveLength(2);
      const end = events.at(-1);
      if (end?.type !== 'run-end') throw new Error('no run-end');
      expect(end).toMatchObject({ status: 'interrupted', exit_code: 70, summary: null });
      expect(end.error?.code).toBe('AUDIT_WRITE_FAILED');
      expect(outcome.audit.outcomes_missing.sort()).toEqual(['ok01', 'ok02']);
    } finally {
      await audited.close();
    }
  });

  it('refuses a dry run (nothing to start) and keeps plan refusals as they are', async () => {
    const dry = await refusal(() => rune.start(probe(['ok01'], { dryRun: true })));
    expect(dry.code).toBe('INVALID_ARGUMENT');
    const unknown = await refusal(() => rune.start({ action: 'no-such', selections: ['a'] }));
    expect(unknown.code).toBe('UNKNOWN_ACTION');
  });
});
