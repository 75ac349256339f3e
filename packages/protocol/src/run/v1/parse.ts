/**
 * Parsing and validating run documents. Every function walks the ladder of
 * validation/parse.ts (size, encoding, depth, syntax, version, schema) and then the rules beyond
 * the schema (rules.ts), and returns a typed value or an EPS error — it never throws, also not
 * for values whose members throw when read.
 *
 * Run documents embed up to one plugin result per node, so their limits are larger than the
 * 1 MiB / 64 levels of a single protocol document: {@link DEFAULT_MAX_RUN_DOCUMENT_BYTES} and
 * {@link DEFAULT_MAX_RUN_DOCUMENT_DEPTH}, raised or lowered with `ParseOptions`.
 */
import type { TSchema } from '@sinclair/typebox';
import { RuneError } from '../../errors/rune-error.js';
import {
  DEFAULT_MAX_DOCUMENT_DEPTH,
  type ParseOptions,
  type ParseResult,
  parseJsonDocument,
  type SchemaViolation,
  schemaViolations,
  type VersionedDocument,
  validateSchema,
  validateVersioned,
} from '../../validation/parse.js';
import {
  listNodeResultRuleViolations,
  listPlanRuleViolations,
  listRunEventRuleViolations,
  listRunEventStreamViolations,
  listRunResultRuleViolations,
  listSummaryRuleViolations,
} from './rules.js';
import {
  NodeEndEventSchema,
  NodeStartEventSchema,
  RUN_EVENT_TYPES,
  RUN_EVENT_V1,
  RUN_PLAN_V1,
  RUN_RESULT_V1,
  RunEndEventSchema,
  type RunEvent,
  RunEventSchema,
  type RunEventType,
  RunNodeLineSchema,
  type RunNodeResult,
  RunNodeResultSchema,
  type RunOutputLine,
  type RunPlan,
  RunPlanSchema,
  type RunResultDocument,
  RunResultDocumentSchema,
  RunStartEventSchema,
  type RunSummary,
  RunSummaryLineSchema,
  RunSummarySchema,
} from './schema.js';

/** Run-result document versions (`schema`) this implementation understands. */
export const SUPPORTED_RUN_RESULT_VERSIONS: readonly string[] = [RUN_RESULT_V1];
/** Execution plan versions (`schema`) this implementation understands. */
export const SUPPORTED_RUN_PLAN_VERSIONS: readonly string[] = [RUN_PLAN_V1];
/** Run event versions (`schema_version`) this implementation understands. */
export const SUPPORTED_RUN_EVENT_VERSIONS: readonly string[] = [RUN_EVENT_V1];

/** Default maximum size of a run document: 64 MiB (it embeds one plugin result per node). */
export const DEFAULT_MAX_RUN_DOCUMENT_BYTES = 64 * 1024 * 1024;
/**
 * Default maximum nesting depth of a run document: the 64 levels a plugin result may use, plus
 * the 3 levels a run-result document wraps around it (document, `nodes`, node).
 */
export const DEFAULT_MAX_RUN_DOCUMENT_DEPTH = DEFAULT_MAX_DOCUMENT_DEPTH + 3;

