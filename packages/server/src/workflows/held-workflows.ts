/**
 * What becomes of a storm-held workflow whose owner is gone (a restart, or the takeover sweep of a
 * dead instance): the one judgement both takeover tasks use — the workflow interrupt
 * (workflow-store.ts `interruptRunningWorkflows`) and the resume of held workflows
 * (alerts/engine.ts) — so that no workflow falls between them.
 *
 * A storm-held workflow has submitted exactly one run, its held run, and nothing else
 * (alerts/alert-workflows.ts `heldWorkflows`). Its fate follows that run, in whatever state the
 * run is, not only while it awaits approval: an approver may approve it through a live instance
 * after the owner died but before the sweep declared the owner dead (the lease window).
 *
 * - `follow`: the run never reached core on an instance that is gone — it awaits approval, is
 *   queued or running on a live instance, or has ended (except `interrupted`). The workflow is
 *   resumed: its engine adopts that run (never submits it again), takes its result when it ends,
 *   and submits the next step, which nobody submitted before (it is the workflow's only run).
 * - `wait`: the run is queued or running under a claim of an instance that is not live, or under
 *   no claim on a shared store: the run takeover has not settled it yet (adopted, it is `follow`
 *   at a later sweep; interrupted, `interrupt`). Neither task takes the workflow this time.
 * - `interrupt`: the run was interrupted (it had reached core on an instance that stopped), or it
 *   vanished. The workflow is interrupted like any workflow whose step was running at a restart.
 */
import type { Kysely } from 'kysely';
import { type HeldWorkflow, heldWorkflows } from '../alerts/alert-workflows.js';
import type { StoreDatabase } from '../store/schema.js';

/** The fate of a storm-held workflow whose owner is gone (see the module's comment). */
export type HeldWorkflowFate = 'follow' | 'wait' | 'interrupt';

/** The states of a live instance (src/cluster/postgres-cluster.ts). */
const LIVE_STATES: readonly string[] = ['active', 'draining'];

/**
 * The fate of held run `runId` (its status as read); `shared`: a store of several instances,
 * where a queued or running run is only followed under a live instance's claim.
 */
export async function heldRunFate(
  db: Kysely<StoreDatabase>,
  runId: string,
  status: string,
  shared: boolean,
): Promise<HeldWorkflowFate> {
  if (status === 'interrupted') return 'interrupt';
  if (status !== 'queued' && status !== 'running') return 'follow';
  // On the embedded store the one process runs what is queued (recovery has ended what ran).
  if (!shared) return 'follow';
  const claim = await db
    .selectFrom('run_claims')
    .innerJoin('cluster_instances', 'cluster_instances.id', 'run_claims.instance_id')
    .select(['run_claims.state as claim', 'cluster_instances.state as instance'])
    .where('run_claims.run_id', '=', runId)
    .executeTakeFirst();
  // An `interrupting` claim is the takeover ending a run that had reached core on a dead instance.
  return claim !== undefined &&
    LIVE_STATES.includes(claim.instance) &&
    claim.claim !== 'interrupting'
    ? 'follow'
    : 'wait';
}

/** The storm-held workflows of `ids` (orphans) by fate; those not listed are not held. */
export async function heldWorkflowFates(
  db: Kysely<StoreDatabase>,
  ids: ReadonlySet<string>,
  shared: boolean,
): Promise<{ follow: HeldWorkflow[]; wait: Set<string>; interrupt: Set<string> }> {
  const fates = {
    follow: [] as HeldWorkflow[],
    wait: new Set<string>(),
    interrupt: new Set<string>(),
  };
  for (const held of await heldWorkflows(db)) {
    if (!ids.has(held.workflowRunId)) continue;
    const fate = await heldRunFate(db, held.heldRunId, held.heldRunStatus, shared);
    if (fate === 'follow') fates.follow.push(held);
    else fates[fate].add(held.workflowRunId);
  }
  return fates;
}
