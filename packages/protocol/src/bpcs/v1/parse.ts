import {
  type ParseOptions,
  type ParseResult,
  parseVersioned,
  schemaViolation,
  type VersionedDocument,
  validateVersioned,
} from '../../validation/parse.js';
import { BPCS_V1, type BpcsResponse, BpcsResponseSchema } from './schema.js';

/** BPCS schema versions this implementation understands. */
export const SUPPORTED_BPCS_VERSIONS: readonly string[] = [BPCS_V1];

const bpcs: VersionedDocument<typeof BpcsResponseSchema> = {
  label: 'BPCS result',
  schema: BpcsResponseSchema,
  versionPath: ['payload', 'schema_version'],
  supported: SUPPORTED_BPCS_VERSIONS,
};

/** Adds the cross-field rule the schema cannot say: failure carries an error, success does not. */
function checkResultErrorPairing(
  value: BpcsResponse,
  options: ParseOptions = {},
): ParseResult<BpcsResponse> {
  const result = value.payload.result;
  if (result === 'failure' && value.error === null) {
    return schemaViolation(
      'BPCS result',
      '/error',
      'result "failure" requires an EPS error object',
      options,
    );
  }
  if (result === 'success' && value.error !== null) {
    return schemaViolation(
      'BPCS result',
      '/error',
      'result "success" requires error to be null',
      options,
    );
  }
  return { ok: true, value };
}

/** Parses a BPCS result from JSON text or bytes, including the result/error pairing rule. */
export function parseBpcsResponse(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<BpcsResponse> {
  const parsed = parseVersioned(bpcs, input, options);
  return parsed.ok ? checkResultErrorPairing(parsed.value, options) : parsed;
}

/** Validates an already-parsed value as a BPCS result. */
export function validateBpcsResponse(
  value: unknown,
  options?: ParseOptions,
): ParseResult<BpcsResponse> {
  const validated = validateVersioned(bpcs, value, options);
  return validated.ok ? checkResultErrorPairing(validated.value, options) : validated;
}

/** True when `value` is a valid BPCS v1 result. */
export function isBpcsResponse(value: unknown): value is BpcsResponse {
  return validateBpcsResponse(value).ok;
}
