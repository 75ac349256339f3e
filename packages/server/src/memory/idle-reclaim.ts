/**
 * Idle reclaim (`[server] idle_reclaim`, docs/server.md): once the server has had no request
 * and no run for that long, a full garbage collection in each of its threads — the main thread,
 * the store's SQLite worker, the audit writer — one thread after the other, and a second round a
 * second later; then nothing more until requests come again.
 *
 * Why: under load V8 lets each heap grow to a few times what is live and gives the pages back
 * only in a memory-reducing collection that a quiet process never starts, so the RSS stays at its
 * busy size (bench/README.md, "RSS after 10 000 runs"). The collection's pause (measured: see the
 * `rune_memory_reclaim_pause_seconds` histogram) never meets a request: it runs only when none
 * started or ended for the whole idle time and no run is queued or running; a request that
 * arrives between two threads' collections stops the rest.
 *
 * Health and metrics requests (`/livez`, `/readyz`, `/metrics`) do not count as activity, so a
 * Prometheus scrape or a load balancer's probe every few seconds does not keep a quiet server
 * from reclaiming; a reclaim after a spell of only those requests is not repeated, since they
 * leave nothing behind to reclaim (a reclaim needs some other request since the previous one).
 */
import type { Server } from 'node:http';
import { type HeapReclaim, reclaimHeap } from '@rune/core/memory';
import type { ServerMetrics } from '../metrics.js';

/** One thread that can collect its garbage on request. */
export interface ReclaimableThread {
  /** `main`, `store` or `audit` (the metric's label). */
  name: string;
  /** Its collection; undefined when the thread is not running (nothing to give back). */
  reclaim(): Promise<HeapReclaim | undefined> | HeapReclaim | undefined;
}

/** Options of {@link startIdleReclaim}. */
export interface IdleReclaimOptions {
  /** Quiet time before a reclaim, in ms. */
  idleMs: number;
  /** The listener whose requests count as activity. */
  server: Pick<Server, 'on'>;
  /** True while runs are queued or running (then the server is not idle, whatever the requests). */
  busy(): boolean;
  /** The threads, main first. */
  threads: readonly ReclaimableThread[];
  metrics: Pick<ServerMetrics, 'memoryReclaims' | 'memoryReclaimPause'>;
  /** A warning line when a thread's collection failed (it is not retried before new activity). */
  onWarning?: (line: string) => void;
}

/** The running idle reclaim. */
export interface IdleReclaim {
  /** Resolves once the reclaim under way (if any) ended; for tests and shutdown. */
  settled(): Promise<void>;
  /** Stops the timer; no reclaim starts after this. */
  close(): void;
}

/** The wait between the two passes of a reclaim. */
const SECOND_PASS_DELAY_MS = 1_000;

/** Paths whose requests are not activity (probes and scrapes). */
const PASSIVE_PATHS = new Set(['/livez', '/readyz', '/metrics']);

const pathOf = (url: string | undefined): string => {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
};

/** Starts watching `server`'s requests; the first reclaim can come `idleMs` after start. */
export function startIdleReclaim(options: IdleReclaimOptions): IdleReclaim {
  const { idleMs } = options;
  /** When the last request started or ended (performance.now()). */
  let lastActivity = performance.now();
  /** Requests (other than probes) since the last reclaim; start-up counts as one. */
  let sinceReclaim = 1;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let secondPass: NodeJS.Timeout | undefined;
  /** Ends the wait for the second pass early (close). */
  let wake: (() => void) | undefined;
  let closed = false;

  const arm = (ms: number): void => {
    if (closed || timer !== undefined) return;
    timer = setTimeout(check, ms);
    timer.unref();
  };

  const active = (): void => {
    lastActivity = performance.now();
    sinceReclaim++;
    arm(idleMs);
  };

  /** One pass: a collection in each thread in turn, while nothing else happens. */
  const pass = async (startedAt: number, count: boolean): Promise<boolean> => {
    for (const thread of options.threads) {
      // A request came meanwhile: the remaining threads wait for the next quiet spell.
      if (closed || lastActivity !== startedAt || options.busy()) return false;
      try {
        const result = await thread.reclaim();
        if (result === undefined) continue;
        if (count) options.metrics.memoryReclaims.inc({ thread: thread.name });
        options.metrics.memoryReclaimPause.observe({ thread: thread.name }, result.pauseMs / 1000);
      } catch (error) {
        options.onWarning?.(
          `idle reclaim of the ${thread.name} thread failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    return true;
  };

  /**
   * Two passes, {@link SECOND_PASS_DELAY_MS} apart: V8 sweeps after a full collection on
   * background threads, and the pages that sweeping empties are given back only when the thread
   * next allocates or collects, which an idle thread does not (measured: bench/README.md).
   */
  const reclaimAll = async (): Promise<void> => {
    const startedAt = lastActivity;
    sinceReclaim = 0;
    if (!(await pass(startedAt, true))) return;
    await new Promise<void>((resolve) => {
      wake = resolve;
      secondPass = setTimeout(resolve, SECOND_PASS_DELAY_MS);
      secondPass.unref();
    });
    secondPass = undefined;
    wake = undefined;
    await pass(startedAt, false);
  };

  function check(): void {
    timer = undefined;
    if (closed || sinceReclaim === 0) return;
    const quietFor = performance.now() - lastActivity;
    if (quietFor < idleMs) {
      arm(idleMs - quietFor);
      return;
    }
    if (options.busy()) {
      arm(idleMs);
      return;
    }
    running = reclaimAll().finally(() => {
      running = undefined;
    });
  }

  options.server.on('request', (request: { url?: string }, response: NodeJS.EventEmitter) => {
    if (PASSIVE_PATHS.has(pathOf(request.url))) return;
    active();
    response.once('close', active);
  });
  arm(idleMs);

  return {
    settled: async () => {
      await running;
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (secondPass !== undefined) clearTimeout(secondPass);
      wake?.();
    },
  };
}

/** The main thread's entry of {@link IdleReclaimOptions.threads}. */
export const MAIN_THREAD: ReclaimableThread = { name: 'main', reclaim: reclaimHeap };
