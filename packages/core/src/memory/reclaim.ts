/**
 * Giving memory back after a busy spell: one full garbage collection of the
 * calling thread's V8 heap (`rune serve` runs it in each of its threads once the server has been
 * idle for `[server] idle_reclaim`; docs/server.md).
 *
 * Why it is needed: under load V8 raises a heap's limits to a few times what is live, and it
 * gives the pages back only in a memory-reducing collection, which its memory reducer starts
 * only when allocation slows down inside JavaScript; a server that goes quiet allocates nothing,
 * so that never comes (bench/README.md, "RSS after 10 000 runs").
 *
 * How: Node offers no API for a collection without `--expose-gc` at start-up, which an embedder
 * of `createRuneServer()` cannot be asked for. So the flag is set for the moment one new context
 * is created, whose global `gc` is kept, and cleared again at once: contexts created later (vm,
 * tests) get no `gc` global and `globalThis.gc` of the process stays undefined (the pattern of
 * jest's leak detector). V8 flags are process-wide; each thread does this once, the first time
 * it reclaims, and the server asks its threads one at a time.
 */
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export { MAX_HEAP_GROWTH_PERCENT, setHeapGrowth, WORKER_RESOURCE_LIMITS } from './limits.js';

/** What one reclaim of one thread did. */
export interface HeapReclaim {
  /** Wall time of the collection: the thread's pause. */
  pauseMs: number;
  /** The thread's committed heap (V8's `total_heap_size`) before and after, in bytes. */
  heapBefore: number;
  heapAfter: number;
  /** Bytes live on the heap after the collection (`used_heap_size`). */
  heapUsed: number;
  /** The thread's young generation (V8's new space) committed before the collection, in bytes. */
  youngBefore: number;
  /** The thread's heap limit (`heap_size_limit`: its old and young generations' maxima). */
  heapLimit: number;
}

/** Committed bytes of the calling thread's young generation. */
const youngCommitted = (): number =>
  getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;

/**
 * V8's `gc()` of the gc extension. Called without arguments it is a full, synchronous collection
 * that gives the freed pages back (measured on Node 20: 244 -> 88 MB RSS for 160 MB of garbage);
 * with an options object (`{ type: 'major', execution: 'sync' }`, `flavor: 'last-resort'`) V8
 * 11.3 collected and gave back nothing in the same measurement.
 */
type GcFunction = () => void;

let collect: GcFunction | undefined;

/** The gc function of this thread (see the module comment); obtained once. */
function garbageCollector(): GcFunction {
  if (collect !== undefined) return collect;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    collect = exposed as GcFunction;
    return collect;
  }
  setFlagsFromString('--expose-gc');
  try {
    collect = runInNewContext('gc') as GcFunction;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return collect;
}

/** Runs one full garbage collection of the calling thread, now. */
export function reclaimHeap(): HeapReclaim {
  const gc = garbageCollector();
  const heapBefore = getHeapStatistics().total_heap_size;
  const youngBefore = youngCommitted();
  const started = performance.now();
  gc();
  const pauseMs = performance.now() - started;
  const after = getHeapStatistics();
  return {
    pauseMs,
    heapBefore,
    heapAfter: after.total_heap_size,
    heapUsed: after.used_heap_size,
    youngBefore,
    heapLimit: after.heap_size_limit,
  };
}
