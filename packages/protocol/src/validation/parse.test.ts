import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { parseRcsRequest } from '../rcs/v1/parse.js';
import {
  DEFAULT_MAX_DOCUMENT_DEPTH,
  decodeUtf8,
  listViolations,
  MAX_LISTED_VIOLATIONS,
  measureJsonDepth,
  negotiateSchemaVersion,
  parseJsonDocument,
  parseVersioned,
  utf8ByteLength,
  validateSchema,
} from './parse.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const codeOf = (result: { ok: boolean; error?: { code: string } }): string =>
  result.ok ? 'ok' : (result.error?.code ?? '?');

describe('parse ladder', () => {
  // Each input breaks every rung from its own downwards, so the code names the first rung checked.
  const oversizedInvalidUtf8Deep = new Uint8Array([
    ...new TextEncoder().encode('['.repeat(100)),
    0xff,
  ]);
  it('checks size first', () => {
    expect(codeOf(parseJsonDocument(oversizedInvalidUtf8Deep, { maxBytes: 50 }))).toBe(
      'DOCUMENT_TOO_LARGE',
    );
  });
  it('then encoding', () => {
    expect(codeOf(parseJsonDocument(oversizedInvalidUtf8Deep))).toBe('INVALID_ENCODING');
  });
  it('then depth, before syntax', () => {
    expect(codeOf(parseJsonDocument('['.repeat(100)))).toBe('DOCUMENT_TOO_DEEP');
  });
  it('then syntax', () => {
    expect(codeOf(parseJsonDocument('{"a":'))).toBe('MALFORMED_JSON');
  });
  it('then schema_version, before the schema', () => {
    const kind = {
      label: 'thing',
      schema: Type.Object({ schema_version: Type.Literal('t_v1'), n: Type.Number() }),
      versionPath: ['schema_version'],
      supported: ['t_v1'],
    };
    const unknownVersion = parseVersioned(kind, '{"schema_version":"t_v9","n":"not a number"}');
    expect(codeOf(unknownVersion)).toBe('UNSUPPORTED_SCHEMA_VERSION');
    if (!unknownVersion.ok) {
      expect(unknownVersion.error.details).toMatchObject({ received: 't_v9', supported: ['t_v1'] });
      expect(unknownVersion.error.message).toContain('supported: t_v1');
    }
    expect(codeOf(parseVersioned(kind, '{"schema_version":"t_v1","n":"x"}'))).toBe(
      'SCHEMA_VIOLATION',
    );
    expect(codeOf(parseVersioned(kind, '{"schema_version":1,"n":1}'))).toBe('SCHEMA_VIOLATION');
    expect(codeOf(parseVersioned(kind, '{"schema_version":"t_v1","n":1}'))).toBe('ok');
  });
  it('refuses a non-object document as a schema violation at the root', () => {
    const result = parseRcsRequest('"just a string"');
    expect(codeOf(result)).toBe('SCHEMA_VIOLATION');
    if (!result.ok)
      expect(result.error.details?.violations).toEqual([
        { pointer: '', message: 'Expected object' },
      ]);
  });
});

describe('decodeUtf8', () => {
  it('rejects invalid sequences, overlongs and lone surrogates', () => {
    for (const invalid of [
      bytes(0xff),
      bytes(0xc0, 0x80),
      bytes(0xed, 0xa0, 0x80),
      bytes(0xe2, 0x82),
    ]) {
      expect(codeOf(decodeUtf8(invalid))).toBe('INVALID_ENCODING');
    }
  });
  it('drops a byte-order mark from bytes and strings alike', () => {
    expect(decodeUtf8(bytes(0xef, 0xbb, 0xbf, 0x7b, 0x7d))).toEqual({ ok: true, value: '{}' });
    expect(decodeUtf8('\uFEFF{}')).toEqual({ ok: true, value: '{}' });
    expect(codeOf(parseJsonDocument('\uFEFF{}'))).toBe('ok');
  });
});

