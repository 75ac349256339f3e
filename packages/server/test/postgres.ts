/** The PostgreSQL test harness lives at `@rune/server/testing` (the benchmark uses it too). */
export {
  postgresAvailable,
  startPostgres,
  type TestPostgres,
} from '../src/testing/index.js';
