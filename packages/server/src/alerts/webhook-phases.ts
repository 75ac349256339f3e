/**
 * A benchmark-only probe of where a webhook's answer time goes (`bench/alerts.mjs`). Off unless
 * the process starts with `RUNE_BENCH_WEBHOOK_PHASES=1`; then every receiver request records
 * the moments it passed (absolute milliseconds, `performance.timeOrigin + performance.now()`,
 * comparable across the store's worker thread and the event loop) and the worker adds its own
 * (message received, statements run, its group's COMMIT started and ended, fsyncs in that
 * COMMIT). Why a probe: the server's histogram says how long an answer took, not what it waited
 * for, and on a loaded machine guesses about queues were wrong before.
 */

import type { StoreOperationTiming } from '../store/sqlite-worker/probe.js';

export { probeEnabled as webhookPhasesEnabled, probeNow } from '../store/sqlite-worker/probe.js';

/** The moments one webhook passed (absolute ms); absent ones it did not reach. */
export interface WebhookPhaseSample {
  /** Fastify's onRequest (headers read). */
  request: number;
  /** The route handler started (body read, hooks done). */
  handler: number;
  authenticated: number;
  parsed: number;
  normalized: number;
  /** The engine's durable step was asked for (after normalisation). */
  accepted: number;
  /** The store operation was asked for (the engine's batch closed). */
  storeAsked?: number;
  /** The store operation's moments, when the answer waited for the store (no intake). */
  store?: StoreOperationTiming;
  /** The intake's write and fdatasync (ms), when the answer waited for the intake instead. */
  intakeMs?: number;
  /** The store operation's promise resolved on the event loop. */
  stored?: number;
  /** reply.send() was called. */
  replied: number;
  /** Fastify's onResponse (the answer was written). */
  responded: number;
  /** Store operations (worker requests) the webhook's durable step cost. */
  storeOperations: number;
}

const samples: WebhookPhaseSample[] = [];

/** Keeps one webhook's sample (bounded: a benchmark's worth). */
export function recordWebhookPhases(sample: WebhookPhaseSample): void {
  if (samples.length < 1_000_000) samples.push(sample);
}

/** The samples recorded so far, and forgets them. */
export function takeWebhookPhaseSamples(): WebhookPhaseSample[] {
  return samples.splice(0, samples.length);
}
