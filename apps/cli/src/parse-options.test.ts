import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { parseDurationMs, parseNodeArgs, parseSince, readParamsArg } from './parse-options.js';

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
  it('flattens repeatable, comma-separated nodes', () => {
    expect(parseNodeArgs(['a,b', ' c ', '', 'd,,'])).toEqual(['a', 'b', 'c', 'd']);
    expect(parseNodeArgs(undefined)).toEqual([]);
  });

  it('parses durations', () => {
    expect(parseDurationMs('1500')).toBe(1500);
    expect(parseDurationMs(250)).toBe(250);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('5m')).toBe(300_000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('1h')).toBe(3_600_000);
    for (const bad of ['soon', '-1', '0', '5 m', '1d', '']) {
      expect(
        codeOf(() => parseDurationMs(bad)),
        bad,
      ).toBe('INVALID_ARGUMENT');
    }
  });

  it('reads --params from stdin, inline JSON, and refuses non-objects', () => {
    expect(readParamsArg('-', () => '{"a":1}')).toEqual({ a: 1 });
    expect(readParamsArg('{"b":"x"}')).toEqual({ b: 'x' });
    expect(codeOf(() => readParamsArg('[1]'))).toBe('INVALID_PARAMETERS');
    expect(codeOf(() => readParamsArg('{'))).toBe('INVALID_PARAMETERS');
    expect(codeOf(() => readParamsArg('@/no/such/file.json'))).toBe('INVALID_PARAMETERS');
  });

  it('parses --since', () => {
    const now = new Date('2026-01-02T00:00:00Z');
    expect(parseSince('1d', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseSince('30m', now).toISOString()).toBe('2026-01-01T23:30:00.000Z');
    expect(parseSince('2025-12-31T00:00:00Z', now).toISOString()).toBe('2025-12-31T00:00:00.000Z');
    expect(codeOf(() => parseSince('yesterday', now))).toBe('INVALID_ARGUMENT');
  });
});
