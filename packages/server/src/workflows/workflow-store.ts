/**
 * The queries of the workflow routes over `workflow_runs` (migration 0007_workflows), through
 * Kysely's query builder on the run store's `db`, so they run unchanged on every store dialect.
 */
import {
  exitCodeFor,
  RuneError,
  type WorkflowRunRecord,
  type WorkflowStepRecord,
} from '@rune/protocol';
import type { Kysely } from 'kysely';
import type { StoreDatabase } from '../store/schema.js';
import { heldRunFate, heldWorkflowFates } from './held-workflows.js';
import {
  type OrphanedWorkflowRun,
  orphanedWorkflowRuns,
  takeWorkflowRun,
} from './workflow-owner.js';

/**
 * Writes (insert or replace) the record of a workflow run, owned by `owner` (workflow-owner.ts:
 * the cluster's instance id, null on the embedded store). A row another instance has taken over
 * (its owner is no longer `owner`) is left as it is: returns false.
 */
export async function saveWorkflowRun(
  db: Kysely<StoreDatabase>,
  record: WorkflowRunRecord,
  principal: string,
  now: Date,
  owner: string | null = null,
): Promise<boolean> {
  const row = {
    id: record.workflow_run_id,
    workflow: record.workflow,
    trace_id: record.trace_id,
    status: record.status,
    principal,
    created_at: record.started_at,
    updated_at: now.toISOString(),
    record_json: JSON.stringify(record),
    instance_id: owner,
  };
  const result = await db
    .insertInto('workflow_runs')
    .values(row)
    .onConflict((conflict) =>
      conflict
        .column('id')
        .doUpdateSet({
          status: row.status,
          updated_at: row.updated_at,
          record_json: row.record_json,
        })
        .where((eb) =>
          owner === null
            ? eb('workflow_runs.instance_id', 'is', null)
            : eb('workflow_runs.instance_id', '=', owner),
        ),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 1n) > 0;
}

/** The record of a workflow run, or undefined. */
export async function getWorkflowRun(
  db: Kysely<StoreDatabase>,
  id: string,
): Promise<WorkflowRunRecord | undefined> {
  return (await getStoredWorkflowRun(db, id))?.record;
}

/** The filters of {@link listWorkflowRuns} (AND). */
export interface WorkflowRunFilter {
  workflow?: string;
  status?: string;
  principal?: string;
  /** Started at or after (ISO time). */
  since?: string;
  /** Started before (ISO time). */
  until?: string;
}

/** Where a page of {@link listWorkflowRuns} ended: the last row's start time and id. */
export interface WorkflowRunPosition {
  startedAt: string;
  id: string;
}

/** A listed workflow run: its record and who started it. */
export interface ListedWorkflowRun {
  record: WorkflowRunRecord;
  principal: string;
  position: WorkflowRunPosition;
}

/**
 * Workflow runs newest first (start time, then id: a stable order, since a workflow's start
 * time never changes), at most `limit`, after `after` when given.
 */
export async function listWorkflowRuns(
  db: Kysely<StoreDatabase>,
  filter: WorkflowRunFilter,
  limit: number,
  after?: WorkflowRunPosition,
): Promise<ListedWorkflowRun[]> {
  let query = db
    .selectFrom('workflow_runs')
    .select(['id', 'principal', 'created_at', 'record_json'])
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit);
  if (filter.workflow !== undefined) query = query.where('workflow', '=', filter.workflow);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.principal !== undefined) query = query.where('principal', '=', filter.principal);
  if (filter.since !== undefined) query = query.where('created_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('created_at', '<', filter.until);
  if (after !== undefined) {
    query = query.where((eb) =>
      eb.or([
        eb('created_at', '<', after.startedAt),
        eb.and([eb('created_at', '=', after.startedAt), eb('id', '<', after.id)]),
      ]),
    );
  }
  return (await query.execute()).map((row) => ({
    record: JSON.parse(row.record_json) as WorkflowRunRecord,
    principal: row.principal,
    position: { startedAt: row.created_at, id: row.id },
  }));
}

/** A workflow run with who started it and which instance executes it (null: the embedded store). */
export interface StoredWorkflowRun {
  record: WorkflowRunRecord;
  principal: string;
  owner: string | null;
}

/** The stored workflow run `id`, or undefined. */
export async function getStoredWorkflowRun(
  db: Kysely<StoreDatabase>,
  id: string,
): Promise<StoredWorkflowRun | undefined> {
  const row = await db
    .selectFrom('workflow_runs')
    .select(['record_json', 'principal', 'instance_id'])
    .where('id', '=', id)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    record: JSON.parse(row.record_json) as WorkflowRunRecord,
    principal: row.principal,
    owner: row.instance_id,
  };
}

