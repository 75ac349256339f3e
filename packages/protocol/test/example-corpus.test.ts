/**
 * The example corpus (specs/examples/<protocol>/{valid,invalid}/*.json), checked both ways:
 * every valid example parses; every invalid one fails with exactly the EPS code (and, for schema
 * violations, exactly the JSON pointer) that invalid/expected.json declares for it. The same
 * files are checked against the generated JSON Schemas with an independent validator (Ajv), so the
 * schemas published for other languages agree with the TypeBox validators. A protocol without
 * examples, an example without an expectation, or an expectation without a file fails the run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  buildJsonSchemas,
  isErrorCode,
  JSON_SCHEMA_FILES,
  type ParseResult,
  parseBpcsResponse,
  parseEpsError,
  parseMrsManifest,
  parseRcsRequest,
} from '../src/index.js';

const examplesDir = fileURLToPath(new URL('../../../specs/examples/', import.meta.url));

type Protocol = 'rcs' | 'bpcs' | 'mrs' | 'eps';
const parsers: Record<Protocol, (input: Uint8Array) => ParseResult<unknown>> = {
  rcs: (input) => parseRcsRequest(input),
  bpcs: (input) => parseBpcsResponse(input),
  mrs: (input) => parseMrsManifest(input),
  eps: (input) => parseEpsError(input),
};
const PROTOCOLS = Object.keys(parsers) as Protocol[];
const MIN_VALID = 6;
const MIN_INVALID = 10;

interface Expectation {
  code: string;
  pointer?: string;
  /** false: the rule is enforced by parse* beyond what JSON Schema can express. */
  json_schema?: boolean;
}

const jsonFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((name) => name.endsWith('.json') && name !== 'expected.json')
    .sort();
const read = (path: string): Uint8Array => new Uint8Array(readFileSync(path));
const violationsOf = (result: ParseResult<unknown>): { pointer: string }[] =>
  result.ok ? [] : ((result.error.details?.violations as { pointer: string }[] | undefined) ?? []);

const ajv = new Ajv({ strict: false, allErrors: true });
const schemas = buildJsonSchemas();
const ajvValidators = Object.fromEntries(
  PROTOCOLS.map((protocol) => {
    const schema = schemas[JSON_SCHEMA_FILES[protocol]];
    if (schema === undefined) throw new Error(`no generated schema for ${protocol}`);
    return [protocol, ajv.compile(schema)];
  }),
) as Record<Protocol, ValidateFunction>;

