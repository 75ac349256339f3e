/**
 * Workflow documents v1: a runbook of several actions as data — typed inputs, steps (an action
 * on targets, a parallel group that joins, an approval gate), control (`when`, `on_failure`,
 * `next`, `retry`, `timeout`) and outputs — and the record a workflow run leaves.
 *
 * Expressions are strings in CEL (specs/workflow-v1.md, "Expressions"): `when` and `outputs` are
 * bare expressions; a parameter or target value is an expression only when the whole string is
 * `${{ … }}`, so a literal string can never turn into code by accident. This package checks the
 * document's shape and its graph (ids, references, cycles, reachability); the expressions
 * themselves are compiled and type-checked by `@rune/core`, which owns the evaluator.
 */
import { type Static, Type } from '@sinclair/typebox';
import {
  ActionNameSchema,
  ERROR_CODE_PATTERN,
  JsonObjectSchema,
  NodeNameSchema,
  TIMESTAMP_PATTERN,
  TimestampSchema,
  TraceIdSchema,
  TransportNameSchema,
  UuidSchema,
} from '../../common/primitives.js';
import { EpsErrorSchema } from '../../eps/v1/schema.js';
import { RUN_STATUSES, type RunStatus } from '../../run/v1/states.js';

/** The `schema_version` of a workflow definition. */
export const WORKFLOW_V1 = 'workflow_v1';
/** The `schema_version` of a workflow run record and of its JSONL step lines. */
export const WORKFLOW_RUN_V1 = 'rune-workflow-run/v1';

/** Step ids and input names: usable as CEL identifiers (`steps.restart.status`), no hyphen. */
export const WORKFLOW_ID_PATTERN = '^[a-z][a-z0-9_]{0,63}$';
/** Words that `on_failure` and `next` use, and so cannot name a step. */
export const RESERVED_STEP_IDS = ['abort', 'continue', 'end'] as const;
/** At most this many steps in one workflow, parallel branches included. */
export const MAX_WORKFLOW_STEPS = 64;
/** At most this many runs one workflow run starts (retries included) unless `max_runs` says less. */
export const MAX_WORKFLOW_RUNS = 1000;
/** The default of `max_runs`. */
export const DEFAULT_WORKFLOW_MAX_RUNS = 100;
/** At most this many retries per step. */
export const MAX_STEP_RETRIES = 10;
/** Durations in a workflow: a number and a unit (`500ms`, `30s`, `5m`, `1h`). */
export const WORKFLOW_DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
/** The members of `steps.<id>` an expression may read (specs/workflow-v1.md, "Expressions"). */
export const STEP_RESULT_FIELDS = [
  'status',
  'error_code',
  'exit_code',
  'targets',
  'nodes',
  'failed_nodes',
  'succeeded_nodes',
  'run_ids',
] as const;
/** The input types of a workflow. */
export const WORKFLOW_INPUT_TYPES = ['string', 'integer', 'number', 'boolean', 'array'] as const;
/** A workflow input type. */
export type WorkflowInputType = (typeof WORKFLOW_INPUT_TYPES)[number];

const literals = <T extends string>(values: readonly T[], description: string) =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    { description },
  );

const WorkflowIdSchema = (description: string) =>
  Type.String({ pattern: WORKFLOW_ID_PATTERN, description });

const ExpressionSchema = (description: string) =>
  Type.String({ minLength: 1, maxLength: 4096, description });

const DurationSchema = (description: string) =>
  Type.String({ pattern: WORKFLOW_DURATION_PATTERN, maxLength: 32, description });

/** A transition: a step id, or a word of {@link RESERVED_STEP_IDS}. */
const TransitionSchema = (description: string) =>
  Type.String({ pattern: WORKFLOW_ID_PATTERN, description });

/** One typed input of a workflow. */
export const WorkflowInputSchema = Type.Object(
  {
    type: literals(
      WORKFLOW_INPUT_TYPES,
      'Type of the value; an array holds strings (`-i nodes=web01,web02`).',
    ),
    description: Type.Optional(Type.String({ maxLength: 1024, description: 'What it is for.' })),
    required: Type.Optional(
      Type.Boolean({ description: 'The run is refused without it (default false).' }),
    ),
    default: Type.Optional(
      Type.Unknown({ description: 'Value when not given; must have the declared type.' }),
    ),
  },
  { additionalProperties: false, title: 'Workflow v1 input', description: 'A typed input.' },
);
/** One typed input of a workflow. */
export type WorkflowInput = Static<typeof WorkflowInputSchema>;

