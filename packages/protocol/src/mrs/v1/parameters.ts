/**
 * Parameters against a manifest: the check the control node runs before it builds an RCS request
 * (defaults filled, unknown names rejected, every violation listed), and the check a manifest's
 * own `default` values must pass. MRS parameters are a small JSON Schema subset, so they are
 * checked here directly instead of compiling a schema per plugin; lengths count Unicode code
 * points, as JSON Schema does. Sensitive values are never quoted in messages.
 *
 * Three rules here go beyond JSON Schema because every consumer (the CLI, the API, a plugin in
 * Bash) needs them: strings must be well-formed Unicode (a lone UTF-16 surrogate cannot be
 * encoded as UTF-8, so a plugin would receive U+FFFD or a JSON parser would fail); integers must
 * be safe integers (a Bash plugin or `jq` cannot represent 1e300 exactly); and `__proto__`,
 * `constructor` and `prototype` are never parameter names (in JavaScript they address an object's
 * prototype machinery, so a merge could silently drop or alter them). Text from a command line
 * becomes a typed value only through {@link coerceParameterText}: decimal notation, no
 * whitespace, nothing `Number()` would also accept (`''`, `0x10`, `1e3` for integers).
 */
import type { JsonObject } from '../../common/primitives.js';
import { RuneError } from '../../errors/rune-error.js';
import type { ParseOptions, ParseResult, SchemaViolation } from '../../validation/parse.js';
import { MAX_LISTED_VIOLATIONS } from '../../validation/violations.js';
import { checkParameterValue, hasLoneSurrogate, isScalarValue } from './parameter-values.js';
import { type MrsManifest, type MrsParameters, PARAMETER_NAME_PATTERN } from './schema.js';

export {
  checkParameterValue,
  coerceParameterText,
  compileParameterPattern,
  hasLoneSurrogate,
} from './parameter-values.js';

const parameterNameRegExp = new RegExp(PARAMETER_NAME_PATTERN);

/** Names no parameter may have: they address JavaScript's prototype machinery. */
export const RESERVED_PARAMETER_NAMES: readonly string[] = [
  '__proto__',
  'constructor',
  'prototype',
];

/** True for a name in {@link RESERVED_PARAMETER_NAMES}. */
export function isReservedParameterName(name: string): boolean {
  return RESERVED_PARAMETER_NAMES.includes(name);
}

/** RFC 6901 escaping of one reference token. */
export function escapeJsonPointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

const isWellFormedScalar = (value: unknown): boolean =>
  isScalarValue(value) && (typeof value !== 'string' || !hasLoneSurrogate(value));

/**
 * True for a value an undeclared parameter may take: a scalar or an array of scalars, strings
 * well-formed.
 */
export function isTopLevelParameterValue(value: unknown): boolean {
  return isWellFormedScalar(value) || (Array.isArray(value) && value.every(isWellFormedScalar));
}

/** The violation message of a reserved parameter name. */
export const RESERVED_MESSAGE =
  'Reserved name (__proto__, constructor and prototype are never parameters)';

/**
 * Checks parameters given for a plugin against its manifest and returns them with defaults
 * filled in, or INVALID_PARAMETERS listing every violation (unknown name, missing required
 * parameter, wrong type, out of range, ...) by JSON pointer into the given parameters.
 *
 * Undeclared names are refused unless the manifest sets `parameters.additionalProperties: true`
 * (every inferred manifest does); even then, they must be valid parameter names and their values
 * top-level scalars or arrays of scalars — never objects.
 */
export function resolveParameters(
  manifest: Pick<MrsManifest, 'name' | 'parameters'>,
  given: unknown,
  options: ParseOptions = {},
): ParseResult<JsonObject> {
  const fail = (violations: SchemaViolation[]): ParseResult<JsonObject> => {
    const first = violations[0];
    const where = first === undefined ? '' : `: ${first.pointer || '/'} ${first.message}`;
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
    const errorOptions: ConstructorParameters<typeof RuneError>[2] = {
      source: options.source ?? { component: 'rune-protocol', action: manifest.name },
      details: { violations: violations.slice(0, MAX_LISTED_VIOLATIONS) },
    };
    if (options.traceId !== undefined) errorOptions.traceId = options.traceId;
    return {
      ok: false,
      error: new RuneError(
        'INVALID_PARAMETERS',
        `parameters for ${manifest.name} are invalid${where}${more}`,
        errorOptions,
      ),
    };
  };
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    return fail([{ pointer: '', message: 'Expected an object of parameters' }]);
  }
  const block: MrsParameters = manifest.parameters;
  const input = given as Record<string, unknown>;
  const violations: SchemaViolation[] = [];
  // No prototype: a name can only ever be an own key, whatever it is.
  const resolved = Object.create(null) as JsonObject;
  for (const name of Object.keys(input)) {
    if (isReservedParameterName(name)) {
      violations.push({ pointer: `/${escapeJsonPointerToken(name)}`, message: RESERVED_MESSAGE });
    }
  }
  const required = new Set(block.required ?? []);
  for (const [name, parameter] of Object.entries(block.properties)) {
    const pointer = `/${escapeJsonPointerToken(name)}`;
    if (Object.hasOwn(input, name)) {
      const value = input[name];
      violations.push(...checkParameterValue(parameter, value, pointer));
      resolved[name] = value;
    } else if (parameter.default !== undefined) {
      resolved[name] = parameter.default;
    } else if (required.has(name)) {
      violations.push({ pointer, message: 'Expected required parameter' });
    }
  }
  for (const [name, value] of Object.entries(input)) {
    if (Object.hasOwn(block.properties, name) || isReservedParameterName(name)) continue;
    const pointer = `/${escapeJsonPointerToken(name)}`;
    if (block.additionalProperties !== true) {
      violations.push({ pointer, message: 'Unknown parameter' });
    } else if (!parameterNameRegExp.test(name)) {
      violations.push({
        pointer,
        message: `Expected a parameter name matching ${PARAMETER_NAME_PATTERN}`,
      });
    } else if (!isTopLevelParameterValue(value)) {
      violations.push({ pointer, message: 'Expected a scalar or an array of scalars' });
    } else {
      resolved[name] = value;
    }
  }
  // A plain object again for callers (spread, JSON, equality), built from own keys only.
  return violations.length > 0 ? fail(violations) : { ok: true, value: { ...resolved } };
}
