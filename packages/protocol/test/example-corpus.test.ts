/**
 * The example corpus (specs/examples/<protocol>/{valid,invalid}/*.json), checked both ways:
 * every valid example parses; every invalid one fails with exactly the EPS code (and, for schema
 * violations, exactly the JSON pointer) that invalid/expected.json declares for it. The same
 * files are checked against the generated JSON Schemas with an independent validator (Ajv), so the
 * schemas published for other languages agree with the TypeBox validators. A protocol without
 * examples, an example without an expectation, or an expectation without a file fails the run.
 * The run corpus holds several document kinds, named `<kind>.<name>.json`; the kind chooses the
 * parser and the schema, and every kind needs valid and invalid examples. The workflow corpus is
 * organised the same way (`definition.`, `run.`, `step-line.`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  buildJsonSchemas,
  DEFAULT_MAX_RUN_DOCUMENT_BYTES,
  isErrorCode,
  JSON_SCHEMA_FILES,
  MAX_WORKFLOW_BYTES,
  type ParseResult,
  parseBpcsResponse,
  parseEpsError,
  parseMrsManifest,
  parseRcsRequest,
  parseRunEvent,
  parseRunEventStream,
  parseRunNodeResult,
  parseRunOutputLine,
  parseRunPlan,
  parseRunResultDocument,
  parseRunSummary,
  parseWorkflowDefinition,
  parseWorkflowRunRecord,
  parseWorkflowStepLine,
  RUN_JSON_SCHEMA_FILES,
  type RunDocumentKind,
  WORKFLOW_JSON_SCHEMA_FILES,
  type WorkflowDocumentKind,
} from '../src/index.js';

const examplesDir = fileURLToPath(new URL('../../../specs/examples/', import.meta.url));

type Protocol = 'rcs' | 'bpcs' | 'mrs' | 'eps' | 'run' | 'workflow';
type Parser = (input: Uint8Array) => ParseResult<unknown>;
const singleDocumentParsers: Record<Exclude<Protocol, 'run' | 'workflow'>, Parser> = {
  rcs: (input) => parseRcsRequest(input),
  bpcs: (input) => parseBpcsResponse(input),
  mrs: (input) => parseMrsManifest(input),
  eps: (input) => parseEpsError(input),
};
/** Run examples are named `<kind>.<name>.json`; the kind chooses the parser and the schema. */
const runParsers: Record<RunDocumentKind, Parser> = {
  plan: (input) => parseRunPlan(input),
  'node-result': (input) => parseRunNodeResult(input),
  summary: (input) => parseRunSummary(input),
  result: (input) => parseRunResultDocument(input),
  line: (input) => parseRunOutputLine(input),
  event: (input) => parseRunEvent(input),
  stream: (input) => parseRunEventStream(input),
};
const RUN_KINDS = Object.keys(runParsers) as RunDocumentKind[];
const workflowParsers: Record<WorkflowDocumentKind, Parser> = {
  definition: (input) => parseWorkflowDefinition(input),
  run: (input) => parseWorkflowRunRecord(input),
  'step-line': (input) => parseWorkflowStepLine(input),
};
const WORKFLOW_KINDS = Object.keys(workflowParsers) as WorkflowDocumentKind[];
const PROTOCOLS: Protocol[] = [
  ...(Object.keys(singleDocumentParsers) as Protocol[]),
  'run',
  'workflow',
];

function kindOf<K extends string>(protocol: string, kinds: readonly K[], file: string): K {
  // Longest first: `step-line.` must not be read as another kind's prefix.
  const kind = [...kinds]
    .sort((a, b) => b.length - a.length)
    .find((name) => file.startsWith(`${name}.`));
  if (kind === undefined) {
    throw new Error(
      `${protocol} example ${file} must be named <kind>.<name>.json, kind one of ${kinds.join(', ')}`,
    );
  }
  return kind;
}
const runKindOf = (file: string): RunDocumentKind => kindOf('run', RUN_KINDS, file);
const workflowKindOf = (file: string): WorkflowDocumentKind =>
  kindOf('workflow', WORKFLOW_KINDS, file);
