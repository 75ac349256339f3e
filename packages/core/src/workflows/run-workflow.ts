/**
 * The workflow engine: walks a checked workflow definition step by step, each action step one or
 * more normal runs (retries), all under one trace id and one workflow run id, and returns the
 * workflow run record (`rune-workflow-run/v1`).
 *
 * The engine does not start runs itself: a {@link WorkflowStepRunner} does. The CLI and Node
 * tools use {@link runeStepRunner} (`rune.start()`); a server passes a runner that submits each
 * step through its own run manager, so policy, queueing and storage apply to every step exactly as
 * they apply to a run asked for directly. Transitions only go forward (the protocol refuses
 * cycles), every step runs at most once, and `max_runs` bounds the runs retries may add.
 */
import { randomUUID } from 'node:crypto';
import { context as otelContext, SpanStatusCode } from '@opentelemetry/api';
import {
  computedExpression,
  DEFAULT_WORKFLOW_MAX_RUNS,
  type EpsError,
  exitCodeFor,
  fitsWorkflowInput,
  isWorkflowActionStep,
  RuneError,
  type TerminalRunStatus,
  WORKFLOW_RUN_V1,
  type WorkflowActionStep,
  type WorkflowAttempt,
  type WorkflowBranchStep,
  type WorkflowDefinition,
  type WorkflowRunRecord,
  type WorkflowStep,
  type WorkflowStepRecord,
  workflowEdges,
} from '@rune/protocol';
import { durationToMs } from '../duration.js';
import type { NodeRunResult } from '../execution/node-result.js';
import { aggregateExitCode, exitCodeForError } from '../execution/run-summary.js';
import type { PlanRequest } from '../planning/plan-request.js';
import { type ExecutionPlan, newTraceId } from '../planning/plan-run.js';
import type { Rune } from '../rune.js';
import { RUNE_SPAN_ATTRIBUTES, startRuneSpan, withRuneSpan } from '../telemetry/tracing.js';
import type { WorkflowActionRegistry } from './check-workflow.js';
import {
  type CompiledExpression,
  compileExpression,
  type ExpressionContext,
  evaluateCondition,
} from './expressions.js';

/** The attributes of the `rune.workflow` and `rune.workflow.step` spans. */
export const WORKFLOW_SPAN_ATTRIBUTES = {
  name: 'rune.workflow.name',
  runId: 'rune.workflow.run_id',
  step: 'rune.workflow.step',
} as const;

/** What a runner is told about the run it starts for a step. */
export interface WorkflowStepContext {
  /** The workflow's trace id: every run of the workflow uses it. */
  traceId: string;
  /** Goes into the `metadata` of the run's audit records: `{ workflow: {name, run_id, step, attempt} }`. */
  auditMetadata: Record<string, unknown>;
  /**
   * Set on the first run of the step an approval step guards: the run must wait for this
   * approval before it starts (a server holds it in `awaiting_approval`). Only runners with
   * `approvals: true` are given it.
   */
  approval?: WorkflowStepApproval;
}

/** The approval a run waits for (from the workflow's approval step). */
export interface WorkflowStepApproval {
  /** The approval step's id. */
  step: string;
  message: string;
  /** Who alone may approve (roles, principals, subjects); absent: whoever the policy lets. */
  approvers?: readonly string[];
  /** The approval step's `timeout`: the request expires after it. */
  timeoutMs?: number;
}

/** A run a runner started for a step. */
export interface WorkflowStepRun {
  /** The run id (audit `run_id`). */
  readonly id: string;
  /**
   * Resolves when the run ended; `error` is the run's own error (a run that never started: an
   * approval rejected or expired, a cancel while it waited).
   */
  readonly result: Promise<{
    status: TerminalRunStatus;
    nodes: readonly NodeRunResult[];
    error?: EpsError | null;
  }>;
  /** Cancels it like Ctrl-C (remote process groups killed, unstarted nodes skipped). */
  cancel(reason?: string): void;
  /**
   * Set when the run waits for an approval before it starts (a server's `awaiting_approval`):
   * resolves once it no longer does (approved, or ended without starting). Until then the
   * record shows its attempt, its step and the approval step guarding it `awaiting_approval`.
   */
  readonly awaitingApproval?: Promise<void>;
}

/** Starts the runs of a workflow's steps. */
export interface WorkflowStepRunner {
  /**
   * The runner can hold a run for approval (`context.approval`): a server with RBAC approvals.
   * Without it an approval step fails with APPROVAL_UNAVAILABLE.
   */
  readonly approvals?: boolean;
  /** Plans and starts one run; a refusal throws a RuneError (the step then fails with it). */
  start(request: PlanRequest, context: WorkflowStepContext): Promise<WorkflowStepRun>;
  /** Plans a run without running it (dry runs); audited as a dry run. */
  plan(request: PlanRequest, context: WorkflowStepContext): Promise<ExecutionPlan>;
}

/** The runner of the CLI and Node tools: `rune.start()` and `rune.run({ dryRun })`. */
export function runeStepRunner(rune: Rune): WorkflowStepRunner {
  return {
    async start(request, context) {
      const handle = await rune.start(request, {
        traceId: context.traceId,
        auditMetadata: context.auditMetadata,
      });
      return {
        id: handle.id,
        result: handle.result.then(async (outcome) => {
          // The run's own error (a cancel's reason) is on its run-end event.
          let error: EpsError | null = null;
          for await (const event of handle.events) {
            if (event.type === 'run-end') error = event.error;
          }
          return { status: outcome.status, nodes: outcome.nodes, error };
        }),
        cancel: (reason) => handle.cancel(reason),
      };
    },
    async plan(request, context) {
      const report = await rune.run(
        { ...request, dryRun: true },
        { traceId: context.traceId, auditMetadata: context.auditMetadata },
      );
      return report.plan;
    },
  };
}

