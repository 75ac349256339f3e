import { describe, expect, it } from 'vitest';
import { ERROR_CODE_PATTERN } from '../../common/primitives.js';
import {
  CLI_EXIT_CODES,
  ERROR_CATALOG,
  ERROR_CATEGORIES,
  ERROR_CODES,
  type ErrorCategory,
  exitCodeFor,
  isErrorCode,
} from './catalog.js';

/** The one CLI exit code of each category. */
const EXIT_CODE_OF_CATEGORY: Record<ErrorCategory, number> = {
  validation: CLI_EXIT_CODES.USAGE,
  policy: CLI_EXIT_CODES.POLICY,
  transport: CLI_EXIT_CODES.TRANSPORT,
  timeout: CLI_EXIT_CODES.TIMEOUT,
  plugin: CLI_EXIT_CODES.ACTION_FAILED,
  protocol: CLI_EXIT_CODES.PROTOCOL,
  cancelled: CLI_EXIT_CODES.CANCELLED,
  internal: CLI_EXIT_CODES.INTERNAL,
};

describe('EPS catalog', () => {
  it.each(ERROR_CODES)('%s is complete and consistent', (code) => {
    const entry = ERROR_CATALOG[code];
    expect(code).toMatch(new RegExp(ERROR_CODE_PATTERN));
    expect(ERROR_CATEGORIES).toContain(entry.category);
    expect(entry.exitCode).toBe(EXIT_CODE_OF_CATEGORY[entry.category]);
    expect(exitCodeFor(code)).toBe(entry.exitCode);
    expect(typeof entry.retryable).toBe('boolean');
    // One line for people: a sentence, not a novel.
    expect(entry.description).toMatch(/^[A-Z].*\.$/);
    expect(entry.description).not.toContain('\n');
    expect(entry.description.length).toBeLessThanOrEqual(200);
  });

  it('uses every category and no exit code outside the CLI table', () => {
    expect(new Set(ERROR_CODES.map((code) => ERROR_CATALOG[code].category))).toEqual(
      new Set(ERROR_CATEGORIES),
    );
    const exitCodes = new Set<number>(Object.values(CLI_EXIT_CODES));
    for (const code of ERROR_CODES) expect(exitCodes.has(ERROR_CATALOG[code].exitCode)).toBe(true);
    expect(CLI_EXIT_CODES.SUCCESS).toBe(0);
  });

  it('has no duplicate descriptions', () => {
    const descriptions = ERROR_CODES.map((code) => ERROR_CATALOG[code].description);
    expect(new Set(descriptions).size).toBe(descriptions.length);
  });

  it('isErrorCode accepts catalog codes only', () => {
    expect(isErrorCode('PLUGIN_FAILED')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('__proto__')).toBe(false);
    expect(isErrorCode('NOT_A_CODE')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });
});