const parserFor = (protocol: Protocol, file: string): Parser =>
  protocol === 'run'
    ? runParsers[runKindOf(file)]
    : protocol === 'workflow'
      ? workflowParsers[workflowKindOf(file)]
      : singleDocumentParsers[protocol];
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
const compileSchema = (file: string): ValidateFunction => {
  const schema = schemas[file];
  if (schema === undefined) throw new Error(`no generated schema ${file}`);
  return ajv.compile(schema);
};
const ajvValidators = Object.fromEntries(
  (Object.keys(singleDocumentParsers) as Exclude<Protocol, 'run' | 'workflow'>[]).map(
    (protocol) => [protocol, compileSchema(JSON_SCHEMA_FILES[protocol])],
  ),
) as Record<Exclude<Protocol, 'run' | 'workflow'>, ValidateFunction>;
const workflowAjvValidators = Object.fromEntries(
  WORKFLOW_KINDS.map((kind) => [kind, compileSchema(WORKFLOW_JSON_SCHEMA_FILES[kind])]),
) as Record<WorkflowDocumentKind, ValidateFunction>;
const runAjvValidators = Object.fromEntries(
  RUN_KINDS.map((kind) => [kind, compileSchema(RUN_JSON_SCHEMA_FILES[kind])]),
) as Record<RunDocumentKind, ValidateFunction>;
const validatorFor = (protocol: Protocol, file: string): ValidateFunction =>
  protocol === 'run'
    ? runAjvValidators[runKindOf(file)]
    : protocol === 'workflow'
      ? workflowAjvValidators[workflowKindOf(file)]
      : ajvValidators[protocol];

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

      if (protocol === 'run') {
        it('has valid and invalid examples of every run document kind', () => {
          for (const kind of RUN_KINDS) {
            expect(valid.filter((file) => runKindOf(file) === kind).length, kind).toBeGreaterThan(
              0,
            );
            expect(invalid.filter((file) => runKindOf(file) === kind).length, kind).toBeGreaterThan(
              0,
            );
          }
        });
      }

      if (protocol === 'workflow') {
        it('has valid and invalid examples of every workflow document kind', () => {
          for (const kind of WORKFLOW_KINDS) {
            expect(
              valid.filter((file) => workflowKindOf(file) === kind).length,
              kind,
            ).toBeGreaterThan(0);
            expect(
              invalid.filter((file) => workflowKindOf(file) === kind).length,
              kind,
            ).toBeGreaterThan(0);
          }
        });
      }

      it('declares an expectation for every invalid example, and only for existing files', () => {
        expect(Object.keys(expected).sort()).toEqual(invalid);
        for (const [file, expectation] of Object.entries(expected)) {
          expect(isErrorCode(expectation.code), `${file}: ${expectation.code}`).toBe(true);
        }
      });

      it.each(valid)('valid/%s parses', (file) => {
        const result = parserFor(protocol, file)(read(join(validDir, file)));
        expect(result.ok ? 'ok' : result.error.toJSON()).toBe('ok');
      });

      it.each(valid)('valid/%s satisfies the generated JSON Schema', (file) => {
        const text = new TextDecoder().decode(read(join(validDir, file))).replace(/^\uFEFF/, '');
        const validate = validatorFor(protocol, file);
        expect(validate(JSON.parse(text)) ? 'ok' : validate.errors).toBe('ok');
      });

      it.each(invalid)('invalid/%s fails with exactly its expected code', (file) => {
        const expectation = expected[file];
        expect(expectation, `invalid/expected.json has no entry for ${file}`).toBeDefined();
        const result = parserFor(protocol, file)(read(join(invalidDir, file)));
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
          expect(validatorFor(protocol, file)(document)).toBe(beyondSchema);
        });
      }
    });
  }
});

describe('generated hostile documents', () => {
  const deep = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const firstValid = (protocol: Protocol): string | undefined => {
    const files = jsonFiles(join(examplesDir, protocol, 'valid'));
    // The run corpus is represented by its run-result documents, workflows by definitions.
    if (protocol === 'run') return files.find((file) => file.startsWith('result.'));
    if (protocol === 'workflow') return files.find((file) => file.startsWith('definition.'));
    return files[0];
  };
  const parsers: Record<Protocol, Parser> = {
    ...singleDocumentParsers,
    run: runParsers.result,
    workflow: workflowParsers.definition,
  };
  const sizeLimit = (protocol: Protocol): number =>
    protocol === 'run'
      ? DEFAULT_MAX_RUN_DOCUMENT_BYTES
      : protocol === 'workflow'
        ? MAX_WORKFLOW_BYTES
        : 1024 * 1024;
  const base: Record<Protocol, string> = Object.fromEntries(
    PROTOCOLS.map((protocol) => {
      const dir = join(examplesDir, protocol, 'valid');
      const first = firstValid(protocol);
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
    const padded = JSON.stringify({ ...document, padding: 'x'.repeat(sizeLimit(protocol)) });
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
