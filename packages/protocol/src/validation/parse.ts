/**
 * Parsing untrusted documents without exceptions and without partial objects.
 *
 * Every `parse*` function walks the same ladder — size (DOCUMENT_TOO_LARGE), UTF-8 decoding
 * (INVALID_ENCODING), nesting depth (DOCUMENT_TOO_DEEP), JSON syntax (MALFORMED_JSON),
 * schema_version negotiation (UNSUPPORTED_SCHEMA_VERSION), schema and cross-field rules
 * (SCHEMA_VIOLATION) — and stops at the first rung that fails, returning an EPS error that names
 * what failed. Size comes first because it is the cheapest check and bounds every later one.
 * Depth is measured on the text before `JSON.parse`, so a hostile document of a million nested
 * arrays costs a linear scan, never a stack overflow in a parser or validator.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import type { ErrorCode } from '../eps/v1/catalog.js';
import { RuneError, type RuneErrorSource } from '../errors/rune-error.js';
import { MAX_LISTED_VIOLATIONS, type SchemaViolation } from './violations.js';

/** The result of every parse/validate function: a typed value or an EPS error, never both. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: RuneError };

export { MAX_LISTED_VIOLATIONS, type SchemaViolation } from './violations.js';

/** Limits and context for parsing. */
export interface ParseOptions {
  /** Maximum document size in bytes (UTF-8). */
  maxBytes?: number;
  /** Maximum nesting depth of arrays and objects. */
  maxDepth?: number;
  /** Component named as the error source. */
  source?: RuneErrorSource;
  /** Trace id recorded on the error. */
  traceId?: string;
}

/** Default maximum size of a document: 1 MiB. */
export const DEFAULT_MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Default maximum nesting depth of a document. */
export const DEFAULT_MAX_DOCUMENT_DEPTH = 64;

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();

function compiled<T extends TSchema>(schema: T): TypeCheck<T> {
  let check = checks.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    checks.set(schema, check);
  }
  return check as TypeCheck<T>;
}

function fail<T>(
  code: ErrorCode,
  message: string,
  options: ParseOptions,
  details?: Record<string, unknown>,
): ParseResult<T> {
  const errorOptions: ConstructorParameters<typeof RuneError>[2] = {
    source: options.source ?? { component: 'rune-protocol' },
  };
  if (details !== undefined) errorOptions.details = details;
  if (options.traceId !== undefined) errorOptions.traceId = options.traceId;
  return { ok: false, error: new RuneError(code, message, errorOptions) };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes bytes as strict UTF-8. A leading byte-order mark is dropped, from bytes and from strings
 * alike (RFC 8259 §8.1 lets a parser ignore it), so both input forms always give the same verdict.
 */
export function decodeUtf8(
  input: string | Uint8Array,
  options: ParseOptions = {},
): ParseResult<string> {
  if (typeof input === 'string') {
    return { ok: true, value: input.charCodeAt(0) === 0xfeff ? input.slice(1) : input };
  }
  try {
    return { ok: true, value: utf8.decode(input) };
  } catch {
    return fail('INVALID_ENCODING', 'document is not valid UTF-8', options, {
      bytes: input.byteLength,
    });
  }
}

/**
 * The maximum nesting depth of the arrays and objects in a JSON text, ignoring brackets inside
 * strings. Works on any text (also invalid JSON) in one pass.
 */
export function measureJsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** Byte length of a string in UTF-8, without allocating. */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Decodes, bounds and parses a JSON text. Any JSON value is accepted. */
export function parseJsonDocument(
  input: string | Uint8Array,
  options: ParseOptions = {},
): ParseResult<unknown> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
  const size = typeof input === 'string' ? utf8ByteLength(input) : input.byteLength;
  if (size > maxBytes) {
    return fail(
      'DOCUMENT_TOO_LARGE',
      `document is ${size} bytes; the limit is ${maxBytes}`,
      options,
      {
        bytes: size,
        limit: maxBytes,
      },
    );
  }
  const decoded = decodeUtf8(input, options);
  if (!decoded.ok) return decoded;
  const text = decoded.value;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DOCUMENT_DEPTH;
  const depth = measureJsonDepth(text);
  if (depth > maxDepth) {
    return fail(
      'DOCUMENT_TOO_DEEP',
      `document nests ${depth} levels deep; the limit is ${maxDepth}`,
      options,
      {
        depth,
        limit: maxDepth,
      },
    );
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return fail('MALFORMED_JSON', `document is not valid JSON: ${reason}`, options, { reason });
  }
}

function describeConst(schema: unknown): string | undefined {
  if (typeof schema !== 'object' || schema === null || !('const' in schema)) return undefined;
  return JSON.stringify((schema as { const: unknown }).const);
}

/**
 * Turns one TypeBox error into violations. TypeBox reports a failed union as one opaque
 * "Expected union value" at the union's path; this looks inside: when some alternative failed only
 * below that path (the value had the right kind but wrong members, e.g. an `error` object that is
 * not a valid EPS error), the alternative with the fewest violations is reported member by member;
 * a union of constants is reported as "Expected one of: ...".
 */
