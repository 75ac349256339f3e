import {
  type ParseOptions,
  type ParseResult,
  parseVersioned,
  type SchemaViolation,
  schemaViolations,
  type VersionedDocument,
  validateVersioned,
} from '../../validation/parse.js';
import {
  checkParameterValue,
  compileParameterPattern,
  escapeJsonPointerToken,
  isReservedParameterName,
  RESERVED_MESSAGE,
} from './parameters.js';
import { MRS_V1, type MrsManifest, MrsManifestSchema } from './schema.js';

/** MRS schema versions this implementation understands. */
export const SUPPORTED_MRS_VERSIONS: readonly string[] = [MRS_V1];

/** Maximum manifest size: 256 KiB. */
export const MAX_MANIFEST_BYTES = 256 * 1024;

const LABEL = 'MRS manifest';

const mrs: VersionedDocument<typeof MrsManifestSchema> = {
  label: LABEL,
  schema: MrsManifestSchema,
  versionPath: ['schema_version'],
  supported: SUPPORTED_MRS_VERSIONS,
};

function withManifestLimit(options: ParseOptions = {}): ParseOptions {
  return { maxBytes: MAX_MANIFEST_BYTES, ...options };
}

function checkRange(
  low: number | undefined,
  high: number | undefined,
  pointer: string,
  what: string,
  violations: SchemaViolation[],
): void {
  if (low !== undefined && high !== undefined && low > high) {
    violations.push({ pointer, message: `${what}: minimum ${low} exceeds maximum ${high}` });
  }
}

/**
 * The MRS rules JSON Schema cannot express, checked after the schema: every `required` name is
 * declared; `items` is given exactly for array parameters; ranges are not inverted; every
 * `pattern` compiles; every `default` satisfies its own parameter; no parameter is named
 * `constructor` or `prototype` (`__proto__` already fails the name pattern).
 */
export function listManifestRuleViolations(manifest: MrsManifest): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  const { properties, required = [] } = manifest.parameters;
  required.forEach((name, index) => {
    if (!Object.hasOwn(properties, name)) {
      violations.push({
        pointer: `/parameters/required/${index}`,
        message: `required parameter "${name}" is not declared in properties`,
      });
    }
  });
  for (const [name, parameter] of Object.entries(properties)) {
    const at = `/parameters/properties/${escapeJsonPointerToken(name)}`;
    if (isReservedParameterName(name)) violations.push({ pointer: at, message: RESERVED_MESSAGE });
    if (parameter.type === 'array' && parameter.items === undefined) {
      violations.push({ pointer: at, message: 'an array parameter must declare items' });
    }
    if (parameter.type !== 'array' && parameter.items !== undefined) {
      violations.push({
        pointer: `${at}/items`,
        message: 'items is allowed only on array parameters',
      });
    }
    checkRange(parameter.minimum, parameter.maximum, at, 'range', violations);
    checkRange(parameter.minLength, parameter.maxLength, at, 'length', violations);
    checkRange(parameter.minItems, parameter.maxItems, at, 'items', violations);
    checkRange(
      parameter.items?.minimum,
      parameter.items?.maximum,
      `${at}/items`,
      'range',
      violations,
    );
    for (const [pattern, pointer] of [
      [parameter.pattern, `${at}/pattern`],
      [parameter.items?.pattern, `${at}/items/pattern`],
    ] as const) {
      if (pattern !== undefined && compileParameterPattern(pattern) === null) {
        violations.push({ pointer, message: 'not a valid ECMA-262 regular expression' });
      }
    }
    if (parameter.default !== undefined) {
      violations.push(...checkParameterValue(parameter, parameter.default, `${at}/default`));
    }
  }
  return violations;
}

function checkRules(manifest: MrsManifest, options: ParseOptions): ParseResult<MrsManifest> {
  const violations = listManifestRuleViolations(manifest);
  return violations.length === 0
    ? { ok: true, value: manifest }
    : schemaViolations(LABEL, violations, options);
}

/** Parses an MRS manifest from JSON text or bytes, including the rules beyond its JSON Schema. */
export function parseMrsManifest(
  input: string | Uint8Array,
  options?: ParseOptions,
): ParseResult<MrsManifest> {
  const limited = withManifestLimit(options);
  const parsed = parseVersioned(mrs, input, limited);
  return parsed.ok ? checkRules(parsed.value, limited) : parsed;
}

/** Validates an already-parsed value (e.g. from YAML) as an MRS manifest. */
export function validateMrsManifest(
  value: unknown,
  options?: ParseOptions,
): ParseResult<MrsManifest> {
  const limited = withManifestLimit(options);
  const validated = validateVersioned(mrs, value, limited);
  return validated.ok ? checkRules(validated.value, limited) : validated;
}

/** True when `value` is a valid MRS v1 manifest. */
export function isMrsManifest(value: unknown): value is MrsManifest {
  return validateMrsManifest(value).ok;
}
