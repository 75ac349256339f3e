/**
 * N identical `rune serve` instances on one PostgreSQL: no broker, no special instance. What the
 * instances share they share through the database, and each mechanism is PostgreSQL's own:
 *
 * - **Heartbeats** on the database clock (one clock, no skew between hosts) every lease/4. An
 *   instance whose heartbeat is older than 3/4 of its lease is declared dead by the first
 *   survivor whose conditional UPDATE matches it, so a kill is noticed within the lease.
 * - **Claims** (`run_claims`): a run is owned by the instance that accepted it (the claim commits
 *   with the run). Before core gets the run the claim turns `running`; from then on the run is
 *   never started again — a takeover ends its unfinished nodes `interrupted`. A `queued` claim of a
 *   dead or stopped instance is adopted by one survivor: `SELECT ... FOR UPDATE SKIP LOCKED`
 *   hands every claim to exactly one sweeper, and the adopter re-plans it from the stored request.
 *   So no node runs twice for one request, and an unstarted run starts exactly once.
 * - **FIFO across instances** (`node_queue`): a queued run of a non-idempotent action has one row
 *   per node with its `runs.position` (numbered in commit order under the run-numbering lock of
 *   `run_numbering`: the submission order of every instance). A run takes its node locks only when no queued run
 *   submitted earlier waits for one of its nodes, whichever instance accepted either; and
 *   `if_busy: "refuse"` sees these queued runs too, checked inside the insert transaction.
 * - **Node locks** (`node_locks`, primary key `node`): a table rather than advisory locks, because
 *   an advisory lock lives on one connection — a pooled connection, a database restart or a
 *   takeover by another instance would have to be tracked beside it — while a row outlives any
 *   connection, is released by whoever takes over, and can be read (`NODE_BUSY` names the run).
 * - **Events** (LISTEN/NOTIFY on `rune_runs`): every change is announced, so an SSE client of
 *   instance A follows a run executing on B; a cancel is forwarded to the owner the same way.
 *   Notifications are only wake-ups: readers always read the store, and they also poll.
 * - **Fencing**: an instance that finds itself declared dead (a partition, a stalled process)
 *   stops its runs without writing their ends (the taker did) and registers again under a new id.
 * - **Isolation**: an instance that cannot heartbeat for half its lease cancels its own runs
 *   (remote kill) before the others may declare it dead at 3/4, so that a node never runs a run
 *   of the isolated instance and a run of the taker at once.
 * - **Outages**: when the database goes away, every instance keeps retrying; after it returns an
 *   instance waits one lease of its own successful heartbeats before it may declare anyone dead,
 *   so the others have had the time to heartbeat too.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { RuneError } from '@rune/protocol';
import { type Kysely, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { numberRun, redactDatabaseUrl } from '../store/postgres-dialect.js';
import type { RunStore, StoredRun } from '../store/run-store.js';
import type { StoreDatabase } from '../store/schema.js';
import type { AcquireResult, Cluster, ClusterHooks, QueueClaim } from './cluster.js';

/** The notification channel of run changes, cancels and hand-overs. */
export const CLUSTER_CHANNEL = 'rune_runs';

/** Runs taken over per sweep transaction. */
const SWEEP_BATCH = 50;

/** Options of {@link createPostgresCluster}. */
export interface PostgresClusterOptions {
  store: RunStore;
  /** The store URL (the listener has a connection of its own). */
  url: string;
  leaseMs: number;
  log?: (line: string) => void;
}

interface Notice {
  /**
   * c: run changed; r: node locks released; x: cancel a run; w: cancel a workflow run; s: an
   * instance stopped (sweep now)
   */
  t: 'c' | 'r' | 'x' | 'w' | 's';
  from: string;
  id?: string;
  to?: string;
  r?: string;
}

/** The database clock in epoch ms. */
const dbNow = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

class Busy extends Error {}

