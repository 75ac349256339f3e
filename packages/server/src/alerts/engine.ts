/**
 * The alert engine: receivers hand it alerts, it records them durably (outcome `received`) and
 * answers at once; one serial worker then decides each alert in order of arrival — resolved
 * handling, rule, deduplication, value extraction, throttling, storm breaker — and records the
 * outcome in the store, the audit trail, the metrics and the notifiers.
 *
 * - **Never blocks on a run**: a decision submits through `RunManager.submit()` (plan + queue)
 *   and returns; the run executes in the manager.
 * - **Idempotent**: one firing episode (receiver + fingerprint + start) stands for at most one run;
 *   a retry or repeat of it is `deduplicated` against the record that ran, and the submission
 *   carries an Idempotency-Key derived from the episode, so even two records of one episode
 *   cannot start two runs.
 * - **Restart-safe**: throttle state is the `alerts` table; alerts recorded but not decided when
 *   the process stopped are decided at start-up; pending and held alerts keep their due and
 *   expiry times. On the embedded store the answer waits for the intake file (intake.ts), not
 *   the store: start-up first replays into the store what the intake holds and the store lacks.
 * - **The hold** (storm breaker) is a normal run submitted with `requireApproval`: it waits in
 *   `awaiting_approval` in the approvals inbox (`rune approve`, the dashboard), under the policy's
 *   quorum, self-approval and binding rules, and expires at the storm's `hold_expires` (or the
 *   policy's `approvals.expires`, whichever is sooner). The alert follows its run: `held` while
 *   it waits, then `released`, `expired` or `cancelled` (rejected, or the alert resolved). A
 *   workflow match is held the same way: the workflow starts held and its first run is the one
 *   awaiting approval (alert-workflows.ts, workflows/server-step-runner.ts).
 * - **Run-end notices are durable**: `run_ended` is owed in the store and delivered at least once
 *   by every instance's deliverer, also after a restart (run-end-notices.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { RuneError, type RunSource } from '@rune/protocol';
import type { Kysely } from 'kysely';
import type { ServerMetrics } from '../metrics.js';
import type { PolicySubject } from '../policy/policy.js';
import type { LaunchContext, LaunchRequest, ServerLauncher } from '../runs/launcher.js';
import type { IfBusy, RunManager } from '../runs/run-manager.js';
import type { AlertsTable, StoreDatabase } from '../store/schema.js';
import type { StoreOperationTiming } from '../store/sqlite-worker/probe.js';
import { type AlertTrace, withAlertSpan } from '../telemetry/webhook-spans.js';
import { heldWorkflowFates } from '../workflows/held-workflows.js';
import type { StartedWorkflow, StartWorkflowRequest } from '../workflows/start-workflow.js';
import {
  orphanedWorkflowRuns,
  takeWorkflowRun,
  workflowOwner,
} from '../workflows/workflow-owner.js';
import { interruptWorkflowRun } from '../workflows/workflow-store.js';
import {
  alertsWithOutcome,
  automaticRunsSince,
  findEpisode,
  firstOpenReceipt,
  getAlert,
  groupEpisodesSince,
  insertAlerts,
  lastGroupRun,
  openFiringRecords,
  pruneAlertsBefore,
  type StoredAlert,
  UNDECIDED_ALERT,
  updateAlert,
} from './alert-store.js';
import { claimWorkflowRun, dropWorkflowClaim, workflowRunOfAlert } from './alert-workflows.js';
import type { AlertIntake } from './intake.js';
import { postNotification } from './notifiers.js';
import {
  type AlertRules,
  type AlertWorkflowRequest,
  buildRunRequest,
  type CompiledRule,
  groupKey,
  matchRule,
  type NormalizedAlert,
  type ResolvedReceiver,
} from './rules.js';
import {
  deferNotice,
  dueNotices,
  leaseNotice,
  MAX_ATTEMPTS,
  pruneNotices,
  recordRunEndNotices,
  settleNotice,
} from './run-end-notices.js';
import { decideThrottle } from './throttle.js';
import { probeNow, type WebhookPhaseSample, webhookPhasesEnabled } from './webhook-phases.js';

const source = { component: 'rune-server' } as const;
const SWEEP_MS = 1000;
const PRUNE_EVERY_MS = 3_600_000;
const ACCEPT_QUIET_MS = 5;
const DECISION_MAX_WAIT_MS = 250;

/** The outcome of an alert. */
export type AlertOutcome =
  | 'received'
  | 'ran'
  | 'deduplicated'
  | 'throttled'
  | 'pending'
  | 'held'
  | 'released'
  | 'expired'
  | 'refused'
  | 'no_rule'
  | 'resolved'
  | 'cancelled';

/** Options of {@link createAlertEngine}. */
export interface AlertEngineOptions {
  rules: AlertRules | undefined;
  db: Kysely<StoreDatabase>;
  manager: RunManager;
  launcher: ServerLauncher;
  metrics: ServerMetrics;
  /** The clock (ms); tests inject one. */
  now?: () => number;
  /** Decided alerts older than this are pruned (the server's `retention`). */
  retentionMs?: number;
  log?: (line: string) => void;
  /** The policy subject alert runs are decided for (default: the principal alone). */
  subjectOf?: (principal: string) => PolicySubject;
  /** Starts a workflow of `[server] workflows` (rules with a `workflow:` target). */
  startWorkflow?: (request: StartWorkflowRequest) => Promise<StartedWorkflow>;
  /**
   * The intake file (intake.ts; the embedded store only): webhooks are answered once their
   * alerts are in it, stored afterwards, and what it holds is replayed at start.
   */
  intake?: AlertIntake;
}

