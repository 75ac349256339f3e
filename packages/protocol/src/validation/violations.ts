/**
 * The shape and the limit of listed violations, shared by the schema validation (`parse.ts`) and
 * the parameter check (`mrs/v1/parameter-values.ts`). No dependency, so that a browser bundle of
 * the parameter check stays small.
 */

/** One schema violation, located by JSON pointer (RFC 6901). */
export interface SchemaViolation {
  pointer: string;
  message: string;
}

/** At most this many violations are listed in one error. */
export const MAX_LISTED_VIOLATIONS = 100;
