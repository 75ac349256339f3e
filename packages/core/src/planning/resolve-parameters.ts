/**
 * Plugin parameters: merged from a JSON object (`--params @file.json`) and `key=value` strings
 * (`--param`), validated against the manifest's MRS parameter schema, defaults filled.
 *
 * Strings from the command line are coerced only as far as the declared type allows, by the
 * one strict rule of @rune/protocol (`coerceParameterText`): `"5"` becomes 5 for an integer
 * parameter, stays `"5"` for a string one; `"true"`/`"false"` for booleans; comma-separated or
 * JSON arrays for arrays. Values from a JSON object are never coerced. Every violation is
 * collected, so one INVALID_PARAMETERS error lists them all.
 *
 * The merge keeps every given name as an own key of a prototype-less object, so `__proto__`
 * reaches validation (and is refused there) instead of silently replacing the prototype. A
 * `--param` that does not parse as `key=value` is never echoed: it may be a secret typed with
 * the wrong separator (`token:SECRET`), and the message reaches the terminal and the audit log.
 */
import {
  coerceParameterText,
  type MrsManifest,
  type MrsParameter,
  PARAMETER_NAME_PATTERN,
  RuneError,
  resolveParameters,
  type SchemaViolation,
} from '@rune/protocol';

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

/**
 * Coerces one `--param` string by the declared parameter type (`coerceParameterText` of
 * @rune/protocol). Unconvertible text stays text.
 */
export function coerceParameter(text: string, schema: MrsParameter | undefined): unknown {
  return coerceParameterText(text, schema);
}

const NAME_CHARACTER = /[a-z0-9_]/;

/**
 * How a malformed `--param` (no `=`, or nothing before it) is named in a message: the known
 * parameter it starts with (`token:SECRET` -> `token`), else its position. Never its text.
 */
function malformedArgLabel(arg: string, index: number, known: readonly string[]): string {
  const named = known
    .filter((name) => arg.startsWith(name) && !NAME_CHARACTER.test(arg.charAt(name.length)))
    .sort((a, b) => b.length - a.length)[0];
  return named ?? `--param #${index + 1}`;
}

/** Turns a JSON pointer into the given parameters (`/items/2`) into `items[2]`. */
function parameterLabel(pointer: string): string {
  const tokens = pointer
    .split('/')
    .slice(1)
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (tokens.length === 0) return '(params)';
  return tokens.reduce((label, token, index) =>
    index === 0 ? token : /^\d+$/.test(token) ? `${label}[${token}]` : `${label}.${token}`,
  );
}

/** The constraints a parameter value (or one array element) is checked against. */
interface ValueConstraints {
  enum?: readonly unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
}

/** `1..5000`, `>= 1` or `<= 5000`: the range a manifest allows. */
function rangeText(constraints: ValueConstraints): string {
  const { minimum, maximum } = constraints;
  if (minimum !== undefined && maximum !== undefined) return `${minimum}..${maximum}`;
  return minimum !== undefined ? `>= ${minimum}` : `<= ${maximum}`;
}

/**
 * Says which manifest constraint `value` breaks, naming the pattern, range, length or allowed
 * values (the validator's message names only the broken rule); the value is shown
 * unless the parameter is sensitive. Undefined when none applies (the validator's text stays).
 */
function constraintMessage(
  constraints: ValueConstraints,
  value: unknown,
  sensitive: boolean,
): string | undefined {
  const shown = JSON.stringify(value) ?? String(value);
  const got = sensitive ? '' : `, got ${shown.length > 60 ? `${shown.slice(0, 60)}…` : shown}`;
  if (constraints.enum !== undefined && !constraints.enum.some((allowed) => allowed === value)) {
    return `must be one of ${constraints.enum.map((allowed) => JSON.stringify(allowed)).join(', ')}${got}`;
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (constraints.pattern !== undefined && !new RegExp(constraints.pattern, 'u').test(value)) {
      return `does not match the pattern ${constraints.pattern}${got}`;
    }
    if (constraints.minLength !== undefined && length < constraints.minLength) {
      return `must be at least ${constraints.minLength} characters long (is ${length})`;
    }
    if (constraints.maxLength !== undefined && length > constraints.maxLength) {
      return `must be at most ${constraints.maxLength} characters long (is ${length})`;
    }
  }
  if (typeof value === 'number') {
    const { minimum, maximum } = constraints;
    if ((minimum !== undefined && value < minimum) || (maximum !== undefined && value > maximum)) {
      return `must be in the range ${rangeText(constraints)}${got}`;
    }
  }
  if (Array.isArray(value)) {
    if (constraints.minItems !== undefined && value.length < constraints.minItems) {
      return `must have at least ${constraints.minItems} elements (has ${value.length})`;
    }
    if (constraints.maxItems !== undefined && value.length > constraints.maxItems) {
      return `must have at most ${constraints.maxItems} elements (has ${value.length})`;
    }
  }
  return undefined;
}

