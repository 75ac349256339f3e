import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { parseSince } from './parse-options.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    if (RuneError.is(error)) return error.code;
    throw error;
  }
  return 'none';
};

describe('parse-options', () => {
  it('parses --since', () => {
    const now = new Date('2026-01-02T00:00:00Z');
    expect(parseSince('1d', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseSince('30m', now).toISOString()).toBe('2026-01-01T23:30:00.000Z');
    expect(parseSince('2025-12-31T00:00:00Z', now).toISOString()).toBe('2025-12-31T00:00:00.000Z');
    expect(codeOf(() => parseSince('yesterday', now))).toBe('INVALID_ARGUMENT');
    // Only whole m/h/d count as durations; '0m' is now; a duration too far back is refused.
    expect(parseSince(' 0m ', now).toISOString()).toBe(now.toISOString());
    for (const bad of ['30s', '1.5h', '5 m', `${'9'.repeat(400)}d`, '99999999999d']) {
      expect(
        codeOf(() => parseSince(bad, now)),
        bad,
      ).toBe('INVALID_ARGUMENT');
    }
  });
});
