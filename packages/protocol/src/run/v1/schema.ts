/**
 * Run documents v1: what a run of an action on a set of nodes produces — the execution plan, one
 * result per node, the totals, the run-result document and the events of a run.
 *
 * The shapes are the ones the CLI prints today (`rune run --output json|jsonl`, including
 * `--dry-run`), member for member, so the CLI and core can be switched to these schemas without a
 * visible change. Members a long-running service needs (a run `id`, `status`, `principal`,
 * `source`, timestamps, a node's `containment`) are additive and optional, because the CLI does
 * not produce them yet. Events are new and have no such history: their members are required.
 */
import { CloneType, type Static, Type } from '@sinclair/typebox';
import { BpcsResponseSchema } from '../../bpcs/v1/schema.js';
import {
  ActionNameSchema,
  DeployModeSchema,
  NodeNameSchema,
  SemverSchema,
  TimestampSchema,
  TraceIdSchema,
  TransportNameSchema,
  UuidSchema,
} from '../../common/primitives.js';
import { EpsErrorSchema } from '../../eps/v1/schema.js';
import { MAX_TIMEOUT_MS, RcsRequestSchema } from '../../rcs/v1/schema.js';
import { RUN_SOURCES, RUN_STATUSES, type RunStatus } from './states.js';

/** The `schema` value of a run-result document (the CLI has printed it since 0.1). */
export const RUN_RESULT_V1 = 'rune-run-result/v1';
/** The `schema` value of an execution plan. */
export const RUN_PLAN_V1 = 'rune-execution-plan/v1';
/** The `schema_version` value of a run event. */
export const RUN_EVENT_V1 = 'rune-run-event/v1';
/** What every sensitive parameter value is replaced by in every run document. */
export const REDACTED_VALUE = '[REDACTED]';

/** How one node ended. */
export const NODE_RUN_STATUSES = ['success', 'partial', 'failure', 'skipped'] as const;
/** How one node ended. */
export type NodeRunStatus = (typeof NODE_RUN_STATUSES)[number];

export { RUN_SOURCES, RUN_STATUSES, type RunSource, type RunStatus } from './states.js';

/** The states in which a run has ended and its result is final. */
export const TERMINAL_RUN_STATUSES = [
  'succeeded',
  'failed',
  'partial',
  'cancelled',
  'interrupted',
] as const satisfies readonly RunStatus[];
/** A final run state. */
export type TerminalRunStatus = (typeof TERMINAL_RUN_STATUSES)[number];

/** How a transport found the processes a run left behind. */
export const CONTAINMENT_METHODS = ['run-marker', 'process-group', 'none'] as const;
/** How a transport found the processes a run left behind. */
export type ContainmentMethod = (typeof CONTAINMENT_METHODS)[number];

/** How the plugin process ended. */
export const TERMINATIONS = ['exit', 'signal', 'timeout', 'cancelled'] as const;

/** The types of run events, in the order a run emits them. */
export const RUN_EVENT_TYPES = ['run-start', 'node-start', 'node-end', 'run-end'] as const;
/** A run event type. */
export type RunEventType = (typeof RUN_EVENT_TYPES)[number];

const literals = <T extends string>(values: readonly T[], description: string) =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    { description },
  );

/** A CLI exit code (the EPS catalog maps every error code to one). */
const ExitCodeSchema = Type.Integer({
  minimum: 0,
  maximum: 255,
  description: 'CLI exit code (0 success; otherwise the EPS catalog code of the failure).',
});

const PathSchema = (description: string) =>
  Type.String({ minLength: 1, maxLength: 4096, description });

const Sha256Schema = Type.String({
  pattern: '^[0-9a-f]{64}$',
  description: 'Lowercase hex sha256.',
});

// ---------------------------------------------------------------------------------------------
// The plan

/**
 * A node of a plan as core resolved it. Member names are the ones core has always printed, two of
 * them camelCase (`instanceId`, `runAs`).
 */
export const RunTargetNodeSchema = Type.Object(
  {
    name: NodeNameSchema,
    address: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'Address or host name connected to (default: name).',
      }),
    ),
    port: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 65535, description: 'Port (SSH: 22 unless set).' }),
    ),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Login user.' })),
    instanceId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'SSM instance id (i-… or mi-…).' }),
    ),
    runAs: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'User the plugin runs as (non-interactive sudo).',
      }),
    ),
    settings: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Transport-specific settings from config or inventory (free-form).',
      }),
    ),
  },
  { additionalProperties: false, description: 'The node as resolved (inventory, config, flags).' },
);
/** A node of a plan as core resolved it. */
export type RunTargetNode = Static<typeof RunTargetNodeSchema>;