/** The constraint message for the value at a violation's pointer (`/name` or `/name/2`). */
function violationDetail(
  manifest: MrsManifest,
  pointer: string,
  values: Readonly<Record<string, unknown>>,
): string | undefined {
  const [name, index, ...rest] = pointer
    .split('/')
    .slice(1)
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (name === undefined || rest.length > 0) return undefined;
  const spec = Object.hasOwn(manifest.parameters.properties, name)
    ? manifest.parameters.properties[name]
    : undefined;
  if (spec === undefined || !Object.hasOwn(values, name)) return undefined;
  const value = values[name];
  const sensitive = spec.sensitive === true;
  if (index === undefined) return constraintMessage(spec, value, sensitive);
  if (!Array.isArray(value) || spec.items === undefined || !/^\d+$/.test(index)) return undefined;
  return constraintMessage(spec.items, value[Number(index)], sensitive);
}

/**
 * Merges, coerces and validates parameters against `manifest.parameters` with the normative MRS
 * check from @rune/protocol; fills defaults. Throws INVALID_PARAMETERS listing every violation.
 */
export function resolveRunParameters(
  manifest: MrsManifest,
  input: ParameterInput,
): Record<string, unknown> {
  const properties = manifest.parameters.properties;
  const known = Object.keys(properties);
  const violations: ParameterViolation[] = [];
  const values = Object.create(null) as Record<string, unknown>;

  if (input.values !== undefined) {
    if (typeof input.values !== 'object' || input.values === null || Array.isArray(input.values)) {
      violations.push({ parameter: '(params)', message: 'parameters must be a JSON object' });
    } else {
      for (const [key, value] of Object.entries(input.values)) values[key] = value;
    }
  }
  for (const [index, arg] of (input.args ?? []).entries()) {
    const equals = arg.indexOf('=');
    if (equals <= 0) {
      violations.push({
        parameter: malformedArgLabel(arg, index, known),
        message: `expected key=value (the argument is not shown: it may hold a secret; names match ${PARAMETER_NAME_PATTERN})`,
      });
      continue;
    }
    const key = arg.slice(0, equals);
    values[key] = coerceParameter(
      arg.slice(equals + 1),
      Object.hasOwn(properties, key) ? properties[key] : undefined,
    );
  }

  const resolved = resolveParameters(manifest, values, {
    source: { component: 'rune-core', action: manifest.name },
  });
  if (!resolved.ok) {
    const listed = (resolved.error.details?.violations ?? []) as SchemaViolation[];
    for (const violation of listed) {
      const parameter = parameterLabel(violation.pointer);
      let message = violation.message;
      const detail = violationDetail(manifest, violation.pointer, values);
      if (message === 'Unknown parameter') {
        message =
          known.length === 0
            ? `unknown parameter; ${manifest.name} takes no parameters`
            : `unknown parameter; known: ${known.join(', ')}`;
      } else if (message === 'Expected required parameter') {
        message = 'required parameter is missing';
      } else if (detail !== undefined) {
        message = detail;
      } else {
        const value = values[parameter];
        const sensitive = properties[parameter]?.sensitive === true;
        if (
          !sensitive &&
          typeof value === 'string' &&
          /^Expected (integer|number|boolean|array)$/.test(message)
        ) {
          message = `${message}, got "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
        }
      }
      violations.push({ parameter, message });
    }
  }

  if (violations.length > 0 || !resolved.ok) {
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
  return resolved.value;
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
