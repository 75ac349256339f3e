import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresAvailable, usePostgresPerFile } from '../../test/postgres.js';
import { newRun } from '../../test/store-rows.js';
import { MIGRATION_NAMES } from './migrations.js';
import { openRunStore } from './run-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function storePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rune-store-'));
  dirs.push(dir);
  return join(dir, 'server.sqlite');
}

const run = newRun;

/**
 * Every store test that does not concern the SQLite file itself runs on both engines: the same
 * queries and migrations must behave the same on the embedded file and on a shared PostgreSQL.
 */
const { freshUrl: freshPostgresUrl } = usePostgresPerFile('store');

type Engine = 'sqlite' | 'postgres';
const ENGINES: Engine[] = ['sqlite', 'postgres'];
async function location(engine: Engine): Promise<string> {
  if (engine === 'sqlite') return storePath();
  return freshPostgresUrl();
}

const tables = async (path: string): Promise<string[]> => {
  const store = await openRunStore(path);
  const names = (await store.db.introspection.getTables()).map((table) => table.name).sort();
  await store.close();
  return names;
};

describe.each(ENGINES)('migrations (%s)', (engine) => {
  it('migrate an empty store to the newest schema', async () => {
    expect(await tables(await location(engine))).toEqual([
      'alert_run_notices',
      'alert_workflow_runs',
      'alerts',
      'api_tokens',
      'approval_approvers',
      'approval_requests',
      'approval_votes',
      'audit_records',
      'browser_sessions',
      'cluster_instances',
      'idempotency_keys',
      'node_locks',
      'node_queue',
      'run_claims',
      'run_events',
      'run_nodes',
      'run_numbering',
      'runs',
      'session_ends',
      'shipping_cursors',
      'shipping_leases',
      'shipping_outbox',
      'shipping_seq',
      'shipping_sources',
      'token_bounds',
      'workflow_runs',
    ]);
  });

  it('migrate a store of every older version, keeping its rows', async () => {
    for (let version = 1; version < MIGRATION_NAMES.length; version++) {
      const path = await location(engine);
      const old = await openRunStore(path, { migrateTo: version });
      await old.insertRun(run('11111111-1111-4111-8111-111111111111'), ['web1']);
      await old.close();
      const store = await openRunStore(path);
      expect((await store.getRun('11111111-1111-4111-8111-111111111111'))?.action).toBe('noop');
      const applied = await sql<{
        name: string;
      }>`select name from kysely_migration order by name`.execute(store.db);
      expect(applied.rows.map((row) => row.name)).toEqual([...MIGRATION_NAMES]);
      await store.close();
    }
    // A store per released version, each opened twice: 3-12 s per open of the SQLite file at a
    // load average of 17 (measured), so minutes in all.
  }, 300_000);

  it('0018 ties the workflow runs stored before it to their workflow by its trace id, unless that is ambiguous', async () => {
    const path = await location(engine);
    const old = await openRunStore(path, {
      migrateTo: MIGRATION_NAMES.indexOf('0018_run_workflow'),
    });
    const flows = [
      { id: 'wf-own', trace: '1'.repeat(32) },
      { id: 'wf-shared-a', trace: '2'.repeat(32) },
      { id: 'wf-shared-b', trace: '2'.repeat(32) },
    ];
    for (const flow of flows) {
      await sql`insert into workflow_runs (id, workflow, trace_id, status, principal, created_at, updated_at, record_json)
        values (${flow.id}, 'flow', ${flow.trace}, 'running', 'token:ops', '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.000Z', '{}')`.execute(
        old.db,
      );
    }
    const ids = {
      step: '11111111-1111-4111-8111-111111111111',
      ambiguous: '22222222-2222-4222-8222-222222222222',
      api: '33333333-3333-4333-8333-333333333333',
    };
    await old.insertRun(run(ids.step, { source: 'workflow', trace_id: '1'.repeat(32) }), ['web1']);
    await old.insertRun(run(ids.ambiguous, { source: 'workflow', trace_id: '2'.repeat(32) }), [
      'web1',
    ]);
    await old.insertRun(run(ids.api, { source: 'api', trace_id: '1'.repeat(32) }), ['web1']);
    await old.close();
    const store = await openRunStore(path);
    expect((await store.getRun(ids.step))?.workflow_run_id).toBe('wf-own');
    expect((await store.getRun(ids.ambiguous))?.workflow_run_id).toBeNull();
    expect((await store.getRun(ids.api))?.workflow_run_id).toBeNull();
    await store.close();
  });

  it('refuse a store written by a newer RUNE and leave it alone', async () => {
    const path = await location(engine);
    const store = await openRunStore(path);
    await sql`insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01')`.execute(
      store.db,
    );
    await store.close();
    await expect(openRunStore(path)).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      details: { unknown_migrations: ['9999_future'] },
    });
  });
});

describe('the SQLite file', () => {
  it('keeps committed rows across a reopen; a stale lock directory of a killed process is removed', async () => {
    const path = storePath();
    const store = await openRunStore(path);
    await store.insertRun(run('22222222-2222-4222-8222-222222222222'), ['web1', 'web2']);
    await store.close();
    // What a process killed inside a transaction leaves behind.
    mkdirSync(`${path}.lock`);
    const warnings: string[] = [];
    const again = await openRunStore(path, { onWarning: (line) => warnings.push(line) });
    expect(warnings.join()).toMatch(/stale SQLite lock/);
    expect(
      (await again.getNodes('22222222-2222-4222-8222-222222222222')).map((n) => n.node),
    ).toEqual(['web1', 'web2']);
    expect(await again.writable()).toBe(true);
    expect(again.sizeBytes()).toBe(statSync(path).size);
    const journal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(again.db);
    expect(journal.rows[0]?.journal_mode).toBe('persist');
    const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(again.db);
    expect(sync.rows[0]?.synchronous).toBe(2);
    await again.close();
  });
});

