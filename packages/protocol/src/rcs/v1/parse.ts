import {
  negotiateSchemaVersion,
  type ParseOptions,
  type ParseResult,
  parseVersioned,
  type VersionedDocument,
  validateVersioned,
} from '../../validation/parse.js';
import { RCS_V1, type RcsRequest, RcsRequestSchema } from './schema.js';

/** RCS schema versions this implementation understands, newest first. */
export const SUPPORTED_RCS_VERSIONS: readonly string[] = [RCS_V1];

const rcs: VersionedDocument<typeof RcsRequestSchema> = {
  label: 'RCS request',
  schema: RcsRequestSchema,
  versionPath: ['payload', 'schema_version'],
  supported: SUPPORTED_RCS_VERSIONS,
};

/** Parses an RCS request from JSON text or bytes. */
export function parseRcsRequest(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<RcsRequest> {
  return parseVersioned(rcs, input, options);
}

/** Validates an already-parsed value as an RCS request. */
export function validateRcsRequest(
  value: unknown,
  options?: ParseOptions,
): ParseResult<RcsRequest> {
  return validateVersioned(rcs, value, options);
}

/** True when `value` is a valid RCS v1 request. */
export function isRcsRequest(value: unknown): value is RcsRequest {
  return validateVersioned(rcs, value).ok;
}

/**
 * Chooses the RCS version to send a plugin: the newest version this implementation supports that
 * the plugin lists in its MRS `accepts`, or UNSUPPORTED_SCHEMA_VERSION when there is none.
 */
export function negotiateRcsVersion(
  accepts: readonly string[],
  options?: ParseOptions,
): ParseResult<string> {
  return negotiateSchemaVersion(accepts, SUPPORTED_RCS_VERSIONS, options);
}
