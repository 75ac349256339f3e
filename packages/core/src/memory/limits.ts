/**
 * Keeping `rune serve`'s heaps near what is live while it is busy (the idle reclaim, reclaim.ts,
 * gives memory back once it is quiet). Measured after 10 000 dry runs, 50 at a time
 * (bench/README.md, "RSS right after 10 000 runs"): of ~320 MB resident, ~207 MB were V8 heaps
 * holding ~30 MB of live objects — the main thread's old generation at ~3x what was live, and
 * 16-32 MB of young generation in each worker thread.
 *
 * Two V8 policies cause it, and each has a switch that works after start-up (no re-exec, no
 * NODE_OPTIONS):
 * - the young generation of a worker thread: `resourceLimits.maxYoungGenerationSizeMb` of its
 *   `Worker` ({@link WORKER_RESOURCE_LIMITS});
 * - how far an old generation may grow beyond what survived the last full collection before
 *   the next one starts: V8 picks 1.1x-4x from its GC and mutator speeds, or a fixed factor with
 *   `--heap-growing-percent`, which it reads at every full collection of every thread, so
 *   `v8.setFlagsFromString` after start-up takes effect ({@link setHeapGrowth}; verified on Node
 *   20 / V8 11.3, limits.test.ts). Not so the young generation of the main thread:
 *   `--max-semi-space-size` is read only when a heap is created, and
 *   `--semi-space-growth-factor=1`, which keeps a young generation from growing, stops working as
 *   soon as a worker thread is created (measured; V8 raises factors below 2 when it sets up a heap).
 */
import { setFlagsFromString } from 'node:v8';
import type { ResourceLimits } from 'node:worker_threads';

/**
 * The resource limits of `rune serve`'s worker threads (the store's SQLite worker, the audit
 * writer): a young generation of 8 MB instead of V8's default of 48 MB (two semi-spaces of 16 MB,
 * which the workers filled under load). Both threads keep little across messages: with the limit
 * their old generations stayed at 8-16 MB (measured), the price is more frequent, shorter
 * scavenges.
 */
export const WORKER_RESOURCE_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  maxYoungGenerationSizeMb: 8,
});

/** The largest growth {@link setHeapGrowth} accepts, in percent (V8's own maximum is 4x). */
export const MAX_HEAP_GROWTH_PERCENT = 300;

/**
 * Sets how far each old generation of the process (every thread's) may grow beyond what survived
 * its last full collection before the next one starts: `percent` = 30 lets a heap with 30 MB live
 * grow to about 39 MB (V8 still grows by at least a few MB per step). `null` gives the choice back
 * to V8. Process-wide, like every V8 flag: an application embedding the server gets it too.
 */
export function setHeapGrowth(percent: number | null): void {
  if (
    percent !== null &&
    !(Number.isInteger(percent) && percent >= 1 && percent <= MAX_HEAP_GROWTH_PERCENT)
  ) {
    throw new RangeError(
      `heap growth must be an integer from 1 to ${MAX_HEAP_GROWTH_PERCENT} (percent), or null`,
    );
  }
  setFlagsFromString(`--heap-growing-percent=${percent ?? 0}`);
}
