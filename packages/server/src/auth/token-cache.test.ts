import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenCache, touchTokenEpoch } from './token-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'rune-token-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the token cache', () => {
  it('answers from memory until the epoch file is replaced, by this process or another', async () => {
    const epoch = join(dir, 'store.sqlite.tokens');
    const cache = createTokenCache(epoch);
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.read('token:a', load)).toBe(1);
    expect(await cache.read('token:a', load)).toBe(1);
    // Another process replaces the file (what RunStore.revokeToken does after its COMMIT).
    touchTokenEpoch(epoch);
    expect(await cache.read('token:a', load)).toBe(2);
    expect(await cache.read('token:a', load)).toBe(2);
    // Many replacements in a row: each one is a new epoch (no inode or time is taken for an old one).
    for (let i = 0; i < 50; i++) {
      touchTokenEpoch(epoch);
      expect(await cache.read('token:a', load)).toBe(3 + i);
    }
  });

  it('does not keep a read that raced a change, and forgets an entry after its maximum age', async () => {
    const epoch = join(dir, 'race.tokens');
    let clock = 0;
    const cache = createTokenCache(epoch, { maxAgeMs: 1000, now: () => clock });
    // A read of the database is under way when a change lands; a request after the change reads
    // again; the slow read then returns the old value, which must not be kept.
    let finishSlow: (value: string) => void = () => {};
    const slow = cache.read(
      'token:b',
      () => new Promise<string>((resolve) => (finishSlow = resolve)),
    );
    touchTokenEpoch(epoch);
    expect(await cache.read('token:b', async () => 'revoked')).toBe('revoked');
    finishSlow('active');
    expect(await slow).toBe('active');
    expect(await cache.read('token:b', async () => 'read again')).toBe('revoked');
    clock = 1000;
    expect(await cache.read('token:b', async () => 'read again')).toBe('read again');
  });
});
