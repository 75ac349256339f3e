import {
  type ParseOptions,
  type ParseResult,
  parseVersioned,
  type VersionedDocument,
  validateVersioned,
} from '../../validation/parse.js';
import { MRS_V1, type MrsManifest, MrsManifestSchema } from './schema.js';

/** MRS schema versions this implementation understands. */
export const SUPPORTED_MRS_VERSIONS: readonly string[] = [MRS_V1];

/** Maximum manifest size: 256 KiB. */
export const MAX_MANIFEST_BYTES = 256 * 1024;

const mrs: VersionedDocument<typeof MrsManifestSchema> = {
  label: 'MRS manifest',
  schema: MrsManifestSchema,
  versionPath: ['schema_version'],
  supported: SUPPORTED_MRS_VERSIONS,
};

function withManifestLimit(options: ParseOptions = {}): ParseOptions {
  return { maxBytes: MAX_MANIFEST_BYTES, ...options };
}

/** Parses an MRS manifest from JSON text or bytes. */
export function parseMrsManifest(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<MrsManifest> {
  return parseVersioned(mrs, input, withManifestLimit(options));
}

/** Validates an already-parsed value (e.g. from YAML) as an MRS manifest. */
export function validateMrsManifest(
  value: unknown,
  options?: ParseOptions,
): ParseResult<MrsManifest> {
  return validateVersioned(mrs, value, withManifestLimit(options));
}

/** True when `value` is a valid MRS v1 manifest. */
export function isMrsManifest(value: unknown): value is MrsManifest {
  return validateVersioned(mrs, value).ok;
}
