/**
 * Run numbering on a PostgreSQL shared by several instances (migration 0016_run_numbering,
 * `numberRun` in src/store/postgres-dialect.ts). A run is numbered in the last statement of its
 * insert transaction; the counter row's lock, held from there to COMMIT, makes positions visible
 * in commit order. That is what a reader of `position > last seen` relies on (the cluster's FIFO
 * queue, the shipping watermark, cursor pages taken while runs are submitted): it must never
 * step over a run that commits later with a lower position. Real PostgreSQL, three stores (three
 * pools, as three instances have).
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { numberRun } from '../src/store/postgres-dialect.js';
import { openRunStore, type RunStore } from '../src/store/run-store.js';
import { postgresAvailable, usePostgresPerFile } from './postgres.js';
import { newRun } from './store-rows.js';

const { freshUrl } = usePostgresPerFile('rune_numbering');

const run = (id: string) => newRun(id, { created_at: '2026-12-02T10:00:00.000Z' });

const id = (writer: number, index: number): string =>
  `${writer}0000000-0000-4000-8000-${String(index).padStart(12, '0')}`;

describe.skipIf(!postgresAvailable)('run numbering across instances (PostgreSQL)', () => {
  it('concurrent inserts of three instances: positions dense, in commit order, a tailing reader and cursor pages skip none', async () => {
    const url = await freshUrl();
    const stores: RunStore[] = [];
    try {
      for (let index = 0; index < 3; index++) stores.push(await openRunStore(url));
      const reader = stores[0] as RunStore;
      const perWriter = 40;
      let writing = true;
      const seen: string[] = [];
      let last = 0;
      // Tails the runs as a FIFO scan or a shipping watermark does: strictly after the highest
      // position seen. A position that became visible after a higher one would be skipped.
      const tail = (async () => {
        for (let round = 0; round < 100_000; round++) {
          const done = !writing;
          const rows = await reader.db
            .selectFrom('runs')
            .select(['id', 'position'])
            .where('position', '>', last)
            .orderBy('position')
            .execute();
          for (const row of rows) seen.push(row.id);
          last = rows.at(-1)?.position ?? last;
          if (done) return;
        }
      })();
      await Promise.all(
        stores.map(async (store, writer) => {
          // Eight in flight per instance. Work after the numbering (a claim's queue rows do
          // that) widens the window between numbering and COMMIT in which a reordering would
          // show.
          const pending = Array.from({ length: perWriter }, (_, index) => index);
          await Promise.all(
            Array.from({ length: 8 }, async () => {
              for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
                const runId = id(writer + 1, next);
                await store.insertRun(run(runId), ['web1'], undefined, [], async (trx) => {
                  await numberRun(trx, runId);
                  await sql`select pg_sleep(${Math.random() / 500})`.execute(trx);
                });
              }
            }),
          );
        }),
      );
      writing = false;
      await tail;
      const all = await reader.db
        .selectFrom('runs')
        .select(['id', 'position'])
        .orderBy('position')
        .execute();
      expect(all).toHaveLength(3 * perWriter);
      // Dense: numbers are taken only by transactions that commit.
      expect(all.map((row) => row.position)).toEqual(all.map((_, index) => index + 1));
      // The tailing reader saw every run once, none stepped over.
      expect(seen).toHaveLength(all.length);
      expect(new Set(seen)).toEqual(new Set(all.map((row) => row.id)));
      // Cursor pages (GET /v1/runs) through another instance: every run once, newest first.
      const paged: number[] = [];
      let cursor: { position: number } | undefined;
      for (let page = 0; page < 100; page++) {
        const rows = await (stores[2] as RunStore).listRuns({}, 7, cursor);
        paged.push(...rows.map((row) => row.position));
        if (rows.length < 7) break;
        cursor = { position: (rows.at(-1) as { position: number }).position };
      }
      expect(paged).toEqual(all.map((row) => row.position).reverse());
      // The counter row holds the last number handed out.
      const counter = await reader.db
        .selectFrom('run_numbering')
        .select('last_position')
        .executeTakeFirstOrThrow();
      expect(counter.last_position).toBe(3 * perWriter);
    } finally {
      for (const store of stores) await store.close();
    }
  }, 120_000);

  it('an insert that fails after numbering takes no number; an old-version instance numbering by max + 1 is caught up with', async () => {
    const url = await freshUrl();
    const store = await openRunStore(url);
    try {
      await store.insertRun(run(id(1, 1)), ['web1']);
      const failed = await store
        .insertRun(run(id(1, 2)), ['web1'], undefined, [], async (trx) => {
          await numberRun(trx, id(1, 2));
          throw new Error('the claim failed');
        })
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(Error);
      // An instance of the previous version writes a run numbered max + 1, not the counter.
      await sql`insert into runs (id, trace_id, action, status, principal, source, dry_run, created_at, nodes, request_json, has_sensitive, plan_json, position, last_seq) values (${id(9, 1)}, ${'b'.repeat(32)}, 'noop', 'queued', 'token:ops', 'api', 0, '2026-12-02T10:00:00.000Z', '[]', '{}', 0, '{}', (select coalesce(max(position), 0) + 1 from runs), 0)`.execute(
        store.db,
      );
      const next = await store.insertRun(run(id(1, 3)), ['web1']);
      expect(next.inserted && next.run.position).toBe(3);
      const positions = (await store.listRuns({}, 10)).map((row) => [row.id, row.position]);
      expect(positions).toEqual([
        [id(1, 3), 3],
        [id(9, 1), 2],
        [id(1, 1), 1],
      ]);
    } finally {
      await store.close();
    }
  }, 60_000);
});
