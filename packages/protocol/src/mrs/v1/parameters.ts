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
import { MAX_LISTED_VIOLATIONS } from '../../validation/parse.js';
import {
  type MrsManifest,
  type MrsParameter,
  type MrsParameters,
  PARAMETER_NAME_PATTERN,
} from './schema.js';

type Scalar = string | number | boolean;
type ScalarRule = {
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array';
  enum?: Scalar[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
};

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

/** True when `text` holds a lone UTF-16 surrogate (it has no UTF-8 encoding). */
export function hasLoneSurrogate(text: string): boolean {
  // In Unicode mode a well-formed pair is one code point, so only lone halves match.
  return /[\ud800-\udfff]/u.test(text);
}

/** Decimal integer text: optional sign, digits, nothing else (no spaces, no 0x, no exponent). */
const INTEGER_TEXT = /^[+-]?[0-9]+$/;
/** Decimal number text: optional sign, digits with an optional fraction, optional exponent. */
const NUMBER_TEXT = /^[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

type CoercibleType = 'string' | 'integer' | 'number' | 'boolean';

function coerceScalarText(text: string, type: CoercibleType): unknown {
  switch (type) {
    case 'string':
      return text;
    case 'integer': {
      if (!INTEGER_TEXT.test(text)) return text;
      const value = Number(text);
      return Number.isSafeInteger(value) ? value : text;
    }
    case 'number': {
      if (!NUMBER_TEXT.test(text)) return text;
      const value = Number(text);
      return Number.isFinite(value) ? value : text;
    }
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
  }
}

/**
 * The one conversion of command-line text (`--param key=value`) into a parameter value, by the
 * declared type. Integers: decimal digits with an optional sign, within the safe integer range.
 * Numbers: decimal notation (`-1.5`, `.5`, `2e-3`), finite. Booleans: `true` or `false`. Arrays:
 * a JSON array, or a comma list whose items are converted by the item type (items of non-string
 * arrays may have spaces around the commas). Text that does not convert is returned unchanged,
 * so validation reports it against the declared type. Without a declaration the text stays text.
 */
export function coerceParameterText(text: string, parameter: MrsParameter | undefined): unknown {
  if (parameter === undefined) return text;
  if (parameter.type !== 'array') return coerceScalarText(text, parameter.type);
  const itemType = parameter.items?.type ?? 'string';
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
    .map((part) => coerceScalarText(itemType === 'string' ? part : part.trim(), itemType));
}
const patternCache = new Map<string, RegExp | null>();

/** Compiles an MRS `pattern` (ECMA-262, Unicode mode); null when it is not a valid expression. */
export function compileParameterPattern(pattern: string): RegExp | null {
  let compiled = patternCache.get(pattern);
  if (compiled === undefined) {
    try {
      compiled = new RegExp(pattern, 'u');
    } catch {
      compiled = null;
    }
    if (patternCache.size < 1024) patternCache.set(pattern, compiled);
  }
  return compiled;
}

const isScalar = (value: unknown): value is Scalar =>
  typeof value === 'string' ||
  typeof value === 'boolean' ||
  (typeof value === 'number' && Number.isFinite(value));

function typeMatches(type: ScalarRule['type'], value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'array':
      return Array.isArray(value);
  }
}

function checkScalar(
  rule: ScalarRule,
  value: unknown,
  pointer: string,
  violations: SchemaViolation[],
): void {
  if (!typeMatches(rule.type, value)) {
    violations.push({ pointer, message: `Expected ${rule.type}` });
    return;
  }
  if (rule.enum !== undefined && !rule.enum.some((allowed) => allowed === value)) {
    violations.push({ pointer, message: 'Expected one of the values listed in enum' });
  }
  if (typeof value === 'number') {
    if (rule.minimum !== undefined && value < rule.minimum) {
      violations.push({ pointer, message: `Expected a value >= ${rule.minimum}` });
    }
    if (rule.maximum !== undefined && value > rule.maximum) {
      violations.push({ pointer, message: `Expected a value <= ${rule.maximum}` });
    }
  }
  if (typeof value === 'string') {
    if (hasLoneSurrogate(value)) {
      violations.push({
        pointer,
        message: 'Expected well-formed Unicode (a lone UTF-16 surrogate)',
      });
      return;
    }
    const length = [...value].length;
    if (rule.minLength !== undefined && length < rule.minLength) {
      violations.push({ pointer, message: `Expected at least ${rule.minLength} characters` });
    }
    if (rule.maxLength !== undefined && length > rule.maxLength) {
      violations.push({ pointer, message: `Expected at most ${rule.maxLength} characters` });
    }
    if (rule.pattern !== undefined) {
      const regExp = compileParameterPattern(rule.pattern);
      // A pattern that does not compile is reported by the manifest rules, not per value.
      if (regExp !== null && !regExp.test(value)) {
        violations.push({ pointer, message: 'Expected a value matching the pattern' });
      }
    }
  }
}

/**
 * Lists the violations of one parameter value against its declaration, located at `pointer`.
 * An empty list means the value is acceptable.
 */
export function checkParameterValue(
  parameter: MrsParameter,
  value: unknown,
  pointer = '',
): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  checkScalar(parameter as ScalarRule, value, pointer, violations);
  if (parameter.type === 'array' && Array.isArray(value)) {
    if (parameter.minItems !== undefined && value.length < parameter.minItems) {
      violations.push({ pointer, message: `Expected at least ${parameter.minItems} elements` });
    }
    if (parameter.maxItems !== undefined && value.length > parameter.maxItems) {
      violations.push({ pointer, message: `Expected at most ${parameter.maxItems} elements` });
    }
    value.forEach((element, index) => {
      const at = `${pointer}/${index}`;
      if (parameter.items === undefined) {
        if (!isScalar(element)) violations.push({ pointer: at, message: 'Expected a scalar' });
      } else {
        checkScalar(parameter.items as ScalarRule, element, at, violations);
      }
    });
  }
  return violations.slice(0, MAX_LISTED_VIOLATIONS);
}

/** RFC 6901 escaping of one reference token. */
export function escapeJsonPointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

const isWellFormedScalar = (value: unknown): boolean =>
  isScalar(value) && (typeof value !== 'string' || !hasLoneSurrogate(value));

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