/** The engine. */
export interface AlertEngine {
  readonly rules: AlertRules | undefined;
  /**
   * Puts `next` in force for every alert decided from now on (SIGHUP). Alerts being decided
   * finish under the rules they started with; pending alerts are decided under the new ones.
   */
  replaceRules(next: AlertRules): void;
  /** The receiver `name` of `kind`. Throws ALERT_RECEIVER_UNKNOWN. */
  receiver(kind: ResolvedReceiver['kind'], name: string): ResolvedReceiver;
  /**
   * Records `alerts` durably (outcome `received`) and queues their decision; returns their ids.
   * `trace`: the webhook's, which each decision and its run continue (telemetry/webhook-spans.ts).
   * `phases`: the benchmark probe's sample of the webhook (webhook-phases.ts), filled in here.
   */
  accept(
    receiver: ResolvedReceiver,
    alerts: readonly NormalizedAlert[],
    trace?: AlertTrace,
    phases?: Pick<
      WebhookPhaseSample,
      'storeAsked' | 'store' | 'intakeMs' | 'stored' | 'storeOperations'
    >,
  ): Promise<string[]>;
  /**
   * Releases a held alert (deprecated alias of `POST /v1/runs/{run_id}/approve`): one approval
   * vote by `by` on its held run, under the same rules. Throws NOT_FOUND, ALERT_NOT_HELD and the
   * approval codes.
   */
  release(id: string, by: PolicySubject, comment?: string): Promise<StoredAlert>;
  /** Decides what the previous process left undecided and starts the sweeper. */
  start(): Promise<void>;
  /** Resolves when every queued decision is made (tests, benchmarks). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The Idempotency-Key of one episode under one rule: the same alert is the same run. */
export function episodeKey(
  row: Pick<StoredAlert, 'receiver' | 'fingerprint' | 'starts_at' | 'status'>,
  rule: string,
): string {
  return `alert:${createHash('sha256')
    .update(JSON.stringify([row.receiver, row.fingerprint, row.starts_at, row.status, rule]))
    .digest('hex')
    .slice(0, 40)}`;
}

const toAlert = (row: StoredAlert): NormalizedAlert => ({
  status: row.status as NormalizedAlert['status'],
  labels: JSON.parse(row.labels_json) as Record<string, string>,
  annotations: JSON.parse(row.annotations_json) as Record<string, string>,
  fingerprint: row.fingerprint,
  startsAt: row.starts_at,
});

/** Creates the engine (not started). */
export function createAlertEngine(options: AlertEngineOptions): AlertEngine {
  const { db, manager, launcher, metrics, intake } = options;
  let stopFollowingTakeovers: () => void = () => {};
  let rules = options.rules;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  let chain: Promise<void> = Promise.resolve();
  let sweeper: NodeJS.Timeout | undefined;
  let closed = false;
  /** The trace of the decision being made (decisions are serial): its run continues it. */
  let decisionTrace: AlertTrace | undefined;

  /**
   * Runs `task` after every earlier decision (one serial worker: no two decisions race). Each task
   * first yields to the event loop, so webhooks arriving during a burst are answered between
   * decisions instead of after all of them.
   */
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const result = chain.then(yieldToReceivers).then(task);
    chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  };

  const principalOf = (receiver: string): string =>
    rules?.receivers.get(receiver)?.principal ?? `alert:${receiver}`;

  /** Records the outcome everywhere: store, audit trail, metrics, notifiers. */
  const finish = async (
    row: StoredAlert,
    outcome: AlertOutcome,
    fields: Partial<StoredAlert> & { reason?: string | null },
    error?: RuneError,
  ): Promise<void> => {
    const decided = { ...row, ...fields, outcome, decided_at: fields.decided_at ?? iso(now()) };
    await updateAlert(db, row.id, {
      ...fields,
      outcome,
      decided_at: decided.decided_at,
      ...(error === undefined ? {} : { error_json: JSON.stringify(error.toJSON()) }),
    });
    metrics.alertOutcomes.inc({ receiver: row.receiver, outcome });
    await launcher
      .recordAlert(
        {
          action: decided.action ?? '-',
          node: decided.node,
          outcome,
          errorCode: error?.code ?? null,
          errorMessage: error?.message ?? decided.reason ?? null,
          traceId: error?.traceId,
          metadata: {
            alert_id: row.id,
            receiver: row.receiver,
            kind: row.kind,
            alertname: row.alertname,
            status: row.status,
            fingerprint: row.fingerprint,
            rule: decided.rule,
            run_id: decided.run_id,
            ...(decided.released_by === null ? {} : { released_by: decided.released_by }),
          },
        },
        { principal: principalOf(row.receiver), source: 'alert' satisfies RunSource },
      )
      .catch((failure: unknown) =>
        log(`warning: could not audit alert ${row.id}: ${RuneError.from(failure).message}`),
      );
    for (const notifier of rules?.notifiers ?? []) {
      if (!notifier.outcomes.includes(outcome)) continue;
      void postNotification(notifier, decided, rules?.publicUrl).catch((failure: unknown) =>
        log(`warning: notifier ${notifier.name}: ${RuneError.from(failure).message}`),
      );
    }
    if (outcome === 'ran' || outcome === 'released' || outcome === 'deduplicated') {
      await oweRunEnd(decided);
    }
  };

  const listeningToRunEnd = (): string[] =>
    (rules?.notifiers ?? [])
      .filter((notifier) => (notifier.outcomes as readonly string[]).includes('run_ended'))
      .map((notifier) => notifier.name);

  /**
   * Records (durably, before the decision is done) the `run_ended` notices owed for the alert's
   * run or workflow run, then wakes the deliverer. A deduplicated retry of a run already owed
   * adds nothing (one notice per run and notifier); one decided after a crash fills the gap.
   */
  const oweRunEnd = async (decided: StoredAlert): Promise<void> => {
    const notifiers = listeningToRunEnd();
    if (notifiers.length === 0) return;
    const workflow = decided.action?.startsWith('workflow:')
      ? await workflowRunOfAlert(db, decided.id)
      : undefined;
    const target =
      workflow !== undefined
        ? { kind: 'workflow' as const, runId: workflow.workflow_run_id }
        : decided.run_id !== null && !decided.action?.startsWith('workflow:')
          ? { kind: 'run' as const, runId: decided.run_id }
          : undefined;
    if (target === undefined) return;
    await recordRunEndNotices(db, { alertId: decided.id, notifiers, ...target }, new Date(now()))
      .then(() => void deliverNotices())
      .catch((failure: unknown) =>
        log(`warning: run_ended notice of alert ${decided.id}: ${RuneError.from(failure).message}`),
      );
  };

