/**
 * The run form's own check, before anything is sent: the parameters by the protocol's per-value
 * check (`@rune/protocol/parameter-values`, the code the server runs — type, enum, pattern,
 * range, length, items), required parameters, the targets and `concurrency` by the API's request
 * schema. The timeout is left to the server: its duration grammar (`1500`, `1.5s`, `5m`) is
 * core's, and a second copy here could only drift.
 * It exists so that a person sees what is wrong next to the field at once; the server checks
 * everything again and stays the authority. Each problem carries the EPS code the API answers
 * for the same value (INVALID_PARAMETERS for a parameter, INVALID_ARGUMENT for the request).
 */
import { checkParameterValue, coerceParameterText } from '@rune/protocol/parameter-values';
import type { ParamSchema } from './views/types.js';

/** One field's problem. */
export interface FieldProblem {
  /** The input's id (`param-<name>`, `targets`, `opt-concurrency`). */
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
  concurrency: string;
}): FieldProblem[] {
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
  if (input.concurrency.trim() !== '') {
    const value = Number(input.concurrency);
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
