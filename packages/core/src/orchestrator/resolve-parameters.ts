/**
 * Plugin parameters: merged from a JSON object (`--params @file.json`) and `key=value` strings
 * (`--param`), validated against the manifest's MRS parameter schema, defaults filled.
 *
 * Strings from the command line are coerced only as far as the declared type allows: `"5"`
 * becomes 5 for an integer parameter, stays `"5"` for a string one; `"true"`/`"false"` for
 * booleans; comma-separated or JSON arrays for arrays. Values from a JSON object are never
 * coerced. Every violation is collected, so one INVALID_PARAMETERS error lists them all.
 */
import { type MrsManifest, type MrsParameter, RuneError } from '@rune/protocol';

/** One parameter problem. */
export interface ParameterViolation {
  parameter: string;
  message: string;
}

/** Where parameters come from. */
export interface ParameterInput {
  /** Typed values (e.g. a JSON file). */
  values?: Readonly<Record<string, unknown>>;
  /** `key=value` strings, applied after `values` (later wins). */
  args?: readonly string[];
}

/** The placeholder for a sensitive parameter in logs, audit records and displays. */
export const REDACTED = '[REDACTED]';

type ItemSchema = NonNullable<MrsParameter['items']>;
type ScalarType = 'string' | 'integer' | 'number' | 'boolean';

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function coerceScalar(text: string, type: ScalarType): unknown {
  switch (type) {
    case 'string':
      return text;
    case 'integer':
      return INTEGER_TEXT.test(text.trim()) ? Number(text) : text;
    case 'number':
      return NUMBER_TEXT.test(text.trim()) ? Number(text) : text;
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
  }
}

/** Coerces one `--param` string by the declared parameter type. Unconvertible text stays text. */
export function coerceParameter(text: string, schema: MrsParameter | undefined): unknown {
  if (schema === undefined) return text;
  if (schema.type !== 'array') return coerceScalar(text, schema.type);
  const itemType = schema.items?.type ?? 'string';
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return text;
    }
  }
  if (trimmed === '') return [];
  return text
    .split(',')
    .map((part) => coerceScalar(itemType === 'string' ? part : part.trim(), itemType));
}

const describeValue = (value: unknown): string => {
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
};

function checkScalar(
  value: unknown,
  schema: MrsParameter | ItemSchema,
  label: string,
  violations: ParameterViolation[],
  sensitive: boolean,
): void {
  const shown = sensitive ? 'the given value' : describeValue(value);
  const type = schema.type as ScalarType;
  const wrong = (): void => {
    violations.push({ parameter: label, message: `expected ${type}, got ${shown}` });
  };
  if (type === 'string') {
    if (typeof value !== 'string') {
      wrong();
      return;
    }
    const length = [...value].length;
    if ('minLength' in schema && schema.minLength !== undefined && length < schema.minLength) {
      violations.push({
        parameter: label,
        message: `must be at least ${schema.minLength} characters`,
      });
    }
    if (schema.maxLength !== undefined && length > schema.maxLength) {
      violations.push({
        parameter: label,
        message: `must be at most ${schema.maxLength} characters`,
      });
    }
    if (schema.pattern !== undefined) {
      let matches = false;
      try {
        matches = new RegExp(schema.pattern, 'u').test(value);
      } catch {
        matches = false;
      }
      if (!matches) {
        violations.push({ parameter: label, message: `must match the pattern ${schema.pattern}` });
      }
    }
  } else if (type === 'integer' || type === 'number') {
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (type === 'number' || Number.isSafeInteger(value));
    if (!ok) {
      wrong();
      return;
    }
    if (schema.minimum !== undefined && value < schema.minimum) {
      violations.push({ parameter: label, message: `must be >= ${schema.minimum}` });
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      violations.push({ parameter: label, message: `must be <= ${schema.maximum}` });
    }
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') {
      wrong();
      return;
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((allowed) => allowed === value)) {
    violations.push({
      parameter: label,
      message: `must be one of ${schema.enum.map((allowed) => JSON.stringify(allowed)).join(', ')}`,
    });
  }
}