/** The plugin a plan runs, as the control node found it. */
export const RunPlannedPluginSchema = Type.Object(
  {
    action: ActionNameSchema,
    version: SemverSchema,
    description: Type.String({
      minLength: 1,
      maxLength: 500,
      description: 'The manifest description.',
    }),
    sha256: Type.String({
      ...Sha256Schema,
      description: 'sha256 of the plugin file; checked again before it runs.',
    }),
    size: Type.Integer({ minimum: 0, description: 'Size of the plugin file in bytes.' }),
    path: PathSchema('Path of the plugin file on the control node.'),
    manifest_path: Type.Union([PathSchema('Path of the manifest.'), Type.Null()], {
      description: 'Path of the MRS manifest; null for an inferred manifest.',
    }),
    source: literals(
      ['builtin', 'user', 'plugin_dir'],
      'Where the plugin was found: shipped with RUNE, the user plugin directory, a configured plugin_dir.',
    ),
    inferred: Type.Boolean({ description: 'true when the plugin has no manifest of its own.' }),
    dangerous: Type.Boolean({ description: 'The manifest flag: a run may disrupt service.' }),
    supports_dry_run: Type.Boolean({
      description: 'The manifest flag: the plugin honours options.dry_run.',
    }),
    entrypoint: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'File name of the plugin.',
    }),
  },
  { additionalProperties: false, description: 'The plugin the plan runs.' },
);
/** The plugin a plan runs. */
export type RunPlannedPlugin = Static<typeof RunPlannedPluginSchema>;

/** One node of a plan: where, through what, and the exact request. */
export const RunPlannedNodeSchema = Type.Object(
  {
    target: RunTargetNodeSchema,
    transport: TransportNameSchema,
    request: CloneType(RcsRequestSchema, {
      description:
        'The exact RCS request the plugin receives on stdin (sensitive values redacted).',
    }),
    remote_path: Type.Union([PathSchema('Path on the node.'), Type.Null()], {
      description: 'For deploy mode preinstalled: where the plugin is expected on the node.',
    }),
    would_run: Type.String({
      minLength: 1,
      maxLength: 8192,
      description: 'One line saying what would run on the node.',
    }),
  },
  { additionalProperties: false, description: 'One node of the plan.' },
);
/** One node of a plan. */
export type RunPlannedNode = Static<typeof RunPlannedNodeSchema>;

/** The execution plan: validated, fully resolved, nothing contacted yet. */
export const RunPlanSchema = Type.Object(
  {
    schema: Type.Literal(RUN_PLAN_V1, { description: 'Always "rune-execution-plan/v1".' }),
    trace_id: Type.String({ ...TraceIdSchema, description: 'Trace id of the run.' }),
    action: ActionNameSchema,
    created_at: Type.String({ ...TimestampSchema, description: 'When the plan was built.' }),
    dry_run: Type.Boolean({ description: 'true when the plan was made for a dry run.' }),
    plugin: RunPlannedPluginSchema,
    parameters: Type.Record(Type.String(), Type.Unknown(), {
      description: 'Effective parameters, defaults filled; sensitive values are "[REDACTED]".',
    }),
    sensitive_parameters: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      uniqueItems: true,
      description: 'Names of the parameters the manifest marks sensitive.',
    }),
    supplied_sensitive_parameters: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      uniqueItems: true,
      description:
        'The sensitive parameters the caller supplied (not merely defaulted); a transport that embeds the request in its command refuses the run when this is not empty.',
    }),
    timeout_ms: Type.Integer({
      minimum: 1,
      maximum: MAX_TIMEOUT_MS,
      description: 'Per-node timeout in milliseconds.',
    }),
    timeout_source: literals(['flag', 'config', 'manifest'], 'Where the timeout came from.'),
    deploy_mode: DeployModeSchema,
    concurrency: Type.Integer({ minimum: 1, description: 'Nodes run at once.' }),
    limits: Type.Object(
      {
        max_stdout_bytes: Type.Integer({ minimum: 1, description: 'stdout capture limit (head).' }),
        max_stderr_bytes: Type.Integer({ minimum: 1, description: 'stderr capture limit (tail).' }),
      },
      { additionalProperties: false, description: 'Output capture limits per node.' },
    ),
    run_as: Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()], {
      description: 'User every node runs the plugin as, unless the node sets its own.',
    }),
    run_as_source: Type.Optional(
      Type.Union(
        [Type.Literal('flag'), Type.Literal('config'), Type.Literal('manifest'), Type.Null()],
        {
          description:
            'Where run_as came from: flag, config, or manifest (requirements.privilege root and no explicit run_as; an explicit one wins). null: the login user.',
        },
      ),
    ),
    preflight_commands: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9._+-]{1,64}$' }), {
        maxItems: 64,
        description:
          "Commands each node must have (the manifest's requirements.commands), checked in the round trip that starts the plugin; a missing one is PLUGIN_PRECONDITION_FAILED and nothing runs.",
      }),
    ),
    fetch_artifacts: Type.Boolean({ description: 'Whether declared artifacts are downloaded.' }),
    artifact_dir: PathSchema('Where fetched artifacts are stored on the control node.'),
    nodes: Type.Array(RunPlannedNodeSchema, {
      minItems: 1,
      description: 'One entry per node, in plan order; node names are unique.',
    }),
  },
  { additionalProperties: false, title: 'Run v1 execution plan' },
);
/** An execution plan (wire form: sensitive parameters redacted). */
export type RunPlan = Static<typeof RunPlanSchema>;

