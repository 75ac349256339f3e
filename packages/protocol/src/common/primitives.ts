/**
 * Primitive schemas shared by every protocol: identifiers, names, timestamps, versions.
 * Formats are expressed as `pattern`s rather than `format`s so that the generated JSON Schemas
 * validate identically in any JSON Schema implementation, in any language.
 */
import { type Static, Type } from '@sinclair/typebox';

/** The action-name grammar. No path can ever be formed from a name that matches it. */
export const ACTION_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,63}$';
/** Upper bound of an action name, in characters. */
export const ACTION_NAME_MAX_LENGTH = 64;

/** RFC 3339 timestamp (UTC `Z` or a numeric offset), as produced by `Date.prototype.toISOString`. */
export const TIMESTAMP_PATTERN =
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$';
/** Semantic Versioning 2.0.0 (the official regular expression, without build-metadata leniency). */
export const SEMVER_PATTERN =
  '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\\+([0-9a-zA-Z-]+(\\.[0-9a-zA-Z-]+)*))?$';
/** A lowercase RFC 4122 UUID (any version). */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
/**
 * A W3C trace-context trace id: lowercase hex with at least one non-zero digit. The length (exactly
 * 32) is a separate `minLength`/`maxLength` constraint: the pattern avoids look-ahead so that it
 * compiles in every regular-expression engine a JSON Schema validator may use (Go's RE2 has none).
 * Use {@link isTraceId} to test a value.
 */
export const TRACE_ID_PATTERN = '^[0-9a-f]*[1-9a-f][0-9a-f]*$';
/** Length of a trace id, in hex digits. */
export const TRACE_ID_LENGTH = 32;
/** An EPS error code: upper snake case. */
export const ERROR_CODE_PATTERN = '^[A-Z][A-Z0-9_]{2,63}$';
/** A transport name: lowercase, as registered with core. */
export const TRANSPORT_NAME_PATTERN = '^[a-z][a-z0-9-]{0,31}$';

/** Action name (`gather-logs`). */
export const ActionNameSchema = Type.String({
  pattern: ACTION_NAME_PATTERN,
  maxLength: ACTION_NAME_MAX_LENGTH,
  description:
    'Action name: lowercase letters, digits and dashes; starts with a letter or digit; at most 64 characters.',
});
export type ActionName = Static<typeof ActionNameSchema>;

/** Node name as the control node addresses it (host name, address, alias or instance id). */
export const NodeNameSchema = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[^\\s/\\\\]+$',
  description:
    'Node name: a host name, IP address, inventory alias or instance id; no whitespace or slashes.',
});

/** An RFC 3339 timestamp. */
export const TimestampSchema = Type.String({
  pattern: TIMESTAMP_PATTERN,
  maxLength: 40,
  description: 'RFC 3339 timestamp, e.g. 2026-11-22T01:50:32.123Z.',
});
/** A semantic version. */
export const SemverSchema = Type.String({
  pattern: SEMVER_PATTERN,
  maxLength: 128,
  description: 'Semantic version (semver 2.0.0), e.g. 1.4.0 or 2.0.0-rc.1.',
});
/** A lowercase UUID, e.g. a message id. */
export const UuidSchema = Type.String({
  pattern: UUID_PATTERN,
  description: 'Lowercase UUID (8-4-4-4-12 hex digits).',
});
/** A W3C trace-context trace id. */
export const TraceIdSchema = Type.String({
  pattern: TRACE_ID_PATTERN,
  minLength: TRACE_ID_LENGTH,
  maxLength: TRACE_ID_LENGTH,
  description: 'W3C trace-context trace id: 32 lowercase hex digits, not all zero.',
});
/** A transport name. */
export const TransportNameSchema = Type.String({
  pattern: TRANSPORT_NAME_PATTERN,
  description: 'Transport name, e.g. local, ssh, ssm.',
});

/** Deploy modes: ship the plugin to the node (content-addressed) or run one installed there. */
export const DeployModeSchema = Type.Union([Type.Literal('ship'), Type.Literal('preinstalled')], {
  description:
    'ship: RUNE copies the plugin to the node (cached by sha256); preinstalled: the plugin is already on the node.',
});
export type DeployMode = Static<typeof DeployModeSchema>;

/** A free-form JSON object (parameters, output data, details). */
export const JsonObjectSchema = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A JSON object; its members are free-form.',
});
/** A free-form JSON object. */
export type JsonObject = Static<typeof JsonObjectSchema>;

const actionNameRegExp = new RegExp(ACTION_NAME_PATTERN);
const traceIdRegExp = new RegExp(TRACE_ID_PATTERN);

/** True when `name` is a valid action name. */
export function isActionName(name: unknown): name is ActionName {
  return (
    typeof name === 'string' && name.length <= ACTION_NAME_MAX_LENGTH && actionNameRegExp.test(name)
  );
}

/** True when `value` is a valid trace id: 32 lowercase hex digits, not all zero. */
export function isTraceId(value: unknown): value is string {
  return typeof value === 'string' && value.length === TRACE_ID_LENGTH && traceIdRegExp.test(value);
}
