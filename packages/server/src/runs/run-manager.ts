/**
 * The run manager: accepts runs, queues them, starts them under a global concurrency limit and
 * per-node mutual exclusion, persists every event, and recovers after a crash.
 *
 * - **Accepting** a run plans it at once (bad input is refused before a 202), writes the run row,
 *   its nodes and its idempotency key in one transaction, then queues it. The plan with sensitive
 *   values in clear lives only in this process's memory; the store holds the redacted request.
 * - **Locks**: a non-idempotent action holds each of its nodes from start to end; a run whose
 *   nodes are held waits in the queue (others pass it), or is refused with NODE_BUSY when the
 *   request said `if_busy: "refuse"`. Dry runs and idempotent actions take no lock.
 * - **Bounded**: at most `queue_size` runs wait (QUEUE_FULL beyond) and `concurrency` execute.
 * - **Recovery** at start-up: a run still `running` in the store was in flight when the previous
 *   process died; its unfinished nodes end `RUN_INTERRUPTED` (recorded in the audit log too) and
 *   the run `interrupted`. What it started on nodes is stopped by the transports' own watchdogs
 *   at the run's deadline. Queued runs start again (re-planned from the stored request) unless
 *   `on_restart = "interrupt"`, or their sensitive values were lost with the process memory.
 * - **Shutdown** (SIGTERM): accept nothing new, let running runs finish for the grace period,
 *   then cancel the rest (remote kill) and wait for their records.
 * - **Several instances** (a PostgreSQL store, `src/cluster/`): the queue, slots and node locks
 *   above stay per instance; the {@link Cluster} is asked before a run goes to core (its claim
 *   turns `running`, its nodes are locked cluster-wide, or it waits), told when a run ends and
 *   when anything changed, and it calls back to interrupt or adopt the runs of a dead instance
 *   (`interruptRun`, `requeueRun`: the same code as the restart recovery of the embedded store).
 */

import { randomUUID } from 'node:crypto';
import { type Context, context as otelContext } from '@opentelemetry/api';
import { canonicalJson, type RunHandle } from '@rune/core';
import {
  type RunEvent,
  RuneError,
  type RunNodeResult,
  type RunPlan,
  type RunSource,
} from '@rune/protocol';
import { sha256Hex } from '@rune/transport';
import { type Cluster, type ClusterHooks, createSoloCluster } from '../cluster/cluster.js';
import type { ServerSettings } from '../config/server-config.js';
import type { ServerMetrics } from '../metrics.js';
import {
  type ApprovalDesk,
  type ApprovalRequirement,
  createApprovalDesk,
} from '../policy/approval-desk.js';
import type { PolicyEnforcer } from '../policy/enforcer.js';
import type { PolicySubject } from '../policy/policy.js';
import { isUniqueViolation } from '../store/constraint-errors.js';
import type { NewRun, RunStore, StoredRun } from '../store/run-store.js';
import type { LaunchContext, LaunchRequest, PlannedLaunch, ServerLauncher } from './launcher.js';
import { openRunIntake, type RunIntake } from './run-intake.js';
import type { SubmitPhaseClock } from './submit-phases.js';
import { unstartedRunEvents } from './unstarted-events.js';

/** What a request says about a busy node. */
export type IfBusy = 'queue' | 'refuse';

/** Options of one submission. */
export interface SubmitOptions {
  idempotencyKey?: string;
  ifBusy?: IfBusy;
  /** The run's trace id (an API request's, from its `traceparent`); default a fresh one. */
  traceId?: string;
  /** The trace context the run's spans are children of (the API request's span). */
  traceContext?: Context;
  /**
   * Hold the run in `awaiting_approval` whatever the policy says (e.g. the alerts storm breaker),
   * with this reason shown to approvers.
   */
  requireApproval?: ApprovalRequirement;
  /** Marks the phases of this submission (the benchmark's breakdown; see submit-phases.ts). */
  phases?: SubmitPhaseClock;
}

/**
 * A submitted run as the store holds it, but for its `position` in the submission order: a dry
 * run answered from the run intake (run-intake.ts) is numbered when it reaches the store.
 */
export type SubmittedRun = Omit<StoredRun, 'position'>;

/** The result of {@link RunManager.submit}. */
export interface SubmitResult {
  run: SubmittedRun;
  /** false when an idempotent retry returned the run of an earlier request. */
  created: boolean;
}

interface QueuedRun {
  id: string;
  planned: PlannedLaunch;
  context: LaunchContext;
  lockNodes: string[];
  traceContext?: Context;
  /** Not before this (ms): a node is held by a run on another instance. */
  retryAt?: number;
}

interface ActiveRun {
  id: string;
  handle?: RunHandle;
  cancelReason?: string;
  done: Promise<void>;
}