  /**
   * Delivers the due notices whose run ended (run-end-notices.ts): one pass at a time, outside
   * the decision chain (a slow notifier never delays a decision).
   */
  let delivering: Promise<void> | undefined;
  let deliverAgain = false;
  const deliverNotices = (): Promise<void> => {
    if (delivering !== undefined) {
      deliverAgain = true;
      return delivering;
    }
    delivering = (async () => {
      do {
        deliverAgain = false;
        await deliverPass().catch((failure: unknown) =>
          log(`warning: run_ended notices: ${RuneError.from(failure).message}`),
        );
      } while (deliverAgain && !closed);
    })().finally(() => {
      delivering = undefined;
    });
    return delivering;
  };
  const deliverPass = async (): Promise<void> => {
    for (const notice of await dueNotices(db, new Date(now()))) {
      if (closed) return;
      const at = new Date(now());
      const notifier = rules?.notifiers.find((candidate) => candidate.name === notice.notifier);
      if (notifier === undefined) {
        await settleNotice(
          db,
          notice.id,
          at,
          `the notifier ${notice.notifier} is gone from the rules`,
        );
        continue;
      }
      if (notice.attempts >= MAX_ATTEMPTS) {
        log(`warning: run_ended notice ${notice.id} given up after ${notice.attempts} attempt(s)`);
        await settleNotice(db, notice.id, at, `given up: ${notice.last_error ?? '-'}`);
        continue;
      }
      const end = notice.end;
      const alert = await getAlert(db, notice.alert_id);
      if (end === 'gone' || alert === undefined) {
        await settleNotice(db, notice.id, at, 'the run or the alert is gone (pruned)');
        continue;
      }
      if (!(await leaseNotice(db, notice.id, at))) continue;
      const what = notice.run_kind === 'workflow' ? 'workflow run' : 'run';
      const ended: StoredAlert = {
        ...alert,
        outcome: 'run_ended',
        ...(notice.run_kind === 'run' ? { run_id: notice.run_id } : {}),
        reason: `${what} ${notice.run_id} ended ${end.status} (exit code ${end.exitCode ?? '-'})`,
        decided_at: at.toISOString(),
      };
      try {
        await postNotification(notifier, ended, rules?.publicUrl, notice.id);
        await settleNotice(db, notice.id, new Date(now()));
      } catch (failure) {
        const message = RuneError.from(failure).message;
        log(
          `warning: notifier ${notifier.name} (run_ended, attempt ${notice.attempts + 1}): ${message}`,
        );
        await deferNotice(db, notice, new Date(now()), message);
      }
    }
  };

  /**
   * Answering comes first: a decision writes synchronously (SQLite, the audit log), so while
   * webhooks keep arriving (one within the last ACCEPT_QUIET_MS) a decision waits, at most
   * DECISION_MAX_WAIT_MS, so that a burst is answered at once and decided just after it.
   */
  let lastAcceptAt = 0;
  const yieldToReceivers = async (): Promise<void> => {
    const started = performance.now();
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (
      performance.now() - lastAcceptAt < ACCEPT_QUIET_MS &&
      performance.now() - started < DECISION_MAX_WAIT_MS
    ) {
      await new Promise<void>((resolve) => setTimeout(resolve, ACCEPT_QUIET_MS));
    }
  };

  /**
   * Group commit: the alerts of every webhook that arrives in one turn of the event loop are made
   * durable together — with the intake (intake.ts, the embedded store) by one write and one
   * fdatasync of the intake file, then stored in the store after the answer; without it (or when
   * it is full) by one store operation before the answer. Each request is answered only after
   * its alerts are durable; they are decided only after they are in the store.
   */
  type Entry = { rows: AlertsTable[]; trace: AlertTrace | undefined };
  type Batch = {
    entries: Entry[];
    done: Promise<{ timing: StoreOperationTiming | undefined; intakeMs: number | undefined }>;
    asked: number;
  };
  let batch: Batch | undefined;
  /** Rows made durable and not yet in the store (what a startsAt-less alert checks too). */
  const unstoredRows = new Set<AlertsTable>();
  /** Intake batches whose store insert failed: the sweeper tries them again. */
  const failedStores: Entry[][] = [];
  const storing = new Set<Promise<void>>();

  const queueDecisions = (entries: readonly Entry[]): void => {
    for (const { rows, trace } of entries) {
      for (const row of rows) {
        void guarded(`alert ${row.id}`, () =>
          trace === undefined
            ? process(row.id)
            : withAlertSpan(
                row.id,
                trace,
                async (runTrace) => {
                  decisionTrace = runTrace;
                  try {
                    await process(row.id);
                  } finally {
                    decisionTrace = undefined;
                  }
                },
                () => getAlert(db, row.id),
              ),
        );
      }
    }
  };

  /** After the answer: the intake's rows go into the store, then they are decided. */
  const storeAfterAnswer = (entries: Entry[]): void => {
    const rows = entries.flatMap((entry) => entry.rows);
    const task: Promise<void> = insertAlerts(db, rows, { skipExisting: true }).then(
      () => {
        intake?.stored(rows.length);
        for (const row of rows) unstoredRows.delete(row);
        queueDecisions(entries);
      },
      (failure: unknown) => {
        // Durable in the intake: the sweeper tries again, and a restart replays it.
        failedStores.push(entries);
        log(
          `warning: ${rows.length} received alert(s) not stored yet (kept in the intake): ${RuneError.from(failure).message}`,
        );
      },
    );
    storing.add(task);
    void task.finally(() => storing.delete(task));
  };

