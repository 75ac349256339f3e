/**
 * The parts of specs/*.md that are generated from code — field tables, the BPCS exit-code table,
 * the EPS catalog — so that the normative prose and the validators cannot disagree. Each section
 * sits between `<!-- generated:<name>:start -->` and `<!-- generated:<name>:end -->`; the
 * `generate:schemas` script fills them and a test fails when a committed file has drifted.
 */
import type { TSchema } from '@sinclair/typebox';
import { BPCS_EXIT_CODE_TABLE } from './bpcs/v1/exit-codes.js';
import { BpcsResponseSchema } from './bpcs/v1/schema.js';
import { ERROR_CATALOG, ERROR_CODES } from './eps/v1/catalog.js';
import { EpsErrorSchema } from './eps/v1/schema.js';
import { type JsonSchemaDocument, toPlainJsonSchema } from './json-schema.js';
import { MrsManifestSchema, MrsParameterSchema } from './mrs/v1/schema.js';
import { RcsRequestSchema } from './rcs/v1/schema.js';
import {
  NodeEndEventSchema,
  NodeStartEventSchema,
  RunEndEventSchema,
  RunNodeResultSchema,
  RunPlanSchema,
  RunResultDocumentSchema,
  RunStartEventSchema,
  RunSummarySchema,
} from './run/v1/schema.js';
import {
  WorkflowActionStepSchema,
  WorkflowApprovalStepSchema,
  WorkflowDefinitionSchema,
  WorkflowParallelStepSchema,
  WorkflowRunRecordSchema,
  WorkflowStepRecordSchema,
} from './workflow/v1/schema.js';

type Node = JsonSchemaDocument;

/** Titles of schemas documented in their own table: referenced, never expanded inline. */
const DOCUMENTED_ELSEWHERE = new Set([
  'EPS v1 error',
  'MRS v1 parameter',
  'BPCS v1 result',
  'RCS v1 request',
  'Run v1 execution plan',
  'Run v1 node result',
  'Run v1 summary',
  'Workflow v1 input',
  'Workflow v1 step record',
]);
const MAX_SHOWN_PATTERN = 64;

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
/** Prose in a cell: `<name>` would be read as an HTML tag. */
const prose = (text: string): string => cell(text.replaceAll('<', '&lt;'));
const code = (text: string): string => `\`${text}\``;

function asNode(value: unknown): Node | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Node)
    : undefined;
}

function describeType(node: Node): string {
  if ('const' in node) return code(JSON.stringify(node.const));
  const anyOf = Array.isArray(node.anyOf) ? node.anyOf.map(asNode) : undefined;
  if (anyOf !== undefined) {
    return anyOf
      .map((alternative) => (alternative === undefined ? '?' : describeType(alternative)))
      .join(' or ');
  }
  if (typeof node.title === 'string' && DOCUMENTED_ELSEWHERE.has(node.title)) return node.title;
  switch (node.type) {
    case 'string':
    case 'integer':
    case 'number':
    case 'boolean':
    case 'null':
      return node.type;
    case 'array': {
      const items = asNode(node.items);
      return items === undefined ? 'array' : `array of ${describeType(items)}`;
    }
    case 'object': {
      const patterns = asNode(node.patternProperties);
      if (patterns !== undefined && node.properties === undefined) {
        const value = asNode(Object.values(patterns)[0]) ?? {};
        return Object.keys(value).filter((key) => key !== 'description').length === 0
          ? 'object (free-form)'
          : `object: name → ${describeType(value)}`;
      }
      return 'object';
    }
    default:
      return 'any JSON value';
  }
}

