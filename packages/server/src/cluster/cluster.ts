/**
 * The seam between the run manager and the other instances of a shared store. The run manager
 * keeps its in-memory queue, slots and node locks (the single-instance behaviour, unchanged);
 * before it hands a run to core it asks the cluster, and it tells the cluster what changed.
 *
 * - {@link createSoloCluster}: the embedded SQLite store, one instance (the file lock sees to it):
 *   every question answers "yes, go ahead" without a query.
 * - `createPostgresCluster` (postgres-cluster.ts): N instances on one PostgreSQL.
 */
import type { Transaction } from 'kysely';
import type { StoredRun } from '../store/run-store.js';
import type { StoreDatabase } from '../store/schema.js';

/** What the cluster asks of the run manager. */
export interface ClusterHooks {
  /** Another instance changed run `id` (an event, a status): wake this instance's waiters. */
  changed(id: string): void;
  /** Every run may have changed (the notification channel was down for a while). */
  changedAll(): void;
  /** Another instance released node locks: runs waiting for a node may try again. */
  released(): void;
  /** Another instance asks to cancel run `id`, which this instance queues or runs. */
  cancel(id: string, reason: string): void;
  /** A run a dead instance had handed to core: end its unfinished nodes `interrupted`. */
  interrupt(run: StoredRun): Promise<void>;
  /** A run a dead (or stopped) instance had queued, now claimed by this one: queue it here. */
  adopt(run: StoredRun): Promise<'queued' | 'interrupted'>;
  /**
   * This instance has not reached the database for half its lease: the others may soon declare
   * it dead and let other runs onto its nodes. Cancel every local run now (remote kill), so that
   * nothing of it still runs on a node when they do; the records are written when the database
   * is back (or by the taker).
   */
  isolated(): Promise<void>;
  /**
   * This instance was declared dead by the others (it missed its heartbeats: a partition, a
   * stalled process) and its runs were taken over: stop every local run and drop the queue
   * without writing their records (the taker wrote them).
   */
  fenced(): Promise<void>;
}

/** The answer of {@link Cluster.acquire}. */
export type AcquireResult =
  /** The run is this instance's to start; its nodes are locked cluster-wide. */
  | 'ok'
  /** A node is held by a run elsewhere: keep it queued, retry later. */
  | 'busy'
  /** Another instance took the run over (this one was presumed dead): drop it. */
  | 'lost';

/** What {@link Cluster.claimQueued} writes besides the claim. */
export interface QueueClaim {
  /** The nodes the run will lock (none for dry runs and idempotent actions). */
  lockNodes?: readonly string[];
  /** `if_busy: "refuse"`: throw NODE_BUSY instead of queueing behind a run of any instance. */
  refuseIfBusy?: boolean;
}

/** The cluster seen by one instance. */
export interface Cluster {
  /** False for the embedded store (one instance). */
  readonly shared: boolean;
  /** This instance's id (also recorded in the log at start-up). */
  readonly instanceId: string;
  /**
   * Registers this instance, starts heartbeats, the takeover sweep and the notification
   * listener; returns what the first sweep took over.
   */
  start(hooks: ClusterHooks): Promise<{ interrupted: number; requeued: number }>;
  /**
   * Writes, inside the run's insert transaction, that this instance owns the queued run, and puts
   * it in the cluster-wide wait queue of its lock nodes (submission order). With `refuseIfBusy`
   * it first throws NODE_BUSY (details `nodes`, `run_ids`) when a run of any instance holds or
   * waits for one of them: checked under the run-numbering lock, so two instances refusing at
   * once cannot both accept.
   */
  claimQueued(trx: Transaction<StoreDatabase>, runId: string, claim?: QueueClaim): Promise<void>;
  /** Nodes of `nodes` locked, or waited for by a queued run, on any instance. */
  busyNodes(nodes: readonly string[]): Promise<{ node: string; run_id: string }[]>;
  /**
   * Takes the claim of a queued run for this instance (a run approved here that another instance
   * accepted); a claim already `running` is never taken. Before `acquire`.
   */
  reclaim(runId: string): Promise<void>;
  /** Marks the run handed to core (never to be started again) and locks its nodes. */
  acquire(runId: string, lockNodes: readonly string[]): Promise<AcquireResult>;
  /** The run ended (or was dropped): its claim and node locks go. */
  release(runId: string): Promise<void>;
  /** Tells the other instances that run `id` changed (best effort; they also poll). */
  publish(id: string): void;
  /** Asks the instance owning run `id` to cancel it; false when no live instance owns it. */
  forwardCancel(id: string, reason: string): Promise<boolean>;
  /**
   * Asks instance `owner`, which executes workflow run `id` (`workflow_runs.instance_id`), to
   * cancel it; false when `owner` is not a live instance. Best effort, like
   * {@link forwardCancel}: the notice carries it.
   */
  forwardWorkflowCancel(id: string, owner: string, reason: string): Promise<boolean>;
  /**
   * Calls `handler` when another instance asks this one to cancel a workflow run it executes.
   * Returns the unsubscribe.
   */
  onWorkflowCancel(handler: (id: string, reason: string) => void): () => void;
  /** Stops claiming; the instance's queued runs go to the others. Idempotent. */
  stop(): Promise<void>;
  /**
   * Runs `task` at the end of every takeover sweep (after the runs of dead or stopped instances
   * were taken over): what else those instances owned (their workflows) is taken over there, on
   * the cluster's own judgement of who is dead. A failing task is logged. Returns the
   * unsubscribe. The embedded store never sweeps.
   */
  onSweep(task: () => Promise<void>): () => void;
}

/** The single-instance cluster of the embedded store. */
export function createSoloCluster(): Cluster {
  return {
    shared: false,
    instanceId: 'solo',
    start: async () => ({ interrupted: 0, requeued: 0 }),
    claimQueued: async () => {},
    reclaim: async () => {},
    busyNodes: async () => [],
    acquire: async () => 'ok',
    release: async () => {},
    publish: () => {},
    forwardCancel: async () => false,
    forwardWorkflowCancel: async () => false,
    onWorkflowCancel: () => () => {},
    stop: async () => {},
    onSweep: () => () => {},
  };
}