/**
 * The nodes of `nodes` that a run holds (`node_locks`) or that a queued run waits for
 * (`node_queue`; a row of a run no longer queued — cancelled, awaiting approval — does not count),
 * on any instance, other than run `except`.
 */
async function heldOrAwaited(
  db: Kysely<StoreDatabase> | Transaction<StoreDatabase>,
  nodes: readonly string[],
  except?: string,
): Promise<{ node: string; run_id: string }[]> {
  if (nodes.length === 0) return [];
  // The queue first: a run moves from the queue to the locks in one transaction, and one that
  // commits between the two reads is then seen in one of them (the reads are two snapshots).
  const waiting = await db
    .selectFrom('node_queue')
    .innerJoin('runs', 'runs.id', 'node_queue.run_id')
    .select(['node_queue.node', 'node_queue.run_id'])
    .where('node_queue.node', 'in', [...nodes])
    .where('runs.status', '=', 'queued')
    .orderBy('node_queue.position')
    .execute();
  const held = await db
    .selectFrom('node_locks')
    .select(['node', 'run_id'])
    .where('node', 'in', [...nodes])
    .execute();
  const result: { node: string; run_id: string }[] = [];
  for (const row of [...held, ...waiting]) {
    if (row.run_id === except || result.some((known) => known.node === row.node)) continue;
    result.push({ node: row.node, run_id: row.run_id });
  }
  return result;
}

