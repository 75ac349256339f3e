/**
 * Expectations on output_data: JSON pointers (RFC 6901) and value matchers.
 *
 * An expected value is either a plain JSON value (compared deeply) or a matcher: an object whose
 * keys all start with `$` — `$matches` (regular expression), `$contains` (substring or array
 * element), `$type` (string, number, integer, boolean, array, object, null), `$gte`/`$gt`/`$lte`/
 * `$lt`, `$length`, `$exists`, `$equals` (literal, for objects whose keys start with `$`), `$any`
 * (list of alternatives). Several keys in one matcher must all hold.
 */
import { isDeepStrictEqual } from 'node:util';

/** Sentinel for "nothing at this pointer". */
export const MISSING: unique symbol = Symbol('missing');

/** Resolves a JSON pointer in a value; returns {@link MISSING} when a step does not exist. */
export function resolvePointer(value: unknown, pointer: string): unknown {
  if (pointer === '') return value;
  if (!pointer.startsWith('/')) return MISSING;
  let current: unknown = value;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key)) return MISSING;
      const index = Number(key);
      if (index >= current.length) return MISSING;
      current = current[index];
    } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, key)) {
      current = (current as Record<string, unknown>)[key];
    } else {
      return MISSING;
    }
  }
  return current;
}

const isMatcher = (expected: unknown): expected is Record<string, unknown> =>
  typeof expected === 'object' &&
  expected !== null &&
  !Array.isArray(expected) &&
  Object.keys(expected).length > 0 &&
  Object.keys(expected).every((key) => key.startsWith('$'));

const typeOf = (value: unknown): string => {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
};

const show = (value: unknown): string =>
  value === MISSING ? '(absent)' : (JSON.stringify(value) ?? String(value));

/** Checks `actual` against an expected value or matcher; returns why it does not match, or null. */
export function matchValue(actual: unknown, expected: unknown): string | null {
  if (!isMatcher(expected)) {
    if (actual === MISSING) return `expected ${show(expected)}, but the field is absent`;
    return isDeepStrictEqual(actual, expected)
      ? null
      : `expected ${show(expected)}, got ${show(actual)}`;
  }
  for (const [key, operand] of Object.entries(expected)) {
    const problem = matchOne(actual, key, operand);
    if (problem !== null) return problem;
  }
  return null;
}

function matchOne(actual: unknown, key: string, operand: unknown): string | null {
  if (key === '$exists') {
    const exists = actual !== MISSING;
    return exists === operand
      ? null
      : operand
        ? 'expected the field to exist'
        : `expected no field, got ${show(actual)}`;
  }
  if (actual === MISSING)
    return `expected a value (${key} ${show(operand)}), but the field is absent`;
  switch (key) {
    case '$equals':
      return isDeepStrictEqual(actual, operand)
        ? null
        : `expected ${show(operand)}, got ${show(actual)}`;
    case '$matches':
      return typeof actual === 'string' && new RegExp(String(operand)).test(actual)
        ? null
        : `expected a string matching /${String(operand)}/, got ${show(actual)}`;
    case '$contains':
      if (typeof actual === 'string' && typeof operand === 'string' && actual.includes(operand))
        return null;
      if (Array.isArray(actual) && actual.some((item) => isDeepStrictEqual(item, operand)))
        return null;
      return `expected ${show(actual)} to contain ${show(operand)}`;
    case '$type': {
      const kind = operand === 'integer' && Number.isInteger(actual) ? 'integer' : typeOf(actual);
      return kind === operand
        ? null
        : `expected type ${String(operand)}, got ${typeOf(actual)} ${show(actual)}`;
    }
    case '$gte':
    case '$gt':
    case '$lte':
    case '$lt': {
      if (typeof actual !== 'number' || typeof operand !== 'number') {
        return `expected a number ${key.slice(1)} ${show(operand)}, got ${show(actual)}`;
      }
      const holds =
        key === '$gte'
          ? actual >= operand
          : key === '$gt'
            ? actual > operand
            : key === '$lte'
              ? actual <= operand
              : actual < operand;
      return holds ? null : `expected a number ${key.slice(1)} ${operand}, got ${actual}`;
    }
    case '$length': {
      const length =
        typeof actual === 'string' || Array.isArray(actual) ? actual.length : undefined;
      if (length === undefined) return `expected a string or array, got ${show(actual)}`;
      return matchValue(length, operand) === null
        ? null
        : `expected length ${show(operand)}, got ${length}`;
    }
    case '$any': {
      if (!Array.isArray(operand)) return '$any needs a list of alternatives';
      return operand.some((alternative) => matchValue(actual, alternative) === null)
        ? null
        : `expected any of ${show(operand)}, got ${show(actual)}`;
    }
    default:
      return `unknown matcher ${key} (known: $equals $matches $contains $type $gte $gt $lte $lt $length $exists $any)`;
  }
}
