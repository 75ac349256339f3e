import { describe, expect, it } from 'vitest';
import {
  createPromptGuard,
  ProgressBar,
  renderProgressLine,
  shouldShowProgress,
} from './progress.js';

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[mK]`, 'g');
const strip = (text: string): string => text.replace(ANSI, '').replace(/\r/g, '');

describe('renderProgressLine', () => {
  it('draws a bar proportional to finished nodes, with counts and elapsed time', () => {
    const line = renderProgressLine(
      { total: 10, running: 3, succeeded: 4, failed: 1, skipped: 0, elapsedMs: 12_340 },
      { columns: 100, color: false },
    );
    expect(line).toMatch(
      /^\[#+-+\] {2}5\/10 {2}ok 4 {2}failed 1 {2}skipped 0 {2}running 3 {2}12\.3s$/,
    );
    const bar = /\[([#-]+)\]/.exec(line)?.[1] ?? '';
    expect(bar.length).toBeGreaterThan(10);
    expect(bar.split('').filter((c) => c === '#').length).toBe(Math.round(bar.length / 2));
  });

  it('never exceeds the terminal width and drops the bar when narrow', () => {
    const state = {
      total: 1000,
      running: 50,
      succeeded: 900,
      failed: 3,
      skipped: 2,
      elapsedMs: 75_000,
    };
    for (const columns of [20, 50, 80, 200]) {
      const line = strip(renderProgressLine(state, { columns, color: true }));
      expect(line.length).toBeLessThanOrEqual(columns);
    }
    expect(renderProgressLine(state, { columns: 50, color: false })).not.toContain('[');
    expect(renderProgressLine(state, { columns: 120, color: false })).toContain('1m15s');
  });

  it('colours only when asked', () => {
    const state = { total: 2, running: 0, succeeded: 1, failed: 1, skipped: 0, elapsedMs: 0 };
    expect(renderProgressLine(state, { columns: 80, color: false })).not.toContain('\x1b[');
    expect(renderProgressLine(state, { columns: 80, color: true })).toContain('\x1b[');
  });
});

describe('shouldShowProgress', () => {
  it('shows a bar only on a TTY with pretty output', () => {
    expect(shouldShowProgress({ isTTY: true, output: 'pretty', total: 3 })).toBe(true);
    expect(shouldShowProgress({ isTTY: false, output: 'pretty', total: 3 })).toBe(false);
    expect(shouldShowProgress({ isTTY: undefined, output: 'pretty', total: 3 })).toBe(false);
    expect(shouldShowProgress({ isTTY: true, output: 'json', total: 3 })).toBe(false);
    expect(shouldShowProgress({ isTTY: true, output: 'jsonl', total: 3 })).toBe(false);
  });
});

describe('ProgressBar', () => {
  it('updates as nodes finish, throttles redraws, always draws the last state, and clears', () => {
    let clock = 0;
    const writes: string[] = [];
    const bar = new ProgressBar({
      total: 3,
      stream: { write: (chunk: string) => writes.push(chunk), columns: 80 },
      color: false,
      now: () => clock,
      throttleMs: 100,
    });
    bar.start();
    bar.start();
    bar.start(); // throttled
    expect(writes).toHaveLength(1);
    clock = 150;
    bar.finish('success');
    expect(strip(writes.at(-1) ?? '')).toContain('1/3  ok 1  failed 0  skipped 0  running 2');
    clock = 160;
    bar.finish('failure'); // throttled
    expect(writes).toHaveLength(2);
    bar.finish('skipped', false); // last: forced
    expect(strip(writes.at(-1) ?? '')).toContain('3/3  ok 1  failed 1  skipped 1  running 1');
    expect(writes.every((w) => w.startsWith('\r\x1b[2K'))).toBe(true);
    bar.clear();
    expect(writes.at(-1)).toBe('\r\x1b[2K');
    bar.finish('success');
    expect(writes.at(-1)).toBe('\r\x1b[2K');
  });

  it('interject prints above the bar and redraws it; tick redraws (throttled)', () => {
    let clock = 0;
    const writes: string[] = [];
    const bar = new ProgressBar({
      total: 2,
      stream: { write: (chunk: string) => writes.push(chunk), columns: 80 },
      color: false,
      now: () => clock,
      throttleMs: 100,
    });
    bar.interject(() => writes.push('before any draw\n'));
    expect(writes).toEqual(['before any draw\n']);
    bar.start();
    bar.interject(() => writes.push('line\n'));
    expect(writes.slice(-3, -1)).toEqual(['\r\x1b[2K', 'line\n']);
    expect(strip(writes.at(-1) ?? '')).toContain('0/2');
    const count = writes.length;
    bar.tick(); // throttled
    expect(writes).toHaveLength(count);
    clock = 2500;
    bar.tick();
    expect(strip(writes.at(-1) ?? '')).toContain('2.5s');
    bar.clear();
    bar.interject(() => writes.push('after clear\n'));
    expect(writes.slice(-2)).toEqual(['\r\x1b[2K', 'after clear\n']);
  });

  it('shows an ETA from the throughput so far, and which nodes are still running', () => {
    let clock = 0;
    const writes: string[] = [];
    const bar = new ProgressBar({
      total: 4,
      stream: { write: (chunk: string) => writes.push(chunk), columns: 120 },
      color: false,
      now: () => clock,
      throttleMs: 0,
      label: 'noop',
    });
    bar.start('web1');
    bar.start('web2');
    bar.start('db1');
    expect(strip(writes.at(-1) ?? '')).toMatch(/running 3 {2}0\.0s {2}noop {2}web1 web2 db1$/);
    expect(strip(writes.at(-1) ?? '')).not.toContain('eta');
    clock = 2000;
    bar.finish('success', true, 'web2');
    // One of four done in 2 s: three more take about 6 s.
    expect(strip(writes.at(-1) ?? '')).toMatch(/2\.0s {2}eta 6\.0s {2}noop {2}web1 db1$/);
    const narrow = renderProgressLine(
      { ...bar.snapshot(), runningNodes: ['alpha', 'bravo', 'charlie', 'delta', 'echo'] },
      { columns: 100, color: false },
    );
    expect(narrow.length).toBeLessThanOrEqual(99);
    expect(narrow).toMatch(/alpha( \w+)* \+\d$/);
  });

  it('pause holds node lines back and draws nothing until resume (a prompt owns the terminal)', () => {
    const writes: string[] = [];
    const bar = new ProgressBar({
      total: 2,
      stream: { write: (chunk: string) => writes.push(chunk), columns: 80 },
      color: false,
      throttleMs: 0,
    });
    bar.start('web1');
    bar.pause();
    expect(writes.at(-1)).toBe('\r\x1b[2K');
    const paused = writes.length;
    bar.start('web2');
    bar.tick();
    bar.interject(() => writes.push('✔ success web1\n'));
    bar.finish('success', true, 'web1');
    expect(writes).toHaveLength(paused);
    bar.resume();
    expect(writes[paused]).toBe('✔ success web1\n');
    expect(strip(writes.at(-1) ?? '')).toContain('1/2');
  });

  it('createPromptGuard pauses the bar around each prompt and runs prompts one at a time', async () => {
    const events: string[] = [];
    const bar = new ProgressBar({
      total: 1,
      stream: { write: () => {}, columns: 80 },
      color: false,
    });
    const pause = bar.pause.bind(bar);
    const resume = bar.resume.bind(bar);
    bar.pause = () => {
      events.push('pause');
      pause();
    };
    bar.resume = () => {
      events.push('resume');
      resume();
    };
    const guard = createPromptGuard(() => bar);
    let release: (value: string) => void = () => {};
    const first = guard(
      () =>
        new Promise<string>((resolve) => {
          events.push('ask 1');
          release = resolve;
        }),
    );
    const second = guard(async () => {
      events.push('ask 2');
      return 'two';
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['pause', 'ask 1']);
    release('one');
    expect(await first).toBe('one');
    expect(await second).toBe('two');
    expect(events).toEqual(['pause', 'ask 1', 'resume', 'pause', 'ask 2', 'resume']);
  });
});