/** The run manager. */
export interface RunManager {
  submit(
    request: LaunchRequest,
    context: LaunchContext,
    options?: SubmitOptions,
  ): Promise<SubmitResult>;
  /** Cancels a queued or running run; a no-op for an ended one. Throws NOT_FOUND. */
  cancel(id: string, reason: string): Promise<StoredRun>;
  /** Resolves at the run's next change (event or status), or after `ms`. */
  waitForChange(id: string, ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Stores the dry runs the run intake holds and the store lacks, marks interrupted runs and
   * queues the queued ones (call once, before serving).
   */
  recover(): Promise<{ interrupted: number; requeued: number; replayed?: number }>;
  /** Stops accepting, drains for `graceMs`, cancels the rest. */
  shutdown(graceMs: number): Promise<void>;
  readonly draining: boolean;
  /** Runs waiting and executing. */
  depth(): { queued: number; running: number };
  /** Prunes runs older than the retention; returns how many. */
  prune(): Promise<number>;
  /** Four-eyes approvals of held runs (approve, reject, expire). */
  readonly approvals: ApprovalDesk;
  /** The other instances of the store (the embedded store's solo cluster when none). */
  readonly cluster: Cluster;
}

/** Options of {@link createRunManager}. */
export interface RunManagerOptions {
  store: RunStore;
  launcher: ServerLauncher;
  settings: Pick<ServerSettings, 'queueSize' | 'concurrency' | 'onRestart' | 'retentionMs'>;
  metrics: ServerMetrics;
  now?: () => Date;
  onWarning?: (message: string) => void;
  /** The RBAC enforcer; every submission is decided here, after planning. */
  policy?: PolicyEnforcer;
  /** Base URL of links in approval notices. */
  linkBase?: () => string | undefined;
  /** The other instances of a shared store (default: none, the embedded store's one instance). */
  cluster?: Cluster;
  /**
   * The run intake file (run-intake.ts; the embedded store only): dry runs without an
   * Idempotency-Key are answered once durable there, and reach the store after the answer.
   */
  runIntakePath?: string;
}

/** How long an event that cannot be stored (database away) is retried before it is given up. */
const STORE_RETRY_MS = 120_000;

/** How long a run whose node is held on another instance waits before it asks again. */
const BUSY_RETRY_MS = 500;

const serverSource = { component: 'rune-server' } as const;

const INTERRUPTED_BY_RESTART =
  'the server stopped while this run was in flight; its nodes were not followed to the end (the node watchdog stopped what was left at the run deadline)';
const INTERRUPTED_BY_TAKEOVER =
  'the instance running this run stopped answering and another instance took over; its nodes were not followed to the end (the node watchdog stopped what was left at the run deadline)';

/** sha256 of a canonical JSON body (idempotency keys compare bodies by it). */
export function bodyHash(body: unknown): string {
  return sha256Hex(canonicalJson(body));
}

/** The request as stored: sensitive values replaced by `[REDACTED]`. */
function storedRequest(request: LaunchRequest, sensitive: readonly string[]): LaunchRequest {
  if (request.params === undefined || sensitive.length === 0) return request;
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request.params)) {
    params[key] = sensitive.includes(key) ? '[REDACTED]' : value;
  }
  return { ...request, params };
}

/** The `workflow_run_id` column of a workflow step's run: the store finds a workflow's runs by it. */
function workflowColumn(context: LaunchContext): Pick<NewRun, 'workflow_run_id'> {
  return context.workflowRunId === undefined ? {} : { workflow_run_id: context.workflowRunId };
}

/** The node result of a node the server lost: running -> failure, never started -> skipped. */
function interruptedResult(
  node: { node: string; state: string; started_at: string | null },
  plan: PlannedLaunch['redactedPlan'],
  traceId: string,
  now: Date,
  reason: string,
): RunNodeResult {
  const planned = plan.nodes.find((candidate) => candidate.target.name === node.node);
  const started = node.state === 'running' && node.started_at !== null;
  const error = new RuneError('RUN_INTERRUPTED', reason, {
    traceId,
    source: { component: 'rune-server', node: node.node, action: plan.action },
  }).toJSON();
  return {
    node: node.node,
    transport: planned?.transport ?? 'ssh',
    status: started ? 'failure' : 'skipped',
    message_id: planned?.request.message_metadata.message_id ?? randomUUID(),
    response: null,
    error,
    exit_code: 130,
    plugin_exit_code: null,
    signal: null,
    termination: null,
    started_at: started ? node.started_at : null,
    duration_ms: started ? Math.max(0, now.getTime() - Date.parse(node.started_at ?? '')) : 0,
    stderr_tail: '',
    stderr_truncated: false,
    stdout_bytes: 0,
    stdout_truncated: false,
    metadata: { interrupted: true },
    artifacts: [],
  };
}

