/**
 * TypeBox schemas of the API's requests and responses. They validate every request (unknown
 * members are refused) and generate the OpenAPI document (`specs/server-openapi-v1.json`);
 * responses reuse the run documents of @rune/protocol as they are.
 */
import {
  EpsErrorSchema,
  RUN_SOURCES,
  RUN_STATUSES,
  RunNodeResultSchema,
  RunResultDocumentSchema,
} from '@rune/protocol';
import { type TSchema, Type } from '@sinclair/typebox';

const closed = <T extends Record<string, TSchema>>(properties: T, description: string) =>
  Type.Object(properties, { additionalProperties: false, description });
const literals = <T extends string>(values: readonly T[], description: string) =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    { description },
  );

const Selector = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: "A selection in the CLI's grammar: name, user@host:port, @group, tag:x, glob, !x.",
});
const Duration = (description: string) => Type.String({ minLength: 1, maxLength: 32, description });

/** Run options shared by both run endpoints. */
const runOptionMembers = {
  dry_run: Type.Optional(Type.Boolean({ description: 'Plan only; contact nothing.' })),
  timeout: Type.Optional(Duration('Per-node timeout: 1500 (ms), 30s, 5m, 1h.')),
  concurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'Nodes at once.' })),
  canary: Type.Optional(Type.Integer({ minimum: 0, description: 'Canary wave size.' })),
  max_failures: Type.Optional(
    Type.String({ minLength: 1, maxLength: 16, description: 'Failure budget: N or P%.' }),
  ),
  deadline: Type.Optional(Duration('Overall deadline (30s, 5m, 1h).')),
  confirm: Type.Optional(Type.Boolean({ description: 'Confirm an action marked dangerous.' })),
  transport: Type.Optional(
    Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$', description: 'Transport for every node.' }),
  ),
  if_busy: Type.Optional(
    literals(
      ['queue', 'refuse'],
      'When a node has a run of a non-idempotent action: wait in the queue (default) or refuse with NODE_BUSY.',
    ),
  ),
};

const Params = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Unknown(), {
  description: "The action's parameters, typed as its manifest says.",
  maxProperties: 256,
});

/** `POST /v1/runs`. */
export const RunRequestSchema = closed(
  {
    action: Type.String({ minLength: 1, maxLength: 128, description: 'The action to run.' }),
    targets: Type.Array(Selector, { minItems: 1, maxItems: 1000, description: 'Selections.' }),
    params: Type.Optional(Params),
    options: Type.Optional(closed(runOptionMembers, 'How to run it.')),
  },
  'A run request.',
);

/** `POST /run/{action}`: the short form. */
export const ShortRunRequestSchema = closed(
  {
    node: Type.Optional(Selector),
    nodes: Type.Optional(Type.Array(Selector, { minItems: 1, maxItems: 1000 })),
    params: Type.Optional(Params),
    ...runOptionMembers,
  },
  'The short form: node or nodes, params, and the run options as top-level members.',
);

export const ActionParamSchema = closed(
  { action: Type.String({ minLength: 1, maxLength: 128 }) },
  'Path parameters.',
);
export const RunIdParamSchema = closed(
  { id: Type.String({ minLength: 1, maxLength: 64 }) },
  'Path parameters.',
);
export const NodeParamSchema = closed(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    node: Type.String({ minLength: 1, maxLength: 255 }),
  },
  'Path parameters.',
);
export const ArtifactParamSchema = closed(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    node: Type.String({ minLength: 1, maxLength: 255 }),
    name: Type.String({ minLength: 1, maxLength: 255 }),
  },
  'Path parameters.',
);

export const RunWaitQuerySchema = closed(
  { wait: Type.Optional(Duration('Long-poll until the run ends, at most this long (max 120s).')) },
  'Query.',
);

export const RunListQuerySchema = closed(
  {
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    node: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    status: Type.Optional(literals(RUN_STATUSES, 'Only runs in this state.')),
    principal: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    source: Type.Optional(literals(RUN_SOURCES, 'Only runs from this source.')),
    since: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'ISO time.' })),
    until: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'ISO time.' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Default 50.' })),
  },
  'Filters (AND), newest first.',
);

export const EventsQuerySchema = closed(
  {
    after: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Resume after this seq (like Last-Event-ID).' }),
    ),
  },
  'Query.',
);

export const NodesQuerySchema = closed(
  {
    selector: Type.Optional(
      Type.Union([Selector, Type.Array(Selector, { maxItems: 100 })], {
        description: 'Selections to preview.',
      }),
    ),
  },
  'Query.',
);

export const AuditQuerySchema = closed(
  {
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    node: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    trace_id: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$' })),
    run_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    principal: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    since: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 100.' })),
  },
  'Filters (AND); the most recent records, oldest first.',
);

/** Every error: an EPS v1 error. */
export const ErrorResponseSchema = closed(
  { error: EpsErrorSchema },
  'An EPS v1 error; the HTTP status follows its category (docs/server.md).',
);