/** What to do again when a step fails. */
export const WorkflowRetrySchema = Type.Object(
  {
    count: Type.Integer({
      minimum: 1,
      maximum: MAX_STEP_RETRIES,
      description: 'Retries after the first attempt; each retry runs on the nodes that failed.',
    }),
    delay: Type.Optional(DurationSchema('Wait before each retry (default none).')),
    on: Type.Optional(
      Type.Array(Type.String({ pattern: ERROR_CODE_PATTERN }), {
        minItems: 1,
        maxItems: 32,
        uniqueItems: true,
        description: 'EPS codes worth a retry; default: the failures whose EPS error is retryable.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Retry policy.' },
);

const stepCommon = {
  id: WorkflowIdSchema('Unique step id; expressions read its result as steps.<id>.'),
  description: Type.Optional(Type.String({ maxLength: 1024, description: 'What the step does.' })),
  when: Type.Optional(
    ExpressionSchema('CEL condition; false skips the step (the workflow goes on).'),
  ),
};

const actionMembers = {
  ...stepCommon,
  action: ActionNameSchema,
  nodes: Type.Optional(
    Type.Union(
      [
        Type.String({ minLength: 1, maxLength: 4096 }),
        Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
          minItems: 1,
          maxItems: 1000,
        }),
      ],
      {
        description:
          'Targets: selectors as for `rune run --node`, or `${{ expr }}` giving a string or a list of strings.',
      },
    ),
  ),
  failed_in: Type.Optional(
    WorkflowIdSchema('Targets: the nodes where this earlier step failed (after its retries).'),
  ),
  transport: Type.Optional(TransportNameSchema),
  params: Type.Optional(
    Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
      description:
        'Parameters of the action (its manifest decides); a string value `${{ expr }}` is computed.',
    }),
  ),
  timeout: Type.Optional(DurationSchema('Per-node timeout of each run of the step.')),
  concurrency: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1000, description: 'Nodes at once.' }),
  ),
  retry: Type.Optional(WorkflowRetrySchema),
};

/** A step of a parallel group: an action step without transitions of its own. */
export const WorkflowBranchStepSchema = Type.Object(
  {
    ...actionMembers,
    on_failure: Type.Optional(
      literals(['abort', 'continue'], 'abort (default): the group fails; continue: it does not.'),
    ),
  },
  { additionalProperties: false, description: 'A branch of a parallel group.' },
);
/** A branch of a parallel group. */
export type WorkflowBranchStep = Static<typeof WorkflowBranchStepSchema>;

const transitions = {
  on_failure: Type.Optional(
    TransitionSchema(
      'abort (default): stop, the rest is skipped; continue: go on as if it succeeded; a step id: go there.',
    ),
  ),
  next: Type.Optional(
    TransitionSchema('Where to go after success (default: the following step); end stops.'),
  ),
};

/** A step that runs one action on its targets. */
export const WorkflowActionStepSchema = Type.Object(
  { ...actionMembers, ...transitions },
  { additionalProperties: false, description: 'An action step.' },
);
/** A step that runs one action on its targets. */
export type WorkflowActionStep = Static<typeof WorkflowActionStepSchema>;

/** Branches that run at the same time and join before the workflow goes on. */
export const WorkflowParallelStepSchema = Type.Object(
  {
    ...stepCommon,
    parallel: Type.Array(WorkflowBranchStepSchema, {
      minItems: 2,
      maxItems: 16,
      description: 'The branches; the group fails when a branch with on_failure abort fails.',
    }),
    ...transitions,
  },
  { additionalProperties: false, description: 'A parallel group.' },
);
/** A parallel group. */
export type WorkflowParallelStep = Static<typeof WorkflowParallelStepSchema>;

