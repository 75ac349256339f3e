/**
 * The token lookup every request makes is answered without waiting for the store's group commit
 * (`UNHELD_READ_MARK` in prepared.ts): a read that runs inside an open group is otherwise
 * answered only with that group's COMMIT, so each request waited for a commit (another request's
 * writes) before its own. Shown by order, not time: with the mark, the read of a token sent in the
 * same turn as a write is answered before the write's commit; without it, after.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createToken } from '../src/auth/tokens.js';
import { openRunStore, type RunStore } from '../src/store/run-store.js';
import { createTestHome, type TestHome } from './harness.js';

const homes: TestHome[] = [];
const stores: RunStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close().catch(() => undefined)));
  for (const home of homes.splice(0)) home.remove();
});

describe('the token lookup', () => {
  it('is answered before the COMMIT of the group it runs in, and sees the committed token', async () => {
    const home = createTestHome();
    homes.push(home);
    const store = await openRunStore(home.storePath);
    stores.push(store);
    const { id } = await createToken(store, { name: 'reader', role: 'viewer', expires: '1d' });
    for (let round = 0; round < 20; round++) {
      const order: string[] = [];
      // One turn: a write opens the worker's group, the lookup arrives inside it.
      const write = store
        .touchToken(id, new Date(Date.UTC(2026, 11, 2, 0, 0, round)).toISOString())
        .then(() => order.push('write committed'));
      const read = store.getToken(id).then((row) => {
        order.push('token read');
        return row;
      });
      const [row] = await Promise.all([read, write]);
      expect(row?.name).toBe('reader');
      expect(order).toEqual(['token read', 'write committed']);
    }
    // And the write did commit: a later lookup sees it.
    expect((await store.getToken(id))?.last_used_at).toBe('2026-12-02T00:00:19.000Z');
  });
});
