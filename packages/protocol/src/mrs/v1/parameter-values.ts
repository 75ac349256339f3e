/**
 * One parameter value against its MRS declaration, with no runtime dependency on anything that
 * needs a schema library (types only): the
 * conversion of text into a typed value ({@link coerceParameterText}) and the per-value check
 * ({@link checkParameterValue}) that {@link resolveParameters} in `parameters.ts` runs on the
 * control node. The dashboard bundles this module (`@rune/protocol/parameter-values`) to check
 * its run form with the same rules and messages before the server checks again.
 */
import { MAX_LISTED_VIOLATIONS, type SchemaViolation } from '../../validation/violations.js';
import type { MrsParameter } from './schema.js';

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

/** A string, a boolean or a finite number. */
export const isScalarValue = (value: unknown): value is Scalar =>
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
        violations.push({
          pointer,
          message: `Expected a value matching the pattern ${rule.pattern}`,
        });
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
        if (!isScalarValue(element)) violations.push({ pointer: at, message: 'Expected a scalar' });
      } else {
        checkScalar(parameter.items as ScalarRule, element, at, violations);
      }
    });
  }
  return violations.slice(0, MAX_LISTED_VIOLATIONS);
}
