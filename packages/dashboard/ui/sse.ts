/**
 * Follows a run's Server-Sent Events with fetch (not EventSource) so that a dropped connection
 * resumes with `Last-Event-ID` set to the last seq received: nothing is lost or shown twice. A
 * reload starts again from the first event — the server replays every event of the run.
 */

/** One run v1 event (the members the dashboard reads). */
export interface RunEvent {
  seq: number;
  type: 'run-start' | 'node-start' | 'node-end' | 'run-end' | string;
  timestamp: string;
  node?: string;
  result?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Options of {@link followRunEvents}. */
export interface FollowOptions {
  onEvent(event: RunEvent): void;
  /** Connection state, for the "reconnecting" notice. */
  onState?(state: 'live' | 'reconnecting' | 'ended'): void;
  signal: AbortSignal;
  /**
   * Whether the run has ended (asked when a stream closes without `run-end`, which a run that
   * ended without events does; any other close is a dropped connection, resumed).
   */
  hasEnded(): Promise<boolean>;
}

const RETRY_MS = [500, 1000, 2000, 5000];

/** Streams the events of run `id` until the server closes the stream after run-end. */
export async function followRunEvents(id: string, options: FollowOptions): Promise<void> {
  let last = 0;
  let failures = 0;
  while (!options.signal.aborted) {
    try {
      const response = await fetch(`/v1/runs/${encodeURIComponent(id)}/events`, {
        headers: {
          accept: 'text/event-stream',
          ...(last > 0 ? { 'last-event-id': String(last) } : {}),
        },
        credentials: 'same-origin',
        signal: options.signal,
      });
      if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
      options.onState?.('live');
      failures = 0;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let received = 0;
      let sawEnd = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let index = buffer.indexOf('\n\n');
        while (index >= 0) {
          const block = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          index = buffer.indexOf('\n\n');
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('\n');
          if (data === '') continue;
          const event = JSON.parse(data) as RunEvent;
          if (event.seq <= last) continue;
          last = event.seq;
          received++;
          if (event.type === 'run-end') sawEnd = true;
          options.onEvent(event);
        }
      }
      if (sawEnd || (received === 0 && (await options.hasEnded()))) {
        options.onState?.('ended');
        return;
      }
      // Closed mid-run (a proxy, a restart): resume after the last event received.
      if (received === 0) throw new Error('the stream closed without events');
      options.onState?.('reconnecting');
    } catch (error) {
      if (options.signal.aborted) return;
      options.onState?.('reconnecting');
      const delay = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)] as number;
      failures++;
      void error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