// ---------------------------------------------------------------------------------------------
// Node results

/** What a transport killed when the run ended, and whether it could check that nothing is left. */
export const RunContainmentSchema = Type.Object(
  {
    method: literals(
      CONTAINMENT_METHODS,
      'run-marker: every process carrying the run marker; process-group: the plugin process group only (a child that called setsid escapes); none: the transport cannot find them.',
    ),
    killed: Type.Integer({
      minimum: 0,
      description:
        'Processes the run left behind (or that were running at timeout or cancel) and that were killed.',
    }),
    complete: Type.Boolean({
      description:
        'true only when the transport checked that nothing the run started is still running.',
    }),
    detail: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'Why containment is incomplete; required when complete is false.',
      }),
    ),
  },
  { additionalProperties: false, description: 'How the run was contained on the node.' },
);
/** What a transport killed when the run ended. */
export type RunContainment = Static<typeof RunContainmentSchema>;

/** What became of the node's copy of a fetched artifact. */
export const RunArtifactRemovalSchema = Type.Object(
  {
    status: literals(
      ['removed', 'failed', 'unsupported'],
      'removed (gone from the node, or already gone); failed (still there: see error); unsupported (the transport cannot remove files, the copy stays).',
    ),
    error: Type.Union([EpsErrorSchema, Type.Null()], {
      description: 'Why the removal failed; null otherwise. A failed removal never fails the node.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'The node-side copy of an artifact, once the control node fetched it and verified its sha256 and size. Present only for fetched artifacts.',
  },
);
/** What became of the node's copy of a fetched artifact. */
export type RunArtifactRemoval = Static<typeof RunArtifactRemovalSchema>;

/** An artifact a plugin declared, and what became of it. */
export const RunArtifactRecordSchema = Type.Object(
  {
    path: Type.String({
      minLength: 2,
      maxLength: 4096,
      pattern: '^/',
      description: 'Absolute path on the node.',
    }),
    sha256: Type.String({ ...Sha256Schema, description: 'Declared sha256.' }),
    size: Type.Integer({ minimum: 0, description: 'Declared size in bytes.' }),
    local_path: Type.Union([PathSchema('Path on the control node.'), Type.Null()], {
      description: 'Where it was stored on the control node, when fetched.',
    }),
    status: literals(['fetched', 'failed', 'not-fetched'], 'What became of it.'),
    error: Type.Union([EpsErrorSchema, Type.Null()], {
      description: 'Why the fetch failed; null otherwise.',
    }),
    removal: Type.Optional(RunArtifactRemovalSchema),
  },
  { additionalProperties: false, description: 'An artifact and what became of it.' },
);
/** An artifact record. */
export type RunArtifactRecord = Static<typeof RunArtifactRecordSchema>;

/** The outcome of one node. */
export const RunNodeResultSchema = Type.Object(
  {
    node: NodeNameSchema,
    transport: TransportNameSchema,
    status: literals(
      NODE_RUN_STATUSES,
      'success; partial (done with warnings, counts as success); failure; skipped (never started).',
    ),
    message_id: Type.String({
      ...UuidSchema,
      description: 'The message_id of the RCS request sent to this node.',
    }),
    response: Type.Union([BpcsResponseSchema, Type.Null()], {
      description:
        'The validated BPCS result, whenever the plugin produced one (also for some failures).',
    }),
    error: Type.Union([EpsErrorSchema, Type.Null()], {
      description: 'The EPS error of a failure or a skip; null for success and partial.',
    }),
    exit_code: Type.Integer({
      minimum: 0,
      maximum: 255,
      description: 'CLI exit code this node alone would give (0 for success and partial).',
    }),
    plugin_exit_code: Type.Union([Type.Integer({ minimum: 0, maximum: 255 }), Type.Null()], {
      description: "The plugin process's exit code, when it exited.",
    }),
    signal: Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Null()], {
      description: 'The signal that ended the plugin process, when one did.',
    }),
    termination: Type.Union([...TERMINATIONS.map((value) => Type.Literal(value)), Type.Null()], {
      description: 'How the plugin process ended; null when it never ran.',
    }),
    started_at: Type.Union([TimestampSchema, Type.Null()], {
      description: 'When the node started; null when it never did.',
    }),
    duration_ms: Type.Integer({ minimum: 0, description: 'Wall time of the node.' }),
    stderr_tail: Type.String({
      description: "The tail of the plugin's stderr, as UTF-8 (bounded by max_stderr_bytes).",
    }),
    stderr_truncated: Type.Boolean({ description: 'true when stderr exceeded its limit.' }),
    stdout_bytes: Type.Integer({ minimum: 0, description: 'Bytes of stdout captured.' }),
    stdout_truncated: Type.Boolean({ description: 'true when stdout exceeded its limit.' }),
    metadata: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'Transport facts (pid, shipped, connection reused, command id, timings; free-form).',
    }),
    artifacts: Type.Array(RunArtifactRecordSchema, {
      description: 'Artifacts the plugin declared.',
    }),
    containment: Type.Optional(
      Type.Union([RunContainmentSchema, Type.Null()], {
        description:
          'What the transport killed when the run ended on this node; null when nothing was started there (skipped, refused) or the transport does not report it.',
      }),
    ),
  },
  { additionalProperties: false, title: 'Run v1 node result' },
);
/** The outcome of one node. */
export type RunNodeResult = Static<typeof RunNodeResultSchema>;

