/**
 * The run intake (src/runs/run-intake.ts) and the token cache (src/auth/token-cache.ts) against
 * real `rune serve` processes (in process and as the built CLI; real HTTP on loopback, the real
 * SQLite store and its worker thread, the real audit log): a dry run is answered while its insert
 * is still held back from the store's worker, and a read after the answer finds it; a run that was
 * only in the intake is stored by the next start, one whose audit record never got written is
 * not; a `rune serve` killed with SIGKILL in the middle of a burst has every answered dry run
 * after the restart, each with its audit record; a token revoked by `rune token revoke` in
 * another process is refused by the server's next request although the server read it before.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createToken } from '../src/auth/tokens.js';
import { createRuneServer, type RuneServer } from '../src/index.js';
import { type IntakeRun, MAX_INSERTS_IN_FLIGHT } from '../src/runs/run-intake.js';
import { openIntake } from '../src/store/intake.js';
import { sqliteWorkerThread } from '../src/store/sqlite-worker/dialect.js';
import type { WorkerMessage } from '../src/store/sqlite-worker/protocol.js';
import { errorOf } from './alert-server.js';
import { RUNE_CLI as CLI, createTestHome, spawnServe, type TestHome, until } from './harness.js';

const DRY_RUN = { action: 'noop', targets: ['localhost'], options: { dry_run: true } };

type Json = Record<string, unknown>;

const homes: TestHome[] = [];
const servers: RuneServer[] = [];
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const server of servers.splice(0)) await server.close().catch(() => undefined);
  for (const home of homes.splice(0)) home.remove();
});

function home(): TestHome {
  const created = createTestHome();
  homes.push(created);
  return created;
}

/** A server on `h` (again: the store keeps what the last one left) with a fresh operator token. */
async function serve(h: TestHome): Promise<{
  server: RuneServer;
  token: string;
  request: (path: string, init?: RequestInit) => Promise<Response>;
}> {
  const server = await createRuneServer({ configFile: h.configFile, env: h.env, port: 0 });
  servers.push(server);
  const url = await server.listen();
  const { token } = await createToken(server.store, {
    name: `ops-${randomUUID().slice(0, 8)}`,
    role: 'operator',
    expires: '1d',
  });
  const request = (path: string, init: RequestInit = {}) =>
    fetch(`${url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.headers as Record<string, string> | undefined),
      },
    });
  return { server, token, request };
}

const submit = (request: (path: string, init?: RequestInit) => Promise<Response>) =>
  request('/v1/runs', { method: 'POST', body: JSON.stringify(DRY_RUN) });

/**
 * Holds back from the store's worker every message that inserts a run, until released; `held()`
 * counts the run inserts held (one message may carry several).
 */
function holdRunInserts(server: RuneServer): { held: () => number; release: () => void } {
  const thread = sqliteWorkerThread(server.store.db);
  if (thread === undefined) throw new Error('no SQLite worker');
  const post = thread.postMessage.bind(thread);
  const held: WorkerMessage[] = [];
  let inserts = 0;
  let holding = true;
  thread.postMessage = (message: WorkerMessage) => {
    const runInserts = message.filter(
      (request) =>
        request.op === 'operation' &&
        request.statements.some((statement) => /^insert into "runs"/.test(statement.sql)),
    ).length;
    if (holding && runInserts > 0) {
      held.push(message);
      inserts += runInserts;
    } else post(message);
  };
  return {
    held: () => inserts,
    release: () => {
      holding = false;
      for (const message of held.splice(0)) post(message);
    },
  };
}

describe('the run intake', () => {
  it('answers a dry run while its insert is still held back from the store, and a read after the answer finds it', async () => {
    const h = home();
    const t = await serve(h);
    // The token and its bounds are read once (then from memory, under the token epoch).
    expect((await t.request('/v1/runs?limit=1')).status).toBe(200);
    const hold = holdRunInserts(t.server);
    const answered = await Promise.race([
      submit(t.request),
      new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), 15_000)),
    ]);
    expect(answered).not.toBe('timed out');
    const response = answered as Response;
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    // Answered while the run's row had not reached the worker at all.
    expect(hold.held()).toBe(1);
    hold.release();
    const run = (await (await t.request(`/v1/runs/${id}`)).json()) as Json;
    expect(run).toMatchObject({ id, status: 'succeeded' });
    const events = await (await t.request(`/v1/runs/${id}/events`)).text();
    expect(events).toContain('event: run-end');
  });

  it(`answers do not outrun the store without bound: beyond ${MAX_INSERTS_IN_FLIGHT} inserts on their way, a dry run waits for the store`, async () => {
    const h = home();
    const t = await serve(h);
    await t.request('/v1/runs?limit=1');
    const hold = holdRunInserts(t.server);
    const extra = 4;
    let answered = 0;
    const submissions = Array.from({ length: MAX_INSERTS_IN_FLIGHT + extra }, async () => {
      const response = await submit(t.request);
      answered++;
      return response.status;
    });
    try {
      // Every submission has reached its insert; those beyond the bound wait for theirs.
      await until('every insert to be held', async () =>
        hold.held() === MAX_INSERTS_IN_FLIGHT + extra ? true : undefined,
      );
      await until(`the answers from the intake (${answered})`, async () =>
        answered === MAX_INSERTS_IN_FLIGHT ? true : undefined,
      );
      expect(answered).toBe(MAX_INSERTS_IN_FLIGHT);
    } finally {
      hold.release();
    }
    const statuses = await Promise.all(submissions);
    expect(statuses.every((status) => status === 202)).toBe(true);
  }, 60_000);

  it('many dry runs, each read right after its answer: every read finds its run', async () => {
    const h = home();
    const t = await serve(h);
    const ids = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const response = await submit(t.request);
        expect(response.status).toBe(202);
        const { id } = (await response.json()) as { id: string };
        const read = await t.request(`/v1/runs/${id}`);
        expect(read.status).toBe(200);
        expect(((await read.json()) as Json).status).toBe('succeeded');
        return id;
      }),
    );
    const listed = (await (await t.request('/v1/runs?limit=100')).json()) as { runs: Json[] };
    for (const id of ids) expect(listed.runs.some((run) => run.id === id)).toBe(true);
  });

  it('a dry run only in the intake is stored by the next start; a row whose audit record was never written is not', async () => {
    const h = home();
    const first = await serve(h);
    await first.request('/v1/runs?limit=1');
    const hold = holdRunInserts(first.server);
    const response = await submit(first.request);
    expect(response.status).toBe(202);
    const { id, trace_id: traceId } = (await response.json()) as { id: string; trace_id: string };
    expect(hold.held()).toBe(1);
    // The worker goes before it ever sees the insert: the run is durable in the intake only.
    await sqliteWorkerThread(first.server.store.db)?.terminate();
    await first.server.close();
    servers.splice(servers.indexOf(first.server), 1);

    // A row the previous process wrote to the intake and died before its audit records were.
    const forged = openIntake<IntakeRun>(
      { magic: 'RUNE-RUN-INTAKE v1', noun: 'run' },
      `${h.storePath}.run-intake`,
    );
    const [kept] = forged.replay();
    expect(kept?.run.id).toBe(id);
    const orphan: IntakeRun = {
      ...(kept as IntakeRun),
      run: { ...(kept as IntakeRun).run, id: randomUUID(), trace_id: 'f'.repeat(32) },
    };
    expect(forged.append([orphan])).toBe(true);
    forged.close();

    const second = await serve(h);
    expect(second.server.recovered.replayed).toBe(1);
    const run = (await (await second.request(`/v1/runs/${id}`)).json()) as Json;
    expect(run).toMatchObject({ id, trace_id: traceId, status: 'succeeded' });
    expect(await (await second.request(`/v1/runs/${id}/events`)).text()).toContain(
      'event: run-end',
    );
    expect((await second.request(`/v1/runs/${orphan.run.id}`)).status).toBe(404);
    // A third start has nothing to replay: the intake started over.
    await second.server.close();
    servers.splice(servers.indexOf(second.server), 1);
    const third = await serve(h);
    expect(third.server.recovered.replayed ?? 0).toBe(0);
  });

  it('rune serve killed with SIGKILL in a burst of dry runs: every answered run is there after the restart, with its audit record', async () => {
    const h = home();
    const setup = await serve(h);
    const { token } = setup;
    await setup.server.close();
    servers.splice(0);
    const served = spawnServe(h, children);
    const { child, exited } = served;
    const url = await served.url;
    const answered = new Map<string, string>();
    const post = async (): Promise<void> => {
      try {
        const response = await fetch(`${url}/v1/runs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(DRY_RUN),
        });
        if (response.status !== 202) return;
        const { id, trace_id: traceId } = (await response.json()) as {
          id: string;
          trace_id: string;
        };
        answered.set(id, traceId);
        // Killed the moment the first answers arrive, while later submissions are in flight.
        if (answered.size === 10) child.kill('SIGKILL');
      } catch {
        // cut off by the kill: never answered
      }
    };
    await Promise.all(Array.from({ length: 120 }, () => post()));
    child.kill('SIGKILL');
    await exited;
    expect(answered.size).toBeGreaterThanOrEqual(10);

    const after = await serve(h);
    for (const [id, traceId] of answered) {
      const read = await after.request(`/v1/runs/${id}`);
      expect(read.status, `run ${id}`).toBe(200);
      expect(((await read.json()) as Json).status).toBe('succeeded');
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    }
    const verified = (await (await after.request('/v1/audit/verify')).json()) as Json;
    expect(verified.ok).toBe(true);
    for (const traceId of answered.values()) {
      const { records } = (await (await after.request(`/v1/audit?trace_id=${traceId}`)).json()) as {
        records: Json[];
      };
      expect(records.map((record) => record.event)).toContain('dry-run');
    }
  }, 120_000);
});