describe.each(ENGINES)('the store (%s)', (engine) => {
  it('an idempotency key maps to one run, atomically with it', async () => {
    const store = await openRunStore(await location(engine));
    const key = { key: 'k1', bodySha256: 'b'.repeat(64) };
    const first = await store.insertRun(run('33333333-3333-4333-8333-333333333333'), [], key);
    // The row as stored comes back with the insert (RETURNING), equal to a read of it.
    expect(first).toEqual({
      inserted: true,
      run: await store.getRun('33333333-3333-4333-8333-333333333333'),
    });
    expect(await store.insertRun(run('44444444-4444-4444-8444-444444444444'), [], key)).toEqual({
      inserted: false,
      runId: '33333333-3333-4333-8333-333333333333',
      bodySha256: 'b'.repeat(64),
    });
    expect(await store.getRun('44444444-4444-4444-8444-444444444444')).toBeUndefined();
    await store.close();
  });

  it('prunes finished runs older than the cut-off with their nodes, events and keys', async () => {
    const store = await openRunStore(await location(engine));
    await store.insertRun(
      run('55555555-5555-4555-8555-555555555555', {
        status: 'succeeded',
        finished_at: '2020-01-01T00:00:00.000Z',
      }),
      ['web1'],
      { key: 'old', bodySha256: 'c'.repeat(64) },
    );
    await store.insertRun(run('66666666-6666-4666-8666-666666666666'), ['web1']);
    expect(await store.pruneFinishedBefore('2025-01-01T00:00:00.000Z')).toBe(1);
    expect(await store.getRun('55555555-5555-4555-8555-555555555555')).toBeUndefined();
    expect(await store.findIdempotencyKey('token:ops', 'old')).toBeUndefined();
    expect(await store.getRun('66666666-6666-4666-8666-666666666666')).toBeDefined();
    await store.close();
  });

  it('concurrent inserts number runs uniquely and one idempotency key wins once', async () => {
    const path = await location(engine);
    const first = await openRunStore(path);
    const second = engine === 'postgres' ? await openRunStore(path) : first;
    const ids = Array.from(
      { length: 20 },
      (_, index) => `77777777-7777-4777-8777-${String(index).padStart(12, '0')}`,
    );
    const key = { key: 'same', bodySha256: 'd'.repeat(64) };
    const results = await Promise.all(
      ids.map((id, index) => (index % 2 === 0 ? first : second).insertRun(run(id), ['web1'], key)),
    );
    expect(results.filter((result) => result.inserted)).toHaveLength(1);
    const plain = await Promise.all(
      ids.map((id, index) =>
        (index % 2 === 0 ? second : first).insertRun(run(id.replace(/^7/, '8')), ['web1']),
      ),
    );
    expect(plain.every((result) => result.inserted)).toBe(true);
    const positions = (await first.listRuns({}, 100)).map((stored) => stored.position);
    expect(new Set(positions).size).toBe(21);
    if (second !== first) await second.close();
    await first.close();
  });
});

describe.skipIf(!postgresAvailable)('a PostgreSQL connection that dies in use', () => {
  it('fails the transaction it was in, not the process; the store goes on with another connection', async () => {
    const path = await location('postgres');
    const warnings: string[] = [];
    let warned: () => void = () => {};
    const warning = new Promise<void>((resolve) => {
      warned = resolve;
    });
    const store = await openRunStore(path, {
      onWarning: (line) => {
        warnings.push(line);
        if (/in use failed/.test(line)) warned();
      },
    });
    const admin = await openRunStore(path);
    try {
      let backend: (pid: number) => void = () => {};
      const pid = new Promise<number>((resolve) => {
        backend = resolve;
      });
      let proceed: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        proceed = resolve;
      });
      // A transaction between two queries, its connection checked out of the pool.
      const transaction = store.db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        backend(Number(rows[0]?.pid));
        await gate;
        await sql`select 1`.execute(trx);
      });
      const failed = transaction.then(
        () => undefined,
        (error: unknown) => error,
      );
      await sql`select pg_terminate_backend(${await pid})`.execute(admin.db);
      // Without the client's error listener this is an uncaught exception instead.
      await warning;
      proceed();
      expect(await failed).toBeInstanceOf(Error);
      expect(warnings.join('\n')).toContain('terminating connection');
      expect(await store.getRun('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    } finally {
      await admin.close();
      await store.close();
    }
  });
});

describe('a PostgreSQL store that cannot be reached', () => {
  it('is refused with INVALID_CONFIG naming the URL without its password', async () => {
    const error = (await openRunStore('postgres://rune:hunter2@127.0.0.1:1/rune').catch(
      (caught: unknown) => caught,
    )) as { code: string; message: string };
    expect(error).toMatchObject({ code: 'INVALID_CONFIG' });
    expect(error.message).toContain('postgres://rune:***@127.0.0.1:1/rune');
    expect(error.message).not.toContain('hunter2');
  });
});