function describeConstraints(node: Node): string {
  const parts: string[] = [];
  const range = (low: unknown, high: unknown, unit: string): void => {
    if (typeof low === 'number' && typeof high === 'number') {
      parts.push(low === high ? `${unit} ${low}` : `${unit} ${low}–${high}`);
    } else if (typeof low === 'number') parts.push(`${unit} ≥ ${low}`);
    else if (typeof high === 'number') parts.push(`${unit} ≤ ${high}`);
  };
  range(node.minLength, node.maxLength, 'length');
  range(node.minimum, node.maximum, 'value');
  range(node.minItems, node.maxItems, 'items');
  if (typeof node.maxProperties === 'number') parts.push(`at most ${node.maxProperties} members`);
  if (typeof node.pattern === 'string') {
    parts.push(
      node.pattern.length <= MAX_SHOWN_PATTERN
        ? `pattern ${code(node.pattern)}`
        : 'pattern (see the JSON Schema)',
    );
  }
  if (node.uniqueItems === true) parts.push('unique');
  const items = asNode(node.items);
  if (items !== undefined && node.type === 'array') {
    const inner = describeConstraints(items);
    if (inner !== '') parts.push(`each: ${inner}`);
  }
  const patterns = asNode(node.patternProperties);
  if (patterns !== undefined) {
    const keyPattern = Object.keys(patterns)[0];
    if (keyPattern !== undefined && keyPattern !== '^(.*)$') {
      parts.push(`names match ${code(keyPattern)}`);
    }
  }
  if (node.type === 'object' && node.additionalProperties === false && node.properties) {
    parts.push('no other members');
  }
  return parts.join('; ');
}

function walk(node: Node, path: string, required: boolean, rows: string[]): void {
  if (path !== '') {
    const meaning = typeof node.description === 'string' ? node.description : '';
    rows.push(
      `| ${cell(code(path))} | ${cell(describeType(node))} | ${required ? 'yes' : 'no'} | ${cell(describeConstraints(node))} | ${prose(meaning)} |`,
    );
  }
  if (typeof node.title === 'string' && DOCUMENTED_ELSEWHERE.has(node.title) && path !== '') {
    return;
  }
  const properties = asNode(node.properties);
  if (properties !== undefined) {
    const requiredNames = Array.isArray(node.required) ? node.required : [];
    for (const [name, child] of Object.entries(properties)) {
      const childNode = asNode(child);
      if (childNode === undefined) continue;
      walk(childNode, path === '' ? name : `${path}.${name}`, requiredNames.includes(name), rows);
    }
  }
  const items = asNode(node.items);
  const itemsDocumentedElsewhere =
    typeof items?.title === 'string' && DOCUMENTED_ELSEWHERE.has(items.title);
  if (
    node.type === 'array' &&
    items !== undefined &&
    !itemsDocumentedElsewhere &&
    asNode(items.properties) !== undefined
  ) {
    const requiredNames = Array.isArray(items.required) ? items.required : [];
    for (const [name, child] of Object.entries(asNode(items.properties) ?? {})) {
      const childNode = asNode(child);
      if (childNode !== undefined) {
        walk(childNode, `${path}[].${name}`, requiredNames.includes(name), rows);
      }
    }
  }
}

/**
 * A Markdown table of every member of a TypeBox object schema, depth first: field path, type,
 * required, constraints, meaning. Sub-schemas documented in their own table (EPS error, MRS
 * parameter) are named, not expanded.
 */
