import { describe, expect, it } from 'vitest';
import {
  failureAllowance,
  fleetPolicyRecord,
  formatFailureBudget,
  parseDuration,
  parseFailureBudget,
} from './policy.js';

describe('fleet policy values', () => {
  it.each([
    ['3', { count: 3 }],
    ['0', { count: 0 }],
    ['10%', { percent: 10 }],
    [' 2.5% ', { percent: 2.5 }],
    ['100%', { percent: 100 }],
  ])('parses --max-failures %j', (text, budget) => {
    expect(parseFailureBudget(text)).toEqual(budget);
  });

  it.each(['', '-1', '1.5', '101%', 'ten', '10 %', '%'])('rejects --max-failures %j', (text) => {
    expect(() => parseFailureBudget(text)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('formats and computes allowances', () => {
    expect(formatFailureBudget({ count: 3 })).toBe('3');
    expect(formatFailureBudget({ percent: 10 })).toBe('10%');
    expect(failureAllowance({ percent: 10 }, 25)).toBe(2);
    expect(failureAllowance({ count: 4 }, 2)).toBe(4);
    expect(fleetPolicyRecord({ concurrency: 50, canary: 2, maxFailures: { percent: 5 } })).toEqual({
      concurrency: 50,
      canary: 2,
      max_failures: '5%',
      deadline_ms: null,
    });
  });

  it.each([
    ['1500', 1500],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
  ])('parses duration %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '0', '-1s', '5d', 'soon'])('rejects duration %j', (text) => {
    expect(() => parseDuration(text, '--deadline')).toThrow(/--deadline must be a duration/);
  });
});
