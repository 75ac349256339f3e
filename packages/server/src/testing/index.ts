/**
 * @rune/server/testing — helpers for tests and benchmarks of several `rune serve` instances: a
 * real PostgreSQL in a temporary directory. This index is the complete surface of the subpath.
 */
export {
  PG_BIN,
  PG_TEST_USER,
  postgresAvailable,
  startPostgres,
  type TestPostgres,
} from './postgres.js';
