import { RuneError } from '@rune/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { abortReasonCode, type ScheduledOutcome, scheduleFleet } from './scheduler.js';

type Result = { ok: boolean; node: string; cancelled?: string };

/** A controllable fake run: each node's run resolves when the test says so. */
function harness() {
  const pending = new Map<string, { resolve: (ok: boolean) => void; signal: AbortSignal }>();
  const started: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const run = (node: string, signal: AbortSignal): Promise<Result> =>
    new Promise((resolve) => {
      started.push(node);
      running++;
      maxRunning = Math.max(maxRunning, running);
      const finish = (ok: boolean, cancelled?: string): void => {
        running--;
        pending.delete(node);
        resolve(cancelled === undefined ? { ok, node } : { ok, node, cancelled });
      };
      signal.addEventListener('abort', () => finish(false, abortReasonCode(signal)), {
        once: true,
      });
      pending.set(node, { resolve: (ok) => finish(ok), signal });
    });
  const settle = async (node: string, ok = true): Promise<void> => {
    const entry = pending.get(node);
    if (entry === undefined) throw new Error(`${node} is not running`);
    entry.resolve(ok);
    await flush();
  };
  return {
    run,
    started,
    pending,
    settle,
    get maxRunning() {
      return maxRunning;
    },
  };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
const isFailure = (result: Result): boolean => !result.ok;
const nodes = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `n${String(i + 1).padStart(2, '0')}`);
const summary = (outcomes: ScheduledOutcome<string, Result>[]): string[] =>
  outcomes.map((o) =>
    o.status === 'completed'
      ? `${o.node}:${o.result.cancelled ?? (o.result.ok ? 'ok' : 'fail')}`
      : `${o.node}:${o.reason}`,
  );

afterEach(() => {
  vi.useRealTimers();
});

