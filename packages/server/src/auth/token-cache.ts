/**
 * Token reads from memory on the embedded store: every authenticated request reads its token
 * and the policy reads the token's bounds, and on SQLite each read waited for the store's worker
 * thread, which may be inside a COMMIT's fsyncs (measured in bench/README.md, "rune serve": the
 * `pre` phase of a dry run was most of its p50 under load). Tokens change rarely; requests read
 * them all the time.
 *
 * What is cached: the reads that authenticate a request (the token's row, `authenticateToken`)
 * and the bounds the policy puts on it — not `last_used_at` readers (`rune token list` reads the
 * database). Exact, not "eventually": a cached read is used only while the token epoch is the one
 * it was read under. The epoch is a small file beside the store (`<store>.tokens`) that every change of
 * a token replaces after its COMMIT: `rune token create|revoke` in another process and the API
 * in this one alike (RunStore.insertToken/revokeToken, the API's token bounds). A request checks
 * the file (one `stat`), so a revocation is refused by every request that starts after the
 * command returned. The epoch is taken before the database read, so a read that raced a change
 * is stored under the older epoch and dropped by the next request.
 *
 * A change the epoch cannot see — a process killed between its COMMIT and the epoch file, or the
 * database edited by hand — is picked up when the entry is {@link TOKEN_CACHE_MAX_AGE_MS} old.
 * PostgreSQL (several instances) reads the database every time.
 */

import { randomBytes } from 'node:crypto';
import { renameSync, statSync, writeFileSync } from 'node:fs';

/** The longest a cached token read is used without reading the database again. */
export const TOKEN_CACHE_MAX_AGE_MS = 60_000;

/** Reads of token state, cached under the token epoch. */
export interface TokenCache {
  /** The value of `key`: cached under the current epoch, or loaded (and cached) now. */
  read<T>(key: string, load: () => Promise<T>): Promise<T>;
  /** A token changed (after its COMMIT): a new epoch, for this process and every other. */
  changed(): void;
}

/** The epoch file of the embedded store `storePath`. */
export function tokenEpochPath(storePath: string): string {
  return `${storePath}.tokens`;
}

/** Replaces the epoch file (a new inode: nobody mistakes it for the old one). */
export function touchTokenEpoch(epochPath: string): void {
  const temporary = `${epochPath}.${process.pid}.new`;
  writeFileSync(temporary, `${randomBytes(8).toString('hex')}\n`, { mode: 0o600 });
  renameSync(temporary, epochPath);
}

/** The epoch: the file's identity and times (a replacement is a new inode with new times). */
function epochOf(epochPath: string): string {
  const stat = statSync(epochPath, { throwIfNoEntry: false });
  return stat === undefined ? 'none' : `${stat.ino}:${stat.mtimeMs}:${stat.ctimeMs}:${stat.size}`;
}

/** A cache whose epoch is the file `epochPath`. */
export function createTokenCache(
  epochPath: string,
  options: { maxAgeMs?: number; now?: () => number } = {},
): TokenCache {
  const maxAgeMs = options.maxAgeMs ?? TOKEN_CACHE_MAX_AGE_MS;
  const now = options.now ?? Date.now;
  let epoch = epochOf(epochPath);
  let entries = new Map<string, { value: unknown; at: number }>();

  /** The current epoch; a new one empties the cache. */
  const current = (): string => {
    const seen = epochOf(epochPath);
    if (seen !== epoch) {
      epoch = seen;
      entries = new Map();
    }
    return seen;
  };

  return {
    async read<T>(key: string, load: () => Promise<T>): Promise<T> {
      const readUnder = current();
      const cached = entries.get(key);
      if (cached !== undefined && now() - cached.at < maxAgeMs) return cached.value as T;
      const at = now();
      const value = await load();
      // Kept only when no change was seen meanwhile (this read may predate it).
      if (current() === readUnder) entries.set(key, { value, at });
      return value;
    },

    changed() {
      touchTokenEpoch(epochPath);
      current();
    },
  };
}

const caches = new WeakMap<object, TokenCache>();

/** Makes `cache` the token cache of the store whose Kysely instance is `db`. */
export function registerTokenCache(db: object, cache: TokenCache): void {
  caches.set(db, cache);
}

/** The token cache of the store of `db` (the embedded store's), if it has one. */
export function tokenCacheOf(db: object): TokenCache | undefined {
  return caches.get(db);
}
