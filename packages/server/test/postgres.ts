/** The PostgreSQL test harness lives at `@rune/server/testing` (the benchmark uses it too). */
import { afterAll, beforeAll } from 'vitest';
import { postgresAvailable, startPostgres, type TestPostgres } from '../src/testing/index.js';

export { postgresAvailable, startPostgres, type TestPostgres };

/**
 * One PostgreSQL server for the calling test file, started before its tests (when Debian's
 * `postgresql` is installed) and stopped after them. `freshUrl()` creates a new, empty database
 * on it (named `<prefix>_<n>`) and throws when PostgreSQL is not installed.
 */
export function usePostgresPerFile(prefix: string): { freshUrl: () => Promise<string> } {
  let postgres: TestPostgres | undefined;
  let databases = 0;
  beforeAll(async () => {
    if (postgresAvailable) postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await postgres?.stop();
  });
  return {
    freshUrl: async () => {
      if (postgres === undefined)
        throw new Error('PostgreSQL 15 is not installed (package postgresql)');
      databases++;
      return postgres.createDatabase(`${prefix}_${databases}`);
    },
  };
}