/** run-start and run-end of a stored run that never started (none when it has events already). */
function unstartedEventsOf(
  run: StoredRun,
  status: 'cancelled' | 'interrupted' | 'failed',
  error: RuneError,
  timestamp: string,
): RunEvent[] {
  if (run.last_seq !== 0) return [];
  return unstartedRunEvents(
    {
      id: run.id,
      traceId: run.trace_id,
      plan: JSON.parse(run.plan_json) as RunPlan,
      principal: run.principal,
      source: run.source as RunSource,
    },
    { status, exitCode: error.exitCode, error: error.toJSON() },
    timestamp,
  );
}

/** Creates the run manager. */
export function createRunManager(options: RunManagerOptions): RunManager {
  const { store, launcher, settings, metrics } = options;
  const now = options.now ?? (() => new Date());
  const warn = options.onWarning ?? (() => {});
  const queue: QueuedRun[] = [];
  const active = new Map<string, ActiveRun>();
  /** node -> the run holding it (running) */
  const locks = new Map<string, string>();
  const waiters = new Map<string, Set<() => void>>();
  let draining = false;

  const updateGauges = (): void => {
    metrics.queueDepth.set(queue.length);
    metrics.runsInFlight.set(active.size);
  };

  const cluster = options.cluster ?? createSoloCluster();
  const runIntake: RunIntake | undefined =
    options.runIntakePath === undefined
      ? undefined
      : openRunIntake(store, options.runIntakePath, warn);
  /** Runs this instance ran when it was declared dead: their records are the taker's now. */
  const disowned = new Set<string>();
  let retryTimer: NodeJS.Timeout | undefined;

  const wake = (id: string): void => {
    const set = waiters.get(id);
    if (set === undefined) return;
    waiters.delete(id);
    for (const done of set) done();
  };

  /** A local change: wake the waiters here, announce it to the other instances. */
  const notify = (id: string): void => {
    wake(id);
    cluster.publish(id);
  };

  const contextOf = (run: StoredRun): LaunchContext => ({
    principal: run.principal,
    source: run.source as RunSource,
  });

  /** True when a run that holds or will hold one of `nodes` exists. */
  const busyNodes = (nodes: readonly string[]): string[] =>
    nodes.filter(
      (node) => locks.has(node) || queue.some((queued) => queued.lockNodes.includes(node)),
    );

  const persist = async (
    event: RunEvent,
    context: LaunchContext,
    action: string,
  ): Promise<void> => {
    const stored: RunEvent =
      event.type === 'run-start'
        ? { ...event, principal: context.principal, source: context.source }
        : event;
    if (disowned.has(event.run_id)) return;
    // The database may be away for a moment (a PostgreSQL restart or fail-over): the event is
    // retried in order (the next one waits) rather than lost, for up to STORE_RETRY_MS.
    const giveUp = Date.now() + STORE_RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        await store.appendEvent(stored);
        break;
      } catch (error) {
        // The seq exists: committed by an attempt whose answer was lost, or written by the
        // instance that took this run over. Either way it is stored once.
        if (isUniqueViolation(error)) break;
        if (Date.now() >= giveUp || disowned.has(event.run_id)) {
          warn(
            `could not store event ${event.seq} of run ${event.run_id}: ${RuneError.from(error).message}`,
          );
          break;
        }
        if (attempt === 0) {
          warn(
            `could not store event ${event.seq} of run ${event.run_id} (${RuneError.from(error).message}); retrying`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
    if (event.type === 'node-end') {
      metrics.nodeResults.inc({
        action,
        code: event.result.error?.code ?? 'OK',
        transport: event.result.transport,
      });
      metrics.nodeDuration.observe(
        { action, transport: event.result.transport },
        event.result.duration_ms / 1000,
      );
    }
    notify(event.run_id);
  };

  /** Asks the cluster for the run (claim and node locks); puts it back when a node is held. */
  const execute = async (item: QueuedRun): Promise<void> => {
    const claim = await cluster.acquire(item.id, item.lockNodes);
    if (claim === 'ok') return run(item);
    for (const node of item.lockNodes) if (locks.get(node) === item.id) locks.delete(node);
    const record = active.get(item.id);
    active.delete(item.id);
    if (claim === 'busy') {
      item.retryAt = Date.now() + BUSY_RETRY_MS;
      queue.unshift(item);
      if (record?.cancelReason !== undefined) void manager.cancel(item.id, record.cancelReason);
    } else {
      warn(`run ${item.id} was taken over by another instance before it started here`);
    }
    updateGauges();
    pump();
  };

  const run = async (item: QueuedRun): Promise<void> => {
    const record = active.get(item.id);
    const started = Date.now();
    try {
      const handle = await otelContext.with(item.traceContext ?? otelContext.active(), () =>
        launcher.start(item.planned, item.context, item.id),
      );
      if (record !== undefined) record.handle = handle;
      if (record?.cancelReason !== undefined) handle.cancel(record.cancelReason);
      // Not awaited one by one: events that arrive together share one group commit (in order).
      const persisted: Promise<void>[] = [];
      for await (const event of handle.events) {
        persisted.push(persist(event, item.context, item.planned.plan.action));
      }
      await Promise.all(persisted);
      const outcome = await handle.result.catch(() => undefined);
      if (outcome !== undefined && !disowned.has(item.id)) {
        await store.db
          .updateTable('runs')
          .set({ audit_json: JSON.stringify(outcome.audit) })
          .where('id', '=', item.id)
          .execute()
          .catch(() => undefined);
        metrics.runs.inc({ action: item.planned.plan.action, status: outcome.status });
      }
      metrics.runDuration.observe(
        { action: item.planned.plan.action },
        (Date.now() - started) / 1000,
      );
    } catch (error) {
      // The intent record could not be written (nothing was sent) or core refused the plan.
      if (disowned.has(item.id)) return;
      const runeError = RuneError.from(error, 'INTERNAL_ERROR', { source: serverSource });
      await store
        .finishWithoutEvents(item.id, {
          status: 'failed',
          exit_code: runeError.exitCode === 0 ? 70 : runeError.exitCode,
          error_json: JSON.stringify(runeError.toJSON()),
          finished_at: now().toISOString(),
        })
        .catch(() => undefined);
      metrics.runs.inc({ action: item.planned.plan.action, status: 'failed' });
    } finally {
      for (const node of item.lockNodes) if (locks.get(node) === item.id) locks.delete(node);
      if (!disowned.delete(item.id)) await cluster.release(item.id);
      active.delete(item.id);
      for (const queued of queue) queued.retryAt = undefined;
      updateGauges();
      notify(item.id);
      pump();
    }
  };

  /** Starts queued runs while slots are free, skipping runs whose nodes are held. */
  function pump(): void {
    while (!draining && active.size < settings.concurrency) {
      const at = Date.now();
      const index = queue.findIndex(
        (item) =>
          (item.retryAt === undefined || item.retryAt <= at) &&
          item.lockNodes.every((node) => !locks.has(node)),
      );
      if (index < 0) break;
      const [item] = queue.splice(index, 1);
      if (item === undefined) break;
      for (const node of item.lockNodes) locks.set(node, item.id);
      const record: ActiveRun = { id: item.id, done: Promise.resolve() };
      active.set(item.id, record);
      record.done = execute(item);
    }
    updateGauges();
    scheduleRetry();
  }

  /**
   * Wakes the queue when its earliest busy retry is due. Re-armed at every pump: a timer may fire
   * a few ms before `retryAt` by the wall clock (libuv times from its cached loop clock), and a
   * retry found not yet due must not be left without a timer (a run stuck queued, found by the
   * kill -9 test: an adopted run waiting for the lock of the run being interrupted).
   */
  function scheduleRetry(): void {
    if (retryTimer !== undefined || draining) return;
    const at = Date.now();
    let due = Number.POSITIVE_INFINITY;
    for (const item of queue) {
      if (item.retryAt !== undefined && item.retryAt > at) due = Math.min(due, item.retryAt);
    }
    if (due === Number.POSITIVE_INFINITY) return;
    retryTimer = setTimeout(
      () => {
        retryTimer = undefined;
        pump();
      },
      Math.max(1, due - at),
    );
    retryTimer.unref();
  }

  const refuse = async (
    code: 'NODE_BUSY' | 'QUEUE_FULL' | 'SERVER_SHUTTING_DOWN',
    message: string,
    planned: PlannedLaunch | undefined,
    request: LaunchRequest,
    context: LaunchContext,
    details: Record<string, unknown> = {},
  ): Promise<never> => {
    const error = new RuneError(code, message, {
      source: serverSource,
      ...(planned === undefined ? {} : { traceId: planned.plan.trace_id }),
      details,
    });
    await launcher
      .recordNotStarted(
        {
          action: request.action,
          nodes: planned?.plan.nodes.map((node) => node.target.name) ?? request.targets,
          dryRun: false,
        },
        error,
        context,
      )
      .catch(() => undefined);
    throw error;
  };

  const enqueue = (item: QueuedRun): void => {
    queue.push(item);
    pump();
  };

  const subjectOf = (context: LaunchContext): PolicySubject =>
    context.subject ?? { principal: context.principal, subjects: [context.principal], roles: [] };

  // Policy and approvals: the one place every entry point's runs are decided (after planning).
  const desk: ApprovalDesk = createApprovalDesk({
    store,
    launcher,
    now,
    warn,
    ...(options.policy === undefined ? {} : { policy: options.policy }),
    ...(options.linkBase === undefined ? {} : { linkBase: options.linkBase }),
    // An approved run starts on the instance that approved it: in a shared store the claim moves
    // here first (the accepting instance never queued it), else `acquire` would find it lost.
    release: (item) => {
      cluster.reclaim(item.id).then(
        () => {
          enqueue({ ...item, lockNodes: item.planned.idempotent ? [] : item.nodes });
          notify(item.id);
        },
        (error: unknown) =>
          warn(`could not claim approved run ${item.id}: ${RuneError.from(error).message}`),
      );
    },
    notify,
    subjectOf,
  });
  /** Ends a run that was in flight on a process that is gone: unfinished nodes interrupted. */
  const interruptRun = async (run: StoredRun, reason: string): Promise<void> => {
    const stamp = now();
    const context = contextOf(run);
    const plan = JSON.parse(run.plan_json) as PlannedLaunch['redactedPlan'];
    const results = (await store.getNodes(run.id))
      .filter((node) => node.result_json === null)
      .map((node) => interruptedResult(node, plan, run.trace_id, stamp, reason));
    let seq = run.last_seq;
    for (const result of results) {
      await store.appendEvent({
        schema_version: 'rune-run-event/v1',
        seq: ++seq,
        run_id: run.id,
        trace_id: run.trace_id,
        type: 'node-end',
        timestamp: stamp.toISOString(),
        result,
      });
    }
    await store.appendEvent({
      schema_version: 'rune-run-event/v1',
      seq: ++seq,
      run_id: run.id,
      trace_id: run.trace_id,
      type: 'run-end',
      timestamp: stamp.toISOString(),
      status: 'interrupted',
      exit_code: 130,
      summary: null,
      error: new RuneError('RUN_INTERRUPTED', reason, {
        source: serverSource,
        traceId: run.trace_id,
      }).toJSON(),
    });
    await launcher
      .recordInterruptedNodes({ id: run.id, traceId: run.trace_id, plan }, results, context)
      .catch((error: unknown) =>
        warn(
          `could not audit the interrupted nodes of run ${run.id}: ${RuneError.from(error).message}`,
        ),
      );
    metrics.runs.inc({ action: run.action, status: 'interrupted' });
    notify(run.id);
  };

  /**
   * Queues a stored queued run again (re-planned from its stored request), or ends it when it
   * cannot start: its sensitive values died with the process that accepted it, `on_restart =
   * "interrupt"` (at a restart, not at an adoption by another instance), or planning fails now.
   */
  const requeueRun = async (
    run: StoredRun,
    adopted: boolean,
  ): Promise<'queued' | 'interrupted'> => {
    const stamp = now();
    const context = contextOf(run);
    const request = JSON.parse(run.request_json) as LaunchRequest;
    const lost =
      run.has_sensitive === 1
        ? 'its sensitive parameters were held only in the memory of the server that stopped; submit it again'
        : !adopted && settings.onRestart === 'interrupt'
          ? 'the server restarted and [server] on_restart = "interrupt"'
          : undefined;
    let planned: PlannedLaunch | undefined;
    let failure: RuneError | undefined;
    if (lost === undefined) {
      try {
        planned = await launcher.plan(request, context, run.trace_id);
      } catch (error) {
        failure = RuneError.from(error, 'INTERNAL_ERROR', { source: serverSource });
      }
    }
    if (planned === undefined) {
      const error =
        failure ??
        new RuneError('RUN_INTERRUPTED', `the run never started: ${lost}`, {
          source: serverSource,
          traceId: run.trace_id,
        });
      const status = failure === undefined ? 'interrupted' : 'failed';
      await store.finishWithoutEvents(
        run.id,
        {
          status,
          exit_code: error.exitCode,
          error_json: JSON.stringify(error.toJSON()),
          finished_at: stamp.toISOString(),
        },
        unstartedEventsOf(run, status, error, stamp.toISOString()),
      );
      await launcher
        .recordNotStarted(
          { action: run.action, nodes: JSON.parse(run.nodes) as string[], dryRun: false },
          error,
          context,
        )
        .catch(() => undefined);
      notify(run.id);
      return 'interrupted';
    }
    const nodes = planned.plan.nodes.map((node) => node.target.name);
    queue.push({ id: run.id, planned, context, lockNodes: planned.idempotent ? [] : nodes });
    return 'queued';
  };

  const clusterHooks: ClusterHooks = {
    changed: wake,
    changedAll: () => {
      for (const id of [...waiters.keys()]) wake(id);
    },
    released: () => {
      for (const queued of queue) queued.retryAt = undefined;
      pump();
    },
    cancel: (id, reason) => {
      manager
        .cancel(id, reason)
        .catch((error: unknown) =>
          warn(`could not cancel run ${id}: ${RuneError.from(error).message}`),
        );
    },
    interrupt: (run) => interruptRun(run, INTERRUPTED_BY_TAKEOVER),
    adopt: async (run) => {
      const outcome = await requeueRun(run, true);
      pump();
      return outcome;
    },
    isolated: async () => {
      for (const record of active.values()) {
        record.cancelReason =
          'this instance lost the database for longer than half its lease; the run was stopped before another instance could take it over';
        record.handle?.cancel(record.cancelReason);
      }
    },
    fenced: async () => {
      for (const record of active.values()) {
        disowned.add(record.id);
        record.cancelReason = 'this instance was declared dead and its runs were taken over';
        record.handle?.cancel(record.cancelReason);
      }
      queue.splice(0);
      updateGauges();
    },
  };

  const manager: RunManager = {
    get draining() {
      return draining;
    },

    depth: () => ({ queued: queue.length, running: active.size }),

    approvals: desk,

    cluster,

    async submit(request, context, submitOptions = {}) {
      if (draining) {
        await refuse(
          'SERVER_SHUTTING_DOWN',
          'the server is shutting down and accepts no new runs',
          undefined,
          request,
          context,
        );
      }
      const key = submitOptions.idempotencyKey;
      const hash = bodyHash(request);
      const previous = async (runId: string, sha: string): Promise<SubmitResult> => {
        if (sha !== hash) {
          throw new RuneError(
            'IDEMPOTENCY_KEY_REUSED',
            'this Idempotency-Key was used for a request with another body; use a new key for a new request',
            { source: serverSource, details: { run_id: runId } },
          );
        }
        const run = await store.getRun(runId);
        if (run === undefined) {
          throw new RuneError('NOT_FOUND', `run ${runId} of this Idempotency-Key was pruned`, {
            source: serverSource,
          });
        }
        return { run, created: false };
      };
      if (key !== undefined) {
        const existing = await store.findIdempotencyKey(context.principal, key);
        if (existing !== undefined) return previous(existing.run_id, existing.body_sha256);
      }
      const traceId = context.traceId ?? submitOptions.traceId ?? launcher.newTraceId();
      const traceContext = submitOptions.traceContext ?? otelContext.active();
      const id = randomUUID();
      const createdAt = now().toISOString();
      const idempotency = key === undefined ? undefined : { key, bodySha256: hash };

      if (request.options?.dry_run === true) {
        // Planned once: the policy decides on this plan and the dry-run record is written from it.
        const planned = await otelContext.with(traceContext, () =>
          launcher.plan(request, context, traceId),
        );
        const phases = submitOptions.phases;
        // The policy's record and the dry-run record go to the audit log together (one write,
        // one fsync, in this order); both are durable before the run is stored and answered.
        let decisionRecorded: Promise<void> = Promise.resolve();
        await desk.authorizePlanned('dry-run', planned, context, id, (recorded) => {
          decisionRecorded = recorded;
        });
        phases?.mark('plan');
        const audited = Promise.all([launcher.recordDryRun(planned, context), decisionRecorded]);
        const plan = planned.redactedPlan;
        const row: NewRun = {
          id,
          trace_id: traceId,
          action: plan.action,
          status: 'succeeded',
          principal: context.principal,
          source: context.source,
          dry_run: 1,
          created_at: createdAt,
          started_at: null,
          finished_at: createdAt,
          exit_code: 0,
          nodes: JSON.stringify(plan.nodes.map((node) => node.target.name)),
          request_json: JSON.stringify(storedRequest(request, plan.sensitive_parameters)),
          has_sensitive: 0,
          plan_json: JSON.stringify(plan),
          summary_json: null,
          error_json: null,
          audit_json: null,
          ...workflowColumn(context),
        };
        const events = unstartedRunEvents(
          { id, traceId, plan, principal: context.principal, source: context.source },
          { status: 'succeeded', exitCode: 0, error: null },
          createdAt,
        );
        const counted = () => {
          metrics.runs.inc({ action: plan.action, status: 'dry-run' });
          metrics.runsSubmitted.inc({ action: plan.action, source: context.source });
        };
        // Without a key, the run intake answers (run-intake.ts): its write goes side by side with
        // the audit log's, and the store gets the run once the audit records are durable.
        if (idempotency === undefined && runIntake !== undefined) {
          const entry = { run: row, events };
          const written = runIntake.write(entry);
          try {
            await audited;
          } catch (error) {
            if (await written) runIntake.drop(entry);
            throw error;
          }
          phases?.mark('audit');
          if (await written) {
            runIntake.store(entry);
            phases?.mark('store');
            counted();
            return {
              run: {
                ...row,
                workflow_run_id: row.workflow_run_id ?? null,
                last_seq: events.at(-1)?.seq ?? 0,
              },
              created: true,
            };
          }
        } else {
          await audited;
          phases?.mark('audit');
        }
        const inserted = await store.insertRun(row, [], idempotency, events);
        phases?.mark('store');
        if (!inserted.inserted) return previous(inserted.runId, inserted.bodySha256);
        counted();
        return { run: inserted.run, created: true };
      }

      const planned = await otelContext.with(traceContext, () =>
        launcher.plan(request, context, traceId),
      );
      const nodes = planned.plan.nodes.map((node) => node.target.name);
      const lockNodes = planned.idempotent ? [] : nodes;
      const hold = desk.holdFor(
        await desk.authorizePlanned('run', planned, context, id),
        planned,
        submitOptions.requireApproval,
      );
      const busy = hold === undefined ? busyNodes(lockNodes) : [];
      // Nodes held by runs on other instances of a shared store count as busy too.
      const heldElsewhere = new Map<string, string>();
      if (hold === undefined && submitOptions.ifBusy === 'refuse' && cluster.shared) {
        for (const held of await cluster.busyNodes(lockNodes)) {
          heldElsewhere.set(held.node, held.run_id);
          if (!busy.includes(held.node)) busy.push(held.node);
        }
      }
      const refuseBusy = (busy: string[]): Promise<never> =>
        refuse(
          'NODE_BUSY',
          `${planned.plan.action} is not idempotent and ${busy.slice(0, 5).join(', ')}${busy.length > 5 ? ', …' : ''} already ha${busy.length === 1 ? 's' : 've'} a run of a non-idempotent action running or queued`,
          planned,
          request,
          context,
          {
            nodes: busy.slice(0, 100),
            run_ids: busy
              .slice(0, 100)
              .map((node) => locks.get(node) ?? heldElsewhere.get(node) ?? null),
          },
        );
      if (busy.length > 0 && submitOptions.ifBusy === 'refuse') await refuseBusy(busy);
      if (queue.length >= settings.queueSize) {
        metrics.queueDepth.set(queue.length);
        await refuse(
          'QUEUE_FULL',
          `the run queue is full (${settings.queueSize} runs waiting); retry later`,
          planned,
          request,
          context,
          { queue_size: settings.queueSize },
        );
      }
      const insertion = store.insertRun(
        {
          id,
          trace_id: traceId,
          action: planned.plan.action,
          status: hold === undefined ? 'queued' : 'awaiting_approval',
          principal: context.principal,
          source: context.source,
          dry_run: 0,
          created_at: createdAt,
          started_at: null,
          finished_at: null,
          exit_code: null,
          nodes: JSON.stringify(nodes),
          request_json: JSON.stringify(storedRequest(request, planned.plan.sensitive_parameters)),
          has_sensitive: planned.plan.supplied_sensitive_parameters.length > 0 ? 1 : 0,
          plan_json: JSON.stringify(planned.redactedPlan),
          summary_json: null,
          error_json: null,
          audit_json: null,
          ...workflowColumn(context),
        },
        nodes,
        idempotency,
        undefined,
        // Only a shared store claims anything; without a callback the embedded store writes the
        // run as one operation (one message to its worker).
        cluster.shared
          ? (trx) =>
              cluster.claimQueued(trx, id, {
                lockNodes,
                refuseIfBusy: hold === undefined && submitOptions.ifBusy === 'refuse',
              })
          : undefined,
      );
      const inserted = await insertion.catch((error: unknown) => {
        // Another instance accepted a run for one of these nodes since the check above.
        if (!(error instanceof RuneError) || error.code !== 'NODE_BUSY') throw error;
        const raced = error.details as { nodes?: string[]; run_ids?: string[] } | undefined;
        (raced?.nodes ?? []).forEach((node, index) => {
          heldElsewhere.set(node, raced?.run_ids?.[index] ?? '');
        });
        return refuseBusy(raced?.nodes ?? lockNodes);
      });
      if (!inserted.inserted) return previous(inserted.runId, inserted.bodySha256);
      if (hold !== undefined) await desk.hold(id, request, planned, context, hold);
      // The row as inserted, unless the hold wrote more of it.
      const run = hold === undefined ? inserted.run : await store.getRun(id);
      if (run === undefined) throw new RuneError('INTERNAL_ERROR', 'a stored run vanished');
      metrics.runsSubmitted.inc({ action: planned.plan.action, source: context.source });
      if (hold === undefined) enqueue({ id, planned, context, lockNodes, traceContext });
      return { run, created: true };
    },

    async cancel(id, reason) {
      const run = await store.getRun(id);
      if (run === undefined) {
        throw new RuneError('NOT_FOUND', `no run ${id}`, { source: serverSource });
      }
      if (run.status === 'awaiting_approval') {
        await desk.cancelHeld(run, reason);
        metrics.runs.inc({ action: run.action, status: 'cancelled' });
        notify(id);
        return (await store.getRun(id)) ?? run;
      }
      const index = queue.findIndex((item) => item.id === id);
      if (index >= 0) {
        const [item] = queue.splice(index, 1);
        updateGauges();
        const error = new RuneError('RUN_CANCELLED', reason, {
          source: serverSource,
          traceId: run.trace_id,
        });
        const finishedAt = now().toISOString();
        await store.finishWithoutEvents(
          id,
          {
            status: 'cancelled',
            exit_code: error.exitCode,
            error_json: JSON.stringify(error.toJSON()),
            finished_at: finishedAt,
          },
          unstartedEventsOf(run, 'cancelled', error, finishedAt),
        );
        if (item !== undefined) {
          await launcher
            .recordNotStarted(
              { action: run.action, nodes: JSON.parse(run.nodes) as string[], dryRun: false },
              error,
              item.context,
            )
            .catch(() => undefined);
        }
        metrics.runs.inc({ action: run.action, status: 'cancelled' });
        notify(id);
        pump();
      } else {
        const record = active.get(id);
        if (record !== undefined) {
          record.cancelReason = reason;
          record.handle?.cancel(reason);
        } else if (cluster.shared && (run.status === 'queued' || run.status === 'running')) {
          // Queued or running on another instance: its owner cancels it (and writes the records).
          await cluster.forwardCancel(id, reason);
        }
      }
      return (await store.getRun(id)) ?? run;
    },

    waitForChange(id, ms, signal) {
      return new Promise<void>((resolve) => {
        let set = waiters.get(id);
        if (set === undefined) {
          set = new Set();
          waiters.set(id, set);
        }
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          waiters.get(id)?.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        timer.unref();
        signal?.addEventListener('abort', done, { once: true });
        set.add(done);
      });
    },

    async recover() {
      if (cluster.shared) {
        // A shared store: runs in flight may belong to live instances. Only those of dead or
        // stopped instances are taken over, by the cluster's sweep (now and periodically).
        const taken = await cluster.start(clusterHooks);
        pump();
        return taken;
      }
      // Dry runs answered from the intake just before the previous process died.
      const replayed =
        (await runIntake?.replay(async (entries) => {
          // Records are stamped after the run's created_at; the margin covers a clock step.
          const oldest = Math.min(...entries.map((entry) => Date.parse(entry.run.created_at)));
          const records = await launcher.readAudit({
            since: new Date(oldest - 60_000).toISOString(),
            limit: Number.MAX_SAFE_INTEGER,
          });
          return new Set(
            records.filter((record) => record.event === 'dry-run').map((record) => record.trace_id),
          );
        })) ?? 0;
      let interrupted = 0;
      let requeued = 0;
      for (const run of await store.runsWithStatus(['running'])) {
        await interruptRun(run, INTERRUPTED_BY_RESTART);
        interrupted++;
      }
      for (const run of await store.runsWithStatus(['queued'])) {
        if ((await requeueRun(run, false)) === 'queued') requeued++;
        else interrupted++;
      }
      pump();
      return { interrupted, requeued, replayed };
    },

    async shutdown(graceMs) {
      draining = true;
      const deadline = Date.now() + graceMs;
      while (active.size > 0 && Date.now() < deadline) {
        await Promise.race([
          Promise.all([...active.values()].map((record) => record.done)),
          new Promise((resolve) => setTimeout(resolve, Math.max(1, deadline - Date.now()))),
        ]);
      }
      for (const record of active.values()) {
        record.cancelReason = 'the server is shutting down';
        record.handle?.cancel('the server is shutting down');
      }
      await Promise.all([...active.values()].map((record) => record.done));
      // Queued runs stay queued in the store and start after the restart, except those whose
      // sensitive values exist only in this process: they end interrupted now, said plainly.
      for (const item of queue.splice(0)) {
        if (item.planned.plan.supplied_sensitive_parameters.length === 0) continue;
        const error = new RuneError(
          'RUN_INTERRUPTED',
          'the server shut down before this run started, and its sensitive parameters were held only in memory; submit it again',
          { source: serverSource, traceId: item.planned.plan.trace_id },
        );
        const finishedAt = now().toISOString();
        await store
          .finishWithoutEvents(
            item.id,
            {
              status: 'interrupted',
              exit_code: error.exitCode,
              error_json: JSON.stringify(error.toJSON()),
              finished_at: finishedAt,
            },
            unstartedRunEvents(
              {
                id: item.id,
                traceId: item.planned.plan.trace_id,
                plan: item.planned.redactedPlan,
                principal: item.context.principal,
                source: item.context.source,
              },
              { status: 'interrupted', exitCode: error.exitCode, error: error.toJSON() },
              finishedAt,
            ),
          )
          .catch(() => undefined);
        await launcher
          .recordNotStarted(
            { action: item.planned.plan.action, nodes: item.lockNodes, dryRun: false },
            error,
            item.context,
          )
          .catch(() => undefined);
      }
      updateGauges();
      clearTimeout(retryTimer);
      await runIntake?.close();
      // A shared store: this instance's queued runs go to the other instances now.
      await cluster.stop();
    },

    async prune() {
      const before = new Date(now().getTime() - settings.retentionMs).toISOString();
      return store.pruneFinishedBefore(before);
    },
  };
  return manager;
}
