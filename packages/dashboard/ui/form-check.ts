/**
 * The run form's own check, before anything is sent: the parameters by the protocol's per-value
 * check (`@rune/protocol/parameter-values`, the code the server runs — type, enum, pattern,
 * range, length, items), required parameters, the targets and `concurrency` by the API's request
 * schema, and the timeout by the protocol's duration grammar and bound
 * (`@rune/protocol/durations`, the code core's `parseDuration` and the planner run). A number
 * field whose text the browser cannot read as a number (`2e`: its value is then empty) is a
 * type error, not an empty field that the server would fill with the default.
 * It exists so that a person sees what is wrong next to the field at once; the server checks
 * everything again and stays the authority. Each problem carries the EPS code the API answers
 * for the same value (INVALID_PARAMETERS for a parameter, INVALID_ARGUMENT for the request).
 */
import { DEFAULT_DURATION_EXAMPLES, durationToMs, MAX_TIMEOUT_MS } from '@rune/protocol/durations';
import { checkParameterValue, coerceParameterText } from '@rune/protocol/parameter-values';
import type { ParamSchema } from './views/types.js';

/** One field's problem. */
export interface FieldProblem {
  /** The input's id (`param-<name>`, `targets`, `opt-timeout`, `opt-concurrency`). */
  field: string;
  /** The label a person sees. */
  label: string;
  code: 'INVALID_PARAMETERS' | 'INVALID_ARGUMENT';
  message: string;
}

type Declaration = Parameters<typeof checkParameterValue>[0];

/** A parameter's JSON type (the first non-null one of a list). */
export const typeOf = (schema: ParamSchema): string =>
  Array.isArray(schema.type)
    ? (schema.type.find((t) => t !== 'null') ?? 'string')
    : (schema.type ?? 'string');

/** A form field's value as the typed parameter the request carries; undefined when left empty. */
export function parameterValue(schema: ParamSchema, value: string | boolean): unknown {
  const type = typeOf(schema);
  if (type === 'boolean') return value === true;
  if (typeof value !== 'string' || value === '') return undefined;
  if (type === 'array') {
    const items = value
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    const itemSchema = { type: typeOf(schema.items ?? {}) } as Declaration;
    return items.map((item) => coerceParameterText(item, itemSchema));
  }
  if (type === 'object') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  return coerceParameterText(value, { ...schema, type } as Declaration);
}

/** Every problem of the form, in field order; empty when the request may be sent. */
export function checkRunForm(input: {
  properties: Array<[string, ParamSchema]>;
  required: ReadonlySet<string>;
  params: Readonly<Record<string, unknown>>;
  targets: readonly string[];
  /** The timeout field's text; empty leaves the timeout to the server's configuration. */
  timeout: string;
  concurrency: string;
  /** Ids of number fields holding text the browser cannot read as a number (`validity.badInput`). */
  unreadable?: ReadonlySet<string>;
}): FieldProblem[] {
  const unreadable = input.unreadable ?? new Set<string>();
  const problems: FieldProblem[] = [];
  if (input.targets.length === 0)
    problems.push({
      field: 'targets',
      label: 'Nodes',
      code: 'INVALID_ARGUMENT',
      message: 'name at least one node',
    });
  for (const [name, schema] of input.properties) {
    const field = `param-${name}`;
    if (unreadable.has(field)) {
      problems.push({
        field,
        label: name,
        code: 'INVALID_PARAMETERS',
        message: `Expected ${typeOf(schema)} (the field holds text that is not a number)`,
      });
      continue;
    }
    if (!Object.hasOwn(input.params, name)) {
      if (input.required.has(name) && schema.default === undefined)
        problems.push({
          field,
          label: name,
          code: 'INVALID_PARAMETERS',
          message: 'required parameter is missing',
        });
      continue;
    }
    const violations = checkParameterValue(schema as Declaration, input.params[name], '');
    if (violations.length > 0)
      problems.push({
        field,
        label: name,
        code: 'INVALID_PARAMETERS',
        message: violations
          .map((violation) =>
            violation.pointer === ''
              ? violation.message
              : `item ${violation.pointer.slice(1)}: ${violation.message}`,
          )
          .join('; '),
      });
  }
  const timeout = timeoutProblem(input.timeout.trim());
  if (timeout !== undefined)
    problems.push({
      field: 'opt-timeout',
      label: 'Timeout per node',
      code: 'INVALID_ARGUMENT',
      message: timeout,
    });
  if (unreadable.has('opt-concurrency') || input.concurrency.trim() !== '') {
    const value = unreadable.has('opt-concurrency') ? Number.NaN : Number(input.concurrency);
    if (!Number.isSafeInteger(value) || value < 1)
      problems.push({
        field: 'opt-concurrency',
        label: 'Nodes at once',
        code: 'INVALID_ARGUMENT',
        message: 'a whole number of at least 1',
      });
  }
  return problems;
}

/**
 * What is wrong with a timeout text (trimmed), as core's `parseDuration` and the planner refuse
 * it; undefined when it is empty (the server's default) or acceptable.
 */
function timeoutProblem(text: string): string | undefined {
  if (text === '') return undefined;
  const ms = durationToMs(text);
  if (ms === undefined || ms < 1) return `Expected a duration such as ${DEFAULT_DURATION_EXAMPLES}`;
  if (Math.round(ms) > MAX_TIMEOUT_MS)
    return `Expected at most ${MAX_TIMEOUT_MS / 3_600_000}h (${MAX_TIMEOUT_MS} ms)`;
  return undefined;
}
