import { describe, expect, it } from 'vitest';
import { parseDuration } from '../duration.js';
import {
  failureAllowance,
  fleetPolicyRecord,
  formatFailureBudget,
  MAX_CONCURRENCY,
  MAX_DEADLINE_MS,
  parseFailureBudget,
  parsePolicyInteger,
  validateFleetPolicy,
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
});

describe('policy bounds (issue 10)', () => {
  it.each(['1e3', '0x10', '1.5', '-1', '', ' ', 'NaN', '99999999999999999999', '10001'])(
    'parsePolicyInteger refuses %j',
    (text) => {
      expect(() => parsePolicyInteger(text, '--concurrency', 1, MAX_CONCURRENCY)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    },
  );

  it('parsePolicyInteger accepts decimal integers in range', () => {
    expect(parsePolicyInteger('1', '--concurrency', 1, MAX_CONCURRENCY)).toBe(1);
    expect(parsePolicyInteger('10000', '--concurrency', 1, MAX_CONCURRENCY)).toBe(10000);
    expect(parsePolicyInteger('0', '--canary', 0, 5)).toBe(0);
  });

  it.each([
    { concurrency: 1e21 },
    { concurrency: MAX_CONCURRENCY + 1 },
    { concurrency: 1, canary: 1e21 },
    { concurrency: 1, maxFailures: { count: 1e21 } },
    { concurrency: 1, deadlineMs: MAX_DEADLINE_MS + 1 },
  ])('validateFleetPolicy refuses %j (API callers too)', (policy) => {
    expect(() => validateFleetPolicy(policy)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('--max-failures counts are bounded; deadlines below 1 ms are refused', () => {
    expect(() => parseFailureBudget('99999999999999999')).toThrow();
    expect(() => parseDuration('0.4', '--deadline')).toThrow();
  });
});