  const flushBatch = async (
    next: Batch,
  ): Promise<{ timing: StoreOperationTiming | undefined; intakeMs: number | undefined }> => {
    batch = undefined;
    if (webhookPhasesEnabled) next.asked = probeNow();
    const rows = next.entries.flatMap((entry) => entry.rows);
    if (intake !== undefined && !closed) {
      let appended = false;
      try {
        appended = intake.append(rows);
      } catch (failure) {
        log(`warning: the alert intake cannot be written: ${RuneError.from(failure).message}`);
      }
      if (appended) {
        const intakeMs = webhookPhasesEnabled ? probeNow() - next.asked : undefined;
        storeAfterAnswer(next.entries);
        return { timing: undefined, intakeMs };
      }
    }
    // Without the intake (PostgreSQL, a full or broken intake file): the store before the answer.
    try {
      const timing = await insertAlerts(db, rows);
      queueDecisions(next.entries);
      return { timing, intakeMs: undefined };
    } finally {
      for (const row of rows) unstoredRows.delete(row);
    }
  };

  const insertDurably = (entry: Entry): Batch => {
    if (batch === undefined) {
      const next: Batch = {
        entries: [],
        done: Promise.resolve({ timing: undefined, intakeMs: undefined }),
        asked: 0,
      };
      next.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
        flushBatch(next),
      );
      batch = next;
    }
    batch.entries.push(entry);
    for (const row of entry.rows) unstoredRows.add(row);
    return batch;
  };

  /** Intake batches whose store insert failed, once more (the sweeper). */
  const retryFailedStores = (): void => {
    for (const entries of failedStores.splice(0)) storeAfterAnswer(entries);
  };

  /** The start of an open episode whose first receipt is durable but not yet in the store. */
  const firstUnstoredReceipt = (receiver: string, fingerprint: string): string | undefined => {
    let first: AlertsTable | undefined;
    for (const row of unstoredRows) {
      if (row.receiver !== receiver || row.fingerprint !== fingerprint) continue;
      if (row.status !== 'firing' || row.closed !== 0) continue;
      if (first === undefined || row.received_at < first.received_at) first = row;
    }
    return first?.starts_at;
  };

  /** Rows the previous process made durable in the intake and may not have stored (start). */
  const replayIntake = async (): Promise<void> => {
    if (intake === undefined) return;
    const rows = intake.replay();
    if (rows.length > 0) {
      // Those already in the store are skipped by id; the rest are `received` and decided below.
      await insertAlerts(db, rows, { skipExisting: true });
      log(`replayed ${rows.length} alert(s) from the intake ${intake.path}`);
    }
    intake.stored(intake.owed);
    intake.checkpoint();
  };

  /** Inventory node names, re-read when the inventory file changes (a storm reads it once). */
  let inventoryCache: { stamp: string; names: Set<string> } | undefined;
  const inventoryNames = async (): Promise<Set<string>> => {
    const path = launcher.config.config.core.inventory;
    let stamp = 'none';
    if (path !== undefined) {
      try {
        const stats = statSync(path);
        stamp = `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
      } catch {
        stamp = 'unreadable';
      }
    }
    if (inventoryCache?.stamp === stamp && stamp !== 'unreadable') return inventoryCache.names;
    const names = new Set((await launcher.previewNodes([])).nodes.map((node) => node.name));
    inventoryCache = { stamp, names };
    return names;
  };

  const contextOf = (row: StoredAlert): LaunchContext => ({
    principal: principalOf(row.receiver),
    source: 'alert',
    ...(options.subjectOf === undefined
      ? {}
      : { subject: options.subjectOf(principalOf(row.receiver)) }),
  });

  /** Submits the run of an alert. Returns its outcome; a draining server leaves it undecided. */
  const submit = async (
    row: StoredAlert,
    rule: string,
    request: LaunchRequest,
    ifBusy: IfBusy,
    how: { automatic: boolean; releasedBy?: string; extra?: Partial<StoredAlert> },
  ): Promise<void> => {
    const extra = how.extra ?? {};
    try {
      const { run, created } = await manager.submit(request, contextOf(row), {
        idempotencyKey: episodeKey(row, rule),
        ifBusy,
        ...decisionTrace,
      });
      await finish(
        row,
        how.releasedBy !== undefined ? 'released' : created ? 'ran' : 'deduplicated',
        {
          ...extra,
          run_id: run.id,
          automatic: how.automatic && created ? 1 : 0,
          reason: created ? `run ${run.id} submitted` : `the same alert already has run ${run.id}`,
          ...(how.releasedBy === undefined ? {} : { released_by: how.releasedBy }),
        },
      );
    } catch (failure) {
      const error = RuneError.from(failure, 'INTERNAL_ERROR', { source });
      if (error.code === 'SERVER_SHUTTING_DOWN') throw error;
      await finish(row, 'refused', { ...extra, reason: error.message }, error);
    }
  };

  /**
   * Starts the workflow of a rule with a `workflow:` target (its steps are submitted through
   * `RunManager.submit()` like any run); the alert is `ran` (or `released`) with the workflow run
   * in `alert_workflow_runs` and its reason. The episode is claimed first (alert-workflows.ts): a
   * second decision of the same alert, here or on another instance, is `deduplicated`.
   *
   * `hold` (the storm breaker): the workflow starts held — its first run is submitted with
   * `requireApproval` and every later run waits for that approval (server-step-runner.ts) — and
   * the alert is `held` with that run, like a held action run: the inbox, `rune approve`, quorum,
   * binding, self-approval and expiry all apply, and the alert follows the run's approval.
   */
  const submitWorkflow = async (
    row: StoredAlert,
    workflow: AlertWorkflowRequest,
    node: string,
    how: {
      automatic: boolean;
      releasedBy?: string;
      extra?: Partial<StoredAlert>;
      hold?: { until: number; reason: string };
    },
  ): Promise<void> => {
    const extra = how.extra ?? {};
    const workflowRunId = randomUUID();
    let claimed = false;
    try {
      if (options.startWorkflow === undefined) {
        throw new RuneError('NOT_FOUND', 'this server runs no workflows ([server] workflows)', {
          source,
        });
      }
      const claim = await claimWorkflowRun(db, {
        alertId: row.id,
        workflow: workflow.name,
        workflowRunId,
        episodeKey: episodeKey(row, row.rule ?? extra.rule ?? ''),
      });
      if (!claim.claimed) {
        await finish(row, 'deduplicated', {
          ...extra,
          reason: `the same alert already has workflow ${workflow.name} run ${claim.workflowRunId} (alert ${claim.alertId})`,
        });
        return;
      }
      claimed = true;
      const context = contextOf(row);
      const hold = how.hold;
      const started = await options.startWorkflow({
        name: workflow.name,
        principal: context.principal,
        ...(context.subject === undefined ? {} : { subject: context.subject }),
        source: 'alert',
        inputs: workflow.inputs,
        nodeInput: { name: workflow.nodeInput, node },
        confirm: workflow.confirm,
        dryRun: workflow.dryRun,
        auditMetadata: { alert_id: row.id, receiver: row.receiver, rule: row.rule },
        workflowRunId,
        // The workflow continues the alert's trace, as a run the alert starts does: the store
        // finds a workflow's runs by its workflow run id (runs.workflow_run_id), never by the
        // trace id that the alerts of one webhook share.
        ...decisionTrace,
        ...(hold === undefined
          ? {}
          : {
              hold: {
                reason: `alert storm breaker: ${hold.reason}`,
                expiresMs: Math.max(1, hold.until - now()),
              },
            }),
      });
      if (hold !== undefined) {
        const heldRunId = await started.held;
        if (heldRunId !== undefined) {
          await finish(row, 'held', {
            ...extra,
            run_id: heldRunId,
            held_until: iso(hold.until),
            reason: `${hold.reason}; workflow ${workflow.name} run ${started.workflowRunId} started held: its first run ${heldRunId} awaits approval`,
          });
          log(`warning: alert ${row.id} held: ${hold.reason}; run ${heldRunId} awaits approval`);
          return;
        }
        // The workflow ended before any run (every step skipped): nothing waits, nothing ran.
      }
      await finish(row, how.releasedBy !== undefined ? 'released' : 'ran', {
        ...extra,
        automatic: how.automatic ? 1 : 0,
        reason: `workflow ${workflow.name} run ${started.workflowRunId} started`,
        ...(how.releasedBy === undefined ? {} : { released_by: how.releasedBy }),
      });
    } catch (failure) {
      const error = RuneError.from(failure, 'INTERNAL_ERROR', { source });
      // Refused before its first step: nothing ran, so the episode is free again.
      if (claimed) await dropWorkflowClaim(db, row.id).catch(() => undefined);
      if (error.code === 'SERVER_SHUTTING_DOWN') throw error;
      await finish(row, 'refused', { ...extra, reason: error.message }, error);
    }
  };

  /**
   * After a restart or a takeover: a storm-held workflow whose held run is still its only run has
   * run nothing past it; its engine is started again under the same workflow run and trace ids
   * and follows that run in whatever state it is (the approval binds it: awaiting it, approved
   * and queued or running on a live instance, or ended), so the whole workflow runs once.
   * workflows/held-workflows.ts decides which are followed now.
   */
  const resumeHeldWorkflows = async (unowned: boolean): Promise<void> => {
    // Only those no live instance follows, each taken first by one conditional UPDATE: of several
    // instances exactly one follows it, so an approval submits its next step once
    // (workflows/workflow-owner.ts). `unowned` at start-up: those of an older RUNE too.
    const me = workflowOwner(manager.cluster);
    const orphans = new Map(
      (await orphanedWorkflowRuns(db, me, { unowned })).map((row) => [row.id, row]),
    );
    if (orphans.size === 0) return;
    const { follow } = await heldWorkflowFates(db, new Set(orphans.keys()), me !== null);
    for (const held of follow) {
      const orphan = orphans.get(held.workflowRunId);
      if (orphan === undefined) continue;
      const from = orphan.owner;
      if (!(await takeWorkflowRun(db, held.workflowRunId, from, me))) continue;
      const row = await getAlert(db, held.alertId);
      const workflow =
        row?.request_json === null || row === undefined
          ? undefined
          : (JSON.parse(row.request_json) as { workflow?: AlertWorkflowRequest }).workflow;
      try {
        if (row === undefined || workflow === undefined || options.startWorkflow === undefined) {
          throw new RuneError('NOT_FOUND', 'the held workflow cannot be resumed here', { source });
        }
        const context = contextOf(row);
        await options.startWorkflow({
          name: workflow.name,
          principal: context.principal,
          ...(context.subject === undefined ? {} : { subject: context.subject }),
          source: 'alert',
          inputs: workflow.inputs,
          nodeInput: { name: workflow.nodeInput, node: row.node ?? '' },
          confirm: workflow.confirm,
          auditMetadata: {
            alert_id: row.id,
            receiver: row.receiver,
            rule: row.rule,
            ...(from === null ? {} : { taken_over_from: from }),
          },
          workflowRunId: held.workflowRunId,
          traceId: held.traceId,
          hold: { reason: 'resumed', expiresMs: 1, adopt: held.heldRunId },
          resumed: true,
        });
        log(`resumed held workflow run ${held.workflowRunId} (alert ${held.alertId})`);
      } catch (failure) {
        const error = RuneError.from(failure, 'INTERNAL_ERROR', { source });
        // Stopping: the workflow stays this instance's, and the next owner resumes it.
        if (error.code === 'SERVER_SHUTTING_DOWN') continue;
        log(
          `warning: held workflow run ${held.workflowRunId} not resumed (${error.message}); it is interrupted`,
        );
        // Taken and not resumed: interrupted, never left running with no engine (a held run
        // still awaiting approval is cancelled with it).
        await interruptWorkflowRun(
          db,
          orphan,
          new Date(),
          (runId) => manager.cancel(runId, `its workflow could not be resumed: ${error.message}`),
          me,
          `it could not be resumed (${error.message})`,
        ).catch((failed: unknown) =>
          log(
            `warning: workflow run ${held.workflowRunId} not marked interrupted (${RuneError.from(failed).message})`,
          ),
        );
      }
    }
  };

  /**
   * The hold: the storm breaker stops automatic runs and a person decides. The run is submitted
   * now with `requireApproval` (the one path that starts runs), so it waits in
   * `awaiting_approval` like any run the policy holds; the alert is `held` with its `run_id`.
   */
  const hold = async (
    row: StoredAlert,
    rule: string,
    request: LaunchRequest,
    ifBusy: IfBusy,
    fields: Partial<StoredAlert>,
    until: number,
    reason: string,
  ): Promise<void> => {
    try {
      const { run, created } = await manager.submit(request, contextOf(row), {
        idempotencyKey: episodeKey(row, rule),
        ifBusy,
        requireApproval: {
          reason: `alert storm breaker: ${reason}`,
          expiresMs: Math.max(1, until - now()),
        },
        ...decisionTrace,
      });
      if (!created) {
        await finish(row, 'deduplicated', {
          ...fields,
          run_id: run.id,
          reason: `the same alert already has run ${run.id}`,
        });
        return;
      }
      await finish(row, 'held', {
        ...fields,
        run_id: run.id,
        held_until: iso(until),
        reason: `${reason}; run ${run.id} awaits approval`,
      });
      log(`warning: alert ${row.id} held: ${reason}; run ${run.id} awaits approval`);
    } catch (failure) {
      const error = RuneError.from(failure, 'INTERNAL_ERROR', { source });
      if (error.code === 'SERVER_SHUTTING_DOWN') throw error;
      await finish(row, 'refused', { ...fields, reason: error.message }, error);
    }
  };

  /**
   * A held alert follows its run's approval: approved -> `released` (by the approvers), expired
   * -> `expired`, rejected, cancelled or invalidated -> `cancelled`. Returns the row as it is now.
   */
  const followHeld = async (row: StoredAlert): Promise<StoredAlert> => {
    if (row.outcome !== 'held' || row.run_id === null) return row;
    // view() also ends a request whose time ran out (the desk's own expiry runs less often).
    const view = await manager.approvals.view(row.run_id).catch(() => undefined);
    if (view === undefined || view.state === 'pending') return row;
    const approvers = view.votes
      .filter((vote) => vote.decision === 'approve')
      .map((vote) => vote.approver);
    if (view.state === 'approved') {
      await finish(row, 'released', {
        released_by: approvers.join(', ').slice(0, 500),
        reason: `run ${row.run_id} approved by ${approvers.join(', ')}`,
      });
    } else if (view.state === 'expired') {
      await finish(row, 'expired', {
        reason: `nobody approved run ${row.run_id} before it expired`,
      });
    } else {
      const rejecter = view.votes.find((vote) => vote.decision === 'reject');
      await finish(row, 'cancelled', {
        reason:
          view.state === 'rejected'
            ? `run ${row.run_id} rejected by ${rejecter?.approver ?? 'an approver'}${rejecter?.comment ? `: ${rejecter.comment.slice(0, 200)}` : ''}`
            : `run ${row.run_id} ${view.state}`,
      });
    }
    return (await getAlert(db, row.id)) ?? row;
  };

  /** A workflow held the old way (no run, waiting for `/release`) becomes a held workflow run. */
  const convertLegacyHold = (row: StoredAlert, workflow: AlertWorkflowRequest): Promise<void> =>
    submitWorkflow(row, workflow, row.node ?? '', {
      automatic: false,
      hold: {
        until: row.held_until === null ? now() + 3_600_000 : Date.parse(row.held_until),
        reason: row.reason ?? 'held by the alert storm breaker',
      },
    });

  /** Ends the firing episode a resolved alert closes; returns how many waiting things it cancelled. */
  const closeEpisode = async (row: StoredAlert): Promise<number> => {
    let cancelled = 0;
    for (const open of await openFiringRecords(db, row.receiver, row.fingerprint)) {
      await updateAlert(db, open.id, { closed: 1 });
      const record = await followHeld(open);
      if (record.outcome === 'held' && record.run_id !== null) {
        // Its run awaits approval: cancelling it ends the approval request too.
        await manager
          .cancel(record.run_id, `the alert resolved (alert ${row.id}) before its run was approved`)
          .catch(() => undefined);
        await finish({ ...record, closed: 1 }, 'cancelled', {
          reason: `the alert resolved (alert ${row.id}) before run ${record.run_id} was approved`,
        });
        cancelled++;
      } else if (record.outcome === 'pending' || record.outcome === 'held') {
        await finish({ ...record, closed: 1 }, 'cancelled', {
          reason: `the alert resolved (alert ${row.id}) before it ${record.outcome === 'held' ? 'was released' : 'was due'}`,
        });
        cancelled++;
      } else if (
        record.run_id !== null &&
        (record.outcome === 'ran' || record.outcome === 'released')
      ) {
        // Queued runs only: a run already executing is not stopped halfway by a resolution.
        const run = await db
          .selectFrom('runs')
          .select('status')
          .where('id', '=', record.run_id)
          .executeTakeFirst();
        if (run?.status !== 'queued') continue;
        const after = await manager
          .cancel(record.run_id, `the alert resolved (alert ${row.id}) before its run started`)
          .catch(() => undefined);
        if (after?.status === 'cancelled') cancelled++;
      }
    }
    return cancelled;
  };

  const decide = async (
    row: StoredAlert,
    rule: CompiledRule,
    skipOnceAfter: boolean,
  ): Promise<void> => {
    const alert = toAlert(row);
    const group = groupKey(rule, alert);
    const base = {
      rule: rule.spec.name,
      group_key: group,
      action: rule.spec.action ?? `workflow:${rule.spec.workflow ?? ''}`,
    };
    let built: ReturnType<typeof buildRunRequest>;
    try {
      built = buildRunRequest(rule, alert, await inventoryNames());
    } catch (failure) {
      const error = RuneError.from(failure, 'INVALID_PARAMETERS', { source });
      await finish(row, 'refused', { ...base, reason: error.message }, error);
      return;
    }
    const fields = {
      ...base,
      node: built.node,
      request_json: JSON.stringify({
        ...built.request,
        if_busy: built.ifBusy,
        ...(built.workflow === undefined ? {} : { workflow: built.workflow }),
      }),
    };
    const at = now();
    const throttle = rule.throttle;
    const lastRun = await lastGroupRun(db, group);
    const lastRunAt = lastRun === undefined ? undefined : Date.parse(lastRun);
    let episodesInWindow = 1;
    if (throttle.accumulateWithinMs !== undefined) {
      const since = Math.max(
        at - throttle.accumulateWithinMs,
        lastRunAt === undefined ? 0 : lastRunAt + 1,
      );
      const seen = new Set(
        (await groupEpisodesSince(db, group, iso(since))).map(
          (e) => `${e.fingerprint}\n${e.starts_at}`,
        ),
      );
      seen.add(`${row.fingerprint}\n${row.starts_at}`);
      episodesInWindow = seen.size;
    }
    const decision = decideThrottle(
      throttle,
      rules?.storm ?? { maxRuns: Number.MAX_SAFE_INTEGER, windowMs: 1, holdExpiresMs: 1 },
      {
        now: at,
        startsAt: Date.parse(row.starts_at),
        ...(lastRunAt === undefined ? {} : { lastRunAt }),
        episodesInWindow,
        stormRuns: await automaticRunsSince(db, iso(at - (rules?.storm.windowMs ?? 1))),
      },
      skipOnceAfter,
    );
    switch (decision.kind) {
      case 'pending':
        await finish(row, 'pending', {
          ...fields,
          due_at: iso(decision.dueAt),
          reason: decision.reason,
        });
        return;
      case 'throttled':
        await finish(row, 'throttled', { ...fields, reason: decision.reason });
        return;
      case 'held':
        if (built.workflow !== undefined) {
          await submitWorkflow({ ...row, ...fields }, built.workflow, built.node, {
            automatic: false,
            extra: fields,
            hold: { until: decision.until, reason: decision.reason },
          });
          return;
        }
        await hold(
          { ...row, ...fields },
          rule.spec.name,
          built.request,
          built.ifBusy,
          fields,
          decision.until,
          decision.reason,
        );
        return;
      case 'run':
        if (built.workflow !== undefined) {
          await submitWorkflow({ ...row, ...fields }, built.workflow, built.node, {
            automatic: true,
            extra: fields,
          });
          return;
        }
        // One write for the decision: the rule's fields go with the outcome.
        await submit({ ...row, ...fields }, rule.spec.name, built.request, built.ifBusy, {
          automatic: true,
          extra: fields,
        });
        return;
    }
  };

  /** Decides one received alert. */
  const process = async (id: string): Promise<void> => {
    const row = await getAlert(db, id);
    if (row === undefined || row.outcome !== 'received') return;
    const alert = toAlert(row);
    const cancelled = alert.status === 'resolved' ? await closeEpisode(row) : 0;
    const rule = rules === undefined ? undefined : matchRule(rules.rules, alert, row.receiver);
    if (rule === undefined) {
      await finish(row, alert.status === 'resolved' ? 'resolved' : 'no_rule', {
        reason:
          alert.status === 'resolved'
            ? `the alert resolved; ${cancelled} waiting run(s) or alert(s) cancelled`
            : 'no rule matches this alert',
      });
      return;
    }
    const episode = await findEpisode(
      db,
      row.receiver,
      row.fingerprint,
      row.starts_at,
      row.status,
      row.id,
    );
    if (episode !== undefined) {
      await finish(row, 'deduplicated', {
        rule: rule.spec.name,
        group_key: episode.group_key,
        action: episode.action,
        node: episode.node,
        run_id: episode.run_id,
        reason: `the same alert as ${episode.id} (${episode.outcome})`,
      });
      return;
    }
    await decide(row, rule, false);
  };

  const guarded = (what: string, task: () => Promise<void>): Promise<void> =>
    serial(task).catch((failure: unknown) => {
      const error = RuneError.from(failure);
      // A draining server leaves the alert `received`: the next start decides it.
      if (error.code !== 'SERVER_SHUTTING_DOWN') log(`warning: ${what}: ${error.message}`);
    });

  let prunedAt = 0;
  const sweep = async (): Promise<void> => {
    const at = iso(now());
    if (options.retentionMs !== undefined && now() - prunedAt >= PRUNE_EVERY_MS) {
      prunedAt = now();
      await pruneNotices(db, new Date(now() - options.retentionMs));
      const pruned = await pruneAlertsBefore(db, iso(now() - options.retentionMs));
      if (pruned > 0) log(`pruned ${pruned} alert record(s) older than the retention`);
    }
    for (const row of await alertsWithOutcome(db, 'pending', 1000)) {
      if (row.due_at === null || row.due_at > at || rules === undefined) continue;
      const rule = rules.rules.find((candidate) => candidate.spec.name === row.rule);
      if (rule === undefined) {
        await finish(row, 'cancelled', {
          reason: `the rule ${row.rule} is gone from the rules file`,
        });
        continue;
      }
      await decide(row, rule, true);
    }
    for (const row of await alertsWithOutcome(db, 'held', 1000)) {
      if (row.run_id !== null) {
        await followHeld(row);
        continue;
      }
      // Held by a RUNE before approvals (no run yet): it expires at held_until as it did.
      if (row.held_until !== null && row.held_until <= at) {
        await finish(row, 'expired', {
          reason: 'nobody released the held alert before it expired',
        });
      }
    }
  };

  return {
    get rules() {
      return rules;
    },

    replaceRules(next) {
      rules = next;
    },

    receiver(kind, name) {
      const receiver = rules?.receivers.get(name);
      if (receiver === undefined || receiver.kind !== kind) {
        throw new RuneError(
          'ALERT_RECEIVER_UNKNOWN',
          `no ${kind} receiver "${name.slice(0, 64)}" is configured${rules === undefined ? ' ([server] alert_rules is not set)' : ` in ${rules.file}`}`,
          { source, details: { kind, receiver: name.slice(0, 64) } },
        );
      }
      return receiver;
    },

    async accept(receiver, alerts, trace, phases) {
      lastAcceptAt = performance.now();
      const receivedAt = now();
      const rows = await Promise.all(
        alerts.map(async (alert) => {
          let startsAt = alert.startsAt;
          if (startsAt === undefined) {
            // Without a start time an episode starts at its first receipt.
            if (phases !== undefined) phases.storeOperations++;
            startsAt =
              (await firstOpenReceipt(db, receiver.name, alert.fingerprint))?.starts_at ??
              firstUnstoredReceipt(receiver.name, alert.fingerprint) ??
              iso(receivedAt);
          }
          return {
            id: randomUUID(),
            received_at: iso(receivedAt),
            receiver: receiver.name,
            kind: receiver.kind,
            status: alert.status,
            fingerprint: alert.fingerprint,
            starts_at: startsAt,
            closed: 0,
            alertname: (alert.labels.alertname ?? '').slice(0, 200),
            labels_json: JSON.stringify(alert.labels),
            annotations_json: JSON.stringify(alert.annotations),
            ...UNDECIDED_ALERT,
          };
        }),
      );
      const written = insertDurably({ rows, trace });
      const { timing, intakeMs } = await written.done;
      if (phases !== undefined) {
        phases.storeOperations += timing === undefined ? 0 : 1;
        phases.storeAsked = written.asked;
        if (timing !== undefined) phases.store = timing;
        if (intakeMs !== undefined) phases.intakeMs = intakeMs;
        phases.stored = probeNow();
      }
      return rows.map((row) => row.id);
    },

    release(id, by, comment) {
      return serial(async () => {
        const found = await getAlert(db, id);
        if (found === undefined)
          throw new RuneError('NOT_FOUND', `no alert ${id.slice(0, 64)}`, { source });
        const row = await followHeld(found);
        if (row.outcome === 'held' && row.run_id !== null) {
          await manager.approvals.approve(row.run_id, by, {
            comment: comment ?? `released through POST /v1/alerts/${id}/release`,
          });
          return followHeld((await getAlert(db, id)) ?? row);
        }
        if (row.outcome !== 'held' || row.request_json === null || row.rule === null) {
          throw new RuneError('ALERT_NOT_HELD', `alert ${id} is ${row.outcome}, not held`, {
            source,
            details: { outcome: row.outcome },
          });
        }
        const {
          if_busy: ifBusy,
          workflow,
          ...request
        } = JSON.parse(row.request_json) as LaunchRequest & {
          if_busy: IfBusy;
          workflow?: AlertWorkflowRequest;
        };
        if (workflow !== undefined) {
          // Held by a RUNE before workflows were held as approvals: it becomes one now, and this
          // is its first vote.
          await convertLegacyHold(row, workflow);
          const converted = (await getAlert(db, id)) ?? row;
          if (converted.outcome !== 'held' || converted.run_id === null) return converted;
          await manager.approvals.approve(converted.run_id, by, {
            comment: comment ?? `released through POST /v1/alerts/${id}/release`,
          });
          return followHeld((await getAlert(db, id)) ?? converted);
        }
        await submit(row, row.rule, request, ifBusy, {
          automatic: false,
          releasedBy: by.principal,
        });
        return (await getAlert(db, id)) ?? row;
      });
    },

    async start() {
      await replayIntake();
      await resumeHeldWorkflows(true);
      // A dead instance's held workflows, once the cluster's sweep declared it dead.
      stopFollowingTakeovers = manager.cluster.onSweep(() => resumeHeldWorkflows(false));
      for (const row of await alertsWithOutcome(db, 'held', 1000)) {
        const workflow =
          row.run_id !== null || row.request_json === null
            ? undefined
            : (JSON.parse(row.request_json) as { workflow?: AlertWorkflowRequest }).workflow;
        if (workflow !== undefined && (row.held_until ?? '') > iso(now())) {
          void guarded(`alert ${row.id}`, () => convertLegacyHold(row, workflow));
        }
      }
      const left = await alertsWithOutcome(db, 'received');
      if (left.length > 0) log(`deciding ${left.length} alert(s) received before the restart`);
      for (const row of left) void guarded(`alert ${row.id}`, () => process(row.id));
      sweeper = setInterval(() => {
        if (closed) return;
        retryFailedStores();
        try {
          intake?.checkpoint();
        } catch (failure) {
          log(`warning: the alert intake cannot be reset: ${RuneError.from(failure).message}`);
        }
        void guarded('sweep', sweep);
        void deliverNotices();
      }, SWEEP_MS);
      sweeper.unref();
      // What was owed when the previous process stopped: runs it left are interrupted by now.
      void deliverNotices();
    },

    idle: async () => {
      for (;;) {
        const current = chain;
        await current;
        if (current === chain) return;
      }
    },

    async close() {
      closed = true;
      stopFollowingTakeovers();
      if (sweeper !== undefined) clearInterval(sweeper);
      await batch?.done.catch(() => undefined);
      await Promise.all([...storing]);
      await chain;
      await delivering;
      if (intake !== undefined) {
        try {
          intake.checkpoint();
        } finally {
          intake.close();
        }
      }
    },
  };
}
