/**
 * @rune-examples/transport-example — a small, complete RUNE transport written the way a third
 * party would write one, and proven with `describeTransportConformance()` from `@rune/transport/testing`.
 */

export {
  createWorkdirTransport,
  DEFAULT_WORKDIR_DRAIN_MS,
  DEFAULT_WORKDIR_MAX_CONCURRENT_EXECS,
  VERSION,
  type WorkdirTransportOptions,
} from './workdir-transport.js';
