import { type Static, Type } from '@sinclair/typebox';
import { MAX_TIMEOUT_MS } from '../../common/durations.js';
import {
  ActionNameSchema,
  DeployModeSchema,
  NodeNameSchema,
  TimestampSchema,
  TraceIdSchema,
  TransportNameSchema,
  UuidSchema,
} from '../../common/primitives.js';

export { MAX_TIMEOUT_MS };

/** The schema_version value of RCS v1 documents. */
export const RCS_V1 = 'rcs_v1';

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
  { additionalProperties: false, description: 'Who sent the request.' },
);

/** Identity and time of one message. */
export const RcsMessageMetadataSchema = Type.Object(
  {
    message_id: Type.String({
      ...UuidSchema,
      description: 'Unique id of this request; a result echoes it in in_reply_to.',
    }),
    trace_id: Type.String({
      ...TraceIdSchema,
      description: 'Trace id of the run (W3C trace-context form); a result must echo it.',
    }),
    timestamp: Type.String({
      ...TimestampSchema,
      description: 'When the request was built (RFC 3339).',
    }),
    sender: RcsSenderSchema,
  },
  { additionalProperties: false, description: 'Identity and time of the request.' },
);

/** Where and how the request runs. */
export const RcsRoutingSchema = Type.Object(
  {
    action: ActionNameSchema,
    node: NodeNameSchema,
    transport: TransportNameSchema,
    deploy_mode: DeployModeSchema,
  },
  { additionalProperties: false, description: 'Where and how the request runs.' },
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
  { additionalProperties: false, description: 'Execution options the plugin must honour.' },
);

/** The RCS v1 request: the one JSON document a plugin receives on stdin. */
export const RcsRequestSchema = Type.Object(
  {
    message_metadata: RcsMessageMetadataSchema,
    routing: RcsRoutingSchema,
    payload: Type.Object(
      {
        schema_version: Type.Literal(RCS_V1, { description: 'Always "rcs_v1" for this version.' }),
        data: Type.Object(
          {
            input_parameters: Type.Record(Type.String(), Type.Unknown(), {
              description:
                'Parameters, already checked against the manifest by the control node, defaults filled.',
            }),
            options: RcsOptionsSchema,
          },
          { additionalProperties: false, description: 'What the plugin is asked to do.' },
        ),
      },
      { additionalProperties: false, description: 'The versioned body of the request.' },
    ),
  },
  { additionalProperties: false, title: 'RCS v1 request' },
);
/** An RCS v1 request. */
export type RcsRequest = Static<typeof RcsRequestSchema>;
/** The sender block of an RCS request. */
export type RcsSender = Static<typeof RcsSenderSchema>;
/** The routing block of an RCS request. */
export type RcsRouting = Static<typeof RcsRoutingSchema>;
/** The execution options of an RCS request. */
export type RcsOptions = Static<typeof RcsOptionsSchema>;