describe('the token cache', () => {
  it('a token revoked by `rune token revoke` in another process is refused by the next request, after the server read it from memory', async () => {
    const h = home();
    const t = await serve(h);
    const { token } = await createToken(t.server.store, {
      name: 'short-lived',
      role: 'viewer',
      expires: '1d',
    });
    const read = () =>
      t.request('/v1/runs?limit=1', { headers: { authorization: `Bearer ${token}` } });
    // Read and cached: the next requests do not ask the store.
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(200);
    const revoked = spawnSync(
      process.execPath,
      [CLI, 'token', 'revoke', 'short-lived', '--config', h.configFile],
      { env: h.env, encoding: 'utf8' },
    );
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(await errorOf(await read())).toMatchObject({ status: 401, code: 'AUTH_TOKEN_REVOKED' });
    // And a token created by another process works at once.
    const created = spawnSync(
      process.execPath,
      [CLI, 'token', 'create', '--name', 'fresh', '--role', 'viewer', '--config', h.configFile],
      { env: h.env, encoding: 'utf8' },
    );
    expect(created.status, created.stderr).toBe(0);
    const fresh = /rune_[A-Za-z0-9_-]+/.exec(created.stdout)?.[0];
    expect(fresh).toBeDefined();
    const accepted = await t.request('/v1/runs?limit=1', {
      headers: { authorization: `Bearer ${fresh}` },
    });
    expect(accepted.status).toBe(200);
  });
});