function withRunLimits(options: ParseOptions = {}): ParseOptions {
  return {
    ...options,
    maxBytes: options.maxBytes ?? DEFAULT_MAX_RUN_DOCUMENT_BYTES,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_RUN_DOCUMENT_DEPTH,
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Runs a validation step and turns anything it throws (a getter that throws, a proxy) into a
 * SCHEMA_VIOLATION, so that no validate* function ever throws.
 */
function guarded<T>(
  label: string,
  options: ParseOptions,
  step: () => ParseResult<T>,
): ParseResult<T> {
  try {
    return step();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return schemaViolations(
      label,
      [{ pointer: '', message: `value cannot be read: ${reason}` }],
      options,
    );
  }
}

function withRules<T>(
  label: string,
  validated: ParseResult<T>,
  rules: (value: T) => SchemaViolation[],
  options: ParseOptions,
): ParseResult<T> {
  if (!validated.ok) return validated;
  const violations = rules(validated.value);
  return violations.length === 0 ? validated : schemaViolations(label, violations, options);
}

/** One kind of run document: how to recognise its version, its schema and its rules. */
interface RunDocumentKind<T> {
  label: string;
  validate(value: unknown, options: ParseOptions): ParseResult<T>;
}

function kind<T>(
  label: string,
  check: (value: unknown, options: ParseOptions) => ParseResult<T>,
  rules: (value: T) => SchemaViolation[],
): RunDocumentKind<T> {
  return {
    label,
    validate: (value, options) =>
      guarded(label, options, () => withRules(label, check(value, options), rules, options)),
  };
}

function versioned<S extends TSchema>(
  label: string,
  schema: S,
  versionPath: readonly string[],
  supported: readonly string[],
): VersionedDocument<S> {
  return { label, schema, versionPath, supported };
}

const planKind = kind<RunPlan>(
  'run plan',
  (value, options) =>
    validateVersioned(
      versioned('run plan', RunPlanSchema, ['schema'], SUPPORTED_RUN_PLAN_VERSIONS),
      value,
      options,
    ),
  (plan) => listPlanRuleViolations(plan),
);

const nodeResultKind = kind<RunNodeResult>(
  'run node result',
  (value, options) => validateSchema(RunNodeResultSchema, value, 'run node result', options),
  (result) => listNodeResultRuleViolations(result),
);

const summaryKind = kind<RunSummary>(
  'run summary',
  (value, options) => validateSchema(RunSummarySchema, value, 'run summary', options),
  (summary) => listSummaryRuleViolations(summary),
);

const resultKind = kind<RunResultDocument>(
  'run result',
  (value, options) =>
    validateVersioned(
      versioned('run result', RunResultDocumentSchema, ['schema'], SUPPORTED_RUN_RESULT_VERSIONS),
      value,
      options,
    ),
  (document) => listRunResultRuleViolations(document),
);

const lineKind = kind<RunOutputLine>(
  'run output line',
  (value, options): ParseResult<RunOutputLine> => {
    const type = isRecord(value) ? value.type : undefined;
    if (type === 'node')
      return validateSchema(RunNodeLineSchema, value, 'run output line', options);
    if (type === 'summary') {
      return validateVersioned(
        versioned(
          'run output line',
          RunSummaryLineSchema,
          ['schema'],
          SUPPORTED_RUN_RESULT_VERSIONS,
        ),
        value,
        options,
      );
    }
    if (!isRecord(value))
      return validateSchema(RunNodeLineSchema, value, 'run output line', options);
    return schemaViolations(
      'run output line',
      [{ pointer: '/type', message: 'Expected one of: "node", "summary"' }],
      options,
    );
  },
  (line) =>
    line.type === 'node'
      ? listNodeResultRuleViolations(line)
      : listRunResultRuleViolations({ ...line }),
);

const EVENT_SCHEMAS: Record<RunEventType, TSchema> = {
  'run-start': RunStartEventSchema,
  'node-start': NodeStartEventSchema,
  'node-end': NodeEndEventSchema,
  'run-end': RunEndEventSchema,
};

const isEventType = (value: unknown): value is RunEventType =>
  typeof value === 'string' && (RUN_EVENT_TYPES as readonly string[]).includes(value);

const eventKind = kind<RunEvent>(
  'run event',
  (value, options): ParseResult<RunEvent> => {
    const type = isRecord(value) ? value.type : undefined;
    // Validated against the schema of its own type, so violations point into that type only.
    const schema = isEventType(type) ? EVENT_SCHEMAS[type] : RunEventSchema;
    const validated = validateVersioned(
      versioned('run event', schema, ['schema_version'], SUPPORTED_RUN_EVENT_VERSIONS),
      value,
      options,
    );
    if (validated.ok || !isRecord(value) || isEventType(type)) {
      return validated as ParseResult<RunEvent>;
    }
    if (validated.error.code !== 'SCHEMA_VIOLATION') return validated as ParseResult<RunEvent>;
    return schemaViolations(
      'run event',
      [
        {
          pointer: '/type',
          message: `Expected one of: ${RUN_EVENT_TYPES.map((t) => `"${t}"`).join(', ')}`,
        },
      ],
      options,
    );
  },
  (event) => listRunEventRuleViolations(event),
);

function parseWith<T>(
  documentKind: RunDocumentKind<T>,
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<T> {
  const limited = withRunLimits(options);
  const parsed = guarded(documentKind.label, limited, () => parseJsonDocument(input, limited));
  return parsed.ok ? documentKind.validate(parsed.value, limited) : parsed;
}

/** Parses an execution plan (`rune-execution-plan/v1`) from JSON text or bytes. */
export function parseRunPlan(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunPlan> {
  return parseWith(planKind, input, options);
}
/** Validates an already-parsed value as an execution plan, including the rules beyond the schema. */
export function validateRunPlan(value: unknown, options?: ParseOptions): ParseResult<RunPlan> {
  return planKind.validate(value, withRunLimits(options));
}
/** True when `value` is a valid execution plan. */
export function isRunPlan(value: unknown): value is RunPlan {
  return validateRunPlan(value).ok;
}

/** Parses one node result from JSON text or bytes. */
export function parseRunNodeResult(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunNodeResult> {
  return parseWith(nodeResultKind, input, options);
}
/** Validates an already-parsed value as a node result. */
export function validateRunNodeResult(
  value: unknown,
  options?: ParseOptions,
): ParseResult<RunNodeResult> {
  return nodeResultKind.validate(value, withRunLimits(options));
}
/** True when `value` is a valid node result. */
export function isRunNodeResult(value: unknown): value is RunNodeResult {
  return validateRunNodeResult(value).ok;
}

/** Parses a run summary from JSON text or bytes. */
export function parseRunSummary(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunSummary> {
  return parseWith(summaryKind, input, options);
}
/** Validates an already-parsed value as a run summary. */
export function validateRunSummary(
  value: unknown,
  options?: ParseOptions,
): ParseResult<RunSummary> {
  return summaryKind.validate(value, withRunLimits(options));
}
/** True when `value` is a valid run summary. */
export function isRunSummary(value: unknown): value is RunSummary {
  return validateRunSummary(value).ok;
}

/** Parses a run-result document (`rune-run-result/v1`, what `rune run -o json` prints). */
export function parseRunResultDocument(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunResultDocument> {
  return parseWith(resultKind, input, options);
}
/** Validates an already-parsed value as a run-result document. */
export function validateRunResultDocument(
  value: unknown,
  options?: ParseOptions,
): ParseResult<RunResultDocument> {
  return resultKind.validate(value, withRunLimits(options));
}
/** True when `value` is a valid run-result document. */
export function isRunResultDocument(value: unknown): value is RunResultDocument {
  return validateRunResultDocument(value).ok;
}

/** Parses one line of `rune run -o jsonl` (a node line or the summary line). */
export function parseRunOutputLine(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunOutputLine> {
  return parseWith(lineKind, input, options);
}
/** Validates an already-parsed value as a JSONL output line. */
export function validateRunOutputLine(
  value: unknown,
  options?: ParseOptions,
): ParseResult<RunOutputLine> {
  return lineKind.validate(value, withRunLimits(options));
}
/** True when `value` is a valid JSONL output line. */
export function isRunOutputLine(value: unknown): value is RunOutputLine {
  return validateRunOutputLine(value).ok;
}

/** Parses one run event from JSON text or bytes. */
export function parseRunEvent(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunEvent> {
  return parseWith(eventKind, input, options);
}
/** Validates an already-parsed value as one run event (the stream rules need the whole stream). */
export function validateRunEvent(value: unknown, options?: ParseOptions): ParseResult<RunEvent> {
  return eventKind.validate(value, withRunLimits(options));
}
/** True when `value` is a valid run event. */
export function isRunEvent(value: unknown): value is RunEvent {
  return validateRunEvent(value).ok;
}

/**
 * Validates the events of one run, in order: each event on its own (violations are reported with
 * the event's index prefixed to the pointer, `/3/seq`), then the stream rules — run-start first
 * with seq 1, seq strictly increasing, one run_id and trace_id, nothing after run-end, node events
 * that match the plan. Give it the events from the first one on; a stream resumed in the middle
 * is checked event by event with {@link validateRunEvent}.
 */
export function validateRunEventStream(
  values: unknown,
  options?: ParseOptions,
): ParseResult<RunEvent[]> {
  const limited = withRunLimits(options);
  const label = 'run event stream';
  return guarded(label, limited, () => {
    if (!Array.isArray(values) || values.length === 0) {
      return schemaViolations(
        label,
        [{ pointer: '', message: 'Expected an array of at least one event' }],
        limited,
      );
    }
    const events: RunEvent[] = [];
    for (const [index, value] of values.entries()) {
      const event = eventKind.validate(value, limited);
      if (!event.ok) {
        const details = event.error.details ?? {};
        const violations = Array.isArray(details.violations)
          ? (details.violations as SchemaViolation[]).map((violation) => ({
              pointer: `/${index}${violation.pointer}`,
              message: violation.message,
            }))
          : undefined;
        return {
          ok: false,
          error: new RuneError(event.error.code, `event ${index}: ${event.error.message}`, {
            source: limited.source ?? { component: 'rune-protocol' },
            details: violations === undefined ? { ...details, index } : { ...details, violations },
            ...(limited.traceId === undefined ? {} : { traceId: limited.traceId }),
          }),
        };
      }
      events.push(event.value);
    }
    const violations = listRunEventStreamViolations(events);
    return violations.length === 0
      ? { ok: true, value: events }
      : schemaViolations(label, violations, limited);
  });
}

/** Parses a recorded stream of one run's events: a JSON array of events, in order. */
export function parseRunEventStream(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RunEvent[]> {
  const limited = withRunLimits(options);
  const parsed = guarded('run event stream', limited, () => parseJsonDocument(input, limited));
  return parsed.ok ? validateRunEventStream(parsed.value, limited) : parsed;
}
