/**
 * The event stream of one run: an append-only buffer that any number of consumers iterate, each
 * from the first event, whenever they start.
 *
 * It keeps every event instead of a sliding window because a run's events are bounded by its
 * plan: one run-start, at most one node-start and exactly one node-end per planned node, one
 * run-end — `2 × nodes + 2` events — and a consumer that attaches late (a server that stores the
 * run after starting it, a second SSE client) must still see all of them. The buffer lives as
 * long as the run handle that owns it.
 */
import type { NodeEndEvent, RunEvent } from '@rune/protocol';
import type { NodeRunResult } from '../execution/execute-plan.js';

/**
 * A run v1 event as core emits it: a protocol {@link RunEvent} whose node-end carries core's
 * {@link NodeRunResult} (the same members; `containment` always present). Assignable to
 * `RunEvent`, so every protocol validator and consumer takes it.
 */
export type RuneRunEvent =
  | Exclude<RunEvent, NodeEndEvent>
  | (Omit<NodeEndEvent, 'result'> & { result: NodeRunResult });

/** The writing side of a {@link RunEventBuffer}, kept by the code that runs the run. */
export interface RunEventBuffer {
  /** Every consumer sees the events in this order. Ignored after {@link RunEventBuffer.close}. */
  push(event: RuneRunEvent): void;
  /** No more events: iterators end once they have read everything before this. Idempotent. */
  close(): void;
  /** The events so far, in order (a copy). */
  snapshot(): RuneRunEvent[];
  /** An async iterable over every event, from the first; each iteration has its own cursor. */
  readonly events: AsyncIterable<RuneRunEvent>;
}

/** Creates an empty, open {@link RunEventBuffer}. */
export function createRunEventBuffer(): RunEventBuffer {
  const buffered: RuneRunEvent[] = [];
  let closed = false;
  // Consumers that caught up wait for the next push (or close) on one shared promise.
  let wake: () => void = () => undefined;
  let next = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const notify = (): void => {
    const resolve = wake;
    next = new Promise<void>((nextResolve) => {
      wake = nextResolve;
    });
    resolve();
  };

  const events: AsyncIterable<RuneRunEvent> = {
    [Symbol.asyncIterator](): AsyncIterator<RuneRunEvent> {
      let cursor = 0;
      let stopped = false;
      return {
        async next(): Promise<IteratorResult<RuneRunEvent>> {
          for (;;) {
            if (stopped) return { done: true, value: undefined };
            const event = buffered[cursor];
            if (event !== undefined) {
              cursor++;
              return { done: false, value: event };
            }
            if (closed) return { done: true, value: undefined };
            await next;
          }
        },
        async return(): Promise<IteratorResult<RuneRunEvent>> {
          // A consumer that breaks out stops reading; the run and other consumers go on.
          stopped = true;
          return { done: true, value: undefined };
        },
      };
    },
  };

  return {
    push(event) {
      if (closed) return;
      buffered.push(event);
      notify();
    },
    close() {
      if (closed) return;
      closed = true;
      notify();
    },
    snapshot: () => [...buffered],
    events,
  };
}