export function renderFieldTable(schema: TSchema): string {
  const rows: string[] = [];
  walk(toPlainJsonSchema(schema), '', true, rows);
  return [
    '| field | type | required | constraints | meaning |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** The whole EPS catalog as a Markdown table, in catalog order. */
export function renderErrorCatalogTable(): string {
  const rows = ERROR_CODES.map((errorCode) => {
    const entry = ERROR_CATALOG[errorCode];
    return `| ${code(errorCode)} | ${entry.category} | ${entry.exitCode} | ${entry.retryable ? 'yes' : 'no'} | ${prose(entry.description)} |`;
  });
  return [
    '| code | category | CLI exit code | retryable (default) | meaning |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** The BPCS v1 exit-code table as Markdown. */
export function renderExitCodeTable(): string {
  const rows = BPCS_EXIT_CODE_TABLE.map(
    (row) =>
      `| ${row.code} | ${code(row.name)} | ${row.results.map((result) => code(result)).join(' or ')} | ${row.error === null ? '— (success)' : code(row.error)} | ${prose(row.meaning)} |`,
  );
  return [
    '| exit code | name | goes with `payload.result` | the control node reports | use it when |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** Every generated section of specs/*.md, by section name. */
export function buildSpecSections(): Record<string, string> {
  return {
    'rcs-fields': renderFieldTable(RcsRequestSchema),
    'bpcs-fields': renderFieldTable(BpcsResponseSchema),
    'bpcs-exit-codes': renderExitCodeTable(),
    'mrs-fields': renderFieldTable(MrsManifestSchema),
    'mrs-parameter-fields': renderFieldTable(MrsParameterSchema),
    'eps-fields': renderFieldTable(EpsErrorSchema),
    'eps-catalog': renderErrorCatalogTable(),
    'run-plan-fields': renderFieldTable(RunPlanSchema),
    'run-node-result-fields': renderFieldTable(RunNodeResultSchema),
    'run-summary-fields': renderFieldTable(RunSummarySchema),
    'run-result-fields': renderFieldTable(RunResultDocumentSchema),
    'run-event-run-start-fields': renderFieldTable(RunStartEventSchema),
    'run-event-node-start-fields': renderFieldTable(NodeStartEventSchema),
    'run-event-node-end-fields': renderFieldTable(NodeEndEventSchema),
    'run-event-run-end-fields': renderFieldTable(RunEndEventSchema),
    'workflow-fields': renderFieldTable(WorkflowDefinitionSchema),
    'workflow-action-step-fields': renderFieldTable(WorkflowActionStepSchema),
    'workflow-parallel-step-fields': renderFieldTable(WorkflowParallelStepSchema),
    'workflow-approval-step-fields': renderFieldTable(WorkflowApprovalStepSchema),
    'workflow-run-fields': renderFieldTable(WorkflowRunRecordSchema),
    'workflow-step-record-fields': renderFieldTable(WorkflowStepRecordSchema),
  };
}

/** The result of {@link replaceGeneratedSections}. */
export interface ReplacedSections {
  /** The document with every known section filled in. */
  text: string;
  /** Names of the sections found (and filled) in the document. */
  replaced: string[];
  /** Names of sections found in the document that `sections` does not know. */
  unknown: string[];
}

const SECTION = /<!-- generated:([a-z0-9-]+):start -->\n[\s\S]*?<!-- generated:\1:end -->/g;

/** Fills every `<!-- generated:<name>:start/end -->` section of a Markdown document. */
export function replaceGeneratedSections(
  markdown: string,
  sections: Record<string, string>,
): ReplacedSections {
  const replaced: string[] = [];
  const unknown: string[] = [];
  const text = markdown.replace(SECTION, (whole, name: string) => {
    const content = sections[name];
    if (content === undefined) {
      unknown.push(name);
      return whole;
    }
    replaced.push(name);
    return `<!-- generated:${name}:start -->\n<!-- generated from packages/protocol by \`generate:schemas\`; do not edit by hand -->\n\n${content}\n\n<!-- generated:${name}:end -->`;
  });
  return { text, replaced, unknown };
}

const TABLE_CELL_SEPARATOR = /(?<!\\)\|/;

/**
 * Markdown with the padding of table rows removed (cells trimmed, separator cells reduced to
 * `---`), so a document is compared by content, whatever a formatter did to align its tables.
 */
export function normalizeMarkdownTables(markdown: string): string {
  return markdown
    .split('\n')
    .map((line) => {
      const trimmed = line.trim();
      if (!trimmed.startsWith('|')) return line.trimEnd();
      return trimmed
        .split(TABLE_CELL_SEPARATOR)
        .map((cellText) => {
          const text = cellText.trim();
          return /^:?-+:?$/.test(text) ? '---' : text;
        })
        .join('|');
    })
    .join('\n');
}
