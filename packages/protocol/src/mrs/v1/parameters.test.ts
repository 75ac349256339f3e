import { describe, expect, it } from 'vitest';
import {
  checkParameterValue,
  compileParameterPattern,
  escapeJsonPointerToken,
  isTopLevelParameterValue,
  resolveParameters,
} from './parameters.js';
import type { MrsManifest } from './schema.js';

const manifest: Pick<MrsManifest, 'name' | 'parameters'> = {
  name: 'gather-logs',
  parameters: {
    type: 'object',
    properties: {
      since: { type: 'string', default: '1h', pattern: '^[1-9][0-9]*[smhd]$' },
      max_lines: { type: 'integer', minimum: 1, maximum: 1000 },
      units: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 2 },
      mode: { type: 'string', enum: ['summary', 'full'] },
      token: { type: 'string', sensitive: true, minLength: 4 },
    },
    required: ['max_lines'],
  },
};

const violations = (given: unknown, target = manifest): unknown => {
  const result = resolveParameters(target, given);
  return result.ok ? [] : result.error.details?.violations;
};

describe('resolveParameters', () => {
  it('fills defaults and keeps given values', () => {
    expect(resolveParameters(manifest, { max_lines: 10 })).toEqual({
      ok: true,
      value: { since: '1h', max_lines: 10 },
    });
    expect(resolveParameters(manifest, { max_lines: 10, since: '2d', units: ['a'] })).toEqual({
      ok: true,
      value: { since: '2d', max_lines: 10, units: ['a'] },
    });
  });

  it('lists every violation with INVALID_PARAMETERS', () => {
    const result = resolveParameters(manifest, {
      since: '1 hour',
      units: ['docker', 'too-long-unit', 3],
      mode: 'verbose',
      token: 'ab',
      color: 'red',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('INVALID_PARAMETERS');
    expect(result.error.details?.violations).toEqual([
      { pointer: '/since', message: 'Expected a value matching the pattern' },
      { pointer: '/max_lines', message: 'Expected required parameter' },
      { pointer: '/units', message: 'Expected at most 2 elements' },
      { pointer: '/units/1', message: 'Expected at most 8 characters' },
      { pointer: '/units/2', message: 'Expected string' },
      { pointer: '/mode', message: 'Expected one of the values listed in enum' },
      { pointer: '/token', message: 'Expected at least 4 characters' },
      { pointer: '/color', message: 'Unknown parameter' },
    ]);
  });

  it('never quotes a sensitive value', () => {
    const result = resolveParameters(manifest, { max_lines: 1, token: 'xyz' });
    expect(JSON.stringify(result.ok ? {} : result.error.toJSON())).not.toContain('xyz');
  });

  it('checks integer, number and boolean types strictly', () => {
    expect(violations({ max_lines: 1.5 })).toEqual([
      { pointer: '/max_lines', message: 'Expected integer' },
    ]);
    expect(violations({ max_lines: '10' })).toEqual([
      { pointer: '/max_lines', message: 'Expected integer' },
    ]);
    expect(violations({ max_lines: 0 })).toEqual([
      { pointer: '/max_lines', message: 'Expected a value >= 1' },
    ]);
    expect(checkParameterValue({ type: 'number' }, Number.NaN)).toHaveLength(1);
    expect(checkParameterValue({ type: 'boolean' }, 'true')).toHaveLength(1);
    expect(checkParameterValue({ type: 'boolean' }, false)).toEqual([]);
  });

  it('counts string length in code points, as JSON Schema does', () => {
    expect(checkParameterValue({ type: 'string', maxLength: 2 }, '😀😀')).toEqual([]);
    expect(checkParameterValue({ type: 'string', maxLength: 1 }, '😀😀')).toHaveLength(1);
  });

  it('refuses non-object parameters', () => {
    expect(violations(['a'])).toEqual([
      { pointer: '', message: 'Expected an object of parameters' },
    ]);
    expect(violations(null)).toHaveLength(1);
  });

  it('admits undeclared parameters only as named scalars or arrays of scalars', () => {
    const open = {
      name: 'legacy',
      parameters: { type: 'object' as const, properties: {}, additionalProperties: true },
    };
    expect(resolveParameters(open, { a: 1, b: 'x', c: [true, 2, 'y'], d: false })).toEqual({
      ok: true,
      value: { a: 1, b: 'x', c: [true, 2, 'y'], d: false },
    });
    expect(
      violations({ nested: { a: 1 }, list: [[1]], 'Bad Name': 1, nothing: null }, open),
    ).toEqual([
      { pointer: '/nested', message: 'Expected a scalar or an array of scalars' },
      { pointer: '/list', message: 'Expected a scalar or an array of scalars' },
      {
        pointer: '/Bad Name',
        message: 'Expected a parameter name matching ^[a-z][a-z0-9_]{0,63}$',
      },
      { pointer: '/nothing', message: 'Expected a scalar or an array of scalars' },
    ]);
  });

  it('is not fooled by prototype keys', () => {
    const given = JSON.parse('{"__proto__": {"polluted": true}, "max_lines": 1}') as unknown;
    expect(violations(given)).toEqual([{ pointer: '/__proto__', message: 'Unknown parameter' }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('helpers', () => {
  it('escapes JSON pointer tokens per RFC 6901', () => {
    expect(escapeJsonPointerToken('a/b~c')).toBe('a~1b~0c');
  });
  it('compiles patterns once and reports invalid ones as null', () => {
    expect(compileParameterPattern('^a$')?.test('a')).toBe(true);
    expect(compileParameterPattern('^a$')).toBe(compileParameterPattern('^a$'));
    expect(compileParameterPattern('([')).toBeNull();
  });
  it('knows top-level parameter values', () => {
    expect(isTopLevelParameterValue('x')).toBe(true);
    expect(isTopLevelParameterValue([1, 'a'])).toBe(true);
    expect(isTopLevelParameterValue(Number.POSITIVE_INFINITY)).toBe(false);
    expect(isTopLevelParameterValue({})).toBe(false);
  });
});