/** Options of {@link runWorkflow}. */
export interface RunWorkflowOptions {
  runner: WorkflowStepRunner;
  /** Typed input values (from an API body), applied first. */
  inputs?: Readonly<Record<string, unknown>>;
  /** `key=value` input strings (`-i`), converted by the declared type, applied last. */
  inputArgs?: readonly string[];
  /** Shows what would run where, runs nothing. */
  dryRun?: boolean;
  /** Confirms dangerous actions (the CLI's `--yes`); without it a workflow with one is refused. */
  confirmDangerous?: boolean;
  /** For the dangerous-action check before anything runs. */
  registry?: WorkflowActionRegistry;
  /** Inventory for every step (a path or parsed inventory), like `rune run --inventory`. */
  inventory?: PlanRequest['inventory'];
  /** Aborting it cancels the workflow: the current runs are cancelled, the rest is skipped. */
  signal?: AbortSignal;
  /** Called each time a step (or branch) ends, with its record. */
  onStep?: (record: WorkflowStepRecord) => void;
  /**
   * Called with the record as it stands (status `running`) before the first step and after each
   * step ends: a service persists it, so a restart finds what was done.
   */
  onProgress?: (record: WorkflowRunRecord) => void;
  /**
   * Called once the workflow run id and trace id are known and the inputs and dangerous actions
   * were checked, before anything runs; awaited. A throw refuses the workflow (it is rethrown and
   * nothing runs): a front end audits the start there, so no step runs unaudited.
   */
  onStart?: (identity: { workflowRunId: string; traceId: string }) => void | Promise<void>;
  workflowRunId?: string;
  traceId?: string;
  now?: () => Date;
}

interface StepState {
  status: WorkflowStepRecord['status'];
  error_code: string | null;
  exit_code: number | null;
  targets: string[];
  nodes: Record<string, { status: string; error_code: string | null; output_data: unknown }>;
  failed_nodes: string[];
  succeeded_nodes: string[];
  run_ids: string[];
}

type StepOutcome = 'success' | 'failure' | 'skipped' | 'cancelled';

const emptyState = (): StepState => ({
  status: 'pending',
  error_code: null,
  exit_code: null,
  targets: [],
  nodes: {},
  failed_nodes: [],
  succeeded_nodes: [],
  run_ids: [],
});

function convertInput(name: string, type: string, text: string): unknown {
  const bad = (): never => {
    throw new RuneError(
      'INVALID_ARGUMENT',
      // The value is not repeated: the message goes into the audit trail, which records the
      // names of the inputs, never their values.
      `input ${name} must be ${type === 'integer' ? 'an integer' : `a ${type}`} (-i ${name}=…)`,
      {
        source: { component: 'rune-core' },
        details: { input: name, type },
      },
    );
  };
  switch (type) {
    case 'integer':
      return /^-?(0|[1-9][0-9]{0,15})$/.test(text) && Number.isSafeInteger(Number(text))
        ? Number(text)
        : bad();
    case 'number':
      return /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text) ? Number(text) : bad();
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : bad();
    case 'array':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    default:
      return text;
  }
}

/**
 * The inputs of a run: typed values, then `key=value` strings converted by the declared type,
 * then defaults. Throws INVALID_ARGUMENT for an undeclared name, a value of the wrong type or a
 * missing required input.
 */
export function resolveWorkflowInputs(
  definition: WorkflowDefinition,
  given: Readonly<Record<string, unknown>> = {},
  args: readonly string[] = [],
): Record<string, unknown> {
  const declared = definition.inputs ?? {};
  const fail = (message: string, details: Record<string, unknown>): never => {
    throw new RuneError('INVALID_ARGUMENT', message, {
      source: { component: 'rune-core' },
      details,
    });
  };
  const values: Record<string, unknown> = {};
  const declaredNames = Object.keys(declared).join(', ') || '(none)';
  for (const [name, value] of Object.entries(given)) {
    const input = Object.hasOwn(declared, name) ? declared[name] : undefined;
    if (input === undefined)
      fail(`unknown input "${name}"; declared: ${declaredNames}`, { input: name });
    else if (!fitsWorkflowInput(input, value))
      fail(`input ${name} must be ${input.type === 'integer' ? 'an integer' : `a ${input.type}`}`, {
        input: name,
      });
    values[name] = value;
  }
  for (const arg of args) {
    const equals = arg.indexOf('=');
    if (equals <= 0)
      fail(`input "${arg.slice(0, 100)}" is not key=value`, { input: arg.slice(0, 100) });
    const name = arg.slice(0, equals);
    const input = Object.hasOwn(declared, name) ? declared[name] : undefined;
    if (input === undefined) {
      fail(`unknown input "${name.slice(0, 64)}"; declared: ${declaredNames}`, {
        input: name.slice(0, 64),
      });
    } else {
      values[name] = convertInput(name, input.type, arg.slice(equals + 1));
    }
  }
  for (const [name, input] of Object.entries(declared)) {
    if (Object.hasOwn(values, name)) continue;
    if (input.default !== undefined) values[name] = input.default;
    else if (input.required === true) fail(`input ${name} is required`, { input: name });
  }
  return values;
}

