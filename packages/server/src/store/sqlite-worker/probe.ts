/**
 * The benchmark-only timing probe of the store's worker (`bench/alerts.mjs`). Off unless the
 * process starts with `RUNE_BENCH_WEBHOOK_PHASES=1`; then each operation's answer carries the
 * moments the worker passed for it (see {@link StoreOperationTiming}) and the worker counts the
 * fsyncs of each COMMIT. Nothing of it runs, or is sent, when it is off.
 */

/** The environment variable that turns the probe on (read once, when a module loads). */
export const WEBHOOK_PHASES_ENV = 'RUNE_BENCH_WEBHOOK_PHASES';

/** True when the probe records. Worker threads inherit the variable from the main thread. */
export const probeEnabled: boolean = process.env[WEBHOOK_PHASES_ENV] === '1';

/** Now, in milliseconds comparable across threads (`performance.timeOrigin` differs per thread). */
export const probeNow = (): number => performance.timeOrigin + performance.now();

/** What the store's worker measured for one operation (absolute ms, see {@link probeNow}). */
export interface StoreOperationTiming {
  /** The operation's message reached the worker. */
  received: number;
  /** Its statements ran (inside the worker's group). */
  ran: number;
  /** The group's COMMIT started. */
  commitStarted: number;
  /** The COMMIT returned (the operation is durable). */
  committed: number;
  /** fsync/fdatasync calls during that COMMIT. */
  fsyncs: number;
  /** Time spent in those calls (ms). */
  fsyncMs: number;
  /** Operations and writes that shared the COMMIT. */
  groupSize: number;
}
