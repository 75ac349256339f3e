/**
 * @rune/core/testing — the complete public surface of core's test helpers: a recording transport
 * and `catchRuneError`. The transport conformance suite and test plugins live in
 * `@rune/transport/testing`.
 */

export { catchRuneError } from './catch-rune-error.js';
export {
  createRecordingTransport,
  type RecordingTransport,
  type RecordingTransportOptions,
} from './recording-transport.js';
