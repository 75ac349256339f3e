import type { MrsManifest } from '@rune/protocol';
import { RuneError } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { resolveRunParameters } from './resolve-parameters.js';

const manifest = (additional = false): MrsManifest =>
  ({
    schema_version: 'mrs_v1',
    name: 'tool',
    version: '1.0.0',
    description: 'fixture',
    parameters: {
      type: 'object',
      properties: {
        token: { type: 'string', sensitive: true },
        name: { type: 'string' },
        count: { type: 'integer' },
        items: { type: 'array', items: { type: 'string' } },
      },
      ...(additional ? { additionalProperties: true } : {}),
    },
    tags: [],
    requirements: { commands: [], privilege: 'user' },
    timeout_ms: 1000,
    idempotent: true,
    supports_dry_run: false,
    dangerous: false,
    accepts: ['rcs_v1'],
  }) as MrsManifest;

function refusal(fn: () => unknown): RuneError {
  try {
    fn();
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('resolveRunParameters', () => {
  it('never echoes a --param that did not parse; names the known parameter it starts with', () => {
    const error = refusal(() =>
      resolveRunParameters(manifest(), { args: ['name=x', 'token:SECRET-VALUE', 'hunter2'] }),
    );
    expect(error.code).toBe('INVALID_PARAMETERS');
    const everything = JSON.stringify(error.toJSON());
    expect(everything).not.toContain('SECRET-VALUE');
    expect(everything).not.toContain('hunter2');
    expect(error.message).toContain('token: expected key=value');
    expect(error.message).toContain('--param #3: expected key=value');
  });

  it.each(['__proto__', 'constructor', 'prototype'])(
    'refuses the parameter name %s from --param, --params JSON and API objects alike',
    (name) => {
      for (const additional of [false, true]) {
        const fromArgs = refusal(() =>
          resolveRunParameters(manifest(additional), { args: [`${name}=1`] }),
        );
        expect(fromArgs.code).toBe('INVALID_PARAMETERS');
        expect(fromArgs.message).toContain(name);
        // JSON.parse keeps "__proto__" as an own key (what `--params` and the API receive).
        const values = JSON.parse(`{"${name}": {"polluted": true}}`) as Record<string, unknown>;
        const fromJson = refusal(() => resolveRunParameters(manifest(additional), { values }));
        expect(fromJson.code).toBe('INVALID_PARAMETERS');
        expect(fromJson.message).toContain(name);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );

  it('refuses lone UTF-16 surrogates in declared and undeclared string parameters', () => {
    for (const additional of [false, true]) {
      const error = refusal(() =>
        resolveRunParameters(manifest(additional), {
          values: { name: 'a\ud800b', items: ['ok', '\udfff'] },
        }),
      );
      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toMatch(/name: .*surrogate/);
      expect(error.message).toMatch(/items\[1\]: .*surrogate/);
    }
    const undeclared = refusal(() =>
      resolveRunParameters(manifest(true), { values: { extra: '\ud83d' } }),
    );
    expect(undeclared.message).toContain('extra');
    // A well-formed pair (an emoji) is fine.
    expect(resolveRunParameters(manifest(), { values: { name: '😀' } }).name).toBe('😀');
  });
});

describe('messages name the pattern or range that failed', () => {
  const bounded = {
    ...manifest(),
    parameters: {
      type: 'object',
      properties: {
        lines: { type: 'integer', minimum: 1, maximum: 5000 },
        ratio: { type: 'number', maximum: 1 },
        since: { type: 'string', pattern: '^-[0-9]+[smh]$' },
        secret: { type: 'string', pattern: '^[a-z]+$', sensitive: true },
        mode: { type: 'string', enum: ['fast', 'safe'] },
        short: { type: 'string', maxLength: 3 },
        units: { type: 'array', items: { type: 'string', pattern: '^[a-z]+$' }, maxItems: 2 },
      },
    },
  } as MrsManifest;
  const message = (args: string[]) =>
    refusal(() => resolveRunParameters(bounded, { args })).message;

  it.each([
    [['lines=0'], 'lines: must be in the range 1..5000, got 0'],
    [['lines=5001'], 'lines: must be in the range 1..5000, got 5001'],
    [['ratio=1.5'], 'ratio: must be in the range <= 1, got 1.5'],
    [['since=1h'], 'since: does not match the pattern ^-[0-9]+[smh]$, got "1h"'],
    [['mode=slow'], 'mode: must be one of "fast", "safe", got "slow"'],
    [['short=abcd'], 'short: must be at most 3 characters long (is 4)'],
    [['units=["a","B"]'], 'units[1]: does not match the pattern ^[a-z]+$, got "B"'],
    [['units=["a","b","c"]'], 'units: must have at most 2 elements (has 3)'],
  ])('%j -> %s', (args, expected) => {
    expect(message(args)).toContain(expected);
  });

  it('never shows the value of a sensitive parameter', () => {
    const text = message(['secret=Hunter2']);
    expect(text).toContain('secret: does not match the pattern ^[a-z]+$');
    expect(text).not.toContain('Hunter2');
  });
});
