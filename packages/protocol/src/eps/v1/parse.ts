import {
  type ParseOptions,
  type ParseResult,
  parseJsonDocument,
  validateSchema,
} from '../../validation/parse.js';
import { type EpsError, EpsErrorSchema } from './schema.js';

/** Parses an EPS error from JSON text or bytes. */
export function parseEpsError(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<EpsError> {
  const parsed = parseJsonDocument(input, options);
  if (!parsed.ok) return parsed;
  return validateSchema(EpsErrorSchema, parsed.value, 'EPS error', options);
}

/** Validates an already-parsed value as an EPS error. */
export function validateEpsError(value: unknown, options?: ParseOptions): ParseResult<EpsError> {
  return validateSchema(EpsErrorSchema, value, 'EPS error', options);
}

/** True when `value` is a valid EPS v1 error. */
export function isEpsError(value: unknown): value is EpsError {
  return validateSchema(EpsErrorSchema, value, 'EPS error').ok;
}
