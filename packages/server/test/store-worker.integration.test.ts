/**
 * The run store's SQLite connection in its worker thread (src/store/sqlite-worker/): a group
 * commit's failing job is rolled back alone; a worker that dies fails pending and later queries
 * with STORE_UNAVAILABLE and turns /readyz 503; and a real `rune serve` killed with SIGKILL right
 * after answering still has every run it acknowledged ("acknowledged = durable").
 */

import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKER_RESOURCE_LIMITS } from '@rune/core/memory';
import { RuneError } from '@rune/protocol';
import type { LogEvent } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createToken } from '../src/auth/tokens.js';
import { runOperation } from '../src/store/operation.js';
import { openRunStore, type RunStore } from '../src/store/run-store.js';
import { sqliteWorkerThread } from '../src/store/sqlite-worker/dialect.js';
import { createWriteBatcher } from '../src/store/write-batch.js';
import {
  createTestHome,
  spawnServe,
  startTestServer,
  type TestHome,
  type TestServer,
} from './harness.js';
import { newRun } from './store-rows.js';

const homes: TestHome[] = [];
const stores: RunStore[] = [];
const servers: TestServer[] = [];
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await Promise.all(servers.splice(0).map((server) => server.close().catch(() => undefined)));
  await Promise.all(stores.splice(0).map((store) => store.close().catch(() => undefined)));
  for (const home of homes.splice(0)) home.remove();
});

function home(): TestHome {
  const created = createTestHome();
  homes.push(created);
  return created;
}

async function store(path: string, onQuery?: (event: LogEvent) => void): Promise<RunStore> {
  const opened = await openRunStore(path, onQuery === undefined ? {} : { onQuery });
  stores.push(opened);
  return opened;
}

const token = (name: string) => ({
  id: `id-${name}`,
  name,
  role: 'viewer',
  secret_sha256: name.padEnd(64, '0'),
  created_at: '2026-12-01T00:00:00.000Z',
  expires_at: null,
  revoked_at: null,
  last_used_at: null,
});

