/**
 * The shipping spool's store side, on both engines (the SQLite file and a real PostgreSQL):
 *
 * - `ship_from`: a first start spools the whole existing audit log and runs ("start") or only
 *   what is recorded from then on ("now"), runs already running included.
 * - Pruning: only records every configured sink delivered, older than the retention, in bounded
 *   batches; a sink that never delivered holds everything; a removed sink pins nothing.
 * - Two instances on one PostgreSQL: an ingest that has not committed holds the other's back, so
 *   a reader never sees a higher `seq` before a lower one commits (and so never skips one); two
 *   instances ingesting and a reader following them concurrently see every record once, in a
 *   gapless order. Then two real servers on one PostgreSQL ship the one audit chain of the
 *   store (`audit_records`) and every run, each once.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuneServer, openRunStore, type RunStore } from '../src/index.js';
import { createDatabaseLeases, type LeaseGrant, type SinkLeases } from '../src/shipping/lease.js';
import { pruneSpool } from '../src/shipping/prune.js';
import {
  ingestAuditLog,
  ingestEndedRuns,
  readCursor,
  readSpool,
  type ShipFrom,
  writeCursor,
} from '../src/shipping/spool.js';
import { MIGRATION_NAMES } from '../src/store/migrations.js';
import type { NewRun } from '../src/store/run-store.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';
import { postgresAvailable, usePostgresPerFile } from './postgres.js';
import { newRun } from './store-rows.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const { freshUrl: pgUrl } = usePostgresPerFile('spool');

type Engine = 'sqlite' | 'postgres';
const ENGINES: Engine[] = postgresAvailable ? ['sqlite', 'postgres'] : ['sqlite'];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rune-spool-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(engine: Engine, location?: string): Promise<RunStore> {
  const path = location ?? (engine === 'sqlite' ? join(tempDir(), 'server.sqlite') : await pgUrl());
  const store = await openRunStore(path);
  cleanups.push(() => store.close());
  return store;
}

const NOW = () => new Date();

function auditLine(n: number): string {
  return `${JSON.stringify({ v: 2, seq: n, event: 'run', hash: `h${String(n).padStart(4, '0')}` })}\n`;
}

function run(id: string, position: number, overrides: Partial<NewRun> = {}): NewRun {
  return newRun(id, {
    status: 'succeeded',
    created_at: new Date(Date.UTC(2026, 11, 1, 10, 0, position)).toISOString(),
    finished_at: new Date(Date.now() - 60_000).toISOString(),
    exit_code: 0,
    ...overrides,
  });
}

const runId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

async function spooled(store: RunStore): Promise<{ seq: number; record_id: string }[]> {
  const rows = await store.db
    .selectFrom('shipping_outbox')
    .select(['seq', 'record_id'])
    .orderBy('seq')
    .execute();
  return rows.map((row) => ({ seq: Number(row.seq), record_id: row.record_id }));
}

async function ingestAll(store: RunStore, auditLog: string, shipFrom: ShipFrom): Promise<void> {
  await ingestAuditLog(store.db, auditLog, NOW, shipFrom);
  await ingestEndedRuns(store.db, NOW, shipFrom);
}

describe.each(ENGINES)('shipping spool (%s)', (engine) => {
  it('ship_from = "start" spools the existing audit log and ended runs; "now" only what comes after', async () => {
    for (const shipFrom of ['start', 'now'] as const) {
      const store = await openStore(engine);
      const auditLog = join(tempDir(), 'audit.jsonl');
      writeFileSync(auditLog, auditLine(1) + auditLine(2) + auditLine(3));
      await store.insertRun(run(runId(1), 1), ['web1']);
      await store.insertRun(run(runId(2), 2), ['web1']);
      // Running at the first start: it ends later and is shipped either way.
      await store.insertRun(run(runId(3), 3, { status: 'running', finished_at: null }), ['web1']);
      await ingestAll(store, auditLog, shipFrom);
      const first = (await spooled(store)).map((row) => row.record_id);
      if (shipFrom === 'start') {
        expect(first).toEqual([
          'audit:h0001',
          'audit:h0002',
          'audit:h0003',
          `run:${runId(1)}`,
          `run:${runId(2)}`,
        ]);
      } else {
        expect(first).toEqual([]);
      }
      appendFileSync(auditLog, auditLine(4));
      await store.db
        .updateTable('runs')
        .set({ status: 'succeeded', finished_at: new Date().toISOString() })
        .where('id', '=', runId(3))
        .execute();
      await store.insertRun(run(runId(4), 4, { finished_at: new Date().toISOString() }), ['web1']);
      await ingestAll(store, auditLog, shipFrom);
      await ingestAll(store, auditLog, shipFrom); // idempotent
      const added = (await spooled(store)).map((row) => row.record_id).slice(first.length);
      expect(added).toEqual(['audit:h0004', `run:${runId(3)}`, `run:${runId(4)}`]);
    }
  });

  it('prunes only what every configured sink delivered, past the retention, in bounded batches', async () => {
    const store = await openStore(engine);
    const auditLog = join(tempDir(), 'audit.jsonl');
    writeFileSync(auditLog, Array.from({ length: 20 }, (_, n) => auditLine(n + 1)).join(''));
    await ingestAuditLog(store.db, auditLog, NOW, 'start');
    expect((await spooled(store)).map((row) => row.seq)).toEqual(
      Array.from({ length: 20 }, (_, n) => n + 1),
    );
    const later = new Date(Date.now() + 60_000);
    const prune = (sinks: string[], retentionMs: number, extra = {}) =>
      pruneSpool(store.db, { sinks, retentionMs, now: later, ...extra });

    // A configured sink that never delivered holds back everything.
    await writeCursor(store.db, 'hec', 12, NOW);
    expect((await prune(['hec', 'syslog'], 0)).deleted).toBe(0);
    // Within the retention nothing goes, delivered or not.
    await writeCursor(store.db, 'syslog', 7, NOW);
    expect((await prune(['hec', 'syslog'], 3_600_000)).deleted).toBe(0);
    // Bounded: 2 batches of 2, then the next pass continues, stopping at the slowest cursor.
    expect(await prune(['hec', 'syslog'], 0, { batchSize: 2, maxBatches: 2 })).toMatchObject({
      deleted: 4,
      more: true,
    });
    expect(await prune(['hec', 'syslog'], 0, { batchSize: 2, maxBatches: 5 })).toMatchObject({
      deleted: 3,
      more: false,
    });
    // Nothing undelivered was pruned: everything above syslog's cursor is still there.
    expect((await spooled(store)).map((row) => row.seq)).toEqual(
      Array.from({ length: 13 }, (_, n) => n + 8),
    );

    // A sink removed from the configuration does not pin the spool; its cursor goes once stale.
    await writeCursor(store.db, 'old', 2, () => new Date(Date.now() - 7_200_000));
    const afterRemoval = await prune(['hec'], 3_600_000, { now: new Date(Date.now() + 7_200_000) });
    expect(afterRemoval).toMatchObject({ deleted: 5, droppedCursors: 2 });
    expect((await spooled(store)).map((row) => row.seq)).toEqual(
      Array.from({ length: 8 }, (_, n) => n + 13),
    );
    const cursors = await store.db.selectFrom('shipping_cursors').select('sink').execute();
    expect(cursors.map((row) => row.sink)).toEqual(['hec']);

    // New records continue the numbering after pruning (the counter, not max(seq)).
    appendFileSync(auditLog, auditLine(21));
    await ingestAuditLog(store.db, auditLog, NOW, 'start');
    expect((await spooled(store)).at(-1)).toEqual({ seq: 21, record_id: 'audit:h0021' });
  });

  it('0010_shipping_seq starts the counter after the records an older version spooled', async () => {
    const path = engine === 'sqlite' ? join(tempDir(), 'server.sqlite') : await pgUrl();
    const old = await openRunStore(path, {
      migrateTo: MIGRATION_NAMES.indexOf('0010_shipping_seq'),
    });
    await old.db
      .insertInto('shipping_outbox')
      .values({
        seq: 5,
        record_id: 'audit:h0005',
        kind: 'audit',
        body_json: '{}',
        created_at: '2026-12-01T00:00:00.000Z',
      })
      .execute();
    await old.close();
    const store = await openStore(engine, path);
    const auditLog = join(tempDir(), 'audit.jsonl');
    writeFileSync(auditLog, auditLine(5) + auditLine(6));
    await ingestAuditLog(store.db, auditLog, NOW, 'start');
    expect(await spooled(store)).toEqual([
      { seq: 5, record_id: 'audit:h0005' },
      { seq: 6, record_id: 'audit:h0006' },
    ]);
  });

  it('keeps the records of runs the runs ingester still re-reads (behind an open run)', async () => {
    const store = await openStore(engine);
    const auditLog = join(tempDir(), 'audit.jsonl');
    writeFileSync(auditLog, auditLine(1));
    // Run 1 is still open: the ingester re-reads every ended run above it on each pass.
    await store.insertRun(run(runId(1), 1, { status: 'running', finished_at: null }), ['web1']);
    await store.insertRun(run(runId(2), 2), ['web1']);
    await ingestAll(store, auditLog, 'start');
    expect((await spooled(store)).map((row) => row.record_id)).toEqual([
      'audit:h0001',
      `run:${runId(2)}`,
    ]);
    await writeCursor(store.db, 'hec', 2, NOW);
    const later = new Date(Date.now() + 3_600_000);
    const pass = await pruneSpool(store.db, { sinks: ['hec'], retentionMs: 1, now: later });
    // The audit record goes; run 2's record stays, so re-reading it adds nothing.
    expect(pass.deleted).toBe(1);
    await ingestAll(store, auditLog, 'start');
    expect(await spooled(store)).toEqual([{ seq: 2, record_id: `run:${runId(2)}` }]);
    // Once run 1 ended and was spooled, the watermark moves past both and they can go.
    await store.db
      .updateTable('runs')
      .set({ status: 'succeeded', finished_at: new Date().toISOString() })
      .where('id', '=', runId(1))
      .execute();
    await ingestAll(store, auditLog, 'start');
    expect((await spooled(store)).map((row) => row.record_id)).toEqual([
      `run:${runId(2)}`,
      `run:${runId(1)}`,
    ]);
    await writeCursor(store.db, 'hec', 3, NOW);
    expect(
      (await pruneSpool(store.db, { sinks: ['hec'], retentionMs: 1, now: later })).deleted,
    ).toBe(2);
    await ingestAll(store, auditLog, 'start');
    expect(await spooled(store)).toEqual([]);
  });

  it('a run that ends while the runs ingester reads is not stepped over', async () => {
    const store = await openStore(engine);
    await store.insertRun(run(runId(1), 1, { status: 'running', finished_at: null }), ['web1']);
    await store.insertRun(run(runId(2), 2, { status: 'running', finished_at: null }), ['web1']);
    await ingestEndedRuns(store.db, NOW, 'start', {
      betweenReads: async () => {
        await store.db
          .updateTable('runs')
          .set({ status: 'succeeded', finished_at: new Date().toISOString() })
          .where('id', '=', runId(1))
          .execute();
      },
    });
    await ingestEndedRuns(store.db, NOW, 'start');
    expect((await spooled(store)).map((row) => row.record_id)).toEqual([`run:${runId(1)}`]);
  });

  it('a sink reading only runs moves its cursor over audit records too', async () => {
    const store = await openStore(engine);
    const auditLog = join(tempDir(), 'audit.jsonl');
    writeFileSync(auditLog, auditLine(1) + auditLine(2));
    await store.insertRun(run(runId(1), 1), ['web1']);
    await ingestAll(store, auditLog, 'start');
    writeFileSync(auditLog, auditLine(1) + auditLine(2) + auditLine(3));
    await ingestAll(store, auditLog, 'start');
    const page = await readSpool(store.db, 0, 10, ['run']);
    expect(page.records.map((record) => record.record_id)).toEqual([`run:${runId(1)}`]);
    expect(page.last).toBe(4);
  });
});

describe.skipIf(!postgresAvailable)('shipping spool with two instances on one PostgreSQL', () => {
  it('a sink lease: one holder at a time; an expired one goes to exactly one instance; a holder that lost it moves no cursor', async () => {
    const url = await pgUrl();
    const stores = [await openStore('postgres', url), await openStore('postgres', url)];
    const observer = await openStore('postgres', url);
    const [a, b, c] = [observer, ...stores].map((store) =>
      createDatabaseLeases({ db: store.db, leaseMs: 1_000 }),
    ) as [SinkLeases, SinkLeases, SinkLeases];
    const held = (await a.hold('siem')) as LeaseGrant;
    expect(held).toBeDefined();
    expect(await b.hold('siem')).toBeUndefined();
    expect(await c.hold('siem')).toBeUndefined();
    expect(await a.commit('siem', held, 5, NOW)).toBeDefined();
    expect(await readCursor(observer.db, 'siem')).toBe(5);
    // `a` stalls past its lease: b and c ask together at every round; one of them gets it.
    let winners: SinkLeases[] = [];
    const deadline = Date.now() + 20_000;
    while (winners.length === 0) {
      if (Date.now() > deadline) throw new Error('the expired lease was never taken');
      const grants = await Promise.all([b.hold('siem'), c.hold('siem')]);
      winners = [b, c].filter((_, n) => grants[n] !== undefined);
      expect(winners.length).toBeLessThanOrEqual(1);
    }
    const winner = winners[0] as SinkLeases;
    const loser = winner === b ? c : b;
    // The stale holder's delivery ends in a refused commit: the cursor stays where it was.
    expect(await a.commit('siem', held, 9, NOW)).toBeUndefined();
    expect(await readCursor(observer.db, 'siem')).toBe(5);
    expect(await a.hold('siem')).toBeUndefined();
    const grant = (await winner.hold('siem')) as LeaseGrant;
    expect(grant.epoch).toBe(2);
    expect(await winner.commit('siem', grant, 7, NOW)).toBeDefined();
    expect(await readCursor(observer.db, 'siem')).toBe(7);
    // A clean stop hands the sink over at once.
    expect(await loser.hold('siem')).toBeUndefined();
    await winner.release(['siem']);
    expect((await loser.hold('siem'))?.epoch).toBe(3);
  });

  it('an ingest in flight holds back the other instance: a reader never sees a later seq first', async () => {
    const url = await pgUrl();
    const a = await openStore('postgres', url);
    const b = await openStore('postgres', url);
    const observer = await openStore('postgres', url);
    await a.insertRun(run(runId(1), 1), ['web1']);
    let release: () => void = () => {};
    let paused: () => void = () => {};
    const isPaused = new Promise<void>((resolve) => {
      paused = resolve;
    });
    const ingestA = ingestEndedRuns(a.db, NOW, 'start', {
      beforeCommit: () =>
        new Promise<void>((resolve) => {
          release = resolve;
          paused();
        }),
    });
    await isPaused;
    await b.insertRun(run(runId(2), 2), ['web1']);
    const ingestB = ingestEndedRuns(b.db, NOW, 'start');
    // B is waiting for A's transaction (the counter row's lock), not committing past it.
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('the second ingest never waited for the first');
      const waiting = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
        where wait_event_type = 'Lock' and query ilike '%shipping_seq%'`.execute(observer.db);
      if (Number(waiting.rows[0]?.n) >= 1) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await readSpool(observer.db, 0, 10, ['run'])).records).toEqual([]);
    release();
    expect(await ingestA).toBe(1);
    expect(await ingestB).toBe(1);
    expect(await spooled(observer)).toEqual([
      { seq: 1, record_id: `run:${runId(1)}` },
      { seq: 2, record_id: `run:${runId(2)}` },
    ]);
  });

  it('two instances ingesting while a reader follows: every record once, no seq skipped', async () => {
    const url = await pgUrl();
    const a = await openStore('postgres', url);
    const b = await openStore('postgres', url);
    const reader = await openStore('postgres', url);
    const total = 60;
    let done = false;
    const seen: { seq: number; record_id: string }[] = [];
    const follow = (async () => {
      let cursor = 0;
      for (;;) {
        const finished = done;
        const page = await readSpool(reader.db, cursor, 7, ['run']);
        for (const record of page.records)
          seen.push({ seq: record.seq, record_id: record.record_id });
        if (page.last !== undefined) cursor = page.last;
        else if (finished) return;
        else await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const instance = async (store: RunStore, offset: number) => {
      for (let n = offset; n <= total; n += 2) {
        await store.insertRun(run(runId(n), n), ['web1']);
        await ingestEndedRuns(store.db, NOW, 'start');
      }
    };
    await Promise.all([instance(a, 1), instance(b, 2)]);
    await ingestEndedRuns(a.db, NOW, 'start');
    done = true;
    await follow;
    expect(seen.map((row) => row.seq)).toEqual(Array.from({ length: total }, (_, n) => n + 1));
    expect(new Set(seen.map((row) => row.record_id)).size).toBe(total);
  }, 120_000);

  it('two servers on one PostgreSQL ship the one audit chain of the store and every run, once', async () => {
    const url = await pgUrl();
    const homes = [0, 1].map(() => {
      const home = createTestHome(
        `\n[server.shipping]\ninterval = "100ms"\nship_from = "start"\nretention = "1ms"\n\n[[server.shipping.sinks]]\nname = "collector"\ntype = "stdout"\n`,
      );
      cleanups.push(() => home.remove());
      writeFileSync(
        home.configFile,
        readFileSync(home.configFile, 'utf8').replace(
          /^store = .*$/m,
          `store = ${JSON.stringify(url)}`,
        ),
      );
      return home;
    });
    const outputs = homes.map(() => {
      const stream = new PassThrough();
      const lines: string[] = [];
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        lines.push(...parts.filter((line) => line !== ''));
      });
      return { stream, lines };
    });
    const warnings: string[] = [];
    const log = (line: string) => {
      if (line.startsWith('warning:')) warnings.push(line);
    };
    const first = await startTestServer(
      homes[0] as TestHome,
      {},
      { shippingStdout: outputs[0]?.stream, log },
    );
    cleanups.push(() => first.close());
    // The second instance shares the store, so the first one's tokens.
    const other = await createRuneServer({
      configFile: (homes[1] as TestHome).configFile,
      env: (homes[1] as TestHome).env,
      port: 0,
      shippingStdout: outputs[1]?.stream,
      log,
    });
    cleanups.push(() => other.close());
    const servers: TestServer[] = [
      first,
      { ...first, server: other, url: await other.listen(), close: () => other.close() },
    ];
    (servers[1] as TestServer).request = (path, init = {}) =>
      fetch(`${(servers[1] as TestServer).url}${path}`, {
        method: init.json === undefined ? 'GET' : 'POST',
        headers: {
          authorization: `Bearer ${first.operator}`,
          ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
      });
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) {
      const server = servers[n % 2] as TestServer;
      const response = await server.request('/v1/runs', {
        json: { action: 'noop', targets: ['localhost'], params: { message: `m${n}` } },
      });
      ids.push(((await response.json()) as { id: string }).id);
    }
    for (const [n, id] of ids.entries()) {
      expect((await waitForRun(servers[n % 2] as TestServer, id)).status).toBe('succeeded');
    }
    const db = (servers[0] as TestServer).server.store.db;
    const chain = await db.selectFrom('audit_records').select('hash').orderBy('seq').execute();
    expect(chain.length).toBeGreaterThanOrEqual(12);
    const expected = [...chain.map((row) => `audit:${row.hash}`), ...ids.map((id) => `run:${id}`)];
    const deadline = Date.now() + 60_000;
    for (;;) {
      await Promise.all(servers.map((server) => server.server.shipper?.runOnce()));
      const ids = (await spooled((servers[0] as TestServer).server.store)).map(
        (row) => row.record_id,
      );
      if (expected.every((id) => ids.includes(id))) break;
      if (Date.now() > deadline) {
        const sources = await db.selectFrom('shipping_sources').selectAll().execute();
        const counter = await db.selectFrom('shipping_seq').selectAll().execute();
        throw new Error(
          `sources ${JSON.stringify(sources)} counter ${JSON.stringify(counter)} spooled ${ids.length}; warnings: ${warnings.join('\n')}; not spooled: ${expected.filter((id) => !ids.includes(id))}`,
        );
      }
    }
    // Everything is spooled: one more pass lets the sink's lease holder deliver the last of it.
    await Promise.all(servers.map((server) => server.server.shipper?.runOnce()));
    const rows = await spooled((servers[0] as TestServer).server.store);
    expect(rows.map((row) => row.seq)).toEqual(rows.map((_, n) => n + 1));
    expect(new Set(rows.map((row) => row.record_id)).size).toBe(rows.length);
    // Audit records keep the chain's order in the spool.
    const audit = rows
      .filter((row) => row.record_id.startsWith('audit:'))
      .map((row) => row.record_id);
    expect(audit).toEqual(chain.map((row) => `audit:${row.hash}`));
    // One instance at a time delivers to the sink (its lease, 0013_ship_lease): together the
    // outputs got every record, and none twice.
    const lines = outputs.flatMap((output) =>
      output.lines.map((line) => (JSON.parse(line) as { record_id: string }).record_id),
    );
    const delivered = new Set(lines);
    for (const id of expected) expect(delivered).toContain(id);
    expect(lines).toHaveLength(delivered.size);

    // Everything was delivered (retention 1ms): a pruning pass empties the spool up to the cursor.
    const cursor = await db
      .selectFrom('shipping_cursors')
      .select('last_seq')
      .executeTakeFirstOrThrow();
    const pruned = await (servers[1] as TestServer).server.shipper?.prune();
    expect(pruned?.deleted).toBe(Number(cursor.last_seq));
    expect(
      (await spooled(first.server.store)).every((row) => row.seq > Number(cursor.last_seq)),
    ).toBe(true);
  }, 120_000);
});
