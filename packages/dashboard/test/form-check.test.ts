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
      concurrency: '0',
    });
    expect(problems.map(({ field, code }) => [field, code])).toEqual([
      ['targets', 'INVALID_ARGUMENT'],
      ['opt-concurrency', 'INVALID_ARGUMENT'],
    ]);
  });
});

describe('hintOf()', () => {
  it("gives the EPS catalog's line for a code, the error's own hint first", () => {
    expect(hintOf('UNKNOWN_NODE')).toBe(ERROR_CATALOG.UNKNOWN_NODE.description);
    expect(hintOf('UNKNOWN_NODE', 'own hint')).toBe('own hint');
    expect(hintOf('PLUGIN_SPECIFIC_CODE')).toBeUndefined();
  });
});
