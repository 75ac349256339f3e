/**
 * The alert intake (src/alerts/intake.ts) against a real `rune serve` (in process, real HTTP on
 * loopback, real SQLite store and worker thread, real bash plugins): a webhook's alerts cost one
 * store operation; the answer waits for the intake file, not for the store — with the store's
 * worker gone the webhook is still answered, and the next process decides the alert exactly
 * once from the intake; a real `rune serve` killed with SIGKILL the moment its first answers
 * arrive has every answered alert decided after the restart, one run each.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { getAlert } from '../src/alerts/alert-store.js';
import { sqliteWorkerThread } from '../src/store/sqlite-worker/dialect.js';
import type { WorkerMessage } from '../src/store/sqlite-worker/protocol.js';
import {
  type AlertServer,
  accept,
  amPayload,
  decided,
  type Json,
  postAm,
  startAlertServer,
} from './alert-server.js';
import { spawnServe, waitForRun } from './harness.js';

const servers: AlertServer[] = [];
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const server of servers.splice(0)) await server.stop().catch(() => undefined);
});

async function server(): Promise<AlertServer> {
  const started = await startAlertServer();
  servers.push(started);
  return started;
}

const echo = (fingerprint: string, instance = 'web1') => ({
  labels: { alertname: 'Echo', severity: 'page', instance },
  annotations: { summary: fingerprint },
  fingerprint,
});

describe('the alert intake', () => {
  it("a webhook's alerts are one store operation, in one message to the store's worker", async () => {
    const t = await server();
    const thread = sqliteWorkerThread(t.server.store.db);
    expect(thread).toBeDefined();
    const posted: WorkerMessage[] = [];
    const post = thread?.postMessage.bind(thread);
    // Observes what crosses to the worker (the real worker still receives every message).
    if (thread !== undefined && post !== undefined) {
      thread.postMessage = (message: WorkerMessage) => {
        posted.push(message);
        post(message);
      };
    }
    const ids = await accept(
      await postAm(t, amPayload([echo('one-op-a'), echo('one-op-b'), echo('one-op-c')])),
    );
    expect(ids).toHaveLength(3);
    for (const id of ids) expect((await decided(t, id)).outcome).toBe('ran');
    // Every request that inserted any of the three alerts: exactly one, holding all three.
    const inserts = posted
      .flat()
      .filter(
        (request) =>
          request.op === 'operation' &&
          request.statements.some(
            (statement) =>
              /^insert into "alerts"/.test(statement.sql) &&
              ids.some((id) => statement.params.includes(id)),
          ),
      );
    expect(inserts).toHaveLength(1);
    const params = inserts.flatMap((request) =>
      request.op === 'operation' ? request.statements.flatMap((s) => s.params) : [],
    );
    for (const id of ids) expect(params).toContain(id);
  });

  it("the answer waits for the intake, not the store: with the store's worker gone the webhook is answered, and the next process decides the alert once", async () => {
    const t = await server();
    await t.server.store.db.selectFrom('alerts').select('id').limit(1).execute();
    await sqliteWorkerThread(t.server.store.db)?.terminate();
    const payload = amPayload([echo('intake-1', 'web2')]);
    const [id] = await accept(await postAm(t, payload));
    expect(id).toBeDefined();
    // Not in the store (its worker is gone): only the intake has it.
    await t.restart();
    const alert = await decided(t, id as string);
    expect(alert).toMatchObject({ outcome: 'ran', node: 'web2' });
    await waitForRun(t, alert.run_id as string);
    // A retry of the same alert is the same run, and a second restart replays nothing again.
    await t.restart();
    const [again] = await accept(await postAm(t, payload));
    expect(await decided(t, again as string)).toMatchObject({
      outcome: 'deduplicated',
      run_id: alert.run_id,
    });
    const runs = (await (await t.request('/v1/runs?source=alert&node=web2')).json()) as {
      runs: Json[];
    };
    expect(runs.runs.filter((run) => run.id === alert.run_id)).toHaveLength(1);
    expect(runs.runs).toHaveLength(1);
    expect((await getAlert(t.server.store.db, id as string))?.outcome).toBe('ran');
  });

  it('rune serve killed with SIGKILL right after answering webhooks: every answered alert is decided after the restart, one run each', async () => {
    const t = await server();
    await t.close();
    const served = spawnServe(t.home, children);
    const { child, exited } = served;
    const url = await served.url;
    const answered: string[] = [];
    const post = async (i: number): Promise<void> => {
      try {
        const response = await postAm(
          { ...t, url },
          amPayload([echo(`killed-${i}`, `web${(i % 3) + 1}`)]),
        );
        if (response.status !== 202) return;
        answered.push(...((await response.json()) as { alert_ids: string[] }).alert_ids);
        // Killed the moment the first answers arrive, while later webhooks are in flight.
        if (answered.length === 5) child.kill('SIGKILL');
      } catch {
        // refused or cut off by the kill: never answered
      }
    };
    await Promise.all(Array.from({ length: 60 }, (_, i) => post(i)));
    child.kill('SIGKILL');
    await exited;
    expect(answered.length).toBeGreaterThanOrEqual(5);
    await t.restart();
    const runIds = new Set<string>();
    for (const id of answered) {
      const alert = await decided(t, id);
      expect(alert.outcome).toBe('ran');
      runIds.add(alert.run_id as string);
    }
    expect(runIds.size).toBe(answered.length);
  }, 120_000);
});
