import { describe, expect, it } from 'vitest';
import {
  checkParameterValue,
  coerceParameterText,
  compileParameterPattern,
  escapeJsonPointerToken,
  hasLoneSurrogate,
  isTopLevelParameterValue,
  RESERVED_MESSAGE,
  resolveParameters,
} from './parameters.js';
import { listManifestRuleViolations } from './parse.js';
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
      { pointer: '/since', message: 'Expected a value matching the pattern ^[1-9][0-9]*[smhd]$' },
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
    expect(violations(given)).toEqual([{ pointer: '/__proto__', message: RESERVED_MESSAGE }]);
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

describe('coerceParameterText: the one strict rule for command-line text', () => {
  const integer = { type: 'integer' } as const;
  const number = { type: 'number' } as const;

  it.each([
    ['5', 5],
    ['-5', -5],
    ['+5', 5],
    ['007', 7],
    ['9007199254740991', 9007199254740991],
  ])('integer %j -> %j', (text, value) => {
    expect(coerceParameterText(text, integer)).toBe(value);
  });

  // Each of these is accepted by Number() (or by a trimming parser) and must stay text, so that
  // validation reports "Expected integer".
  it.each([
    '',
    ' ',
    '0x10',
    '0b11',
    '0o7',
    '1e3',
    '1.0',
    '5.',
    ' 5',
    '5 ',
    '\t5',
    'Infinity',
    'NaN',
    '9007199254740993',
    '99999999999999999999',
    '1_000',
    '٣',
  ])('integer %j stays text', (text) => {
    expect(coerceParameterText(text, integer)).toBe(text);
    expect(checkParameterValue(integer, coerceParameterText(text, integer))).toEqual([
      { pointer: '', message: 'Expected integer' },
    ]);
  });

  it.each([
    ['1.5', 1.5],
    ['-0.25', -0.25],
    ['.5', 0.5],
    ['2e-3', 0.002],
    ['1E3', 1000],
    ['42', 42],
  ])('number %j -> %j', (text, value) => {
    expect(coerceParameterText(text, number)).toBe(value);
  });

  it.each(['', '0x10', ' 1.5', '1.5 ', '5.', '1e', 'Infinity', '-Infinity', 'NaN', '1e999', '1,5'])(
    'number %j stays text',
    (text) => {
      expect(coerceParameterText(text, number)).toBe(text);
    },
  );

  it('booleans, strings, arrays and undeclared names', () => {
    const boolean = { type: 'boolean' } as const;
    expect(coerceParameterText('true', boolean)).toBe(true);
    expect(coerceParameterText('false', boolean)).toBe(false);
    expect(coerceParameterText('TRUE', boolean)).toBe('TRUE');
    expect(coerceParameterText('1', boolean)).toBe('1');
    expect(coerceParameterText(' 5', { type: 'string' })).toBe(' 5');
    const ints = { type: 'array', items: { type: 'integer' } } as const;
    expect(coerceParameterText('1, 2,3', ints)).toEqual([1, 2, 3]);
    expect(coerceParameterText('1,0x10', ints)).toEqual([1, '0x10']);
    expect(coerceParameterText('[1,2]', ints)).toEqual([1, 2]);
    expect(coerceParameterText('', ints)).toEqual([]);
    expect(coerceParameterText('5', undefined)).toBe('5');
  });
});

describe('rules beyond JSON Schema', () => {
  it('integers must be safe integers, also from JSON', () => {
    expect(checkParameterValue({ type: 'integer' }, 1e300)).toEqual([
      { pointer: '', message: 'Expected integer' },
    ]);
    expect(checkParameterValue({ type: 'integer' }, 2 ** 53 - 1)).toEqual([]);
  });

  it('strings must be well-formed Unicode (no lone surrogates)', () => {
    expect(hasLoneSurrogate('a\ud800')).toBe(true);
    expect(hasLoneSurrogate('\udc00a')).toBe(true);
    expect(hasLoneSurrogate('😀')).toBe(false);
    expect(checkParameterValue({ type: 'string' }, 'x\ud800')[0]?.message).toMatch(/surrogate/);
    expect(
      checkParameterValue({ type: 'array', items: { type: 'string' } }, ['ok', '\udfff'])[0],
    ).toMatchObject({ pointer: '/1' });
    expect(isTopLevelParameterValue('\ud800')).toBe(false);
    expect(isTopLevelParameterValue(['\ud800'])).toBe(false);
  });

  it('__proto__, constructor and prototype are refused as given names and as declared ones', () => {
    const open = {
      name: 'open',
      parameters: { type: 'object', properties: {}, additionalProperties: true },
    } as const;
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      const given = JSON.parse(`{"${name}": 1}`) as unknown;
      for (const target of [manifest, open]) {
        const result = resolveParameters(target as typeof manifest, given);
        expect(result.ok, name).toBe(false);
        if (!result.ok) expect(JSON.stringify(result.error.details)).toContain(`/${name}`);
      }
    }
    const declared = listManifestRuleViolations({
      parameters: { type: 'object', properties: { constructor: { type: 'string' } } },
    } as never);
    expect(declared.map((violation) => violation.pointer)).toContain(
      '/parameters/properties/constructor',
    );
  });
});
