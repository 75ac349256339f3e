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
import {
  RunEventSchema,
  RunEventStreamSchema,
  RunNodeResultSchema,
  RunOutputLineSchema,
  RunPlanSchema,
  RunResultDocumentSchema,
  RunSummarySchema,
} from './run/v1/schema.js';
import {
  WorkflowDefinitionSchema,
  WorkflowRunRecordSchema,
  WorkflowStepLineSchema,
} from './workflow/v1/schema.js';

/** The JSON Schema dialect of every generated schema. */
export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/** A plain JSON Schema document. */
export type JsonSchemaDocument = { [key: string]: unknown };

/** The `$id` of a generated schema: `urn:rune:schema:<protocol>:v1:<document>`. */
export function jsonSchemaId(
  protocol: 'rcs' | 'bpcs' | 'mrs' | 'eps' | 'run' | 'workflow',
  document: string,
): string {
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

/** The run-document rules beyond JSON Schema, stated where a validator user will read them. */
export const RUN_RULES_BEYOND_SCHEMA =
  'Beyond this schema, run documents MUST satisfy the rules of specs/run-v1.md ("Rules beyond the schema"): sensitive parameter values are "[REDACTED]" in plans; plan requests match their plan and node; node status, error, exit_code and response agree, an embedded BPCS result obeys the BPCS result/error pairing, incomplete containment says why; summary counts add up and match the nodes; trace_id, action and exit_code agree between a document and its summary and plan; status agrees with exit_code and summary; an event stream starts with run-start at seq 1, seq strictly increases, and node events match the plan.';

/** File names of the generated run-document schemas, keyed by document kind. */
export const RUN_JSON_SCHEMA_FILES = {
  plan: 'run-v1.plan.schema.json',
  'node-result': 'run-v1.node-result.schema.json',
  summary: 'run-v1.summary.schema.json',
  result: 'run-v1.result.schema.json',
  line: 'run-v1.line.schema.json',
  event: 'run-v1.event.schema.json',
  stream: 'run-v1.stream.schema.json',
} as const;
/** A kind of run document, as named in {@link RUN_JSON_SCHEMA_FILES} and the example corpus. */
export type RunDocumentKind = keyof typeof RUN_JSON_SCHEMA_FILES;

const RUN_SCHEMAS: Record<RunDocumentKind, { schema: TSchema; description: string }> = {
  plan: {
    schema: RunPlanSchema,
    description:
      'Run v1 execution plan (rune-execution-plan/v1): what would run where, sensitive parameters redacted.',
  },
  'node-result': {
    schema: RunNodeResultSchema,
    description: 'Run v1 node result: the outcome of one node.',
  },
  summary: { schema: RunSummarySchema, description: 'Run v1 summary: the totals of a run.' },
  result: {
    schema: RunResultDocumentSchema,
    description:
      'Run v1 result document (rune-run-result/v1): what `rune run --output json` prints.',
  },
  line: {
    schema: RunOutputLineSchema,
    description: 'Run v1 output line: one line of `rune run --output jsonl`.',
  },
  event: { schema: RunEventSchema, description: 'Run v1 event: one event of a run.' },
  stream: {
    schema: RunEventStreamSchema,
    description: 'Run v1 event stream: the events of one run as recorded, in order.',
  },
};

/** The workflow rules beyond JSON Schema, stated where a validator user will read them. */
export const WORKFLOW_RULES_BEYOND_SCHEMA =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${{ }} is workflow syntax, not a JS template.
  'Beyond this schema, a workflow definition MUST satisfy specs/workflow-v1.md ("Rules beyond the schema"): step ids unique (parallel branches included) and none of abort, continue, end; next and on_failure name top-level steps; transitions only go forward (no cycles); every step reachable from the first; an action step has exactly one of nodes and failed_in, and failed_in names an action step that always runs before; input defaults have the declared type and required inputs have none; at most 64 steps in all; a string holding ${{ is exactly one ${{ expression }}. Its CEL expressions must compile and refer only to declared inputs and earlier steps (checked by rune workflow validate).';

/** File names of the generated workflow schemas, keyed by document kind. */
export const WORKFLOW_JSON_SCHEMA_FILES = {
  definition: 'workflow-v1.definition.schema.json',
  run: 'workflow-v1.run.schema.json',
  'step-line': 'workflow-v1.step-line.schema.json',
} as const;
/** A kind of workflow document, as named in {@link WORKFLOW_JSON_SCHEMA_FILES} and the corpus. */
export type WorkflowDocumentKind = keyof typeof WORKFLOW_JSON_SCHEMA_FILES;

const WORKFLOW_SCHEMAS: Record<WorkflowDocumentKind, { schema: TSchema; description: string }> = {
  definition: {
    schema: WorkflowDefinitionSchema,
    description:
      'Workflow v1 definition (workflow_v1): a runbook of steps, written in YAML or JSON.',
  },
  run: {
    schema: WorkflowRunRecordSchema,
    description:
      'Workflow v1 run record (rune-workflow-run/v1): what `rune workflow run --output json` prints.',
  },
  'step-line': {
    schema: WorkflowStepLineSchema,
    description: 'Workflow v1 step line: one step of `rune workflow run --output jsonl`.',
  },
};

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
    ...Object.fromEntries(
      Object.entries(RUN_SCHEMAS).map(([kind, { schema, description }]) => [
        RUN_JSON_SCHEMA_FILES[kind as RunDocumentKind],
        document(schema, jsonSchemaId('run', kind), {
          description,
          $comment: RUN_RULES_BEYOND_SCHEMA,
        }),
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(WORKFLOW_SCHEMAS).map(([kind, { schema, description }]) => [
        WORKFLOW_JSON_SCHEMA_FILES[kind as WorkflowDocumentKind],
        document(schema, jsonSchemaId('workflow', kind), {
          description,
          $comment: WORKFLOW_RULES_BEYOND_SCHEMA,
        }),
      ]),
    ),
  };
}

/** The text a generated schema file holds: two-space indented JSON and a final newline. */
export function formatJsonSchemaFile(schema: JsonSchemaDocument): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
