import { type Static, Type } from '@sinclair/typebox';
import {
  ERROR_CODE_PATTERN,
  JsonObjectSchema,
  TimestampSchema,
  TraceIdSchema,
} from '../../common/primitives.js';
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
    node: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
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
    trace_id: TraceIdSchema,
    timestamp: TimestampSchema,
    details: Type.Optional(JsonObjectSchema),
  },
  { additionalProperties: false, title: 'EPS v1 error' },
);
export type EpsError = Static<typeof EpsErrorSchema>;