// ---------------------------------------------------------------------------------------------
// Summary and run-result document

/** The fleet policy a run used. */
export const RunFleetPolicySchema = Type.Object(
  {
    concurrency: Type.Integer({ minimum: 1, description: 'Nodes run at once.' }),
    canary: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Size of the canary wave; null without one.',
    }),
    max_failures: Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Null()], {
      description:
        'Failure budget as written: a count (3) or a percentage (10%); null without one.',
    }),
    deadline_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Overall deadline in milliseconds; null without one.',
    }),
  },
  { additionalProperties: false, description: 'The fleet policy the run used.' },
);

/** Totals of a run. */
export const RunSummarySchema = Type.Object(
  {
    trace_id: Type.String({ ...TraceIdSchema, description: 'Trace id of the run.' }),
    action: ActionNameSchema,
    total: Type.Integer({ minimum: 0, description: 'Nodes in the run.' }),
    succeeded: Type.Integer({ minimum: 0, description: 'Nodes with status success.' }),
    partial: Type.Integer({ minimum: 0, description: 'Nodes with status partial.' }),
    failed: Type.Integer({ minimum: 0, description: 'Nodes with status failure.' }),
    skipped: Type.Integer({ minimum: 0, description: 'Nodes with status skipped.' }),
    duration_ms: Type.Integer({ minimum: 0, description: 'Wall time of the run.' }),
    exit_code: ExitCodeSchema,
    policy: Type.Optional(RunFleetPolicySchema),
  },
  { additionalProperties: false, title: 'Run v1 summary' },
);
/** Totals of a run. */
export type RunSummary = Static<typeof RunSummarySchema>;

const RunIdSchema = Type.String({
  ...UuidSchema,
  description: 'Id of the run (a lowercase UUID), distinct from its trace_id.',
});
const PrincipalSchema = Type.String({
  minLength: 1,
  maxLength: 256,
  pattern: '^[^\\s]+$',
  description: 'Who asked for the run, as the authenticating component names them (no whitespace).',
});
const RunSourceSchema = literals(
  RUN_SOURCES,
  'Where the run was asked for: the CLI, the API, an alert, a workflow.',
);

/**
 * The members of the run-result document, in the order the CLI prints them, shared by the JSON
 * document and the final JSONL summary line (which has all of them but `nodes`).
 */
