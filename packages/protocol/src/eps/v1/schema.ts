import { type Static, Type } from '@sinclair/typebox';
import { ERROR_CODE_PATTERN, TimestampSchema, TraceIdSchema } from '../../common/primitives.js';
import { ERROR_CATEGORIES } from './catalog.js';

/** Where an error arose. */
export const EpsSourceSchema = Type.Object(
  {
    component: Type.String({
      minLength: 1,
      maxLength: 128,
      description:
        'The component that raised the error: rune-core, rune-cli, transport-ssh, plugin:<name>, ...',
    }),
    node: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'The node concerned, if any.' }),
    ),
    action: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'The action concerned, if any.' }),
    ),
  },
  { additionalProperties: false, description: 'Where the error arose.' },
);

/** An EPS v1 error: the one wire shape of every error RUNE or a plugin reports. */
export const EpsErrorSchema = Type.Object(
  {
    code: Type.String({
      pattern: ERROR_CODE_PATTERN,
      description: 'Error code, upper snake case; RUNE emits only codes from the EPS catalog.',
    }),
    category: Type.Union(
      ERROR_CATEGORIES.map((category) => Type.Literal(category)),
      { description: 'Error category.' },
    ),
    message: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'One human-readable sentence or two.',
    }),
    retryable: Type.Boolean({ description: 'Whether retrying the same request may succeed.' }),
    source: EpsSourceSchema,
    trace_id: Type.String({
      ...TraceIdSchema,
      description: 'Trace id of the run; ffffffffffffffffffffffffffffffff before any trace exists.',
    }),
    timestamp: Type.String({ ...TimestampSchema, description: 'When the error arose (RFC 3339).' }),
    details: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Structured facts for machines: violations, exit codes, fingerprints, ...',
      }),
    ),
  },
  { additionalProperties: false, title: 'EPS v1 error' },
);
/** An EPS v1 error. */
export type EpsError = Static<typeof EpsErrorSchema>;