function explain(error: ValueError, depth: number): SchemaViolation[] {
  if (error.type !== ValueErrorType.Union || depth > 8) {
    return [{ pointer: error.path, message: error.message }];
  }
  const alternatives = error.errors.map((iterator) => [...iterator]);
  const inside = alternatives.filter(
    (errors) =>
      errors.length > 0 && errors.every((inner) => inner.path.startsWith(`${error.path}/`)),
  );
  if (inside.length > 0) {
    const best = inside.reduce((a, b) => (b.length < a.length ? b : a));
    return best.flatMap((inner) => explain(inner, depth + 1));
  }
  const anyOf = (error.schema as { anyOf?: unknown[] }).anyOf ?? [];
  const constants = anyOf.map(describeConst);
  if (constants.length > 0 && constants.every((text) => text !== undefined)) {
    return [{ pointer: error.path, message: `Expected one of: ${constants.join(', ')}` }];
  }
  const kinds = alternatives
    .map((errors) => errors[0]?.message.replace(/^Expected /, ''))
    .filter((text): text is string => text !== undefined);
  const message = kinds.length > 0 ? `Expected ${[...new Set(kinds)].join(' or ')}` : error.message;
  return [{ pointer: error.path, message }];
}

/**
 * Lists every violation of `schema` by `value` (at most {@link MAX_LISTED_VIOLATIONS}), each
 * located by a JSON pointer (RFC 6901; `""` is the whole document).
 */
export function listViolations(schema: TSchema, value: unknown): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  for (const error of compiled(schema).Errors(value)) {
    for (const violation of explain(error, 0)) {
      violations.push(violation);
      if (violations.length >= MAX_LISTED_VIOLATIONS) return violations;
    }
  }
  return violations;
}

/** Validates an already-parsed value against a schema. */
export function validateSchema<T extends TSchema>(
  schema: T,
  value: unknown,
  label: string,
  options: ParseOptions = {},
): ParseResult<Static<T>> {
  if (compiled(schema).Check(value)) return { ok: true, value: value as Static<T> };
  return schemaViolations(label, listViolations(schema, value), options);
}

/** A SCHEMA_VIOLATION for one rule the schema itself cannot express (cross-field rules). */
export function schemaViolation<T>(
  label: string,
  pointer: string,
  message: string,
  options: ParseOptions = {},
): ParseResult<T> {
  return schemaViolations(label, [{ pointer, message }], options);
}

/** A SCHEMA_VIOLATION listing several violations found by cross-field rules. */
export function schemaViolations<T>(
  label: string,
  violations: readonly SchemaViolation[],
  options: ParseOptions = {},
): ParseResult<T> {
  const listed = violations.slice(0, MAX_LISTED_VIOLATIONS);
  const first = listed[0];
  const where = first === undefined ? '' : `: ${first.pointer || '/'} ${first.message}`;
  const more = listed.length > 1 ? ` (and ${listed.length - 1} more)` : '';
  return fail('SCHEMA_VIOLATION', `${label} violates its schema${where}${more}`, options, {
    violations: listed,
  });
}

/**
 * Schema-version negotiation between a sender that can speak `offered` versions and a receiver
 * that implements `supported` ones (both in preference order, newest first): the receiver's most
 * preferred version the sender also offers, or UNSUPPORTED_SCHEMA_VERSION naming both lists.
 * The control node uses it to choose the RCS version for a plugin from its MRS `accepts`.
 */
export function negotiateSchemaVersion(
  offered: readonly string[],
  supported: readonly string[],
  options: ParseOptions = {},
): ParseResult<string> {
  const common = supported.find((version) => offered.includes(version));
  if (common !== undefined) return { ok: true, value: common };
  return fail(
    'UNSUPPORTED_SCHEMA_VERSION',
    `no common schema version: offered ${offered.join(', ') || '(none)'}; supported: ${supported.join(', ')}`,
    options,
    { received: offered.map((version) => version.slice(0, 64)), supported: [...supported] },
  );
}

/** Reads a string at a path of an unknown value, if it is one. */
function stringAt(value: unknown, path: readonly string[]): string | undefined {
  let current: unknown = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return typeof current === 'string' ? current : undefined;
}

/** How a versioned document is recognised. */
export interface VersionedDocument<T extends TSchema> {
  /** Human label used in messages: "RCS request". */
  label: string;
  schema: T;
  /** Where schema_version sits in the document. */
  versionPath: readonly string[];
  /** The versions this receiver implements (in preference order). */
  supported: readonly string[];
}

/**
 * Negotiates the schema_version of a parsed document: a version this receiver does not implement
 * is refused with UNSUPPORTED_SCHEMA_VERSION naming the supported ones; it is never guessed at.
 */
export function validateVersioned<T extends TSchema>(
  kind: VersionedDocument<T>,
  value: unknown,
  options: ParseOptions = {},
): ParseResult<Static<T>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('SCHEMA_VIOLATION', `${kind.label} must be a JSON object`, options, {
      violations: [{ pointer: '', message: 'Expected object' }],
    });
  }
  const version = stringAt(value, kind.versionPath);
  if (version !== undefined && !kind.supported.includes(version)) {
    return fail(
      'UNSUPPORTED_SCHEMA_VERSION',
      `${kind.label} has schema_version "${version.slice(0, 64)}"; supported: ${kind.supported.join(', ')}`,
      options,
      {
        received: version.slice(0, 64),
        supported: [...kind.supported],
        pointer: `/${kind.versionPath.join('/')}`,
      },
    );
  }
  return validateSchema(kind.schema, value, kind.label, options);
}

/** Parses JSON text or bytes into a versioned document. */
export function parseVersioned<T extends TSchema>(
  kind: VersionedDocument<T>,
  input: string | Uint8Array,
  options: ParseOptions = {},
): ParseResult<Static<T>> {
  const parsed = parseJsonDocument(input, options);
  if (!parsed.ok) return parsed;
  return validateVersioned(kind, parsed.value, options);
}
