import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { durationToMs, parseDuration } from './duration.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    if (RuneError.is(error)) return error.code;
    throw error;
  }
  return 'none';
};

describe('parseDuration (--timeout, --deadline)', () => {
  it.each([
    ['1500', 1500],
    ['250', 250],
    [' 250 ', 250],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
  ])('parses %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    ' ',
    '0',
    '0.4',
    '-1',
    '-1s',
    '5d',
    '1d',
    '5 m',
    'soon',
    '1e3',
    '0x10',
    '1.s',
    '.5s',
  ])('refuses %j with INVALID_ARGUMENT naming the option', (text) => {
    expect(codeOf(() => parseDuration(text, '--deadline'))).toBe('INVALID_ARGUMENT');
    expect(() => parseDuration(text, '--deadline')).toThrow(/--deadline must be a duration/);
  });

  it('refuses a number too large to be finite', () => {
    expect(codeOf(() => parseDuration(`${'9'.repeat(400)}h`))).toBe('INVALID_ARGUMENT');
  });
});

describe('durationToMs (the grammar, per syntax)', () => {
  const since = { units: ['m', 'h', 'd'], bareMilliseconds: false, fractions: false } as const;
  it('accepts only the units, bare numbers and fractions the syntax allows', () => {
    expect(durationToMs('2d', since)).toBe(172_800_000);
    expect(durationToMs('0m', since)).toBe(0);
    expect(durationToMs('30s', since)).toBeUndefined();
    expect(durationToMs('1500', since)).toBeUndefined();
    expect(durationToMs('1.5h', since)).toBeUndefined();
    expect(durationToMs('1.5h')).toBe(5_400_000);
  });
});
