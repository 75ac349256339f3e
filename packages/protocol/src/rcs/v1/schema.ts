import { type Static, Type } from '@sinclair/typebox';
import {
  ActionNameSchema,
  DeployModeSchema,
  JsonObjectSchema,
  NodeNameSchema,
  TimestampSchema,
  TraceIdSchema,
  TransportNameSchema,
  UuidSchema,
} from '../../common/primitives.js';

/** The schema_version value of RCS v1 documents. */
export const RCS_V1 = 'rcs_v1';
/** Upper bound of a per-run timeout: 24 hours. */
export const MAX_TIMEOUT_MS = 86_400_000;

/** Who sent a message. */
export const RcsSenderSchema = Type.Object(
  {
    component: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Sending component, e.g. rune-cli.',
    }),
    version: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Version of the sending component.',
    }),
    host: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'Host name of the control node.',
    }),
  },
  { additionalProperties: false },
);

/** Identity and time of one message. */
export const RcsMessageMetadataSchema = Type.Object(
  {
    message_id: UuidSchema,
    trace_id: TraceIdSchema,
    timestamp: TimestampSchema,
    sender: RcsSenderSchema,
  },
  { additionalProperties: false },
);

/** Where and how the request runs. */
export const RcsRoutingSchema = Type.Object(
  {
    action: ActionNameSchema,
    node: NodeNameSchema,
    transport: TransportNameSchema,
    deploy_mode: DeployModeSchema,
  },
  { additionalProperties: false },
);

/** Execution options the plugin must honour. */
export const RcsOptionsSchema = Type.Object(
  {
    dry_run: Type.Boolean({
      description: 'When true, the plugin must change nothing and report what it would do.',
    }),
    timeout_ms: Type.Integer({
      minimum: 1,
      maximum: MAX_TIMEOUT_MS,
      description:
        'Time the control node allows the plugin, in milliseconds; plugins may size their own waits by it.',
    }),
  },
  { additionalProperties: false },
);

/** The RCS v1 request: the one JSON document a plugin receives on stdin. */
export const RcsRequestSchema = Type.Object(
  {
    message_metadata: RcsMessageMetadataSchema,
    routing: RcsRoutingSchema,
    payload: Type.Object(
      {
        schema_version: Type.Literal(RCS_V1),
        data: Type.Object(
          {
            input_parameters: JsonObjectSchema,
            options: RcsOptionsSchema,
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, title: 'RCS v1 request' },
);
export type RcsRequest = Static<typeof RcsRequestSchema>;
export type RcsSender = Static<typeof RcsSenderSchema>;
export type RcsRouting = Static<typeof RcsRoutingSchema>;
export type RcsOptions = Static<typeof RcsOptionsSchema>;