describe('example corpus', () => {
  it('has every protocol directory and nothing else', () => {
    expect(readdirSync(examplesDir).sort()).toEqual([...PROTOCOLS].sort());
  });

  for (const protocol of PROTOCOLS) {
    const validDir = join(examplesDir, protocol, 'valid');
    const invalidDir = join(examplesDir, protocol, 'invalid');
    const valid = jsonFiles(validDir);
    const invalid = jsonFiles(invalidDir);
    const expected = JSON.parse(readFileSync(join(invalidDir, 'expected.json'), 'utf8')) as Record<
      string,
      Expectation
    >;

    describe(protocol, () => {
      it(`has at least ${MIN_VALID} valid and ${MIN_INVALID} invalid examples`, () => {
        expect(valid.length).toBeGreaterThanOrEqual(MIN_VALID);
        expect(invalid.length).toBeGreaterThanOrEqual(MIN_INVALID);
      });

      it('declares an expectation for every invalid example, and only for existing files', () => {
        expect(Object.keys(expected).sort()).toEqual(invalid);
        for (const [file, expectation] of Object.entries(expected)) {
          expect(isErrorCode(expectation.code), `${file}: ${expectation.code}`).toBe(true);
        }
      });

      it.each(valid)('valid/%s parses', (file) => {
        const result = parsers[protocol](read(join(validDir, file)));
        expect(result.ok ? 'ok' : result.error.toJSON()).toBe('ok');
      });

      it.each(valid)('valid/%s satisfies the generated JSON Schema', (file) => {
        const text = new TextDecoder().decode(read(join(validDir, file))).replace(/^\uFEFF/, '');
        const validate = ajvValidators[protocol];
        expect(validate(JSON.parse(text)) ? 'ok' : validate.errors).toBe('ok');
      });

      it.each(invalid)('invalid/%s fails with exactly its expected code', (file) => {
        const expectation = expected[file];
        expect(expectation, `invalid/expected.json has no entry for ${file}`).toBeDefined();
        const result = parsers[protocol](read(join(invalidDir, file)));
        expect(result.ok).toBe(false);
        if (result.ok || expectation === undefined) return;
        expect(result.error.code).toBe(expectation.code);
        if (expectation.pointer !== undefined) {
          // One rule broken: every violation is at the one expected place.
          const pointers = violationsOf(result).map((violation) => violation.pointer);
          expect(pointers.length).toBeGreaterThan(0);
          expect(new Set(pointers)).toEqual(new Set([expectation.pointer]));
        }
        // The error itself is a valid EPS document.
        expect(parseEpsError(JSON.stringify(result.error)).ok).toBe(true);
      });

      const schemaCases = invalid.filter((file) => {
        const code = expected[file]?.code;
        return code === 'SCHEMA_VIOLATION' || code === 'UNSUPPORTED_SCHEMA_VERSION';
      });
      if (schemaCases.length > 0) {
        it.each(schemaCases)('invalid/%s agrees with the generated JSON Schema', (file) => {
          const document: unknown = JSON.parse(readFileSync(join(invalidDir, file), 'utf8'));
          const beyondSchema = expected[file]?.json_schema === false;
          // Rules beyond JSON Schema must really be beyond it (else the flag is stale).
          expect(ajvValidators[protocol](document)).toBe(beyondSchema);
        });
      }
    });
  }
});

describe('generated hostile documents', () => {
  const deep = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const base: Record<Protocol, string> = Object.fromEntries(
    PROTOCOLS.map((protocol) => {
      const dir = join(examplesDir, protocol, 'valid');
      const first = jsonFiles(dir)[0];
      if (first === undefined) throw new Error(`no valid ${protocol} example`);
      return [protocol, readFileSync(join(dir, first), 'utf8').replace(/^\uFEFF/, '')];
    }),
  ) as Record<Protocol, string>;

  it.each(PROTOCOLS)(
    '%s: 100,000 nested arrays give DOCUMENT_TOO_DEEP without overflowing',
    (protocol) => {
      const text = `{"x":${deep(100_000)}}`;
      const result = parsers[protocol](new TextEncoder().encode(text));
      expect(result.ok ? 'ok' : result.error.code).toBe('DOCUMENT_TOO_DEEP');
    },
  );

  it.each(PROTOCOLS)('%s: 100,000 unclosed brackets give DOCUMENT_TOO_DEEP', (protocol) => {
    const result = parsers[protocol](new TextEncoder().encode('{'.repeat(100_000)));
    expect(result.ok ? 'ok' : result.error.code).toBe('DOCUMENT_TOO_DEEP');
  });

  it.each(PROTOCOLS)('%s: a document over the size limit gives DOCUMENT_TOO_LARGE', (protocol) => {
    const document = JSON.parse(base[protocol]) as Record<string, unknown>;
    const padded = JSON.stringify({ ...document, padding: 'x'.repeat(1024 * 1024) });
    const result = parsers[protocol](new TextEncoder().encode(padded));
    expect(result.ok ? 'ok' : result.error.code).toBe('DOCUMENT_TOO_LARGE');
  });

  it('mrs: a manifest over 256 KiB gives DOCUMENT_TOO_LARGE', () => {
    const document = JSON.parse(base.mrs) as Record<string, unknown>;
    const padded = JSON.stringify({ ...document, description: 'd'.repeat(300 * 1024) });
    const result = parseMrsManifest(padded);
    expect(result.ok ? 'ok' : result.error.code).toBe('DOCUMENT_TOO_LARGE');
  });
});