/** A gate that waits for approvals (RBAC issue); refused at run time until approvals exist. */
export const WorkflowApprovalStepSchema = Type.Object(
  {
    ...stepCommon,
    approval: Type.Object(
      {
        message: Type.String({ minLength: 1, maxLength: 1024, description: 'What is approved.' }),
        approvers: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
            minItems: 1,
            maxItems: 32,
            description: 'Roles or users who may approve.',
          }),
        ),
        timeout: Type.Optional(DurationSchema('How long to wait for the approval.')),
      },
      { additionalProperties: false, description: 'The approval asked for.' },
    ),
    next: transitions.next,
  },
  { additionalProperties: false, description: 'An approval step.' },
);
/** An approval step. */
export type WorkflowApprovalStep = Static<typeof WorkflowApprovalStepSchema>;

/** Any top-level step. */
export const WorkflowStepSchema = Type.Union(
  [WorkflowActionStepSchema, WorkflowParallelStepSchema, WorkflowApprovalStepSchema],
  { description: 'An action step, a parallel group or an approval step.' },
);
/** Any top-level step. */
export type WorkflowStep = Static<typeof WorkflowStepSchema>;

/** A workflow definition (`schema_version: workflow_v1`), written in YAML or JSON. */
export const WorkflowDefinitionSchema = Type.Object(
  {
    schema_version: Type.Literal(WORKFLOW_V1, { description: 'Always "workflow_v1".' }),
    name: ActionNameSchema,
    description: Type.Optional(Type.String({ maxLength: 4096, description: 'What it is for.' })),
    inputs: Type.Optional(
      Type.Record(Type.String({ pattern: WORKFLOW_ID_PATTERN }), WorkflowInputSchema, {
        maxProperties: 64,
        description: 'Typed inputs by name; expressions read them as inputs.<name>.',
      }),
    ),
    steps: Type.Array(WorkflowStepSchema, {
      minItems: 1,
      maxItems: MAX_WORKFLOW_STEPS,
      description: 'The steps, run in order unless next or on_failure says otherwise.',
    }),
    outputs: Type.Optional(
      Type.Record(Type.String({ pattern: WORKFLOW_ID_PATTERN }), ExpressionSchema('CEL.'), {
        maxProperties: 64,
        description: 'Values computed when the workflow ends (CEL), by name.',
      }),
    ),
    max_runs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_WORKFLOW_RUNS,
        description: `Most runs one workflow run may start, retries included (default ${DEFAULT_WORKFLOW_MAX_RUNS}).`,
      }),
    ),
  },
  {
    additionalProperties: false,
    title: 'Workflow v1 definition',
    description: 'A workflow definition.',
  },
);
/** A workflow definition. */
export type WorkflowDefinition = Static<typeof WorkflowDefinitionSchema>;

// ---------------------------------------------------------------------------------------------
// The run record

/** How a workflow run ended (or that it still runs). */
export const WORKFLOW_RUN_STATUSES = [
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'interrupted',
] as const;
/** How a workflow run ended. */
export type WorkflowRunStatus = (typeof WORKFLOW_RUN_STATUSES)[number];
/**
 * How one step ended, or where it is: `pending` (not reached), `running`, `awaiting_approval`
 * (its first run is held for the approval step that guards it, on a server).
 */
export const WORKFLOW_STEP_STATUSES = [
  'pending',
  'running',
  'awaiting_approval',
  'succeeded',
  'partial',
  'failed',
  'skipped',
  'cancelled',
] as const;
/** How one step ended. */
export type WorkflowStepStatus = (typeof WORKFLOW_STEP_STATUSES)[number];

/** An attempt's statuses: its run's, a queued run showing as `running`. */
const ATTEMPT_STATUSES = RUN_STATUSES.filter(
  (status): status is Exclude<RunStatus, 'queued'> => status !== 'queued',
);

