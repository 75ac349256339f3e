import { type Static, Type } from '@sinclair/typebox';
import { ActionNameSchema, JsonObjectSchema, SemverSchema } from '../../common/primitives.js';
import { MAX_TIMEOUT_MS, RCS_V1 } from '../../rcs/v1/schema.js';

/** The schema_version value of MRS v1 manifests. */
export const MRS_V1 = 'mrs_v1';
/** Default plugin timeout when a manifest gives none: 60 s. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

const parameterTypes = ['string', 'integer', 'number', 'boolean', 'array'] as const;

/** The JSON Schema subset MRS allows for one parameter. Arrays hold scalars only. */
export const MrsParameterSchema = Type.Object(
  {
    type: Type.Union(parameterTypes.map((name) => Type.Literal(name))),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    default: Type.Optional(Type.Unknown()),
    enum: Type.Optional(
      Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]), { minItems: 1 }),
    ),
    minimum: Type.Optional(Type.Number()),
    maximum: Type.Optional(Type.Number()),
    minLength: Type.Optional(Type.Integer({ minimum: 0 })),
    maxLength: Type.Optional(Type.Integer({ minimum: 0 })),
    pattern: Type.Optional(Type.String({ maxLength: 1024 })),
    items: Type.Optional(
      Type.Object(
        {
          type: Type.Union([
            Type.Literal('string'),
            Type.Literal('integer'),
            Type.Literal('number'),
            Type.Literal('boolean'),
          ]),
          enum: Type.Optional(
            Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]), { minItems: 1 }),
          ),
          pattern: Type.Optional(Type.String({ maxLength: 1024 })),
          maxLength: Type.Optional(Type.Integer({ minimum: 0 })),
          minimum: Type.Optional(Type.Number()),
          maximum: Type.Optional(Type.Number()),
        },
        { additionalProperties: false },
      ),
    ),
    minItems: Type.Optional(Type.Integer({ minimum: 0 })),
    maxItems: Type.Optional(Type.Integer({ minimum: 0 })),
    sensitive: Type.Optional(
      Type.Boolean({ description: 'Redacted in logs, audit records and pretty output.' }),
    ),
  },
  { additionalProperties: false },
);
export type MrsParameter = Static<typeof MrsParameterSchema>;

/** The parameters block: a JSON Schema object whose properties are MRS parameters. */
export const MrsParametersSchema = Type.Object(
  {
    type: Type.Literal('object'),
    properties: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), MrsParameterSchema),
    required: Type.Optional(Type.Array(Type.String(), { uniqueItems: true })),
    additionalProperties: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type MrsParameters = Static<typeof MrsParametersSchema>;

/** What a plugin needs on the node. */
export const MrsRequirementsSchema = Type.Object(
  {
    commands: Type.Array(Type.String({ pattern: '^[A-Za-z0-9._+-]{1,64}$' }), {
      uniqueItems: true,
      description:
        'Commands the plugin calls (e.g. systemctl, docker); their absence is a precondition failure.',
    }),
    privilege: Type.Union([Type.Literal('user'), Type.Literal('root')], {
      description:
        'user: runs as the login user; root: RUNE runs it through non-interactive sudo unless already root.',
    }),
    os: Type.Optional(Type.Array(Type.Literal('linux'), { minItems: 1 })),
  },
  { additionalProperties: false },
);

/** The MRS v1 manifest: everything RUNE knows about one plugin before running it. */
export const MrsManifestSchema = Type.Object(
  {
    schema_version: Type.Literal(MRS_V1),
    name: ActionNameSchema,
    version: SemverSchema,
    description: Type.String({ minLength: 1, maxLength: 500 }),
    entrypoint: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
        description: 'Plugin file name next to the manifest; defaults to <name>.sh.',
      }),
    ),
    parameters: MrsParametersSchema,
    output_schema: Type.Optional(JsonObjectSchema),
    tags: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' }), {
      uniqueItems: true,
      maxItems: 32,
    }),
    requirements: MrsRequirementsSchema,
    timeout_ms: Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_MS }),
    idempotent: Type.Boolean(),
    supports_dry_run: Type.Boolean(),
    dangerous: Type.Boolean(),
    produces_artifacts: Type.Optional(Type.Boolean()),
    accepts: Type.Array(Type.Literal(RCS_V1), {
      minItems: 1,
      uniqueItems: true,
      description:
        'RCS schema versions the plugin understands; the control node sends the newest common one.',
    }),
    inferred: Type.Optional(
      Type.Boolean({
        description: 'True only for manifests RUNE inferred from a plugin file without one.',
      }),
    ),
  },
  { additionalProperties: false, title: 'MRS v1 manifest' },
);
export type MrsManifest = Static<typeof MrsManifestSchema>;