/** Creates the coordinator of one instance on a shared PostgreSQL store. */
export function createPostgresCluster(options: PostgresClusterOptions): Cluster {
  const db: Kysely<StoreDatabase> = options.store.db;
  const log = options.log ?? (() => {});
  const leaseMs = options.leaseMs;
  const heartbeatMs = Math.max(100, Math.floor(leaseMs / 4));
  const sweepMs = Math.max(100, Math.floor(leaseMs / 8));
  const host = hostname() === '' ? 'localhost' : hostname();
  const newId = (): string => `${host}-${process.pid}-${randomUUID().slice(0, 8)}`;
  let instanceId = newId();
  let hooks: ClusterHooks | undefined;
  let stopped = false;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<{ interrupted: number; requeued: number }> | undefined;
  /** No takeover before this (ms, local clock): after an outage, others need time to heartbeat. */
  let sweepAllowedAt = 0;
  let databaseDown = false;
  /** Local clock of the last successful heartbeat. */
  let lastBeat = Date.now();
  let isolated = false;
  /** Releases that failed (database away): retried with every heartbeat. */
  const pendingReleases = new Set<string>();
  let listener: pg.Client | undefined;
  let listenerRetry: NodeJS.Timeout | undefined;
  /** {@link Cluster.onSweep} tasks. */
  const sweepTasks = new Set<() => Promise<void>>();
  /** {@link Cluster.onWorkflowCancel} handlers. */
  const workflowCancelHandlers = new Set<(id: string, reason: string) => void>();

  const warn = (line: string): void => log(`warning: cluster: ${line}`);
  const message = (error: unknown): string => RuneError.from(error).message;

  const outage = (what: string, error: unknown): void => {
    if (!databaseDown) warn(`${what} failed (${message(error)}); retrying`);
    databaseDown = true;
    sweepAllowedAt = Date.now() + leaseMs;
  };

  const register = async (): Promise<void> => {
    await db
      .insertInto('cluster_instances')
      .values({
        id: instanceId,
        host,
        pid: process.pid,
        started_at: new Date().toISOString(),
        heartbeat_ms: dbNow,
        lease_ms: leaseMs,
        state: 'active',
        taken_over_by: null,
      })
      .execute();
  };

  const notice = (payload: Omit<Notice, 'from'>): void => {
    const text = JSON.stringify({ ...payload, from: instanceId });
    sql`select pg_notify(${CLUSTER_CHANNEL}, ${text})`.execute(db).catch(() => undefined);
  };

  const releaseNow = async (runId: string): Promise<void> => {
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('node_locks').where('run_id', '=', runId).execute();
      await trx.deleteFrom('node_queue').where('run_id', '=', runId).execute();
      await trx.deleteFrom('run_claims').where('run_id', '=', runId).execute();
    });
  };

  const release = async (runId: string): Promise<void> => {
    try {
      await releaseNow(runId);
      pendingReleases.delete(runId);
      // Instances waiting for one of its nodes retry at once.
      notice({ t: 'r', id: runId });
    } catch (error) {
      pendingReleases.add(runId);
      outage(`releasing run ${runId}`, error);
    }
  };

  const fence = async (): Promise<void> => {
    warn(
      `instance ${instanceId} was declared dead by another instance (missed heartbeats); its runs were taken over. Stopping them here and registering again`,
    );
    await hooks?.fenced();
    instanceId = newId();
    await register();
  };

  const heartbeat = async (): Promise<void> => {
    try {
      const result = await db
        .updateTable('cluster_instances')
        .set({ heartbeat_ms: dbNow })
        .where('id', '=', instanceId)
        .where('state', 'in', ['active', 'draining'])
        .executeTakeFirst();
      lastBeat = Date.now();
      isolated = false;
      if (databaseDown) {
        log(`cluster: the database is reachable again (instance ${instanceId})`);
        databaseDown = false;
        hooks?.changedAll();
      }
      if (Number(result.numUpdatedRows) === 0 && !stopped) await fence();
      for (const runId of [...pendingReleases]) await release(runId);
    } catch (error) {
      outage('the heartbeat', error);
      await checkIsolation();
    }
  };

  /**
   * Past half the lease without a heartbeat the others may take over soon (at 3/4): stop first.
   * Checked at every sweep tick (lease/8), not only at heartbeats (lease/4), so the runs are
   * cancelled between 1/2 and 5/8 of the lease.
   */
  async function checkIsolation(): Promise<void> {
    if (isolated || stopped || Date.now() - lastBeat <= leaseMs / 2) return;
    isolated = true;
    warn(
      `no heartbeat for ${Date.now() - lastBeat} ms (lease ${leaseMs} ms): cancelling this instance's runs before another instance takes them over`,
    );
    await hooks?.isolated();
  }

  /** One batch of takeover in one transaction; returns the claims now held by this instance. */
  const claimBatch = async (): Promise<{ run_id: string; state: string }[]> =>
    db.transaction().execute(async (trx) => {
      const claims = await trx
        .selectFrom('run_claims')
        .innerJoin('cluster_instances', 'cluster_instances.id', 'run_claims.instance_id')
        .select(['run_claims.run_id', 'run_claims.state'])
        .where('cluster_instances.state', 'in', ['dead', 'stopped'])
        .orderBy('run_claims.run_id')
        .limit(SWEEP_BATCH)
        .forUpdate(['run_claims'])
        .skipLocked()
        .execute();
      const taken: { run_id: string; state: string }[] = [];
      const stamp = new Date().toISOString();
      for (const claim of claims) {
        // A claim that reached core is never started again: it is interrupted, whatever the
        // run row says (the run-start event may not have been written when the owner died).
        const state = claim.state === 'queued' ? 'queued' : 'interrupting';
        await trx
          .updateTable('run_claims')
          .set({ instance_id: instanceId, state, claimed_at: stamp })
          .where('run_id', '=', claim.run_id)
          .execute();
        taken.push({ run_id: claim.run_id, state });
      }
      // Queued runs without any claim (accepted before this schema): adopted like the others.
      const unclaimed = await trx
        .selectFrom('runs')
        .select('runs.id')
        .where('runs.status', '=', 'queued')
        .where('runs.dry_run', '=', 0)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('run_claims')
                .select('run_claims.run_id')
                .whereRef('run_claims.run_id', '=', 'runs.id'),
            ),
          ),
        )
        .limit(SWEEP_BATCH)
        .forUpdate(['runs'])
        .skipLocked()
        .execute();
      for (const run of unclaimed) {
        await trx
          .insertInto('run_claims')
          .values({ run_id: run.id, instance_id: instanceId, state: 'queued', claimed_at: stamp })
          .onConflict((oc) => oc.column('run_id').doNothing())
          .execute();
        taken.push({ run_id: run.id, state: 'queued' });
      }
      return taken;
    });

  const sweepOnce = async (): Promise<{ interrupted: number; requeued: number }> => {
    const counts = { interrupted: 0, requeued: 0 };
    if (stopped || hooks === undefined || Date.now() < sweepAllowedAt) return counts;
    const dead = await db
      .updateTable('cluster_instances')
      .set({ state: 'dead', taken_over_by: instanceId })
      .where('id', '!=', instanceId)
      .where('state', 'in', ['active', 'draining'])
      .where(sql<boolean>`heartbeat_ms < ${dbNow} - (lease_ms * 3 / 4)`)
      .returning(['id', 'host', 'pid'])
      .execute();
    for (const instance of dead) {
      log(
        `cluster: instance ${instance.id} (${instance.host} pid ${instance.pid}) missed its heartbeats; taking over its runs`,
      );
    }
    for (;;) {
      const taken = await claimBatch();
      for (const claim of taken) {
        const run: StoredRun | undefined = await options.store.getRun(claim.run_id);
        if (run === undefined) {
          await release(claim.run_id);
          continue;
        }
        if (claim.state === 'interrupting') {
          if (run.finished_at === null) {
            await hooks.interrupt(run);
            counts.interrupted++;
          }
          await release(claim.run_id);
          continue;
        }
        if (run.status !== 'queued') {
          await release(claim.run_id);
          continue;
        }
        const outcome = await hooks.adopt(run);
        if (outcome === 'queued') counts.requeued++;
        else {
          counts.interrupted++;
          await release(claim.run_id);
        }
      }
      if (taken.length < SWEEP_BATCH) break;
    }
    // This instance's own release notices are ignored by its listener: runs queued here behind a
    // node of a run just interrupted (an adopted run may be) retry now, not at their next timer.
    if (counts.interrupted > 0) hooks.released();
    // Queue rows of runs that no longer wait (cancelled while queued: no release is written).
    await db
      .deleteFrom('node_queue')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('runs')
              .select('runs.id')
              .whereRef('runs.id', '=', 'node_queue.run_id')
              .where('runs.status', 'in', ['queued', 'awaiting_approval']),
          ),
        ),
      )
      .execute();
    // Locks whose run lost its claim (the owner died between the two deletes of a release).
    await db
      .deleteFrom('node_locks')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('run_claims')
              .select('run_claims.run_id')
              .whereRef('run_claims.run_id', '=', 'node_locks.run_id'),
          ),
        ),
      )
      .where('instance_id', 'in', (eb) =>
        eb.selectFrom('cluster_instances').select('id').where('state', 'in', ['dead', 'stopped']),
      )
      .execute();
    for (const task of [...sweepTasks]) {
      await task().catch((error: unknown) => warn(`taking over failed (${message(error)})`));
    }
    return counts;
  };

  const sweep = (): Promise<{ interrupted: number; requeued: number }> => {
    sweeping ??= sweepOnce()
      .catch((error: unknown) => {
        outage('the takeover sweep', error);
        return { interrupted: 0, requeued: 0 };
      })
      .finally(() => {
        sweeping = undefined;
      });
    return sweeping;
  };

  const onNotice = (payload: string | undefined): void => {
    let parsed: Notice;
    try {
      parsed = JSON.parse(payload ?? '') as Notice;
    } catch {
      return;
    }
    if (parsed.from === instanceId || hooks === undefined) return;
    if (parsed.t === 'c' && typeof parsed.id === 'string') hooks.changed(parsed.id);
    else if (parsed.t === 'r') hooks.released();
    else if (parsed.t === 'x' && parsed.to === instanceId && typeof parsed.id === 'string') {
      hooks.cancel(parsed.id, typeof parsed.r === 'string' ? parsed.r : 'cancelled');
    } else if (parsed.t === 'w' && parsed.to === instanceId && typeof parsed.id === 'string') {
      const reason = typeof parsed.r === 'string' ? parsed.r : 'cancelled';
      for (const handler of workflowCancelHandlers) handler(parsed.id, reason);
    } else if (parsed.t === 's') {
      void sweep();
    }
  };

  const listen = async (): Promise<void> => {
    if (stopped) return;
    const client = new pg.Client({
      connectionString: options.url,
      application_name: 'rune-serve-listen',
    });
    const retry = (): void => {
      if (listener === client) listener = undefined;
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end().catch(() => undefined);
      if (stopped || listenerRetry !== undefined) return;
      listenerRetry = setTimeout(() => {
        listenerRetry = undefined;
        void listen();
      }, 1_000);
      listenerRetry.unref();
    };
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', (msg) => onNotice(msg.payload));
    try {
      await client.connect();
      await client.query(`LISTEN ${CLUSTER_CHANNEL}`);
      listener = client;
      // Whatever was announced while the channel was down is found by reading the store.
      hooks?.changedAll();
    } catch (error) {
      outage(`listening on ${redactDatabaseUrl(options.url)}`, error);
      retry();
    }
  };

  return {
    shared: true,
    get instanceId() {
      return instanceId;
    },

    async start(given) {
      hooks = given;
      await register();
      await listen();
      heartbeatTimer = setInterval(() => void heartbeat(), heartbeatMs);
      heartbeatTimer.unref();
      sweepTimer = setInterval(() => {
        void checkIsolation();
        void sweep();
      }, sweepMs);
      sweepTimer.unref();
      log(`cluster: instance ${instanceId} joined (lease ${leaseMs} ms)`);
      return sweep();
    },

    async claimQueued(trx, runId, claim: QueueClaim = {}) {
      const lockNodes = [...new Set(claim.lockNodes ?? [])];
      // A run that locks nodes is numbered first: its queue rows carry the position, and the
      // numbering lock, held from here to COMMIT, serialises this check with every other
      // instance's queueing of a node, so that of two refusing runs for one free node accepted
      // at the same moment one sees the other. A run without nodes to lock is numbered after its
      // claim, holding the lock for less (store/run-store.ts).
      const numbered = lockNodes.length > 0 ? await numberRun(trx, runId) : undefined;
      if (claim.refuseIfBusy === true) {
        const busy = await heldOrAwaited(trx, lockNodes, runId);
        if (busy.length > 0) {
          throw new RuneError('NODE_BUSY', 'a node is held or waited for by a run elsewhere', {
            source: { component: 'rune-server' },
            details: {
              nodes: busy.map((row) => row.node),
              run_ids: busy.map((row) => row.run_id),
            },
          });
        }
      }
      if (numbered !== undefined) {
        await trx
          .insertInto('node_queue')
          .values(lockNodes.map((node) => ({ node, run_id: runId, position: numbered.position })))
          .execute();
      }
      await trx
        .insertInto('run_claims')
        .values({
          run_id: runId,
          instance_id: instanceId,
          state: 'queued',
          claimed_at: new Date().toISOString(),
        })
        .execute();
    },

    async reclaim(runId) {
      const stamp = new Date().toISOString();
      await db
        .insertInto('run_claims')
        .values({ run_id: runId, instance_id: instanceId, state: 'queued', claimed_at: stamp })
        .onConflict((oc) =>
          oc
            .column('run_id')
            .doUpdateSet({ instance_id: instanceId, claimed_at: stamp })
            .where('run_claims.state', '=', 'queued'),
        )
        .execute();
    },

    busyNodes: (nodes) => heldOrAwaited(db, nodes),

    async acquire(runId, lockNodes): Promise<AcquireResult> {
      try {
        return await db.transaction().execute(async (trx) => {
          const claimed = await trx
            .updateTable('run_claims')
            .set({ state: 'running', claimed_at: new Date().toISOString() })
            .where('run_id', '=', runId)
            .where('instance_id', '=', instanceId)
            .where('state', '=', 'queued')
            .executeTakeFirst();
          if (Number(claimed.numUpdatedRows) === 0) return 'lost';
          if (lockNodes.length > 0) {
            // FIFO: a queued run submitted earlier (on any instance) waiting for one of these
            // nodes goes first. Rows of runs accepted before 0009_cluster_queue are absent: those
            // runs are ordered by the locks alone, as before.
            const ahead = await trx
              .selectFrom('node_queue as mine')
              .innerJoin('node_queue as other', 'other.node', 'mine.node')
              .innerJoin('runs', 'runs.id', 'other.run_id')
              .select('other.run_id')
              .where('mine.run_id', '=', runId)
              .where('other.run_id', '!=', runId)
              .whereRef('other.position', '<', 'mine.position')
              .where('runs.status', '=', 'queued')
              .limit(1)
              .executeTakeFirst();
            if (ahead !== undefined) throw new Busy();
            const stamp = new Date().toISOString();
            const inserted = await trx
              .insertInto('node_locks')
              .values(
                lockNodes.map((node) => ({
                  node,
                  run_id: runId,
                  instance_id: instanceId,
                  acquired_at: stamp,
                })),
              )
              .onConflict((oc) => oc.column('node').doNothing())
              .returning('node')
              .execute();
            // Rolls back the claim's state too: the run stays queued here.
            if (inserted.length < lockNodes.length) throw new Busy();
            await trx.deleteFrom('node_queue').where('run_id', '=', runId).execute();
          }
          return 'ok';
        });
      } catch (error) {
        if (error instanceof Busy) return 'busy';
        outage(`claiming run ${runId}`, error);
        return 'busy';
      }
    },

    release,

    publish(id) {
      if (!stopped) notice({ t: 'c', id });
    },

    async forwardCancel(id, reason) {
      const owner = await db
        .selectFrom('run_claims')
        .innerJoin('cluster_instances', 'cluster_instances.id', 'run_claims.instance_id')
        .select('run_claims.instance_id')
        .where('run_claims.run_id', '=', id)
        .where('cluster_instances.state', 'in', ['active', 'draining'])
        .executeTakeFirst();
      if (owner === undefined) return false;
      notice({ t: 'x', id, to: owner.instance_id, r: reason.slice(0, 2000) });
      return true;
    },

    async forwardWorkflowCancel(id, owner, reason) {
      const live = await db
        .selectFrom('cluster_instances')
        .select('id')
        .where('id', '=', owner)
        .where('state', 'in', ['active', 'draining'])
        .executeTakeFirst();
      if (live === undefined) return false;
      notice({ t: 'w', id, to: owner, r: reason.slice(0, 2000) });
      return true;
    },

    onWorkflowCancel(handler) {
      workflowCancelHandlers.add(handler);
      return () => {
        workflowCancelHandlers.delete(handler);
      };
    },

    onSweep(task) {
      sweepTasks.add(task);
      return () => {
        sweepTasks.delete(task);
      };
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(heartbeatTimer);
      clearInterval(sweepTimer);
      clearTimeout(listenerRetry);
      await sweeping?.catch(() => undefined);
      for (const runId of [...pendingReleases]) await releaseNow(runId).catch(() => undefined);
      try {
        await db
          .updateTable('cluster_instances')
          .set({ state: 'stopped' })
          .where('id', '=', instanceId)
          .where('state', 'in', ['active', 'draining'])
          .execute();
        // The others adopt this instance's queued runs now, not at their next sweep.
        await sql`select pg_notify(${CLUSTER_CHANNEL}, ${JSON.stringify({ t: 's', from: instanceId })})`.execute(
          db,
        );
      } catch (error) {
        warn(
          `could not mark instance ${instanceId} stopped (${message(error)}); the others take over after the lease`,
        );
      }
      const client = listener;
      listener = undefined;
      if (client !== undefined) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        await client.end().catch(() => undefined);
      }
    },
  };
}
