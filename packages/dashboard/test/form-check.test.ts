/**
 * The run form's check against the protocol's: for every value, the form refuses exactly what
 * resolveParameters (the check the server runs) refuses, and with the code the server answers.
 * The browser test sends such values to the real API as well.
 */
import { ERROR_CATALOG, resolveParameters } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { hintOf } from '../ui/eps.js';
import { checkRunForm, parameterValue } from '../ui/form-check.js';
import type { ParamSchema } from '../ui/views/types.js';

const properties: Record<string, ParamSchema> = {
  host: { type: 'string', pattern: '^[a-z0-9.-]+$', minLength: 2, maxLength: 12 },
  code: { type: 'string', pattern: '[0-9]' },
  rows: { type: 'integer', minimum: 1, maximum: 5, default: 2 },
  ratio: { type: 'number', minimum: 0, maximum: 1 },
  level: { type: 'string', enum: ['info', 'warn'] },
  ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, maxItems: 3 },
  verbose: { type: 'boolean', default: false },
};
const required = new Set(['host']);
const manifest = {
  name: 'probe',
  parameters: { type: 'object', properties, required: [...required], additionalProperties: false },
} as unknown as Parameters<typeof resolveParameters>[0];

/** What the form sends for these field texts, and the problems it finds. */
function form(fields: Record<string, string>) {
  const params: Record<string, unknown> = {};
  for (const [name, text] of Object.entries(fields)) {
    const value = parameterValue(properties[name] as ParamSchema, text);
    if (value !== undefined) params[name] = value;
  }
  const problems = checkRunForm({
    properties: Object.entries(properties),
    required,
    params,
    targets: ['node1'],
    timeout: '',
    concurrency: '',
  });
  return { params, problems };
}

describe('the run form checks parameters as the server does', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['all good', { host: 'web-1', rows: '3', ratio: '0.5', level: 'warn', ports: '22\n443' }],
    ['required missing', {}],
    ['required given as empty text', { host: '' }],
    ['pattern (anchored)', { host: 'Web_1' }],
    ['pattern (unanchored, as JSON Schema reads it)', { host: 'web', code: 'a1b' }],
    ['pattern not matched anywhere', { host: 'web', code: 'abc' }],
    ['too short', { host: 'w' }],
    ['too long', { host: 'a-very-long-hostname' }],
    ['above maximum', { host: 'web', rows: '9' }],
    ['below minimum', { host: 'web', rows: '0' }],
    ['not an integer', { host: 'web', rows: '1.5' }],
    ['exponent is not decimal integer text', { host: 'web', rows: '1e1' }],
    ['number out of range', { host: 'web', ratio: '1.5' }],
    ['not a number', { host: 'web', ratio: 'half' }],
    ['not in the enum', { host: 'web', level: 'debug' }],
    ['an array item out of range', { host: 'web', ports: '22\n70000' }],
    ['an array item of the wrong type', { host: 'web', ports: '22\nssh' }],
    ['too many items', { host: 'web', ports: '1\n2\n3\n4' }],
  ];
  for (const [name, fields] of cases) {
    it(name, () => {
      const { params, problems } = form(fields);
      const server = resolveParameters(manifest, params);
      expect(problems.length > 0).toBe(!server.ok);
      if (!server.ok) {
        expect(problems.map((problem) => problem.code)).toEqual(
          problems.map(() => server.error.code),
        );
        // The same parameters, named by the same pointers.
        const pointers = (
          (server.error.details?.violations ?? []) as Array<{ pointer: string }>
        ).map((violation) => violation.pointer.split('/')[1]);
        expect(problems.map((problem) => problem.field.replace('param-', ''))).toEqual([
          ...new Set(pointers),
        ]);
      }
    });
  }

  it('refuses no targets and a bad concurrency as the API schema does (INVALID_ARGUMENT)', () => {
    const problems = checkRunForm({
      properties: [],
      required: new Set(),
      params: {},
      targets: [],
      timeout: '',
      concurrency: '0',
    });
    expect(problems.map(({ field, code }) => [field, code])).toEqual([
      ['targets', 'INVALID_ARGUMENT'],
      ['opt-concurrency', 'INVALID_ARGUMENT'],
    ]);
  });
});

/** The problems of a form with no parameters and these run options. */
const options = (timeout: string, concurrency = '', unreadable: string[] = []) =>
  checkRunForm({
    properties: [],
    required: new Set(),
    params: {},
    targets: ['node1'],
    timeout,
    concurrency,
    unreadable: new Set(unreadable),
  });

describe('the run options', () => {
  // What core's parseDuration and the planner accept (the browser test asks the real API too).
  it.each(['', '  ', '1500', '1', '1.4', '500ms', '30s', ' 1.5s ', '5m', '1h', '24h', '86400000'])(
    'accepts the timeout %j',
    (timeout) => {
      expect(options(timeout)).toEqual([]);
    },
  );
  it.each([
    ['0', 'Expected a duration such as'],
    ['0.4', 'Expected a duration such as'],
    ['0s', 'Expected a duration such as'],
    ['-1s', 'Expected a duration such as'],
    ['1e3', 'Expected a duration such as'],
    ['5 minutes', 'Expected a duration such as'],
    ['2d', 'Expected a duration such as'],
    ['1.5.5s', 'Expected a duration such as'],
    ['25h', 'Expected at most 24h'],
    ['86400001', 'Expected at most 24h'],
  ])('refuses the timeout %j by its field, as the API does (INVALID_ARGUMENT)', (timeout, says) => {
    const problems = options(timeout);
    expect(problems.map(({ field, code }) => [field, code])).toEqual([
      ['opt-timeout', 'INVALID_ARGUMENT'],
    ]);
    expect(problems[0]?.message).toContain(says);
  });

  it('a number field holding text that is not a number is a type error, not an empty field', () => {
    // The browser reads `2e` in a number input as an empty value: without the mark, the
    // form would send no `rows` and the server would run with the default.
    const unread = checkRunForm({
      properties: Object.entries(properties),
      required,
      params: { host: 'web' },
      targets: ['node1'],
      timeout: '',
      concurrency: '',
      unreadable: new Set(['param-rows']),
    });
    expect(unread).toEqual([
      {
        field: 'param-rows',
        label: 'rows',
        code: 'INVALID_PARAMETERS',
        message: 'Expected integer (the field holds text that is not a number)',
      },
    ]);
    expect(options('', '', ['opt-concurrency']).map(({ field }) => field)).toEqual([
      'opt-concurrency',
    ]);
    expect(options('', '4')).toEqual([]);
  });
});

describe('hintOf()', () => {
  it("gives the EPS catalog's line for a code, the error's own hint first", () => {
    expect(hintOf('UNKNOWN_NODE')).toBe(ERROR_CATALOG.UNKNOWN_NODE.description);
    expect(hintOf('UNKNOWN_NODE', 'own hint')).toBe('own hint');
    expect(hintOf('PLUGIN_SPECIFIC_CODE')).toBeUndefined();
  });
});
