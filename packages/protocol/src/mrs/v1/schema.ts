import { type Static, Type } from '@sinclair/typebox';
import { ActionNameSchema, SemverSchema } from '../../common/primitives.js';
import { MAX_TIMEOUT_MS } from '../../rcs/v1/schema.js';

/** The schema_version value of MRS v1 manifests. */
export const MRS_V1 = 'mrs_v1';
/** Default plugin timeout when a manifest gives none: 60 s. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;
/** Grammar of parameter names: lowercase snake case, at most 64 characters. */
export const PARAMETER_NAME_PATTERN = '^[a-z][a-z0-9_]{0,63}$';
/** Grammar of an RCS schema_version a plugin may list in `accepts` (any version, known or not). */
export const RCS_VERSION_PATTERN = '^rcs_v[1-9][0-9]{0,3}$';

/** The parameter types MRS v1 allows. */
export const MRS_PARAMETER_TYPES = ['string', 'integer', 'number', 'boolean', 'array'] as const;
/** One MRS parameter type. */
export type MrsParameterType = (typeof MRS_PARAMETER_TYPES)[number];

const ScalarSchema = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

/** The element schema of an array parameter: scalars only. */
export const MrsArrayItemsSchema = Type.Object(
  {
    type: Type.Union(
      [
        Type.Literal('string'),
        Type.Literal('integer'),
        Type.Literal('number'),
        Type.Literal('boolean'),
      ],
      { description: 'Type of every element.' },
    ),
    enum: Type.Optional(
      Type.Array(ScalarSchema, { minItems: 1, description: 'Allowed element values.' }),
    ),
    pattern: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: 'ECMA-262 regular expression for string elements.',
      }),
    ),
    maxLength: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Maximum length of string elements.' }),
    ),
    minimum: Type.Optional(Type.Number({ description: 'Minimum of numeric elements.' })),
    maximum: Type.Optional(Type.Number({ description: 'Maximum of numeric elements.' })),
  },
  { additionalProperties: false, description: 'Schema of the elements (array parameters only).' },
);

/** The JSON Schema subset MRS allows for one parameter. Arrays hold scalars only. */
export const MrsParameterSchema = Type.Object(
  {
    type: Type.Union(
      MRS_PARAMETER_TYPES.map((name) => Type.Literal(name)),
      { description: 'JSON type of the value.' },
    ),
    description: Type.Optional(
      Type.String({ maxLength: 1024, description: 'What the parameter means, for people.' }),
    ),
    default: Type.Optional(
      Type.Unknown({
        description: 'Value used when the parameter is not given; must satisfy this parameter.',
      }),
    ),
    enum: Type.Optional(
      Type.Array(ScalarSchema, { minItems: 1, description: 'The only values allowed.' }),
    ),
    minimum: Type.Optional(Type.Number({ description: 'Inclusive minimum (integer, number).' })),
    maximum: Type.Optional(Type.Number({ description: 'Inclusive maximum (integer, number).' })),
    minLength: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Minimum length in characters (string).' }),
    ),
    maxLength: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Maximum length in characters (string).' }),
    ),
    pattern: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: 'ECMA-262 regular expression the whole value must match (string); anchor it.',
      }),
    ),
    items: Type.Optional(MrsArrayItemsSchema),
    minItems: Type.Optional(Type.Integer({ minimum: 0, description: 'Minimum elements (array).' })),
    maxItems: Type.Optional(Type.Integer({ minimum: 0, description: 'Maximum elements (array).' })),
    sensitive: Type.Optional(
      Type.Boolean({ description: 'Redacted in logs, audit records and pretty output.' }),
    ),
  },
  { additionalProperties: false, title: 'MRS v1 parameter' },
);
/** One parameter declaration. */
export type MrsParameter = Static<typeof MrsParameterSchema>;