function checkParameter(
  name: string,
  value: unknown,
  schema: MrsParameter,
  violations: ParameterViolation[],
): void {
  const sensitive = schema.sensitive === true;
  if (schema.type !== 'array') {
    checkScalar(value, schema, name, violations, sensitive);
    return;
  }
  if (!Array.isArray(value)) {
    violations.push({
      parameter: name,
      message: `expected array, got ${sensitive ? 'the given value' : describeValue(value)}`,
    });
    return;
  }
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    violations.push({ parameter: name, message: `must have at least ${schema.minItems} items` });
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    violations.push({ parameter: name, message: `must have at most ${schema.maxItems} items` });
  }
  const items: ItemSchema = schema.items ?? { type: 'string' };
  value.forEach((item, index) => {
    checkScalar(item, items, `${name}[${index}]`, violations, sensitive);
  });
}

/**
 * Merges, coerces and validates parameters against `manifest.parameters`; fills defaults.
 * Throws INVALID_PARAMETERS listing every violation.
 */
export function resolveParameters(
  manifest: MrsManifest,
  input: ParameterInput,
): Record<string, unknown> {
  const schema = manifest.parameters;
  const properties = schema.properties;
  const violations: ParameterViolation[] = [];
  const values: Record<string, unknown> = {};

  if (input.values !== undefined) {
    if (typeof input.values !== 'object' || input.values === null || Array.isArray(input.values)) {
      violations.push({ parameter: '(params)', message: 'parameters must be a JSON object' });
    } else {
      for (const [key, value] of Object.entries(input.values)) values[key] = value;
    }
  }
  for (const arg of input.args ?? []) {
    const equals = arg.indexOf('=');
    if (equals <= 0) {
      violations.push({
        parameter: arg.slice(0, 64) || '(empty)',
        message: 'expected key=value',
      });
      continue;
    }
    const key = arg.slice(0, equals);
    values[key] = coerceParameter(
      arg.slice(equals + 1),
      Object.hasOwn(properties, key) ? properties[key] : undefined,
    );
  }

  const known = Object.keys(properties);
  for (const key of Object.keys(values)) {
    if (Object.hasOwn(properties, key)) continue;
    if (schema.additionalProperties === true) continue;
    violations.push({
      parameter: key.slice(0, 64),
      message:
        known.length === 0
          ? `unknown parameter; ${manifest.name} takes no parameters`
          : `unknown parameter; known: ${known.join(', ')}`,
    });
  }
  for (const [key, parameter] of Object.entries(properties)) {
    if (!Object.hasOwn(values, key) && parameter.default !== undefined) {
      values[key] = structuredClone(parameter.default);
    }
  }
  for (const key of schema.required ?? []) {
    if (!Object.hasOwn(values, key)) {
      violations.push({ parameter: key, message: 'required parameter is missing' });
    }
  }
  for (const [key, value] of Object.entries(values)) {
    const parameter = Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (parameter !== undefined) checkParameter(key, value, parameter, violations);
  }

  if (violations.length > 0) {
    const listed = violations.map((violation) => `${violation.parameter}: ${violation.message}`);
    throw new RuneError(
      'INVALID_PARAMETERS',
      `invalid parameters for ${manifest.name}: ${listed.join('; ')}`,
      {
        source: { component: 'rune-core', action: manifest.name },
        details: { violations },
      },
    );
  }
  return values;
}

/** The names of the manifest's sensitive parameters. */
export function sensitiveParameterNames(manifest: MrsManifest): string[] {
  return Object.entries(manifest.parameters.properties)
    .filter(([, parameter]) => parameter.sensitive === true)
    .map(([name]) => name);
}

/** A copy of `params` with every name in `sensitive` replaced by {@link REDACTED}. */
export function redactParameters(
  params: Readonly<Record<string, unknown>>,
  sensitive: readonly string[],
): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...params };
  for (const name of sensitive) if (Object.hasOwn(copy, name)) copy[name] = REDACTED;
  return copy;
}
