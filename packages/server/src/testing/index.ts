/**
 * @rune/server/testing — helpers for tests and benchmarks of several `rune serve` instances: a
 * real PostgreSQL in a temporary directory, an in-process OTLP/HTTP receiver for traces, a
 * Splunk HEC-format receiver for record shipping, and the check of exported spans against the span
 * reference of docs/observability.md. This index is the complete surface of the subpath.
 */

export {
  HEC_TOKEN,
  type HecBatch,
  type HecEvent,
  type HecMode,
  type HecReceiver,
  startHec,
} from './hec-receiver.js';
export { type OtlpReceiver, startOtlpReceiver, type WireSpan } from './otlp-receiver.js';
export {
  freePort,
  PG_BIN,
  PG_TEST_USER,
  postgresAvailable,
  startPostgres,
  type TestPostgres,
} from './postgres.js';
export {
  REQUEST_SPAN,
  readSpanReference,
  type SpanReference,
  spanReferenceProblems,
} from './span-reference.js';