describe('the SQLite worker', () => {
  it('group commit over the worker: a job whose statement fails is rolled back alone, in one commit with the others', async () => {
    const commits: string[] = [];
    const opened = await store(join(home().dir, 'batch.sqlite'), (event) => {
      if (/^\s*commit\b/i.test(event.query.sql)) commits.push(event.query.sql);
    });
    const batcher = createWriteBatcher(opened.db);
    commits.length = 0;
    // Three writers in one turn: one batch. The second writes a row, then violates the unique
    // name of api_tokens: its own row must go with it, the others' rows must stay.
    const outcomes = await Promise.allSettled([
      batcher.run((trx) => trx.insertInto('api_tokens').values(token('first')).execute()),
      batcher.run(async (trx) => {
        await trx.insertInto('api_tokens').values(token('second')).execute();
        await trx
          .insertInto('api_tokens')
          .values({ ...token('first'), id: 'id-other' })
          .execute();
      }),
      batcher.run((trx) => trx.insertInto('api_tokens').values(token('third')).execute()),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    const failure = (outcomes[1] as PromiseRejectedResult).reason as Error;
    // The SQLite error as the synchronous driver threw it (what isUniqueViolation recognises).
    expect(failure.message).toMatch(/UNIQUE constraint failed/);
    expect(commits).toHaveLength(1);
    expect((await opened.listTokens()).map((row) => row.name).sort()).toEqual(['first', 'third']);
  });

  it("the worker runs with the workers' resource limits: its young generation stays within 8 MB under a stream of queries", async () => {
    const opened = await store(join(home().dir, 'limits.sqlite'));
    expect(sqliteWorkerThread(opened.db)?.resourceLimits).toMatchObject(WORKER_RESOURCE_LIMITS);
    // 400 tokens, then reads of all of them 100 at a time: without a limit V8 grows the
    // worker's young generation to 16-32 MB (two semi-spaces) under this (measured).
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        opened.db
          .insertInto('api_tokens')
          .values({ ...token(`t${i}`.padEnd(200, 'x')), id: `id-${i}` })
          .execute(),
      ),
    );
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 100 }, () => opened.listTokens()));
    }
    const reclaimed = await opened.reclaimMemory();
    const youngLimit = (WORKER_RESOURCE_LIMITS.maxYoungGenerationSizeMb ?? 0) * 1024 * 1024;
    expect(youngLimit).toBeGreaterThan(0);
    expect(reclaimed?.youngBefore).toBeGreaterThan(0);
    expect(reclaimed?.youngBefore).toBeLessThanOrEqual(youngLimit);
  });

  it('a whole operation is one message to the worker; a failing one is undone alone, a guard that finds rows keeps nothing', async () => {
    const opened = await store(join(home().dir, 'operation.sqlite'));
    const thread = sqliteWorkerThread(opened.db);
    expect(thread).toBeDefined();
    const posted: unknown[] = [];
    const post = thread?.postMessage.bind(thread);
    // Observes what crosses to the worker (the real worker still receives every message).
    if (thread !== undefined && post !== undefined) {
      thread.postMessage = (message: unknown) => {
        posted.push(message);
        post(message);
      };
    }
    // A run with two events, two nodes and an idempotency key: nine statements before (a
    // transaction, savepoint, max(position) read, four inserts, release, commit), one message now.
    const id = '33333333-3333-4333-8333-333333333333';
    const stored = newRun(id, { nodes: '["web1","web2"]' });
    posted.length = 0;
    const first = await opened.insertRun(stored, ['web1', 'web2'], {
      key: 'k1',
      bodySha256: 'a'.repeat(64),
    });
    expect(first).toMatchObject({ inserted: true, run: { id, position: 1, last_seq: 0 } });
    expect(posted).toHaveLength(1);
    // The same key again: the guard finds it, nothing else of the operation is written.
    const again = await opened.insertRun({ ...stored, id: id.replace('3333', '4444') }, ['web1'], {
      key: 'k1',
      bodySha256: 'b'.repeat(64),
    });
    expect(again).toEqual({ inserted: false, runId: id, bodySha256: 'a'.repeat(64) });
    expect((await opened.listRuns({}, 10)).map((row) => [row.id, row.position])).toEqual([[id, 1]]);
    expect((await opened.getNodes(id)).map((row) => row.node)).toEqual(['web1', 'web2']);

    // Three operations in one turn: one group commit; the second inserts a row, then violates the
    // unique name of api_tokens: its own row goes with it, the others' rows stay.
    const compile = (name: string, tokenId = `id-${name}`) => ({
      query: opened.db
        .insertInto('api_tokens')
        .values({ ...token(name), id: tokenId })
        .compile(),
    });
    const outcomes = await Promise.allSettled([
      runOperation(opened.db, [compile('first')]),
      runOperation(opened.db, [compile('second'), compile('first', 'id-other')]),
      runOperation(opened.db, [compile('third')]),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(((outcomes[1] as PromiseRejectedResult).reason as Error).message).toMatch(
      /UNIQUE constraint failed/,
    );
    // A guard after a write: the write is undone with the stop.
    const guarded = await runOperation(opened.db, [
      compile('fourth'),
      {
        query: opened.db
          .selectFrom('api_tokens')
          .select('name')
          .where('name', '=', 'first')
          .compile(),
        stopIfRows: true,
      },
      compile('fifth'),
    ]);
    expect(guarded.stopped).toBe(true);
    expect(guarded.results.at(-1)?.rows).toEqual([{ name: 'first' }]);
    // Durable, not just visible: the file opened again after close.
    await opened.close();
    stores.splice(stores.indexOf(opened), 1);
    const reopened = await store(join(homes.at(-1)?.dir ?? '', 'operation.sqlite'));
    expect((await reopened.listTokens()).map((row) => row.name).sort()).toEqual(['first', 'third']);
    expect((await reopened.getRun(id))?.status).toBe('queued');
  });

  it("a dry run's policy record and dry-run record are in the audit log, in this order, before its row is written", async () => {
    const h = home();
    const t = await startTestServer(h);
    servers.push(t);
    const store = t.server.store;
    const insert = store.insertRun;
    const seen: string[][] = [];
    // Observes the audit log at the moment the run's row is written (then writes it).
    store.insertRun = (...args) => {
      const records = (existsSync(h.auditLog) ? readFileSync(h.auditLog, 'utf8') : '')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as { event: string; trace_id: string; seq: number });
      seen.push(
        records.filter((record) => record.trace_id === args[0].trace_id).map((r) => r.event),
      );
      return insert(...args);
    };
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        t.request('/v1/runs', {
          json: { action: 'noop', targets: ['localhost'], options: { dry_run: true } },
        }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202]);
    expect(seen).toEqual(Array.from({ length: 4 }, () => ['policy', 'dry-run']));
  });

  it('writes outside a transaction share one implicit group: a failing one is undone and answered alone', async () => {
    const opened = await store(join(home().dir, 'auto.sqlite'));
    // Autocommit statements of one turn: the worker runs them in one transaction, each in a
    // savepoint, and answers them after its COMMIT.
    const outcomes = await Promise.allSettled([
      opened.db.insertInto('api_tokens').values(token('alpha')).execute(),
      opened.db
        .insertInto('api_tokens')
        .values({ ...token('alpha'), id: 'id-again' })
        .execute(),
      opened.db.insertInto('api_tokens').values(token('gamma')).execute(),
      opened.db
        .updateTable('api_tokens')
        .set({ role: 'operator' })
        .where('name', '=', 'alpha')
        .execute(),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect(((outcomes[1] as PromiseRejectedResult).reason as Error).message).toMatch(
      /UNIQUE constraint failed/,
    );
    const rows = await opened.listTokens();
    expect(rows.map((row) => [row.name, row.role]).sort()).toEqual([
      ['alpha', 'operator'],
      ['gamma', 'viewer'],
    ]);
    // Durable, not just visible: a second connection to the file (after close) sees them.
    await opened.close();
    stores.splice(stores.indexOf(opened), 1);
    const again = await store(join(homes.at(-1)?.dir ?? '', 'auto.sqlite'));
    expect((await again.listTokens()).map((row) => row.name).sort()).toEqual(['alpha', 'gamma']);
  });

  it('a killed worker fails the waiting and every later query with STORE_UNAVAILABLE; /readyz answers 503', async () => {
    const t = await startTestServer(home());
    servers.push(t);
    expect((await t.request('/readyz', { token: null })).status).toBe(200);
    const thread = sqliteWorkerThread(t.server.store.db);
    expect(thread).toBeDefined();
    // A transaction pins the worker's connection, so this read waits in the worker: pending.
    const trx = await t.server.store.db.startTransaction().execute();
    const waiting = t.server.store.getRun('00000000-0000-4000-8000-000000000000');
    await thread?.terminate();
    const code = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (error: unknown) => (RuneError.is(error) ? error.code : String(error)),
      );
    expect(await code(waiting)).toBe('STORE_UNAVAILABLE');
    expect(await code(trx.commit().execute())).toBe('STORE_UNAVAILABLE');
    expect(await code(t.server.store.listRuns({}, 10))).toBe('STORE_UNAVAILABLE');
    const ready = await t.request('/readyz', { token: null });
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
    // A submission is answered with an EPS error, never left hanging.
    const submit = await t.request('/v1/runs', {
      json: { action: 'noop', targets: ['localhost'], options: { dry_run: true } },
    });
    expect(submit.status).toBe(503);
    expect(await submit.json()).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
  });

  it('rune serve killed with SIGKILL right after answering: every acknowledged run is in the store', async () => {
    const h = home();
    const setup = await openRunStore(h.storePath);
    const { token: secret } = await createToken(setup, {
      name: 'ops',
      role: 'operator',
      expires: '1d',
    });
    await setup.close();
    const served = spawnServe(h, children);
    const { child, exited } = served;
    const url = await served.url;
    const acknowledged: string[] = [];
    const submit = async (): Promise<void> => {
      try {
        const response = await fetch(`${url}/v1/runs`, {
          method: 'POST',
          // With a key, a dry run is answered after the store's COMMIT, the path this test is
          // about (without one it is answered from the run intake: run-intake.integration.test.ts).
          headers: {
            authorization: `Bearer ${secret}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          body: JSON.stringify({
            action: 'noop',
            targets: ['localhost'],
            options: { dry_run: true },
          }),
        });
        if (response.status !== 201 && response.status !== 202) return;
        const { id } = (await response.json()) as { id: string };
        acknowledged.push(id);
        // Killed the moment the first answers arrive, while later writes are in flight.
        if (acknowledged.length === 5) child.kill('SIGKILL');
      } catch {
        // refused or cut off by the kill: never acknowledged
      }
    };
    await Promise.all(Array.from({ length: 60 }, submit));
    child.kill('SIGKILL');
    await exited;
    expect(acknowledged.length).toBeGreaterThanOrEqual(5);
    const after = await store(h.storePath);
    for (const id of acknowledged) expect((await after.getRun(id))?.id).toBe(id);
  }, 120_000);
});