const runResultMembers = {
  schema: Type.Literal(RUN_RESULT_V1, { description: 'Always "rune-run-result/v1".' }),
  id: Type.Optional(RunIdSchema),
  status: Type.Optional(
    literals(
      RUN_STATUSES,
      'Lifecycle state of the run; see "Run status" in specs/run-v1.md for what each one requires.',
    ),
  ),
  principal: Type.Optional(PrincipalSchema),
  source: Type.Optional(RunSourceSchema),
  created_at: Type.Optional(
    Type.String({ ...TimestampSchema, description: 'When the run was accepted.' }),
  ),
  started_at: Type.Optional(
    Type.String({ ...TimestampSchema, description: 'When the run began executing.' }),
  ),
  finished_at: Type.Optional(
    Type.String({ ...TimestampSchema, description: 'When the run ended.' }),
  ),
  trace_id: Type.Union([TraceIdSchema, Type.Null()], {
    description: 'Trace id of the run (also of a refused one).',
  }),
  action: Type.Union([Type.String(), Type.Null()], {
    description:
      'The action as the caller named it: not necessarily a valid action name when the run was refused for it; null when none was parsed.',
  }),
  dry_run: Type.Boolean({ description: 'true for a dry run.' }),
  exit_code: Type.Union([ExitCodeSchema, Type.Null()], {
    description:
      'The process exit code of the run: 0 when every node succeeded; null only while the run is queued or running.',
  }),
  summary: Type.Union([RunSummarySchema, Type.Null()], {
    description: 'Totals; null when no node ran (refusals, dry runs, runs not yet ended).',
  }),
} as const;

/** Where the run's audit records are: the write-ahead intent and the outcomes written. */
export const RunAuditReportSchema = Type.Object(
  {
    run_id: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'Ties the intent record to the outcome records (`run_id` in each).',
    }),
    intent: Type.Object(
      {
        seq: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
          description: 'Sequence number of the intent record (null in a legacy unsigned log).',
        }),
        hash: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Hash of the intent record.' }),
      },
      {
        additionalProperties: false,
        description: 'The intent record, written before anything was sent.',
      },
    ),
    outcomes_recorded: Type.Integer({ minimum: 0, description: 'Outcome records written.' }),
    outcomes_missing: Type.Array(Type.String(), {
      description: 'Nodes whose outcome record could not be written.',
    }),
    error: Type.Union([EpsErrorSchema, Type.Null()], {
      description:
        'AUDIT_WRITE_FAILED when an outcome could not be recorded (the results are still complete and exit_code is 70), else null.',
    }),
  },
  { additionalProperties: false, description: "The run's audit records." },
);
/** The audit report of a run. */
export type RunAuditReportDocument = Static<typeof RunAuditReportSchema>;

const runResultTail = {
  plan: Type.Union([RunPlanSchema, Type.Null()], {
    description:
      'The execution plan (sensitive parameters redacted); the CLI sets it only for --dry-run.',
  }),
  error: Type.Union([EpsErrorSchema, Type.Null()], {
    description:
      'Set when the run as a whole failed (refused, invalid input, internal error), or AUDIT_WRITE_FAILED when an outcome record could not be written.',
  }),
  audit: Type.Optional(RunAuditReportSchema),
  warnings: Type.Optional(
    Type.Array(Type.String({ maxLength: 4096 }), {
      maxItems: 10000,
      description:
        'Warnings of the run, in order (host key checking off, a host key recorded by accept-new, SSM output cut short, registry warnings); also printed on stderr.',
    }),
  ),
} as const;

/** The run-result document: `rune run --output json` prints exactly one. */
export const RunResultDocumentSchema = Type.Object(
  {
    ...runResultMembers,
    nodes: Type.Array(RunNodeResultSchema, {
      description: 'One result per node, in plan order; empty when no node ran.',
    }),
    ...runResultTail,
  },
  { additionalProperties: false, title: 'Run v1 result document' },
);
/** The run-result document. */
export type RunResultDocument = Static<typeof RunResultDocumentSchema>;

// ---------------------------------------------------------------------------------------------
// JSONL output lines

/** A JSONL node line: `type`, the run's `trace_id`, then every member of a node result. */
export const RunNodeLineSchema = Type.Object(
  {
    type: Type.Literal('node', { description: 'Always "node".' }),
    trace_id: Type.String({ ...TraceIdSchema, description: 'Trace id of the run.' }),
    ...RunNodeResultSchema.properties,
  },
  { additionalProperties: false, title: 'Run v1 node line' },
);
/** A JSONL node line. */
export type RunNodeLine = Static<typeof RunNodeLineSchema>;

