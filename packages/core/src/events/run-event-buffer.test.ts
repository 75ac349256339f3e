import { describe, expect, it } from 'vitest';
import { createRunEventBuffer, type RuneRunEvent } from './run-event-buffer.js';

// The buffer never looks inside an event: a seq number is enough to tell them apart.
const event = (seq: number): RuneRunEvent => ({ seq }) as unknown as RuneRunEvent;

async function drain(events: AsyncIterable<RuneRunEvent>): Promise<number[]> {
  const seqs: number[] = [];
  for await (const item of events) seqs.push(item.seq);
  return seqs;
}

describe('createRunEventBuffer', () => {
  it('gives every consumer every event, however late it starts', async () => {
    const buffer = createRunEventBuffer();
    const early = drain(buffer.events);
    buffer.push(event(1));
    buffer.push(event(2));
    const middle = drain(buffer.events);
    await Promise.resolve();
    buffer.push(event(3));
    buffer.close();
    buffer.push(event(4)); // ignored: closed
    expect(await early).toEqual([1, 2, 3]);
    expect(await middle).toEqual([1, 2, 3]);
    expect(await drain(buffer.events)).toEqual([1, 2, 3]);
    expect(buffer.snapshot().map((item) => item.seq)).toEqual([1, 2, 3]);
  });

  it('a consumer that waits is woken by the next push, and ends at close', async () => {
    const buffer = createRunEventBuffer();
    const iterator = buffer.events[Symbol.asyncIterator]();
    const pending = iterator.next();
    buffer.push(event(7));
    expect(await pending).toEqual({ done: false, value: event(7) });
    const last = iterator.next();
    buffer.close();
    expect(await last).toEqual({ done: true, value: undefined });
  });

  it('breaking out of one iteration leaves the others going', async () => {
    const buffer = createRunEventBuffer();
    buffer.push(event(1));
    buffer.push(event(2));
    for await (const item of buffer.events) {
      expect(item.seq).toBe(1);
      break;
    }
    buffer.close();
    expect(await drain(buffer.events)).toEqual([1, 2]);
  });
});