/** One run (attempt) of a step: a normal run with its own run id and audit records. */
export const WorkflowAttemptSchema = Type.Object(
  {
    run_id: UuidSchema,
    status: literals(
      ATTEMPT_STATUSES,
      'The status of that run: `awaiting_approval` while it is held for an approval step, `running` while it goes on (queued or running: the record is saved when it starts), then how it ended.',
    ),
    exit_code: Type.Integer({
      minimum: 0,
      maximum: 255,
      description: 'Its CLI exit code (0 while running or awaiting approval).',
    }),
    nodes: Type.Array(
      Type.Object(
        {
          node: NodeNameSchema,
          status: literals(['success', 'partial', 'failure', 'skipped'], 'How the node ended.'),
          error_code: Type.Union([Type.String({ pattern: ERROR_CODE_PATTERN }), Type.Null()], {
            description: 'EPS code of the node, null on success.',
          }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 10000, description: 'Each node of the run (none while it runs).' },
    ),
    started_at: Type.Optional(
      Type.String({
        pattern: TIMESTAMP_PATTERN,
        maxLength: 40,
        description: 'When the engine started the run (absent in records of older writers).',
      }),
    ),
    ended_at: Type.Optional(
      Type.Union([TimestampSchema, Type.Null()], {
        description:
          'When the run ended; null while it runs or awaits approval (absent in records of older writers).',
      }),
    ),
  },
  { additionalProperties: false, description: 'One run of the step.' },
);
/** One run of a step. */
export type WorkflowAttempt = Static<typeof WorkflowAttemptSchema>;

/** What became of one step. */
export const WorkflowStepRecordSchema = Type.Object(
  {
    id: WorkflowIdSchema('The step id.'),
    kind: literals(['action', 'parallel', 'approval'], 'The kind of step.'),
    group: Type.Union([WorkflowIdSchema('The parallel group.'), Type.Null()], {
      description: 'The parallel group of a branch; null for a top-level step.',
    }),
    action: Type.Union([ActionNameSchema, Type.Null()], {
      description: 'The action of an action step.',
    }),
    status: literals(WORKFLOW_STEP_STATUSES, 'How the step ended.'),
    reason: Type.Union([Type.String({ maxLength: 1024 }), Type.Null()], {
      description: 'Why it was skipped or cancelled, or which transition it took.',
    }),
    targets: Type.Array(NodeNameSchema, { maxItems: 10000, description: 'The nodes it ran on.' }),
    failed_nodes: Type.Array(NodeNameSchema, {
      maxItems: 10000,
      description: 'Nodes that failed (after retries).',
    }),
    attempts: Type.Array(WorkflowAttemptSchema, {
      maxItems: MAX_STEP_RETRIES + 1,
      description: 'Its runs, first attempt first.',
    }),
    error: Type.Union([EpsErrorSchema, Type.Null()], { description: 'Why it failed.' }),
    started_at: Type.Union([TimestampSchema, Type.Null()]),
    ended_at: Type.Union([TimestampSchema, Type.Null()]),
  },
  { additionalProperties: false, title: 'Workflow v1 step record', description: 'A step.' },
);
/** What became of one step. */
export type WorkflowStepRecord = Static<typeof WorkflowStepRecordSchema>;

/** The record of one workflow run: what `rune workflow run --output json` prints. */
export const WorkflowRunRecordSchema = Type.Object(
  {
    schema_version: Type.Literal(WORKFLOW_RUN_V1),
    workflow: ActionNameSchema,
    workflow_run_id: UuidSchema,
    trace_id: TraceIdSchema,
    status: literals(WORKFLOW_RUN_STATUSES, 'How the workflow run ended.'),
    exit_code: Type.Integer({
      minimum: 0,
      maximum: 255,
      description: 'CLI exit code: 0 when succeeded, else the failing step’s (or the error’s).',
    }),
    dry_run: Type.Boolean({ description: 'A dry run: nothing ran.' }),
    inputs: JsonObjectSchema,
    steps: Type.Array(WorkflowStepRecordSchema, { maxItems: MAX_WORKFLOW_STEPS }),
    outputs: JsonObjectSchema,
    error: Type.Union([EpsErrorSchema, Type.Null()], { description: 'Why it did not succeed.' }),
    started_at: TimestampSchema,
    ended_at: Type.Union([TimestampSchema, Type.Null()]),
  },
  { additionalProperties: false, title: 'Workflow v1 run record', description: 'A workflow run.' },
);
/** The record of one workflow run. */
export type WorkflowRunRecord = Static<typeof WorkflowRunRecordSchema>;

/** One line of `rune workflow run --output jsonl` before the final record: a step ended. */
export const WorkflowStepLineSchema = Type.Object(
  {
    schema_version: Type.Literal(WORKFLOW_RUN_V1),
    type: Type.Literal('workflow-step'),
    workflow_run_id: UuidSchema,
    trace_id: TraceIdSchema,
    step: WorkflowStepRecordSchema,
  },
  { additionalProperties: false, description: 'A step line.' },
);
/** A step line. */
export type WorkflowStepLine = Static<typeof WorkflowStepLineSchema>;