/** The final JSONL line: `type`, then every member of the run-result document but `nodes`. */
export const RunSummaryLineSchema = Type.Object(
  {
    type: Type.Literal('summary', { description: 'Always "summary".' }),
    ...runResultMembers,
    ...runResultTail,
  },
  { additionalProperties: false, title: 'Run v1 summary line' },
);
/** The final JSONL line. */
export type RunSummaryLine = Static<typeof RunSummaryLineSchema>;

/** One line of `rune run --output jsonl`. */
export const RunOutputLineSchema = Type.Union([RunNodeLineSchema, RunSummaryLineSchema], {
  title: 'Run v1 output line',
  description: 'One line of `rune run --output jsonl`: a node line or the final summary line.',
});
/** One line of `rune run --output jsonl`. */
export type RunOutputLine = Static<typeof RunOutputLineSchema>;

// ---------------------------------------------------------------------------------------------
// Events

const eventMembers = <T extends RunEventType>(type: T) => ({
  schema_version: Type.Literal(RUN_EVENT_V1, { description: 'Always "rune-run-event/v1".' }),
  seq: Type.Integer({
    minimum: 1,
    description: 'Position in the run: 1 for run-start, strictly increasing per run.',
  }),
  run_id: RunIdSchema,
  trace_id: Type.String({ ...TraceIdSchema, description: 'Trace id of the run.' }),
  type: Type.Literal(type, { description: `Always "${type}".` }),
  timestamp: Type.String({ ...TimestampSchema, description: 'When it happened.' }),
});

/** The first event of a run: it was planned and is starting. */
export const RunStartEventSchema = Type.Object(
  {
    ...eventMembers('run-start'),
    plan: CloneType(RunPlanSchema, {
      description: 'The execution plan (sensitive parameters redacted).',
    }),
    principal: Type.Optional(PrincipalSchema),
    source: Type.Optional(RunSourceSchema),
  },
  { additionalProperties: false, title: 'Run v1 run-start event' },
);
/** The first event of a run. */
export type RunStartEvent = Static<typeof RunStartEventSchema>;

/** A node started. */
export const NodeStartEventSchema = Type.Object(
  {
    ...eventMembers('node-start'),
    node: NodeNameSchema,
    transport: TransportNameSchema,
    message_id: Type.String({
      ...UuidSchema,
      description: 'The message_id of the RCS request sent to the node.',
    }),
  },
  { additionalProperties: false, title: 'Run v1 node-start event' },
);
/** A node started. */
export type NodeStartEvent = Static<typeof NodeStartEventSchema>;

/** A node has its final result (skipped nodes too, without a node-start). */
export const NodeEndEventSchema = Type.Object(
  {
    ...eventMembers('node-end'),
    result: CloneType(RunNodeResultSchema, { description: 'The final result of the node.' }),
  },
  { additionalProperties: false, title: 'Run v1 node-end event' },
);
/** A node has its final result. */
export type NodeEndEvent = Static<typeof NodeEndEventSchema>;

/** The last event of a run: its final status, exit code, totals and error. */
export const RunEndEventSchema = Type.Object(
  {
    ...eventMembers('run-end'),
    status: literals(TERMINAL_RUN_STATUSES, 'The final status of the run.'),
    exit_code: ExitCodeSchema,
    summary: Type.Union([RunSummarySchema, Type.Null()], {
      description: 'Totals; null when the run ended before any node result existed.',
    }),
    error: Type.Union([EpsErrorSchema, Type.Null()], {
      description: 'Set when the run as a whole failed (refused, interrupted, internal error).',
    }),
  },
  { additionalProperties: false, title: 'Run v1 run-end event' },
);
/** The last event of a run. */
export type RunEndEvent = Static<typeof RunEndEventSchema>;

/** One run event. */
export const RunEventSchema = Type.Union(
  [RunStartEventSchema, NodeStartEventSchema, NodeEndEventSchema, RunEndEventSchema],
  { title: 'Run v1 event', description: 'One event of a run, discriminated by type.' },
);
/** One run event. */
export type RunEvent = Static<typeof RunEventSchema>;

/** The events of one run as recorded or replayed, in order. */
export const RunEventStreamSchema = Type.Array(RunEventSchema, {
  minItems: 1,
  title: 'Run v1 event stream',
  description: 'The events of one run, in the order they were emitted.',
});