describe('measureJsonDepth', () => {
  it('counts nesting and ignores brackets in strings, also after escapes', () => {
    expect(measureJsonDepth('{}')).toBe(1);
    expect(measureJsonDepth('{"a":[{"b":[]}]}')).toBe(4);
    expect(measureJsonDepth('{"a":"[[[[\\"[[["}')).toBe(1);
    expect(measureJsonDepth('"\\\\"[[')).toBe(2);
  });
  it('scans a million levels linearly', () => {
    expect(measureJsonDepth('['.repeat(1_000_000))).toBe(1_000_000);
  });
  it('accepts the limit and refuses one more', () => {
    const at = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    expect(codeOf(parseJsonDocument(at(DEFAULT_MAX_DOCUMENT_DEPTH)))).toBe('ok');
    expect(codeOf(parseJsonDocument(at(DEFAULT_MAX_DOCUMENT_DEPTH + 1)))).toBe('DOCUMENT_TOO_DEEP');
  });
});

describe('utf8ByteLength', () => {
  it('matches TextEncoder', () => {
    for (const text of ['', 'abc', 'é', '日本', '😀x', 'a\uD800b']) {
      expect(utf8ByteLength(text)).toBe(new TextEncoder().encode(text).byteLength);
    }
  });
  it('measures strings and bytes the same way against the limit', () => {
    const text = JSON.stringify({ s: 'é'.repeat(10) });
    const limit = utf8ByteLength(text) - 1;
    expect(codeOf(parseJsonDocument(text, { maxBytes: limit }))).toBe('DOCUMENT_TOO_LARGE');
    expect(codeOf(parseJsonDocument(new TextEncoder().encode(text), { maxBytes: limit }))).toBe(
      'DOCUMENT_TOO_LARGE',
    );
  });
});

describe('listViolations', () => {
  const Inner = Type.Object({ code: Type.String() }, { additionalProperties: false });
  const Outer = Type.Object(
    {
      error: Type.Union([Inner, Type.Null()]),
      result: Type.Union([Type.Literal('a'), Type.Literal('b')]),
      count: Type.Integer(),
    },
    { additionalProperties: false },
  );
  it('lists every violation with its JSON pointer, looking inside unions', () => {
    const violations = listViolations(Outer, {
      error: { code: 1, extra: true },
      result: 'z',
      more: 1,
    });
    expect(violations).toEqual(
      expect.arrayContaining([
        { pointer: '/error/code', message: 'Expected string' },
        { pointer: '/error/extra', message: 'Unexpected property' },
        { pointer: '/result', message: 'Expected one of: "a", "b"' },
        { pointer: '/count', message: 'Expected required property' },
        { pointer: '/more', message: 'Unexpected property' },
      ]),
    );
  });
  it('names the alternatives when a value has none of their kinds', () => {
    expect(listViolations(Outer, { error: 'oops', result: 'a', count: 1 })).toEqual([
      { pointer: '/error', message: 'Expected object or null' },
    ]);
  });
  it('stops listing at the limit', () => {
    const Many = Type.Object({}, { additionalProperties: false });
    const value = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]));
    expect(listViolations(Many, value)).toHaveLength(MAX_LISTED_VIOLATIONS);
  });
  it('validateSchema summarises the first violation and counts the rest', () => {
    const result = validateSchema(Outer, {}, 'thing');
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.error.message).toMatch(
        /^thing violates its schema: \/\w+ .* \(and \d+ more\)$/,
      );
  });
});

describe('negotiateSchemaVersion', () => {
  it("picks the receiver's most preferred common version", () => {
    expect(negotiateSchemaVersion(['x_v1', 'x_v2'], ['x_v2', 'x_v1'])).toEqual({
      ok: true,
      value: 'x_v2',
    });
    expect(negotiateSchemaVersion(['x_v1'], ['x_v2', 'x_v1'])).toEqual({ ok: true, value: 'x_v1' });
  });
  it('refuses with UNSUPPORTED_SCHEMA_VERSION listing both sides', () => {
    const result = negotiateSchemaVersion(['x_v3'], ['x_v1']);
    expect(codeOf(result)).toBe('UNSUPPORTED_SCHEMA_VERSION');
    if (!result.ok)
      expect(result.error.details).toEqual({ received: ['x_v3'], supported: ['x_v1'] });
  });
});