describe('scheduleFleet', () => {
  it('honours the concurrency bound and gives every node exactly one outcome', async () => {
    const h = harness();
    const seen: string[] = [];
    const auto = (node: string, signal: AbortSignal): Promise<Result> => {
      const promise = h.run(node, signal);
      setTimeout(() => h.pending.get(node)?.resolve(true), Math.floor(Math.random() * 5));
      return promise;
    };
    const outcomes = await scheduleFleet(nodes(40), { concurrency: 7 }, auto, isFailure, {
      onOutcome: (o) => seen.push(o.node),
    });
    expect(h.maxRunning).toBe(7);
    expect(outcomes.map((o) => o.node)).toEqual(nodes(40));
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
    expect([...seen].sort()).toEqual(nodes(40));
    expect(new Set(seen).size).toBe(40);
  });

  it('streams outcomes in completion order and starts nodes in node order', async () => {
    const h = harness();
    const seen: string[] = [];
    const done = scheduleFleet(nodes(3), { concurrency: 3 }, h.run, isFailure, {
      onOutcome: (o) => seen.push(o.node),
    });
    await flush();
    expect(h.started).toEqual(['n01', 'n02', 'n03']);
    await h.settle('n03');
    await h.settle('n01');
    await h.settle('n02');
    const outcomes = await done;
    expect(seen).toEqual(['n03', 'n01', 'n02']);
    expect(outcomes.map((o) => o.node)).toEqual(['n01', 'n02', 'n03']);
  });

  it('runs the canary wave first and continues when it succeeds', async () => {
    const h = harness();
    const done = scheduleFleet(nodes(5), { concurrency: 5, canary: 2 }, h.run, isFailure);
    await flush();
    expect(h.started).toEqual(['n01', 'n02']);
    await h.settle('n01');
    expect(h.started).toEqual(['n01', 'n02']);
    await h.settle('n02');
    expect(h.started).toEqual(['n01', 'n02', 'n03', 'n04', 'n05']);
    for (const node of ['n03', 'n04', 'n05']) await h.settle(node);
    const outcomes = await done;
    expect(outcomes.map((o) => o.canary)).toEqual([true, true, false, false, false]);
    expect(summary(outcomes)).toEqual(['n01:ok', 'n02:ok', 'n03:ok', 'n04:ok', 'n05:ok']);
  });

  it('skips the rest with CANARY_FAILED when a canary fails, letting running canaries finish', async () => {
    const h = harness();
    const seen: string[] = [];
    const done = scheduleFleet(nodes(6), { concurrency: 2, canary: 3 }, h.run, isFailure, {
      onOutcome: (o) => seen.push(o.node),
    });
    await flush();
    await h.settle('n01', false);
    // n03 (a queued canary) and every later node are skipped at once; n02 still runs.
    expect(seen).toEqual(['n01', 'n03', 'n04', 'n05', 'n06']);
    await h.settle('n02');
    const outcomes = await done;
    expect(h.started).toEqual(['n01', 'n02']);
    expect(summary(outcomes)).toEqual([
      'n01:fail',
      'n02:ok',
      'n03:CANARY_FAILED',
      'n04:CANARY_FAILED',
      'n05:CANARY_FAILED',
      'n06:CANARY_FAILED',
    ]);
  });

  it('stops new starts once more than N failed; in-flight nodes finish', async () => {
    const h = harness();
    const done = scheduleFleet(
      nodes(8),
      { concurrency: 3, maxFailures: { count: 1 } },
      h.run,
      isFailure,
    );
    await flush();
    await h.settle('n01', false); // 1 failure: within budget, n04 starts
    expect(h.started).toEqual(['n01', 'n02', 'n03', 'n04']);
    await h.settle('n02', false); // 2 failures > 1: halt
    expect(h.started).toEqual(['n01', 'n02', 'n03', 'n04']);
    await h.settle('n03', false);
    await h.settle('n04', true);
    const outcomes = await done;
    expect(summary(outcomes)).toEqual([
      'n01:fail',
      'n02:fail',
      'n03:fail',
      'n04:ok',
      'n05:MAX_FAILURES_EXCEEDED',
      'n06:MAX_FAILURES_EXCEEDED',
      'n07:MAX_FAILURES_EXCEEDED',
      'n08:MAX_FAILURES_EXCEEDED',
    ]);
  });

  it('supports a percentage budget (floor of P% of all nodes)', async () => {
    const h = harness();
    const done = scheduleFleet(
      nodes(10),
      { concurrency: 1, maxFailures: { percent: 20 } },
      h.run,
      isFailure,
    );
    await flush();
    await h.settle('n01', false);
    await h.settle('n02', false);
    expect(h.started).toEqual(['n01', 'n02', 'n03']);
    await h.settle('n03', false); // 3 > floor(20% of 10) = 2
    const outcomes = await done;
    expect(outcomes.filter((o) => o.status === 'skipped')).toHaveLength(7);
    expect(h.started).toHaveLength(3);
  });

  it('max-failures 0 halts at the first failure', async () => {
    const h = harness();
    const done = scheduleFleet(
      nodes(3),
      { concurrency: 1, maxFailures: { count: 0 } },
      h.run,
      isFailure,
    );
    await flush();
    await h.settle('n01', false);
    expect(summary(await done)).toEqual([
      'n01:fail',
      'n02:MAX_FAILURES_EXCEEDED',
      'n03:MAX_FAILURES_EXCEEDED',
    ]);
  });

  it('cancels in-flight runs and skips the rest at the overall deadline', async () => {
    vi.useFakeTimers();
    const h = harness();
    const done = scheduleFleet(nodes(4), { concurrency: 2, deadlineMs: 1000 }, h.run, isFailure);
    await flush();
    await vi.advanceTimersByTimeAsync(400);
    await h.settle('n01');
    expect(h.started).toEqual(['n01', 'n02', 'n03']);
    await vi.advanceTimersByTimeAsync(600);
    const outcomes = await done;
    expect(summary(outcomes)).toEqual([
      'n01:ok',
      'n02:DEADLINE_EXCEEDED',
      'n03:DEADLINE_EXCEEDED',
      'n04:DEADLINE_EXCEEDED',
    ]);
    expect(outcomes[1]?.status).toBe('completed');
    expect(outcomes[3]?.status).toBe('skipped');
  });

  it('cancellation mid-run: no new starts, in-flight runs see an aborted signal, all nodes accounted for', async () => {
    const h = harness();
    const controller = new AbortController();
    const seen: string[] = [];
    const done = scheduleFleet(nodes(5), { concurrency: 2 }, h.run, isFailure, {
      signal: controller.signal,
      onOutcome: (o) => seen.push(o.node),
    });
    await flush();
    await h.settle('n01');
    controller.abort();
    const outcomes = await done;
    expect(h.started).toEqual(['n01', 'n02', 'n03']);
    expect(summary(outcomes)).toEqual([
      'n01:ok',
      'n02:RUN_CANCELLED',
      'n03:RUN_CANCELLED',
      'n04:RUN_CANCELLED',
      'n05:RUN_CANCELLED',
    ]);
    expect(outcomes[2]?.status).toBe('completed');
    expect([...seen].sort()).toEqual(nodes(5));
  });

  it('skips everything when the signal is already aborted', async () => {
    const h = harness();
    const outcomes = await scheduleFleet(nodes(2), { concurrency: 2 }, h.run, isFailure, {
      signal: AbortSignal.abort(),
    });
    expect(h.started).toEqual([]);
    expect(summary(outcomes)).toEqual(['n01:RUN_CANCELLED', 'n02:RUN_CANCELLED']);
  });

  it('handles an empty fleet and a canary larger than the fleet', async () => {
    const h = harness();
    expect(await scheduleFleet([], { concurrency: 3, canary: 2 }, h.run, isFailure)).toEqual([]);
    const done = scheduleFleet(nodes(2), { concurrency: 3, canary: 5 }, h.run, isFailure);
    await flush();
    await h.settle('n01');
    await h.settle('n02');
    expect((await done).every((o) => o.canary)).toBe(true);
  });

  it('rejects an invalid policy with INVALID_ARGUMENT', async () => {
    const h = harness();
    for (const policy of [
      { concurrency: 0 },
      { concurrency: Number.NaN },
      { concurrency: 1.5 },
      { concurrency: 2, canary: -1 },
      { concurrency: 2, maxFailures: { percent: 150 } },
      { concurrency: 2, maxFailures: { count: -1 } },
      { concurrency: 2, deadlineMs: -5 },
    ]) {
      await expect(scheduleFleet(nodes(1), policy, h.run, isFailure)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
  });

  it('a throwing run stops new starts, lets in-flight ones finish, then rejects', async () => {
    const h = harness();
    const boom = new Error('bug');
    const run = (node: string, signal: AbortSignal): Promise<Result> =>
      node === 'n01' ? Promise.reject(boom) : h.run(node, signal);
    const done = scheduleFleet(nodes(4), { concurrency: 2 }, run, isFailure);
    await flush();
    expect(h.started).toEqual(['n02']);
    await h.settle('n02');
    await expect(done).rejects.toBe(boom);
  });

  it('abortReasonCode tells a deadline from a cancellation', () => {
    expect(abortReasonCode(new AbortController().signal)).toBeUndefined();
    expect(abortReasonCode(AbortSignal.abort())).toBe('RUN_CANCELLED');
    expect(abortReasonCode(AbortSignal.abort(new RuneError('DEADLINE_EXCEEDED', 'x')))).toBe(
      'DEADLINE_EXCEEDED',
    );
  });
});
