import { describe, expect, it } from 'vitest';
import type { StormSettings, ThrottleSettings } from './rules.js';
import { decideThrottle, type ThrottleFacts } from './throttle.js';

const MIN = 60_000;
const storm: StormSettings = { maxRuns: 3, windowMs: 10 * MIN, holdExpiresMs: 60 * MIN };
const facts = (over: Partial<ThrottleFacts> = {}): ThrottleFacts => ({
  now: 100 * MIN,
  startsAt: 100 * MIN,
  episodesInWindow: 1,
  stormRuns: 0,
  ...over,
});
const settings = (over: Partial<ThrottleSettings> = {}): ThrottleSettings => ({
  groupBy: ['alertname', 'instance'],
  ...over,
});

describe('decideThrottle (injected clock)', () => {
  it('runs when nothing throttles', () => {
    expect(decideThrottle(settings(), storm, facts())).toEqual({ kind: 'run' });
  });

  it('once_within: one run per group per window, then again after it', () => {
    const s = settings({ onceWithinMs: 10 * MIN });
    // timeline: ran at t=100m; alerts at 100m+1ms, 109m59s (throttled), 110m (runs)
    expect(decideThrottle(s, storm, facts({ now: 100 * MIN + 1, lastRunAt: 100 * MIN })).kind).toBe(
      'throttled',
    );
    expect(
      decideThrottle(s, storm, facts({ now: 110 * MIN - 1000, lastRunAt: 100 * MIN })).kind,
    ).toBe('throttled');
    expect(decideThrottle(s, storm, facts({ now: 110 * MIN, lastRunAt: 100 * MIN })).kind).toBe(
      'run',
    );
  });

  it('once_after: pending until the alert has fired that long, due exactly at start + duration', () => {
    const s = settings({ onceAfterMs: 5 * MIN });
    const early = decideThrottle(s, storm, facts({ now: 102 * MIN, startsAt: 100 * MIN }));
    expect(early).toMatchObject({ kind: 'pending', dueAt: 105 * MIN });
    expect(decideThrottle(s, storm, facts({ now: 105 * MIN, startsAt: 100 * MIN })).kind).toBe(
      'run',
    );
    // When due, the sweeper decides again without once_after but with every other check.
    expect(
      decideThrottle(
        { ...s, onceWithinMs: MIN },
        storm,
        facts({ now: 102 * MIN, lastRunAt: 102 * MIN - 1 }),
        true,
      ).kind,
    ).toBe('throttled');
  });

  it('accumulate_within + threshold: acts on the Nth alert of the window', () => {
    const s = settings({ accumulateWithinMs: 10 * MIN, threshold: 3 });
    expect(decideThrottle(s, storm, facts({ episodesInWindow: 1 }))).toMatchObject({
      kind: 'throttled',
      reason: expect.stringMatching(/1 of 3/),
    });
    expect(decideThrottle(s, storm, facts({ episodesInWindow: 2 })).kind).toBe('throttled');
    expect(decideThrottle(s, storm, facts({ episodesInWindow: 3 })).kind).toBe('run');
  });

  it('storm breaker: beyond max_runs automatic runs in the window, matches are held until expiry', () => {
    expect(decideThrottle(settings(), storm, facts({ stormRuns: 2 })).kind).toBe('run');
    expect(decideThrottle(settings(), storm, facts({ stormRuns: 3 }))).toMatchObject({
      kind: 'held',
      until: 160 * MIN,
    });
  });

  it('a throttled alert is not held: throttling comes before the breaker', () => {
    const s = settings({ onceWithinMs: 10 * MIN });
    expect(decideThrottle(s, storm, facts({ lastRunAt: 99 * MIN, stormRuns: 99 })).kind).toBe(
      'throttled',
    );
  });
});