/**
 * Interrupts the workflows still `running` whose owner is not a live instance (workflow-owner.ts):
 * at start-up on the embedded store, every one (it was in flight when the previous process
 * stopped); on a shared store only those of dead or stopped instances, and, at start-up (`unowned`),
 * those without an owner (written by an older RUNE) — never a workflow a live instance executes.
 * Each is first taken by a conditional UPDATE, so of several instances exactly one interrupts it.
 *
 * It is marked `interrupted` (WORKFLOW_INTERRUPTED, exit 70) and is NOT resumed: a half-done
 * remediation re-run without an operator could repeat a dangerous step or act on a state that has
 * changed since. The step that was running ends `cancelled` (its run is marked interrupted by the
 * run manager's own recovery, or the cluster's takeover), the steps not reached `skipped`. A step
 * run still waiting for the approval of an approval step is cancelled with `cancelHeld`: approved
 * later, it would run one step of a workflow that no longer goes on. A step run that a live
 * instance executes (queued and adopted by the run takeover, or approved in the lease window) is
 * left to end there, and the error names it. A workflow the alert storm breaker holds as a whole
 * (its held run still its only run) is left to the alert engine's resume, or to a later sweep
 * while the run takeover settles its run (workflows/held-workflows.ts). Returns how many were
 * interrupted.
 */
export async function interruptRunningWorkflows(
  db: Kysely<StoreDatabase>,
  now: Date,
  cancelHeld?: (runId: string, reason: string) => Promise<unknown>,
  ownership: { me: string | null; unowned: boolean } = { me: null, unowned: true },
): Promise<number> {
  const orphans = await orphanedWorkflowRuns(db, ownership.me, ownership);
  // The common case of every sweep: nothing to take over, one indexed query.
  if (orphans.length === 0) return 0;
  const shared = ownership.me !== null;
  const held = await heldWorkflowFates(db, new Set(orphans.map((row) => row.id)), shared);
  // Followed by the alert engine's resume, or not settled yet by the run takeover: not ours.
  const left = new Set([...held.follow.map((workflow) => workflow.workflowRunId), ...held.wait]);
  const rows = orphans.filter((row) => !left.has(row.id));
  let interrupted = 0;
  for (const row of rows) {
    if (!(await takeWorkflowRun(db, row.id, row.owner, ownership.me))) continue;
    interrupted++;
    await interruptWorkflowRun(db, row, now, cancelHeld, ownership.me);
  }
  return interrupted;
}

/**
 * Marks workflow run `row`, just taken by `me` (takeWorkflowRun), `interrupted` as
 * {@link interruptRunningWorkflows} describes; `why` says why it was not resumed (default: the
 * server stopped; the alert engine's resume says why a held one could not be).
 */
export async function interruptWorkflowRun(
  db: Kysely<StoreDatabase>,
  row: OrphanedWorkflowRun,
  now: Date,
  cancelHeld: ((runId: string, reason: string) => Promise<unknown>) | undefined,
  me: string | null,
  why = 'it was not resumed',
): Promise<void> {
  const shared = me !== null;
  const record = JSON.parse(row.record_json) as WorkflowRunRecord;
  // Its step runs that have not ended: those awaiting an approval are cancelled below; a queued
  // or running one that a live instance executes (adopted by the run takeover, or approved
  // through a live instance before the owner was declared dead) goes on there, and the record
  // says so: stopping a remediation halfway is worse than letting its one step end.
  const unended = await db
    .selectFrom('runs')
    .select(['id', 'status'])
    .where('workflow_run_id', '=', record.workflow_run_id)
    .where('status', 'in', ['awaiting_approval', 'queued', 'running'])
    .execute();
  const goingOn: string[] = [];
  for (const run of unended) {
    if (run.status === 'awaiting_approval') continue;
    if ((await heldRunFate(db, run.id, run.status, shared)) === 'follow') goingOn.push(run.id);
  }
  const ended = now.toISOString();
  const steps = record.steps.map((step): WorkflowStepRecord => {
    if (step.status === 'running' || step.status === 'awaiting_approval') {
      return {
        ...step,
        // Its run that was going on when the engine stopped: the run recovery or takeover
        // settles the run itself (GET /v1/runs/{run_id}); the engine never saw it end.
        attempts: step.attempts.map((attempt) =>
          attempt.status === 'running' || attempt.status === 'awaiting_approval'
            ? {
                ...attempt,
                status: 'interrupted',
                exit_code: exitCodeFor('RUN_INTERRUPTED'),
                ended_at: ended,
              }
            : attempt,
        ),
        status: 'cancelled',
        reason: 'the server stopped during this step',
        ended_at: ended,
      };
    }
    if (step.status === 'pending') return { ...step, status: 'skipped', reason: 'interrupted' };
    return step;
  });
  const error = new RuneError(
    'WORKFLOW_INTERRUPTED',
    `the server stopped while this workflow ran; ${why}: check what its last step did, then start it again${
      goingOn.length === 0
        ? ''
        : ` (its run ${goingOn.join(', ')} was taken over by a live instance and goes on there: check its result first)`
    }`,
    { source: { component: 'rune-server' }, traceId: record.trace_id },
  ).toJSON();
  await saveWorkflowRun(
    db,
    { ...record, status: 'interrupted', exit_code: 70, steps, error, ended_at: ended },
    row.principal,
    now,
    me,
  );
  if (cancelHeld !== undefined) {
    for (const run of unended.filter((each) => each.status === 'awaiting_approval')) {
      await cancelHeld(
        run.id,
        `the server stopped while workflow ${record.workflow} (${record.workflow_run_id}) waited for this approval; the workflow was interrupted`,
      );
    }
  }
}