export const RunAcceptedSchema = closed(
  {
    id: Type.String(),
    trace_id: Type.String(),
    status: literals(RUN_STATUSES, 'The state of the run now.'),
    links: closed(
      { self: Type.String(), events: Type.String(), cancel: Type.String() },
      'Where to follow it.',
    ),
  },
  'The run was accepted (202), or an idempotent retry found it (200).',
);

export const RunListEntrySchema = closed(
  {
    id: Type.String(),
    status: literals(RUN_STATUSES, 'State.'),
    action: Type.String(),
    principal: Type.String(),
    source: Type.String(),
    dry_run: Type.Boolean(),
    trace_id: Type.String(),
    nodes: Type.Array(Type.String()),
    created_at: Type.String(),
    started_at: Type.Union([Type.String(), Type.Null()]),
    finished_at: Type.Union([Type.String(), Type.Null()]),
    exit_code: Type.Union([Type.Integer(), Type.Null()]),
  },
  'One run in a listing.',
);

export const RunListSchema = closed(
  {
    runs: Type.Array(RunListEntrySchema),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as ?cursor= for the next page; null on the last page.',
    }),
  },
  'A page of runs.',
);

export const NodeStateSchema = closed(
  {
    run_id: Type.String(),
    node: Type.String(),
    state: literals(
      ['pending', 'running', 'success', 'partial', 'failure', 'skipped'],
      'The last known state.',
    ),
    started_at: Type.Union([Type.String(), Type.Null()]),
    result: Type.Union([Type.Unsafe({ $ref: 'RunNodeResult#' }), Type.Null()], {
      description: 'The node result once the node ended.',
    }),
  },
  'One node of a run.',
);

export const ActionListSchema = closed(
  {
    actions: Type.Array(
      closed(
        {
          name: Type.String(),
          version: Type.String(),
          description: Type.String(),
          source: Type.String(),
          inferred: Type.Boolean(),
          problem: Type.Union([Type.String(), Type.Null()]),
          manifest: Type.Optional(
            Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
              description:
                'With ?include=manifest: the MRS v1 manifest (null when the action cannot be loaded).',
            }),
          ),
        },
        'One action.',
      ),
    ),
  },
  'Every action.',
);

/** `GET /v1/actions?include=manifest`: the whole catalog in one request (the dashboard's). */
export const ActionListQuerySchema = closed(
  { include: Type.Optional(Type.Literal('manifest')) },
  'include=manifest adds each manifest.',
);

export const ActionDetailSchema = closed(
  {
    name: Type.String(),
    source: Type.String(),
    manifest: Type.Record(Type.String(), Type.Unknown(), { description: 'The MRS v1 manifest.' }),
    parameters_schema: Type.Record(Type.String(), Type.Unknown(), {
      description: 'JSON Schema (2020-12) of the params object, to build a form.',
    }),
  },
  'One action.',
);

export const NodesResponseSchema = closed(
  {
    nodes: Type.Array(
      closed(
        {
          name: Type.String(),
          address: Type.Union([Type.String(), Type.Null()]),
          port: Type.Union([Type.Integer(), Type.Null()]),
          transport: Type.String(),
          tags: Type.Array(Type.String()),
          source: Type.String(),
        },
        'One inventory node.',
      ),
    ),
    matched: Type.Array(Type.String(), { description: 'Names the selection matches.' }),
  },
  'The inventory and a selection preview.',
);

export const AuditListSchema = closed(
  { records: Type.Array(Type.Record(Type.String(), Type.Unknown())) },
  'Audit records (docs/cli.md, "Audit trail").',
);

export const AuditVerifySchema = closed(
  {
    ok: Type.Boolean(),
    verified: Type.Integer(),
    total: Type.Integer(),
    signed: Type.Integer(),
    unsigned: Type.Integer(),
    key_id: Type.Union([Type.String(), Type.Null()]),
    head: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    broken_line: Type.Union([Type.Integer(), Type.Null()]),
    error: Type.Union([EpsErrorSchema, Type.Null()]),
  },
  'The verdict of `rune audit verify` on the server.',
);

export const HealthSchema = closed(
  {
    status: Type.String(),
    checks: Type.Optional(Type.Record(Type.String(), Type.Boolean())),
  },
  'Health.',
);

/**
 * Schemas the OpenAPI document names once under components/schemas (routes refer to them):
 * the error body every route can answer with, and the protocol's run documents.
 */
export const SHARED_SCHEMAS = {
  EpsErrorResponse: ErrorResponseSchema,
  RunResultDocument: RunResultDocumentSchema,
  RunNodeResult: RunNodeResultSchema,
} as const;

/** A reference to one of {@link SHARED_SCHEMAS}. */
export const ref = (name: keyof typeof SHARED_SCHEMAS) => Type.Unsafe({ $ref: `${name}#` });

/** The error responses of a route. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((status) => [status, ref('EpsErrorResponse')]));
}
