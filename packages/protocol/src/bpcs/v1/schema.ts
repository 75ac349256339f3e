import { type Static, Type } from '@sinclair/typebox';
import {
  ActionNameSchema,
  SemverSchema,
  TimestampSchema,
  TraceIdSchema,
  UuidSchema,
} from '../../common/primitives.js';
import { EpsErrorSchema } from '../../eps/v1/schema.js';

/** The schema_version value of BPCS v1 results. */
export const BPCS_V1 = 'bpcs_v1';

/** The outcomes a plugin may report. */
export const BPCS_RESULTS = ['success', 'partial', 'failure'] as const;
/** One BPCS outcome. */
export type BpcsResultKind = (typeof BPCS_RESULTS)[number];

/** A file the plugin produced on the node, which the control node may fetch. */
export const BpcsArtifactSchema = Type.Object(
  {
    path: Type.String({
      minLength: 2,
      maxLength: 4096,
      pattern: '^/',
      description: 'Absolute path on the node.',
    }),
    size: Type.Integer({ minimum: 0, description: 'Size in bytes.' }),
    sha256: Type.String({
      pattern: '^[0-9a-f]{64}$',
      description: 'Lowercase hex sha256 of the file.',
    }),
    description: Type.Optional(
      Type.String({ maxLength: 1024, description: 'What the file holds.' }),
    ),
  },
  { additionalProperties: false, title: 'BPCS v1 artifact' },
);
/** A file the plugin produced on the node. */
export type BpcsArtifact = Static<typeof BpcsArtifactSchema>;

/** Metadata of a plugin result. */
export const BpcsMessageMetadataSchema = Type.Object(
  {
    trace_id: Type.String({
      ...TraceIdSchema,
      description: 'The trace_id of the request, copied unchanged.',
    }),
    timestamp: Type.String({
      ...TimestampSchema,
      description: 'When the plugin finished (RFC 3339).',
    }),
    in_reply_to: Type.Optional(
      Type.String({
        ...UuidSchema,
        description: 'The message_id of the request (recommended).',
      }),
    ),
    plugin: Type.Optional(
      Type.Object(
        {
          name: ActionNameSchema,
          version: Type.String({ ...SemverSchema, description: 'Plugin version (semver).' }),
        },
        { additionalProperties: false, description: 'Name and version of the plugin.' },
      ),
    ),
  },
  { additionalProperties: false, description: 'Correlation and time of the result.' },
);

/** The BPCS v1 result: the one JSON object a plugin writes on stdout. */
export const BpcsResponseSchema = Type.Object(
  {
    message_metadata: BpcsMessageMetadataSchema,
    payload: Type.Object(
      {
        schema_version: Type.Literal(BPCS_V1, {
          description: 'Always "bpcs_v1" for this version.',
        }),
        result: Type.Union(
          BPCS_RESULTS.map((kind) => Type.Literal(kind)),
          {
            description:
              'success: done; partial: done with warnings; failure: not done (error required).',
          },
        ),
        summary: Type.Optional(
          Type.String({ maxLength: 1024, description: 'One line for people.' }),
        ),
        output_data: Type.Record(Type.String(), Type.Unknown(), {
          description: 'Structured facts the plugin reports (free-form; {} when none).',
        }),
        artifacts: Type.Optional(
          Type.Array(BpcsArtifactSchema, {
            maxItems: 64,
            description: 'Files left on the node for the control node to fetch.',
          }),
        ),
      },
      { additionalProperties: false, description: 'The versioned body of the result.' },
    ),
    error: Type.Union([EpsErrorSchema, Type.Null()], {
      description: 'null on success; an EPS error on failure; either on partial.',
    }),
  },
  { additionalProperties: false, title: 'BPCS v1 result' },
);
/** A BPCS v1 result. */
export type BpcsResponse = Static<typeof BpcsResponseSchema>;