function toEps(error: RuneError): EpsError {
  return error.toJSON() as EpsError;
}

/** Runs (or, with `dryRun`, plans) a workflow and returns its record. Never throws after start. */
export async function runWorkflow(
  definition: WorkflowDefinition,
  options: RunWorkflowOptions,
): Promise<WorkflowRunRecord> {
  const now = options.now ?? (() => new Date());
  const traceId = options.traceId ?? newTraceId();
  const workflowRunId = options.workflowRunId ?? randomUUID();
  const startedAt = now().toISOString();
  const dryRun = options.dryRun === true;
  // Refusals before anything runs throw (bad inputs, unconfirmed dangerous actions).
  const inputs = resolveWorkflowInputs(definition, options.inputs, options.inputArgs);
  const actionSteps = definition.steps.flatMap(
    (step): (WorkflowActionStep | WorkflowBranchStep)[] =>
      'parallel' in step ? step.parallel : isWorkflowActionStep(step) ? [step] : [],
  );
  if (!dryRun && options.confirmDangerous !== true && options.registry !== undefined) {
    const registry = options.registry;
    const dangerous = actionSteps.filter((step) => {
      try {
        return registry.resolve(step.action).manifest.dangerous === true;
      } catch {
        return false;
      }
    });
    if (dangerous.length > 0) {
      throw new RuneError(
        'DANGEROUS_ACTION_REFUSED',
        `workflow ${definition.name} runs dangerous actions (${dangerous.map((step) => `${step.id}: ${step.action}`).join(', ')}); confirm with --yes (or dry-run it first)`,
        {
          source: { component: 'rune-core' },
          traceId,
          details: { steps: dangerous.map((step) => step.id) },
        },
      );
    }
  }
  await options.onStart?.({ workflowRunId, traceId });

  const maxRuns = definition.max_runs ?? DEFAULT_WORKFLOW_MAX_RUNS;
  const states = new Map<string, StepState>();
  const records = new Map<string, WorkflowStepRecord>();
  const order: string[] = [];
  const addRecord = (step: WorkflowStep | WorkflowBranchStep, group: string | null): void => {
    states.set(step.id, emptyState());
    order.push(step.id);
    records.set(step.id, {
      id: step.id,
      kind: 'parallel' in step ? 'parallel' : 'approval' in step ? 'approval' : 'action',
      group,
      action: 'action' in step ? step.action : null,
      status: 'pending',
      reason: null,
      targets: [],
      failed_nodes: [],
      attempts: [],
      error: null,
      started_at: null,
      ended_at: null,
    });
  };
  for (const step of definition.steps) {
    addRecord(step, null);
    if ('parallel' in step) for (const branch of step.parallel) addRecord(branch, step.id);
  }

  const progress = (): void => {
    if (options.onProgress === undefined) return;
    options.onProgress({
      schema_version: WORKFLOW_RUN_V1,
      workflow: definition.name,
      workflow_run_id: workflowRunId,
      trace_id: traceId,
      status: 'running',
      exit_code: 0,
      dry_run: dryRun,
      inputs,
      steps: order
        .map((id) => records.get(id))
        .filter((record) => record !== undefined)
        .map((record) => structuredClone(record)),
      outputs: {},
      error: null,
      started_at: startedAt,
      ended_at: null,
    });
  };

  const context = (): ExpressionContext => ({
    inputs,
    steps: Object.fromEntries(states),
    workflow: { run_id: workflowRunId, trace_id: traceId, name: definition.name },
  });
  const compiled = new Map<string, CompiledExpression>();
  const compile = (source: string): CompiledExpression => {
    let expression = compiled.get(source);
    if (expression === undefined) {
      expression = compileExpression(source);
      compiled.set(source, expression);
    }
    return expression;
  };
  const computed = (value: unknown): unknown => {
    if (typeof value !== 'string') return value;
    const source = computedExpression(value);
    return source === undefined ? value : compile(source).evaluate(context());
  };

  const running = new Set<WorkflowStepRun>();
  let cancelled = options.signal?.aborted === true;
  let cancelReason = 'the workflow was cancelled';
  /** Cancels the workflow: the runs going on are cancelled, nothing more starts. */
  const cancelWorkflow = (reason: string): void => {
    if (cancelled) return;
    cancelled = true;
    cancelReason = reason;
    for (const run of running) run.cancel(cancelReason);
  };
  const onAbort = (): void => {
    const reason = options.signal?.reason;
    cancelWorkflow(
      typeof reason === 'string'
        ? reason
        : reason instanceof Error && reason.name !== 'AbortError'
          ? reason.message
          : cancelReason,
    );
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let runsStarted = 0;
  /**
   * Top-level steps that ended and were not reported yet: the walk reports one (onStep) once it
   * has decided where to go from it, so the step line carries the transition (`on_failure: …`)
   * exactly as the record does.
   */
  const unannounced: string[] = [];
  const announce = (): void => {
    if (unannounced.length === 0) return;
    for (const id of unannounced.splice(0)) {
      const record = records.get(id);
      if (record !== undefined) options.onStep?.(structuredClone(record));
    }
    progress();
  };

  const finishStep = (
    id: string,
    status: WorkflowStepRecord['status'],
    reason: string | null,
  ): void => {
    const record = records.get(id);
    const state = states.get(id);
    if (record === undefined || state === undefined) return;
    record.status = status;
    record.reason = reason;
    record.ended_at = now().toISOString();
    state.status = status;
    record.targets = state.targets;
    record.failed_nodes = state.failed_nodes;
    if (record.group === null && !dryRun) {
      // Saved and reported together once the walk decided the transition (announce()).
      unannounced.push(id);
      return;
    }
    options.onStep?.(structuredClone(record));
    progress();
  };
  const failStep = (id: string, error: RuneError): StepOutcome => {
    const record = records.get(id);
    const state = states.get(id);
    if (record !== undefined) record.error = toEps(error.withContext({ traceId }));
    if (state !== undefined) {
      state.error_code = error.code;
      state.exit_code = exitCodeFor(error.code);
    }
    finishStep(id, 'failed', null);
    return 'failure';
  };
  const begin = (id: string): void => {
    const record = records.get(id);
    if (record !== undefined) {
      record.status = 'running';
      record.started_at = now().toISOString();
    }
    const state = states.get(id);
    if (state !== undefined) state.status = 'running';
    progress();
  };
  /**
   * A run held for an approval: its attempt, its step and the approval step guarding it (if
   * any) are `awaiting_approval` until it is no longer held, then `running` again (unless the
   * attempt ended meanwhile: it then has its run's status). Returns what ends the hold in the
   * record, for the run's end.
   */
  const holdForApproval = (
    held: Promise<void>,
    attempt: WorkflowAttempt,
    stepIds: readonly (string | undefined)[],
  ): (() => void) => {
    const waiting = stepIds
      .map((id) => (id === undefined ? undefined : records.get(id)))
      .filter((record): record is WorkflowStepRecord => record?.status === 'running');
    attempt.status = 'awaiting_approval';
    for (const record of waiting) record.status = 'awaiting_approval';
    let holding = true;
    const release = (): void => {
      if (!holding) return;
      holding = false;
      if (attempt.status === 'awaiting_approval') attempt.status = 'running';
      for (const record of waiting) {
        if (record.status === 'awaiting_approval') record.status = 'running';
      }
    };
    void held.then(() => {
      if (!holding) return;
      release();
      progress();
    });
    return release;
  };
  const stepWhen = (step: { when?: string | undefined }): boolean =>
    step.when === undefined ? true : evaluateCondition(compile(step.when), context());

  const targetsOf = (step: WorkflowActionStep | WorkflowBranchStep): string[] => {
    if (step.failed_in !== undefined) return [...(states.get(step.failed_in)?.failed_nodes ?? [])];
    const entries = Array.isArray(step.nodes) ? step.nodes : [step.nodes ?? ''];
    const targets: string[] = [];
    for (const entry of entries) {
      const value = computed(entry);
      const list = Array.isArray(value) ? value : [value];
      for (const item of list) {
        if (typeof item !== 'string' || item === '') {
          throw new RuneError(
            'WORKFLOW_EXPRESSION_ERROR',
            `targets of step ${step.id} must be node selectors (strings), got ${JSON.stringify(item)?.slice(0, 100)}`,
            { source: { component: 'rune-core' } },
          );
        }
        targets.push(item);
      }
    }
    return targets;
  };
  const paramsOf = (step: WorkflowActionStep | WorkflowBranchStep): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(step.params ?? {}).map(([name, value]) => [name, computed(value)]),
    );
  const requestFor = (
    step: WorkflowActionStep | WorkflowBranchStep,
    selections: string[],
    params: Record<string, unknown>,
  ): PlanRequest => {
    const request: PlanRequest = {
      action: step.action,
      selections,
      params,
      confirmDangerous: options.confirmDangerous === true,
    };
    if (step.transport !== undefined) request.transport = step.transport;
    if (step.timeout !== undefined) request.timeout = step.timeout;
    if (step.concurrency !== undefined) request.concurrency = step.concurrency;
    if (options.inventory !== undefined) request.inventory = options.inventory;
    return request;
  };
  const stepContext = (id: string, attempt: number): WorkflowStepContext => ({
    traceId,
    auditMetadata: {
      workflow: { name: definition.name, run_id: workflowRunId, step: id, attempt },
    },
  });
  const abortableDelay = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (cancelled || ms <= 0) {
        resolve();
        return;
      }
      // Node's timers count from the event loop's cached time, which can be a millisecond behind
      // the clock: wait out what is left, so the record never shows a shorter delay.
      const until = Date.now() + ms;
      let timer = setTimeout(tick, ms);
      function tick(): void {
        const left = until - Date.now();
        if (left > 0 && !cancelled) timer = setTimeout(tick, left);
        else done();
      }
      function done(): void {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', done);
        resolve();
      }
      options.signal?.addEventListener('abort', done, { once: true });
    });

  /** The approval step whose approval the next step's first run waits for. */
  interface Gate {
    step: Extract<WorkflowStep, { approval: unknown }>;
    /** The runs that waited for it. */
    runs: string[];
    /** Why a run was not approved (the first refusal). */
    refusal: EpsError | null;
  }
  let gate: Gate | undefined;

  /**
   * One span per step (`rune.workflow.step`), a child of the workflow's: the runs it starts are
   * submitted inside it, so their `rune.run` spans are its children.
   */
  const stepSpan = (
    step: WorkflowStep | WorkflowBranchStep,
    body: () => Promise<StepOutcome>,
  ): Promise<StepOutcome> =>
    withRuneSpan(
      'rune.workflow.step',
      {
        traceId,
        attributes: {
          [WORKFLOW_SPAN_ATTRIBUTES.name]: definition.name,
          [WORKFLOW_SPAN_ATTRIBUTES.step]: step.id,
          ...('action' in step ? { [RUNE_SPAN_ATTRIBUTES.action]: step.action } : {}),
        },
      },
      async (span) => {
        const outcome = await body();
        const record = records.get(step.id);
        span.setAttribute(RUNE_SPAN_ATTRIBUTES.result, record?.status ?? outcome);
        if (record?.error) span.setAttribute(RUNE_SPAN_ATTRIBUTES.errorCode, record.error.code);
        return outcome;
      },
    );

  const runAction = (step: WorkflowActionStep | WorkflowBranchStep): Promise<StepOutcome> =>
    stepSpan(step, () => runActionInSpan(step));

  const runActionInSpan = async (
    step: WorkflowActionStep | WorkflowBranchStep,
  ): Promise<StepOutcome> => {
    const state = states.get(step.id) ?? emptyState();
    const record = records.get(step.id);
    if (cancelled) {
      finishStep(step.id, 'skipped', 'cancelled');
      return 'cancelled';
    }
    begin(step.id);
    let targets: string[];
    let params: Record<string, unknown>;
    try {
      if (!stepWhen(step)) {
        finishStep(step.id, 'skipped', 'when is false');
        return 'skipped';
      }
      targets = targetsOf(step);
      params = paramsOf(step);
    } catch (error) {
      return failStep(step.id, RuneError.from(error, 'WORKFLOW_EXPRESSION_ERROR'));
    }
    if (targets.length === 0) {
      finishStep(step.id, 'skipped', 'no targets');
      return 'skipped';
    }
    const results = new Map<string, NodeRunResult>();
    let selections = targets;
    const retries = step.retry?.count ?? 0;
    const delayMs = step.retry?.delay === undefined ? 0 : (durationToMs(step.retry.delay) ?? 0);
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (runsStarted >= maxRuns) {
        return failStep(
          step.id,
          new RuneError(
            'WORKFLOW_RUN_LIMIT',
            `workflow ${definition.name} reached max_runs (${maxRuns}) at step ${step.id}`,
            { source: { component: 'rune-core' }, details: { max_runs: maxRuns } },
          ),
        );
      }
      let run: WorkflowStepRun;
      const attemptStarted = now().toISOString();
      // Only the first run of the guarded step waits: retries run the same action and
      // parameters on the nodes of it that failed (a subset of what was approved).
      const guard = attempt === 0 ? gate : undefined;
      try {
        runsStarted++;
        const runContext = stepContext(step.id, attempt);
        if (guard !== undefined) {
          const approval = guard.step.approval;
          const timeoutMs =
            approval.timeout === undefined ? undefined : durationToMs(approval.timeout);
          runContext.approval = {
            step: guard.step.id,
            message: approval.message,
            ...(approval.approvers === undefined ? {} : { approvers: approval.approvers }),
            ...(timeoutMs === undefined ? {} : { timeoutMs }),
          };
        }
        run = await options.runner.start(requestFor(step, selections, params), runContext);
      } catch (error) {
        return failStep(step.id, RuneError.from(error, 'INTERNAL_ERROR'));
      }
      running.add(run);
      // Cancelled while the run was being planned: it still gets the cancel.
      if (cancelled) run.cancel(cancelReason);
      state.run_ids.push(run.id);
      guard?.runs.push(run.id);
      // The attempt is in the record while it runs (a server saves it now): whoever reads the
      // workflow finds the run id to follow before the step ends.
      const attemptRecord: WorkflowAttempt = {
        run_id: run.id,
        status: 'running',
        exit_code: 0,
        nodes: [],
        started_at: attemptStarted,
        ended_at: null,
      };
      record?.attempts.push(attemptRecord);
      const released =
        run.awaitingApproval === undefined
          ? undefined
          : holdForApproval(run.awaitingApproval, attemptRecord, [step.id, guard?.step.id]);
      progress();
      const outcome = await run.result;
      running.delete(run);
      released?.();
      attemptRecord.status = outcome.status;
      attemptRecord.ended_at = now().toISOString();
      if (guard !== undefined && outcome.nodes.length === 0 && outcome.error != null) {
        // It never started: not approved (rejected, expired, void) or cancelled while it waited.
        guard.refusal ??= outcome.error;
        state.error_code = outcome.error.code;
        state.exit_code = exitCodeForError(outcome.error);
        attemptRecord.exit_code = exitCodeForError(outcome.error);
        finishStep(step.id, 'skipped', `not approved (${outcome.error.code})`);
        return 'failure';
      }
      if (!cancelled && outcome.nodes.length === 0 && outcome.error != null) {
        // It never started, with no approval step of ours involved: a hold the runner put on the
        // workflow (a server's storm breaker) was not approved, or the run was cancelled while it
        // waited. A step that ran nowhere failed; it must not count as succeeded.
        attemptRecord.exit_code = exitCodeForError(outcome.error);
        if (record !== undefined) record.error = outcome.error;
        state.error_code = outcome.error.code;
        state.exit_code = exitCodeForError(outcome.error);
        finishStep(step.id, 'failed', `the run did not start (${outcome.error.code})`);
        return 'failure';
      }
      attemptRecord.exit_code = aggregateExitCode(outcome.nodes);
      attemptRecord.nodes = outcome.nodes.map((node) => ({
        node: node.node,
        status: node.status,
        error_code: node.error?.code ?? null,
      }));
      for (const node of outcome.nodes) results.set(node.node, node);
      if (!cancelled && outcome.status === 'cancelled') {
        // Its run was cancelled on its own (a server's POST /v1/runs/{id}/cancel), not through
        // the workflow: that stops the workflow as a cancel of it would, rather than counting as
        // a failure whose on_failure would go on with the remediation.
        const why =
          (outcome.error?.code === 'RUN_CANCELLED' ? outcome.error.message : undefined) ??
          outcome.nodes.find((node) => node.error?.code === 'RUN_CANCELLED')?.error?.message ??
          `run ${run.id} of step ${step.id} was cancelled`;
        cancelWorkflow(why);
      }
      if (cancelled || outcome.status === 'cancelled') break;
      const retryCodes = step.retry?.on;
      const again = outcome.nodes
        .filter((node) => node.status === 'failure' && node.error !== null)
        .filter((node) =>
          retryCodes === undefined
            ? node.error?.retryable === true
            : retryCodes.includes(node.error?.code ?? ''),
        )
        .map((node) => node.node);
      if (attempt === retries || again.length === 0) break;
      await abortableDelay(delayMs);
      if (cancelled) break;
      selections = again;
    }
    const final = [...results.values()];
    state.targets = final.map((node) => node.node);
    state.nodes = Object.fromEntries(
      final.map((node) => [
        node.node,
        {
          status: node.status,
          error_code: node.error?.code ?? null,
          output_data: node.response?.payload.output_data ?? null,
        },
      ]),
    );
    state.failed_nodes = final
      .filter((node) => node.status === 'failure' || node.status === 'skipped')
      .map((node) => node.node);
    state.succeeded_nodes = final
      .filter((node) => node.status === 'success' || node.status === 'partial')
      .map((node) => node.node);
    state.exit_code = aggregateExitCode(final);
    const firstError = final.find((node) => node.error !== null)?.error ?? null;
    state.error_code = firstError?.code ?? null;
    if (record !== undefined) record.error = firstError;
    if (cancelled) {
      finishStep(step.id, 'cancelled', cancelReason);
      return 'cancelled';
    }
    if (state.failed_nodes.length === 0) {
      finishStep(step.id, 'succeeded', null);
      return 'success';
    }
    finishStep(step.id, state.succeeded_nodes.length === 0 ? 'failed' : 'partial', null);
    return 'failure';
  };

  const runGroup = (step: Extract<WorkflowStep, { parallel: unknown }>): Promise<StepOutcome> =>
    stepSpan(step, () => runGroupInSpan(step));

  const runGroupInSpan = async (
    step: Extract<WorkflowStep, { parallel: unknown }>,
  ): Promise<StepOutcome> => {
    if (cancelled) {
      finishStep(step.id, 'skipped', 'cancelled');
      return 'cancelled';
    }
    begin(step.id);
    try {
      if (!stepWhen(step)) {
        for (const branch of step.parallel)
          finishStep(branch.id, 'skipped', 'when of the group is false');
        finishStep(step.id, 'skipped', 'when is false');
        return 'skipped';
      }
    } catch (error) {
      for (const branch of step.parallel) finishStep(branch.id, 'skipped', 'the group failed');
      return failStep(step.id, RuneError.from(error, 'WORKFLOW_EXPRESSION_ERROR'));
    }
    const outcomes = await Promise.all(step.parallel.map((branch) => runAction(branch)));
    const state = states.get(step.id) ?? emptyState();
    const record = records.get(step.id);
    const branchStates = step.parallel.map((branch) => states.get(branch.id) ?? emptyState());
    state.targets = [...new Set(branchStates.flatMap((branch) => branch.targets))];
    state.failed_nodes = [...new Set(branchStates.flatMap((branch) => branch.failed_nodes))];
    state.succeeded_nodes = [...new Set(branchStates.flatMap((branch) => branch.succeeded_nodes))];
    state.run_ids = branchStates.flatMap((branch) => branch.run_ids);
    if (outcomes.includes('cancelled') || cancelled) {
      finishStep(step.id, 'cancelled', cancelReason);
      return 'cancelled';
    }
    const failing = step.parallel.findIndex(
      (branch, index) =>
        outcomes[index] === 'failure' && (branch.on_failure ?? 'abort') === 'abort',
    );
    if (failing < 0) {
      finishStep(step.id, 'succeeded', null);
      return 'success';
    }
    const failed = branchStates[failing];
    const failedBranch = step.parallel[failing];
    state.error_code = failed?.error_code ?? null;
    state.exit_code = failed?.exit_code ?? null;
    if (record !== undefined && failedBranch !== undefined) {
      record.error = records.get(failedBranch.id)?.error ?? null;
    }
    finishStep(step.id, 'failed', `branch ${failedBranch?.id ?? '?'} failed`);
    return 'failure';
  };

  /**
   * An approval step: the step it leads to (its success transition) is started with its first
   * run held for this approval, through the runner (a server's RBAC approvals: quorum, binding to
   * the exact request, no self-approval, expiry). Returns the gate to settle once that step ended,
   * or an outcome when there is nothing to wait for.
   */
  const openApproval = (
    step: Extract<WorkflowStep, { approval: unknown }>,
    index: number,
  ): StepOutcome | Gate => {
    if (cancelled) {
      finishStep(step.id, 'skipped', 'cancelled');
      return 'cancelled';
    }
    begin(step.id);
    try {
      if (!stepWhen(step)) {
        finishStep(step.id, 'skipped', 'when is false');
        return 'skipped';
      }
    } catch (error) {
      return failStep(step.id, RuneError.from(error, 'WORKFLOW_EXPRESSION_ERROR'));
    }
    if (options.runner.approvals !== true) {
      return failStep(
        step.id,
        new RuneError(
          'APPROVAL_UNAVAILABLE',
          `step ${step.id} needs an approval ("${step.approval.message}"); approvals are given on a rune serve (four eyes: not by the operator who runs the workflow), so run it there (POST /v1/workflows/${definition.name}/runs): the workflow stops here`,
          { source: { component: 'rune-core' } },
        ),
      );
    }
    const guarded = definition.steps[workflowEdges(definition, index).success];
    if (guarded === undefined || 'approval' in guarded) {
      return failStep(
        step.id,
        new RuneError(
          'APPROVAL_UNAVAILABLE',
          `step ${step.id} guards nothing: an approval step must lead to an action step or a parallel group, whose runs wait for the approval`,
          { source: { component: 'rune-core' } },
        ),
      );
    }
    return { step, runs: [], refusal: null };
  };

  /** Settles an approval step once the step it guards ended. */
  const settleApproval = (settled: Gate): StepOutcome => {
    const record = records.get(settled.step.id);
    if (settled.refusal !== null) {
      const state = states.get(settled.step.id);
      if (record !== undefined) record.error = settled.refusal;
      if (state !== undefined) {
        state.error_code = settled.refusal.code;
        state.exit_code = exitCodeForError(settled.refusal);
      }
      finishStep(settled.step.id, 'failed', null);
      return 'failure';
    }
    if (settled.runs.length === 0) {
      finishStep(settled.step.id, 'skipped', 'the step it guards did not run');
      return 'skipped';
    }
    finishStep(settled.step.id, 'succeeded', `approved: run ${settled.runs.join(', ')}`);
    return 'success';
  };

  const dryRunStep = async (step: WorkflowActionStep | WorkflowBranchStep): Promise<void> => {
    const record = records.get(step.id);
    const state = states.get(step.id);
    if (record === undefined || state === undefined) return;
    const readsSteps = (source: string): boolean =>
      compile(source).references.some((reference) => reference.root === 'steps');
    const computedReadsSteps = (value: unknown): boolean => {
      const source = typeof value === 'string' ? computedExpression(value) : undefined;
      return source !== undefined && readsSteps(source);
    };
    const notes: string[] = [];
    try {
      if (step.when !== undefined) {
        if (readsSteps(step.when)) notes.push(`runs if ${step.when} (decided at run time)`);
        else if (!stepWhen(step)) {
          record.reason = 'would be skipped: when is false';
          options.onStep?.(structuredClone(record));
          return;
        }
      }
      if (step.failed_in !== undefined) {
        record.reason = [
          `would run ${step.action} on the nodes where ${step.failed_in} fails`,
          ...notes,
        ].join('; ');
        options.onStep?.(structuredClone(record));
        return;
      }
      const nodes = Array.isArray(step.nodes) ? step.nodes : [step.nodes];
      const paramValues = Object.values(step.params ?? {});
      if (nodes.some(computedReadsSteps) || paramValues.some(computedReadsSteps)) {
        record.reason = [
          `would run ${step.action}; targets or parameters decided at run time`,
          ...notes,
        ].join('; ');
        options.onStep?.(structuredClone(record));
        return;
      }
      const plan = await options.runner.plan(
        requestFor(step, targetsOf(step), paramsOf(step)),
        stepContext(step.id, 0),
      );
      record.targets = plan.nodes.map((node) => node.target.name);
      state.targets = record.targets;
      const where = plan.nodes.map((node) => `${node.target.name} (${node.transport})`).join(', ');
      record.reason = [`would run ${step.action} on ${where}`, ...notes].join('; ');
    } catch (error) {
      const rune = RuneError.from(error, 'WORKFLOW_EXPRESSION_ERROR');
      record.error = toEps(rune.withContext({ traceId }));
      record.reason = `would fail: ${rune.code}`;
    }
    options.onStep?.(structuredClone(record));
  };

  progress();
  // Assigned inside the workflow span's callback: `as` keeps TypeScript from narrowing them here.
  let status = 'succeeded' as WorkflowRunRecord['status'];
  let failure = null as { exitCode: number; error: EpsError | null } | null;
  let abortedAfter = null as string | null;
  const workflowSpan = startRuneSpan('rune.workflow', {
    traceId,
    attributes: {
      [WORKFLOW_SPAN_ATTRIBUTES.name]: definition.name,
      [WORKFLOW_SPAN_ATTRIBUTES.runId]: workflowRunId,
      [RUNE_SPAN_ATTRIBUTES.dryRun]: dryRun,
    },
  });
  await otelContext.with(workflowSpan.context, async () => {
    try {
      if (dryRun) {
        for (const step of definition.steps) {
          if ('parallel' in step) {
            for (const branch of step.parallel) await dryRunStep(branch);
          } else if (isWorkflowActionStep(step)) await dryRunStep(step);
          else {
            const record = records.get(step.id);
            if (record !== undefined) {
              record.reason =
                options.runner.approvals === true
                  ? `would wait for approval ("${step.approval.message}") before the next step starts`
                  : 'would stop: approval steps need rune serve (APPROVAL_UNAVAILABLE)';
              options.onStep?.(structuredClone(record));
            }
          }
        }
        const refused = [...records.values()].find((record) => record.error !== null);
        if (refused?.error) {
          status = 'failed';
          failure = { exitCode: exitCodeForError(refused.error), error: refused.error };
        }
      } else {
        let index = 0;
        while (index >= 0) {
          announce();
          const step = definition.steps[index];
          if (step === undefined) break;
          if (cancelled) break;
          let outcome: StepOutcome;
          let current = step;
          if ('parallel' in step) outcome = await runGroup(step);
          else if (isWorkflowActionStep(step)) outcome = await runAction(step);
          else {
            const opened = openApproval(step, index);
            if (typeof opened === 'string') outcome = opened;
            else {
              // The guarded step runs now, its first run held for the approval.
              const guardedIndex = workflowEdges(definition, index).success;
              const guarded = definition.steps[guardedIndex] as WorkflowStep;
              gate = opened;
              let guardedOutcome: StepOutcome = 'skipped';
              // The approval step's span holds the guarded step's (which waits for the approval).
              outcome = await stepSpan(step, async () => {
                try {
                  guardedOutcome =
                    'parallel' in guarded
                      ? await runGroup(guarded)
                      : await runAction(guarded as WorkflowActionStep);
                } finally {
                  gate = undefined;
                }
                return settleApproval(opened);
              });
              if (outcome !== 'failure') {
                // Approved (or nothing waited): the flow goes on from the guarded step.
                index = guardedIndex;
                current = guarded;
                outcome = guardedOutcome;
              }
            }
          }
          if (outcome === 'cancelled' || cancelled) break;
          const edges = workflowEdges(definition, index);
          if (outcome !== 'failure') {
            index = edges.success;
            continue;
          }
          const record = records.get(current.id);
          const onFailure = 'approval' in current ? 'abort' : (current.on_failure ?? 'abort');
          if (onFailure === 'continue') {
            if (record !== undefined) record.reason = 'on_failure: continue';
            index = edges.success;
            continue;
          }
          const state = states.get(current.id);
          failure ??= {
            exitCode:
              record?.error !== null && record?.error !== undefined && (state?.exit_code ?? 0) === 0
                ? exitCodeForError(record.error)
                : (state?.exit_code ?? 1) || 1,
            error: record?.error ?? null,
          };
          if (onFailure === 'abort') {
            if (record !== undefined) record.reason = 'on_failure: abort';
            abortedAfter = current.id;
            break;
          }
          if (record !== undefined) record.reason = `on_failure: ${onFailure}`;
          index = edges.failure;
        }
        announce();
        if (cancelled) status = 'cancelled';
        else if (failure !== null) status = 'failed';
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  });

  for (const id of order) {
    const record = records.get(id);
    if (record === undefined || record.status !== 'pending' || dryRun) continue;
    record.status = 'skipped';
    record.reason = cancelled
      ? 'cancelled'
      : abortedAfter !== null
        ? `aborted after ${abortedAfter}`
        : 'not on the path taken';
    const state = states.get(id);
    if (state !== undefined) state.status = 'skipped';
  }

  const outputs: Record<string, unknown> = {};
  let outputError: RuneError | null = null;
  if (!dryRun && status !== 'cancelled') {
    for (const [name, source] of Object.entries(definition.outputs ?? {})) {
      try {
        outputs[name] = compile(source).evaluate(context());
      } catch (error) {
        outputError ??= RuneError.from(error, 'WORKFLOW_EXPRESSION_ERROR');
      }
    }
  }
  if (outputError !== null && status === 'succeeded') {
    status = 'failed';
    failure = {
      exitCode: exitCodeFor(outputError.code),
      error: toEps(outputError.withContext({ traceId })),
    };
  }
  const cancelError =
    status === 'cancelled'
      ? toEps(
          new RuneError('RUN_CANCELLED', cancelReason, {
            source: { component: 'rune-core' },
            traceId,
          }),
        )
      : null;
  const finalError = cancelError ?? failure?.error ?? null;
  workflowSpan.span.setAttribute(RUNE_SPAN_ATTRIBUTES.result, status);
  if (finalError !== null) {
    workflowSpan.span.setAttribute(RUNE_SPAN_ATTRIBUTES.errorCode, finalError.code);
    workflowSpan.span.setStatus({ code: SpanStatusCode.ERROR, message: finalError.message });
  }
  workflowSpan.span.end();
  return {
    schema_version: WORKFLOW_RUN_V1,
    workflow: definition.name,
    workflow_run_id: workflowRunId,
    trace_id: traceId,
    status,
    exit_code:
      status === 'succeeded' ? 0 : status === 'cancelled' ? 130 : (failure?.exitCode ?? 1) || 1,
    dry_run: dryRun,
    inputs,
    steps: order.map((id) => records.get(id)).filter((record) => record !== undefined),
    outputs,
    error: finalError,
    started_at: startedAt,
    ended_at: now().toISOString(),
  };
}
