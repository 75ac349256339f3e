import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { preparedQuery } from './prepared.js';
import { openRunStore, type RunStore } from './run-store.js';
import type { StoreDatabase } from './schema.js';

const dirs: string[] = [];
const stores: RunStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const token = (name: string, role: string) => ({
  id: `id-${name}`,
  name,
  role,
  secret_sha256: name.padEnd(64, '0'),
  created_at: '2026-12-01T00:00:00.000Z',
  expires_at: null,
  revoked_at: null,
  last_used_at: null,
});

describe('preparedQuery', () => {
  it('compiles once and binds each call its own values, around the constants of the query', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rune-prepared-'));
    dirs.push(dir);
    const store = await openRunStore(join(dir, 'store.sqlite'));
    stores.push(store);
    for (const [name, role] of [
      ['a', 'viewer'],
      ['b', 'operator'],
      ['c', 'operator'],
    ] as const) {
      await store.insertToken(token(name, role));
    }
    let builds = 0;
    // A constant ('operator') between the two values: only the values' slots change per call.
    const named = preparedQuery<StoreDatabase, { name: string }>(2, (db, first, second) => {
      builds += 1;
      return db
        .selectFrom('api_tokens')
        .select('name')
        .where((eb) =>
          eb.or([eb('name', '=', first), eb('role', '=', 'operator'), eb('name', '=', second)]),
        )
        .orderBy('name');
    });
    expect((await named(store.db, 'a', 'zz')).map((row) => row.name)).toEqual(['a', 'b', 'c']);
    expect((await named(store.db, 'x', 'y')).map((row) => row.name)).toEqual(['b', 'c']);
    // A value that looks like SQL stays a value.
    expect(await named(store.db, "' or 1=1 --", 'q')).toHaveLength(2);
    expect(builds).toBe(1);
    expect((await store.getToken('id-b'))?.role).toBe('operator');
    expect(await store.getToken('id-none')).toBeUndefined();
  });
});
