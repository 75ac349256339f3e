/**
 * Plain JSON Schema documents generated from the TypeBox sources, for implementers in other
 * languages (specs/schemas/*.json is written from {@link buildJsonSchemas} and checked for drift).
 *
 * Dialect: draft-07. TypeBox 0.34 emits draft-07 keywords (`const`, `anyOf`,
 * `patternProperties`, and array-form `items` for tuples, which 2020-12 would reject), and
 * draft-07 is the dialect implemented by the widest range of validators (ajv's default, Python
 * `jsonschema`, Go and Java libraries). Patterns avoid look-around so they compile in RE2 too.
 */
import type { TSchema } from '@sinclair/typebox';
import { BpcsResponseSchema } from './bpcs/v1/schema.js';
import { EpsErrorSchema } from './eps/v1/schema.js';
import { MrsManifestSchema } from './mrs/v1/schema.js';
import { RcsRequestSchema } from './rcs/v1/schema.js';

/** The JSON Schema dialect of every generated schema. */
export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/** A plain JSON Schema document. */
export type JsonSchemaDocument = { [key: string]: unknown };

/** The `$id` of a generated schema: `urn:rune:schema:<protocol>:v1:<document>`. */
export function jsonSchemaId(protocol: 'rcs' | 'bpcs' | 'mrs' | 'eps', document: string): string {
  return `urn:rune:schema:${protocol}:v1:${document}`;
}

/** A TypeBox schema as plain JSON: symbols (TypeBox's `Kind`) and undefined members removed. */
export function toPlainJsonSchema(schema: TSchema): JsonSchemaDocument {
  return JSON.parse(JSON.stringify(schema)) as JsonSchemaDocument;
}

function document(schema: TSchema, id: string, extra: JsonSchemaDocument = {}): JsonSchemaDocument {
  return { $schema: JSON_SCHEMA_DIALECT, $id: id, ...toPlainJsonSchema(schema), ...extra };
}

/**
 * The BPCS pairing rule as JSON Schema (the TypeBox validator applies it in code, see
 * parseBpcsResponse): result "failure" requires an error object; result "success" requires null.
 */
const BPCS_PAIRING_RULES: JsonSchemaDocument = {
  allOf: [
    {
      if: { properties: { payload: { properties: { result: { const: 'failure' } } } } },
      // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword, not a promise.
      then: { properties: { error: { type: 'object' } } },
    },
    {
      if: { properties: { payload: { properties: { result: { const: 'success' } } } } },
      // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword, not a promise.
      then: { properties: { error: { type: 'null' } } },
    },
  ],
};

/** The MRS rules beyond JSON Schema, stated where a validator user will read them. */
export const MRS_RULES_BEYOND_SCHEMA =
  'Beyond this schema, a manifest MUST satisfy (specs/mrs-v1.md): every name in parameters.required is declared in parameters.properties; array parameters declare items and only they do; minimum <= maximum, minLength <= maxLength, minItems <= maxItems; every pattern is a valid ECMA-262 regular expression; every default satisfies its own parameter; no parameter is named constructor or prototype.';

/** File names of the generated schemas, keyed by protocol. */
export const JSON_SCHEMA_FILES = {
  rcs: 'rcs-v1.request.schema.json',
  bpcs: 'bpcs-v1.result.schema.json',
  mrs: 'mrs-v1.manifest.schema.json',
  eps: 'eps-v1.error.schema.json',
} as const;

/** Every generated JSON Schema, keyed by file name (specs/schemas/<file>). */
export function buildJsonSchemas(): Record<string, JsonSchemaDocument> {
  return {
    [JSON_SCHEMA_FILES.rcs]: document(RcsRequestSchema, jsonSchemaId('rcs', 'request'), {
      description: 'RCS v1 request: the one JSON document a plugin reads on stdin.',
    }),
    [JSON_SCHEMA_FILES.bpcs]: document(BpcsResponseSchema, jsonSchemaId('bpcs', 'result'), {
      description:
        'BPCS v1 result: the one JSON object a plugin writes on stdout. The exit code must agree with payload.result (specs/bpcs-v1.md).',
      ...BPCS_PAIRING_RULES,
    }),
    [JSON_SCHEMA_FILES.mrs]: document(MrsManifestSchema, jsonSchemaId('mrs', 'manifest'), {
      description: 'MRS v1 manifest: what RUNE knows about a plugin before running it.',
      $comment: MRS_RULES_BEYOND_SCHEMA,
    }),
    [JSON_SCHEMA_FILES.eps]: document(EpsErrorSchema, jsonSchemaId('eps', 'error'), {
      description:
        'EPS v1 error: the one wire shape of every error RUNE or a plugin reports. Codes RUNE emits are listed in specs/eps-v1.md.',
    }),
  };
}

/** The text a generated schema file holds: two-space indented JSON and a final newline. */
export function formatJsonSchemaFile(schema: JsonSchemaDocument): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
