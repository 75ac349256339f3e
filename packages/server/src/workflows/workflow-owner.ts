/**
 * Who executes a workflow run: `workflow_runs.instance_id` (migration 0017_workflow_owner). A
 * workflow's engine lives in the memory of one `rune serve`; on a shared PostgreSQL store the
 * others must neither interrupt it while that instance is live nor leave it `running` forever once
 * it is dead.
 *
 * - **Owner**: the cluster's instance id (`Cluster.instanceId`) on PostgreSQL; null on the
 *   embedded store, whose one instance owns everything (the file lock sees to it), so its
 *   behaviour is unchanged. Rows written before 0017 have no owner either.
 * - **Live** is the cluster's own judgement, not a second one: an instance is live while its
 *   `cluster_instances` row is `active` or `draining`; the takeover sweep turns a missed heartbeat
 *   into `dead` (and a graceful stop writes `stopped`). An owner without a row is not live.
 * - **One taker**: a workflow run changes hands only by a conditional UPDATE (`set instance_id =
 *   me where id = ? and instance_id = <the owner read>`); of two instances taking over at once,
 *   the second matches no row and leaves it alone. Every save of the record is conditional on the
 *   saver still owning it (workflow-store.ts), so an instance declared dead that still runs
 *   cannot overwrite what its taker wrote, and its engine submits a step only while it still owns
 *   the run (`ownsWorkflowRun`, asked by the server step runner), so a stale engine does not run
 *   a step the taker runs too.
 */
import type { Kysely } from 'kysely';
import type { Cluster } from '../cluster/cluster.js';
import type { StoreDatabase } from '../store/schema.js';

/** The states of a live instance (src/cluster/postgres-cluster.ts). */
const LIVE_STATES = ['active', 'draining'] as const;

/** The owner recorded by this process: the cluster's instance id, or null for the embedded store. */
export function workflowOwner(cluster: Pick<Cluster, 'shared' | 'instanceId'>): string | null {
  return cluster.shared ? cluster.instanceId : null;
}

/** A `running` workflow run whose owner is not a live instance. */
export interface OrphanedWorkflowRun {
  id: string;
  owner: string | null;
  record_json: string;
  principal: string;
}

/**
 * The `running` workflow runs whose owner is not a live instance other than `me`. With
 * `unowned` (at start-up) those without an owner too: written by an older RUNE, or by the
 * embedded store's previous process. At runtime they are left alone: during a rolling upgrade
 * an older instance may still be executing them.
 */
export async function orphanedWorkflowRuns(
  db: Kysely<StoreDatabase>,
  me: string | null,
  options: { unowned: boolean },
): Promise<OrphanedWorkflowRun[]> {
  const rows = await db
    .selectFrom('workflow_runs')
    .select(['id', 'instance_id', 'record_json', 'principal'])
    .where('status', '=', 'running')
    .where((eb) => {
      const dead = eb.and([
        eb('instance_id', 'is not', null),
        eb(
          'instance_id',
          'not in',
          eb
            .selectFrom('cluster_instances')
            .select('id')
            .where('state', 'in', [...LIVE_STATES]),
        ),
      ]);
      return options.unowned ? eb.or([eb('instance_id', 'is', null), dead]) : dead;
    })
    .orderBy('created_at')
    .execute();
  return rows
    .filter((row) => me === null || row.instance_id !== me)
    .map((row) => ({
      id: row.id,
      owner: row.instance_id,
      record_json: row.record_json,
      principal: row.principal,
    }));
}

/**
 * Takes workflow run `id` from `from` (the owner read before) for `me`: true for exactly one
 * caller while it is still `running` and still `from`'s.
 */
export async function takeWorkflowRun(
  db: Kysely<StoreDatabase>,
  id: string,
  from: string | null,
  me: string | null,
): Promise<boolean> {
  const result = await db
    .updateTable('workflow_runs')
    .set({ instance_id: me })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where((eb) => (from === null ? eb('instance_id', 'is', null) : eb('instance_id', '=', from)))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Whether `me` still owns workflow run `id`: true while its row is not written yet (its first
 * save may follow its first submission) or names `me`; false once another instance took it.
 */
export async function ownsWorkflowRun(
  db: Kysely<StoreDatabase>,
  id: string,
  me: string | null,
): Promise<boolean> {
  const row = await db
    .selectFrom('workflow_runs')
    .select('instance_id')
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined || row.instance_id === me;
}