/** The parameters block: a JSON Schema object whose properties are MRS parameters. */
export const MrsParametersSchema = Type.Object(
  {
    type: Type.Literal('object', { description: 'Always "object".' }),
    properties: Type.Record(Type.String({ pattern: PARAMETER_NAME_PATTERN }), MrsParameterSchema, {
      additionalProperties: false,
      maxProperties: 64,
      description: 'Parameter name (lowercase snake case, at most 64 characters) → declaration.',
    }),
    required: Type.Optional(
      Type.Array(Type.String({ pattern: PARAMETER_NAME_PATTERN }), {
        uniqueItems: true,
        description: 'Names of the parameters that must be given (each must be declared).',
      }),
    ),
    additionalProperties: Type.Optional(
      Type.Boolean({
        description:
          'true admits undeclared parameters, as top-level scalars or arrays of scalars only; default false.',
      }),
    ),
  },
  { additionalProperties: false, description: 'The parameters the plugin accepts.' },
);
/** The parameters block of a manifest. */
export type MrsParameters = Static<typeof MrsParametersSchema>;

/** What a plugin needs on the node. */
export const MrsRequirementsSchema = Type.Object(
  {
    commands: Type.Array(Type.String({ pattern: '^[A-Za-z0-9._+-]{1,64}$' }), {
      uniqueItems: true,
      maxItems: 64,
      description:
        'Commands the plugin calls (e.g. systemctl, docker); their absence is a precondition failure.',
    }),
    privilege: Type.Union([Type.Literal('user'), Type.Literal('root')], {
      description:
        'user: runs as the login user; root: RUNE runs it through non-interactive sudo unless already root.',
    }),
    os: Type.Optional(
      Type.Array(Type.Literal('linux'), {
        minItems: 1,
        uniqueItems: true,
        description: 'Operating systems the plugin supports; v1 knows only linux.',
      }),
    ),
  },
  { additionalProperties: false, description: 'What the plugin needs on the node.' },
);

/** The MRS v1 manifest: everything RUNE knows about one plugin before running it. */
export const MrsManifestSchema = Type.Object(
  {
    schema_version: Type.Literal(MRS_V1, { description: 'Always "mrs_v1".' }),
    name: ActionNameSchema,
    version: SemverSchema,
    description: Type.String({
      minLength: 1,
      maxLength: 500,
      description: 'What the plugin does, in one or two sentences.',
    }),
    entrypoint: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
        description: 'Plugin file name next to the manifest; defaults to <name>.sh.',
      }),
    ),
    parameters: MrsParametersSchema,
    output_schema: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'JSON Schema of payload.output_data (informative in v1; not enforced).',
      }),
    ),
    tags: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' }), {
      uniqueItems: true,
      maxItems: 32,
      description: 'Free labels for listing and selection (lowercase, dashes).',
    }),
    requirements: MrsRequirementsSchema,
    timeout_ms: Type.Integer({
      minimum: 1,
      maximum: MAX_TIMEOUT_MS,
      description: 'Default timeout of one run, in milliseconds (at most 24 h).',
    }),
    idempotent: Type.Boolean({
      description: 'true when running the plugin twice has the effect of running it once.',
    }),
    supports_dry_run: Type.Boolean({
      description:
        'true when the plugin honours options.dry_run (changes nothing, reports its plan).',
    }),
    dangerous: Type.Boolean({
      description: 'true when a run may disrupt service; RUNE asks for explicit confirmation.',
    }),
    produces_artifacts: Type.Optional(
      Type.Boolean({ description: 'true when results may list artifacts to fetch.' }),
    ),
    accepts: Type.Array(Type.String({ pattern: RCS_VERSION_PATTERN }), {
      minItems: 1,
      maxItems: 16,
      uniqueItems: true,
      description:
        'RCS schema versions the plugin understands; the control node sends the newest one it also implements.',
    }),
    inferred: Type.Optional(
      Type.Boolean({
        description: 'true only for manifests RUNE inferred from a plugin file without one.',
      }),
    ),
  },
  { additionalProperties: false, title: 'MRS v1 manifest' },
);
/** An MRS v1 manifest. */
export type MrsManifest = Static<typeof MrsManifestSchema>;
