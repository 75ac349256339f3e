/**
 * @rune/server/testing — helpers for tests and benchmarks of several `rune serve` instances: a
 * real PostgreSQL in a temporary directory, and an in-process OTLP/HTTP receiver for traces. This index is the complete surface of the subpath.
 */

export { type OtlpReceiver, startOtlpReceiver, type WireSpan } from './otlp-receiver.js';
export {
  PG_BIN,
  PG_TEST_USER,
  postgresAvailable,
  startPostgres,
  type TestPostgres,
} from './postgres.js';
