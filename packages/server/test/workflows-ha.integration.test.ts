/**
 * Workflows on several `rune serve` instances of one real PostgreSQL store (started by the test on
 * loopback), with the real `hold` plugin on the local transport:
 *
 * - A starting instance must not interrupt the workflows a live instance is executing (before
 *   `workflow_runs.instance_id`, 0017_workflow_owner, every start-up interrupted every `running`
 *   workflow of the store: this test failed with the workflow `interrupted`).
 * - When an instance dies (`kill -9` of the built CLI, so the death is real), a live instance
 *   marks its running workflow `interrupted` within the lease (WORKFLOW_INTERRUPTED), and its
 *   storm-held workflow is followed by one live instance of two: after approval the next step
 *   runs once.
 * - An approval given through a live instance after the owner's `kill -9` but before the sweep
 *   declared it dead (the lease window): the storm-held workflow is resumed there, its second step
 *   runs once, and the audit trail reads started / resumed (taken over from A) / succeeded (it
 *   ended `interrupted` before workflows/held-workflows.ts). An approved held run that was running
 *   on the dead instance interrupts its workflow instead (it ended `failed` when followed). An
 *   approval step's run approved in the lease window runs once; its workflow is interrupted and
 *   names it.
 * - A stale engine (its workflow taken over while it stalled) submits no further step (the
 *   second step ran twice without the ownership check).
 * - Eight takers of one dead instance's workflow at once: one wins (fails with 8 winners without
 *   the `instance_id = <owner read>` condition); a save by the former owner is refused (fails
 *   without the save's ownership condition).
 *
 * Readiness is the plugin's pid file and the stored records, never a sleep. The dead-instance
 * test runs the built CLI (`npx -y pnpm@10.34.9 build` first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowRunRecord } from '@rune/protocol';
import { isProcessAlive } from '@rune/transport/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuneServer, createToken, openRunStore, type RuneServer } from '../src/index.js';
import { heldWorkflowFates } from '../src/workflows/held-workflows.js';
import { orphanedWorkflowRuns, takeWorkflowRun } from '../src/workflows/workflow-owner.js';
import { saveWorkflowRun } from '../src/workflows/workflow-store.js';
import { amPayload, postAm } from './alert-server.js';
import { createTestHome, HOLD_THEN_NOOP, serveListening, type TestHome, until } from './harness.js';
import { postgresAvailable, usePostgresPerFile } from './postgres.js';
import { newRun } from './store-rows.js';

type Json = Record<string, unknown>;
const CLI = new URL('../../../apps/cli/bin/rune.js', import.meta.url).pathname;
const LEASE_MS = 3_000;
const AM_TOKEN = 'workflows-ha-am-token-0123456789';

const postgres = usePostgresPerFile('workflows_ha');

describe.skipIf(!postgresAvailable)('workflows on several instances of one PostgreSQL', () => {
  const servers: RuneServer[] = [];
  const children: ChildProcess[] = [];
  const pids: number[] = [];
  const homes: TestHome[] = [];

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    for (const server of servers.splice(0)) await server.close().catch(() => undefined);
    // A local hold plugin can outlive a killed instance: stop it here.
    for (const pid of pids.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const home of homes.splice(0)) home.remove();
  });

  /** A home on a fresh database with the `hold-then-noop` workflow; returns it and a token. */
  const setUp = async (): Promise<{
    home: TestHome;
    token: string;
    admin: string;
    markers: string;
  }> => {
    const url = await postgres.freshUrl();
    const home = createTestHome();
    homes.push(home);
    const dir = join(home.dir, 'workflows');
    mkdirSync(dir);
    copyFileSync(HOLD_THEN_NOOP, join(dir, 'hold-then-noop.yaml'));
    writeFileSync(
      join(dir, 'two-notes.yaml'),
      [
        'schema_version: workflow_v1',
        'name: two-notes',
        'inputs:',
        '  nodes: { type: array, required: true }',
        'steps:',
        '  - { id: first, action: noop, nodes: "${{ inputs.nodes }}" }',
        '  - { id: second, action: noop, nodes: "${{ inputs.nodes }}" }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'hold-notes.yaml'),
      [
        'schema_version: workflow_v1',
        'name: hold-notes',
        'inputs:',
        '  nodes: { type: array, required: true }',
        '  marker_dir: { type: string, required: true }',
        'steps:',
        '  - id: hold',
        '    action: hold',
        '    nodes: "${{ inputs.nodes }}"',
        '    params: { hold_ms: 60000, marker_dir: "${{ inputs.marker_dir }}" }',
        '  - { id: after, action: noop, nodes: "${{ inputs.nodes }}" }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'gate-then-hold.yaml'),
      [
        'schema_version: workflow_v1',
        'name: gate-then-hold',
        'inputs:',
        '  marker_dir: { type: string, required: true }',
        'steps:',
        '  - id: gate',
        '    approval: { message: go on? }',
        '  - id: hold',
        '    action: hold',
        '    nodes: localhost',
        '    params: { hold_ms: 60000, marker_dir: "${{ inputs.marker_dir }}" }',
        '  - { id: after, action: noop, nodes: localhost }',
        '',
      ].join('\n'),
    );
    const markers = join(home.dir, 'markers');
    mkdirSync(markers);
    // Alerts reach inventory nodes only: web1 is this host (the local transport).
    const inventory = join(home.dir, 'inventory.yaml');
    writeFileSync(inventory, 'nodes:\n  web1: { address: localhost }\n');
    writeFileSync(join(home.dir, 'am.token'), `${AM_TOKEN}\n`, { mode: 0o600 });
    // max_runs 1: the first match runs, the next is held for approval (the storm breaker).
    const rules = join(home.dir, 'alert-rules.yaml');
    writeFileSync(
      rules,
      `schema_version: rune-alert-rules/v1
receivers:
  am: { kind: alertmanager, bearer_token: "file:${join(home.dir, 'am.token')}" }
storm: { max_runs: 1, window: 1h, hold_expires: 1h }
rules:
  - name: notes
    match: { labels: { alertname: Notes } }
    workflow: two-notes
    throttle: { group_by: fingerprint }
  - name: hold-notes
    match: { labels: { alertname: HoldNotes } }
    workflow: hold-notes
    inputs: { marker_dir: ${JSON.stringify(markers)} }
    throttle: { group_by: fingerprint }
`,
    );
    writeFileSync(
      home.configFile,
      readFileSync(home.configFile, 'utf8')
        .replace(/^store = .*$/m, `store = ${JSON.stringify(url)}\nlease = "${LEASE_MS / 1000}s"`)
        .replace('[core]\n', `[core]\ninventory = ${JSON.stringify(inventory)}\n`)
        .replace(
          '[server]\n',
          `[server]\nworkflows = ${JSON.stringify(dir)}\nalert_rules = ${JSON.stringify(rules)}\n`,
        ),
    );
    const store = await openRunStore(url);
    const token = (await createToken(store, { name: 'ops', role: 'operator', expires: '1h' }))
      .token;
    const admin = (await createToken(store, { name: 'lead', role: 'admin', expires: '1h' })).token;
    await store.close();
    return { home, token, admin, markers };
  };

  const client = (url: string, token: string) => ({
    post: async (path: string, body: unknown): Promise<{ status: number; body: Json }> => {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Json };
    },
    get: async (path: string): Promise<Json> =>
      (await (
        await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as Json,
  });

  /** A `rune serve` child process (the built CLI), so that `kill -9` is real. */
  const serveChild = async (home: TestHome) => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--config', home.configFile, '--listen', '127.0.0.1:0'],
      { env: home.env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(child);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const url = await serveListening(child).url;
    return {
      url,
      kill9: async () => {
        child.kill('SIGKILL');
        await exited;
      },
    };
  };

  /** Waits for the hold plugin's `marker` (its pids, stopped after the test); returns the pids. */
  const holdPids = async (marker: string, what: string): Promise<number[]> => {
    const held = await until(what, async () => {
      const text = existsSync(marker) ? readFileSync(marker, 'utf8') : '';
      return /^\d+ \d+\n$/.test(text) ? text.trim().split(' ').map(Number) : undefined;
    });
    pids.push(...held);
    return held;
  };

  /** The record of workflow run `id`, read through `api`, once it no longer runs. */
  const endedWorkflow = async (
    api: ReturnType<typeof client>,
    id: string,
    what: string,
    withinMs?: number,
  ): Promise<WorkflowRunRecord> =>
    (await until(
      what,
      async () => {
        const body = await api.get(`/v1/workflows/runs/${id}`);
        // An error body (the rate limit) is no record: ask again.
        return body.status === undefined || body.status === 'running' ? undefined : body;
      },
      withinMs,
      100,
    )) as unknown as WorkflowRunRecord;

  /** Workflow run `id` once the takeover interrupted it (WORKFLOW_INTERRUPTED, exit 70). */
  const interruptedWorkflow = async (
    api: ReturnType<typeof client>,
    id: string,
    withinMs: number,
  ): Promise<WorkflowRunRecord> => {
    const record = await endedWorkflow(api, id, 'the takeover of the workflow', withinMs);
    expect(record).toMatchObject({ status: 'interrupted', exit_code: 70 });
    expect(record.error?.code).toBe('WORKFLOW_INTERRUPTED');
    return record;
  };

  /** The runs of trace `traceId` in the store. */
  const runsOfTrace = (server: RuneServer, traceId: string) =>
    server.store.db
      .selectFrom('runs')
      .select(['id', 'status'])
      .where('trace_id', '=', traceId)
      .execute();

  /** The workflow run of trace `traceId` and its owner. */
  const workflowOfTrace = (server: RuneServer, traceId: string) =>
    server.store.db
      .selectFrom('workflow_runs')
      .select(['id', 'instance_id'])
      .where('trace_id', '=', traceId)
      .executeTakeFirstOrThrow();

  /** The `workflow` audit records of workflow run `id` once it has `count` (its end is the last). */
  const workflowAudit = (server: RuneServer, id: string, count: number): Promise<Json[]> =>
    until(`${count} audit records of workflow run ${id}`, async () => {
      const rows = await server.store.db
        .selectFrom('audit_records')
        .select('record_json')
        .orderBy('seq')
        .execute();
      const entries = rows
        .map((entry) => JSON.parse(entry.record_json) as Json)
        .filter((entry) => entry.event === 'workflow' && entry.run_id === id);
      return entries.length < count ? undefined : entries;
    });

  /** The owner of workflow run `id`. */
  const ownerOf = async (server: RuneServer, id: string): Promise<string | null> =>
    (
      await server.store.db
        .selectFrom('workflow_runs')
        .select('instance_id')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).instance_id;

  /** Starts the workflow on `url`; resolves with its ids and the hold plugin's pids once it runs. */
  const startHolding = async (url: string, token: string, markers: string) => {
    const api = client(url, token);
    const accepted = await api.post('/v1/workflows/hold-then-noop/runs', {
      inputs: { marker_dir: markers },
    });
    expect(accepted.status).toBe(202);
    const held = await holdPids(
      join(markers, `${accepted.body.trace_id as string}-localhost`),
      'the hold step to start',
    );
    const id = accepted.body.workflow_run_id as string;
    const record = await until('the record to say the hold step runs', async () => {
      const body = (await api.get(`/v1/workflows/runs/${id}`)) as unknown as WorkflowRunRecord;
      return body.steps?.some((step) => step.id === 'hold' && step.status === 'running')
        ? body
        : undefined;
    });
    return { id, sleepPid: held[0] as number, record };
  };

  it('a starting instance leaves the workflow a live instance executes running; it ends succeeded', async () => {
    const { home, token, markers } = await setUp();
    const a = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(a);
    const aUrl = await a.listen();
    const { id, sleepPid, record } = await startHolding(aUrl, token, markers);

    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const bUrl = await b.listen();
    const viaB = client(bUrl, token);
    const during = (await viaB.get(`/v1/workflows/runs/${id}`)) as unknown as WorkflowRunRecord;
    expect(during.status).toBe('running');
    const holdRun = async (): Promise<Json | undefined> =>
      ((await viaB.get('/v1/runs?limit=50')) as { runs: Json[] }).runs.find(
        (run) => run.action === 'hold' && run.trace_id === record.trace_id,
      );
    expect((await holdRun())?.status).toBe('running');

    // The step ends: the sleep the plugin waits on goes.
    process.kill(sleepPid, 'SIGTERM');
    const ended = await endedWorkflow(viaB, id, 'the workflow to end');
    expect(ended.status).toBe('succeeded');
    expect(ended.steps.map((step) => [step.id, step.status])).toEqual([
      ['hold', 'succeeded'],
      ['after', 'succeeded'],
    ]);
    expect((await holdRun())?.status).toBe('succeeded');
  }, 90_000);

  it('a cancel through another instance stops the workflow where it runs: its plugin killed, the rest skipped', async () => {
    const { home, token, markers } = await setUp();
    const a = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(a);
    const aUrl = await a.listen();
    const { id, record } = await startHolding(aUrl, token, markers);
    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const viaB = client(await b.listen(), token);
    expect(await ownerOf(b, id)).toBe(a.manager.cluster.instanceId);

    const cancel = await viaB.post(`/v1/workflows/runs/${id}/cancel`, {});
    expect(cancel.status).toBe(202);
    const ended = await endedWorkflow(viaB, id, 'the cancelled workflow to end');
    expect(ended).toMatchObject({ status: 'cancelled', exit_code: 130 });
    expect(ended.error).toMatchObject({ code: 'RUN_CANCELLED', message: 'cancelled by token:ops' });
    expect(ended.steps.map((step) => [step.id, step.status])).toEqual([
      ['hold', 'cancelled'],
      ['after', 'skipped'],
    ]);
    // Nothing is left running on the node, and nothing after the hold step was submitted.
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
    expect(await runsOfTrace(b, record.trace_id)).toEqual([
      { id: ended.steps[0]?.attempts[0]?.run_id, status: 'cancelled' },
    ]);
  }, 90_000);

  it('kill -9 of the instance running a workflow: a live instance marks it interrupted within the lease', async () => {
    const { home, token, markers } = await setUp();
    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const bUrl = await b.listen();
    const a = await serveChild(home);
    const { id } = await startHolding(a.url, token, markers);
    await a.kill9();
    const killedAt = Date.now();

    const viaB = client(bUrl, token);
    const record = await interruptedWorkflow(viaB, id, LEASE_MS * 4);
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS * 2);
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['hold', 'cancelled'],
      ['after', 'skipped'],
    ]);
    // Nothing started after it.
    const runs = (await viaB.get('/v1/runs?limit=50')) as { runs: Json[] };
    expect(runs.runs.filter((run) => run.action === 'noop')).toEqual([]);
  }, 90_000);

  /**
   * Two alerts to `a`: the first runs the `two-notes` workflow and fills the storm window, the
   * second's (`alertname`: Notes for `two-notes`, HoldNotes for `hold-notes`) is held (running, its first run awaiting approval, followed by `a`'s engine).
   */
  const holdWorkflowOn = async (a: { url: string }, token: string, alertname = 'Notes') => {
    const post = (fingerprint: string, name = 'Notes') =>
      postAm(
        a,
        amPayload(
          [
            {
              labels: { alertname: name, instance: 'web1:9100' },
              startsAt: new Date().toISOString(),
              fingerprint,
            },
          ],
          `{}:{alertname="Notes",fp="${fingerprint}"}`,
        ),
        'am',
        `Bearer ${AM_TOKEN}`,
      );
    const viaA = client(a.url, token);
    const decided = async (response: Response): Promise<Json> => {
      expect(response.status).toBe(202);
      const [alertId] = ((await response.json()) as { alert_ids: string[] }).alert_ids;
      return until('the alert to be decided', async () => {
        const alert = await viaA.get(`/v1/alerts/${alertId as string}`);
        return alert.outcome === 'received' ? undefined : alert;
      });
    };
    const first = await decided(await post('held-1'));
    expect(first.outcome, JSON.stringify(first)).toBe('ran');
    const heldAlert = await decided(await post('held-2', alertname));
    expect(heldAlert.outcome).toBe('held');
    const heldRun = heldAlert.run_id as string;
    const { trace_id: traceId } = await viaA.get(`/v1/runs/${heldRun}`);
    return { heldRun, traceId: traceId as string };
  };

  it('kill -9 of the instance following a storm-held workflow: one live instance follows it, its next step runs once after approval', async () => {
    const { home, token, admin } = await setUp();
    const a = await serveChild(home);
    const { heldRun, traceId } = await holdWorkflowOn(a, token);

    // Two live instances; A dies.
    for (let index = 0; index < 2; index++) {
      const server = await createRuneServer({
        configFile: home.configFile,
        env: home.env,
        port: 0,
      });
      servers.push(server);
      await server.listen();
    }
    const [b, c] = servers as [RuneServer, RuneServer];
    const workflowRunId = (await workflowOfTrace(b, traceId)).id;
    await a.kill9();
    const owner = await until(
      'a live instance to follow the held workflow',
      async () => {
        const owner = await ownerOf(b, workflowRunId);
        return [b, c].some((server) => server.manager.cluster.instanceId === owner)
          ? owner
          : undefined;
      },
      LEASE_MS * 4,
    );
    const follower = b.manager.cluster.instanceId === owner ? b : c;
    expect(
      (await client(follower.url as string, token).get(`/v1/workflows/runs/${workflowRunId}`))
        .status,
    ).toBe('running');

    // Approved on the other instance: the workflow goes on once.
    const other = follower === b ? c : b;
    const approved = await client(other.url as string, admin).post(`/v1/runs/${heldRun}/approve`, {
      comment: 'looked at',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBeLessThan(300);
    const viaOther = client(other.url as string, token);
    const record = await endedWorkflow(viaOther, workflowRunId, 'the held workflow to end');
    expect(record.status).toBe('succeeded');
    const runs = await runsOfTrace(b, traceId);
    // The held run and the second step's one run: no engine submitted the second step twice.
    expect(runs.map((run) => run.status)).toEqual(['succeeded', 'succeeded']);
    expect(runs.map((run) => run.id)).toContain(heldRun);
  }, 120_000);

  it('kill -9, then an approval through a live instance inside the lease window: the sweep resumes the held workflow there, its second step runs once', async () => {
    const { home, token, admin } = await setUp();
    const a = await serveChild(home);
    const { heldRun, traceId } = await holdWorkflowOn(a, token);
    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const bUrl = await b.listen();
    const row = await workflowOfTrace(b, traceId);
    const workflowRunId = row.id;
    const deadOwner = row.instance_id as string;
    expect(deadOwner).not.toBeNull();
    await a.kill9();

    // Approved through B before B's sweep declared A dead: the held run leaves awaiting_approval
    // while A still owns the workflow.
    const approved = await client(bUrl, admin).post(`/v1/runs/${heldRun}/approve`, {
      comment: 'looked at',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBeLessThan(300);
    const [ownerState, stillOwned] = await Promise.all([
      b.store.db
        .selectFrom('cluster_instances')
        .select('state')
        .where('id', '=', deadOwner)
        .executeTakeFirstOrThrow(),
      ownerOf(b, workflowRunId),
    ]);
    expect(ownerState.state).toBe('active');
    expect(stillOwned).toBe(deadOwner);

    const viaB = client(bUrl, token);
    const record = await endedWorkflow(viaB, workflowRunId, 'the workflow to end', LEASE_MS * 10);
    expect(record.status, JSON.stringify(record.error)).toBe('succeeded');
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['first', 'succeeded'],
      ['second', 'succeeded'],
    ]);
    const runs = await runsOfTrace(b, traceId);
    // The held run (run once) and the second step's one run.
    expect(runs.map((run) => run.status)).toEqual(['succeeded', 'succeeded']);
    expect(runs.map((run) => run.id)).toContain(heldRun);
    expect(await ownerOf(b, workflowRunId)).toBe(b.manager.cluster.instanceId);
    // The audit trail: started on A, resumed on B (taken over from A), ended succeeded (its
    // record is written after the workflow's last save).
    const audited = await workflowAudit(b, workflowRunId, 3);
    expect(audited.map((entry) => entry.status)).toEqual(['started', 'resumed', 'succeeded']);
    expect(audited[1]?.metadata).toMatchObject({ taken_over_from: deadOwner });
  }, 120_000);

  it('kill -9 while the approved held run runs on the dead instance: the run is interrupted, and so is the workflow', async () => {
    const { home, token, admin, markers } = await setUp();
    const a = await serveChild(home);
    const { heldRun, traceId } = await holdWorkflowOn(a, token, 'HoldNotes');
    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const bUrl = await b.listen();
    // Approved through A: A runs the held run (its plugin writes its pids once it runs).
    const approved = await client(a.url, admin).post(`/v1/runs/${heldRun}/approve`, {
      comment: 'looked at',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBeLessThan(300);
    await holdPids(join(markers, `${traceId}-web1`), 'the held run to run on A');
    const workflowRunId = (await workflowOfTrace(b, traceId)).id;
    await a.kill9();

    // The run had reached core on A: the run takeover interrupts it, and the workflow, whose step
    // was running at the crash, is interrupted (not resumed into a failed step).
    const viaB = client(bUrl, token);
    const record = await interruptedWorkflow(viaB, workflowRunId, LEASE_MS * 10);
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['hold', 'cancelled'],
      ['after', 'skipped'],
    ]);
    const runs = await runsOfTrace(b, traceId);
    expect(runs).toEqual([{ id: heldRun, status: 'interrupted' }]);
  }, 120_000);

  it('kill -9, then an approval-step run approved through a live instance inside the lease window: it runs once, the workflow is interrupted and names it', async () => {
    const { home, token, admin, markers } = await setUp();
    const a = await serveChild(home);
    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const bUrl = await b.listen();
    const accepted = await client(a.url, token).post('/v1/workflows/gate-then-hold/runs', {
      inputs: { marker_dir: markers },
    });
    expect(accepted.status).toBe(202);
    const workflowRunId = accepted.body.workflow_run_id as string;
    const traceId = accepted.body.trace_id as string;
    const viaB = client(bUrl, token);
    const guarded = await until('the guarded run to await approval', async () =>
      ((await viaB.get('/v1/runs?limit=50')) as { runs: Json[] }).runs.find(
        (run) => run.trace_id === traceId && run.status === 'awaiting_approval',
      ),
    );
    await a.kill9();
    const approved = await client(bUrl, admin).post(`/v1/runs/${guarded.id as string}/approve`, {
      comment: 'looked at',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBeLessThan(300);

    // The approved run goes on (on B, the one live instance); the workflow, whose engine died
    // with A, is interrupted, and its error says which run goes on.
    const [sleepPid] = await holdPids(
      join(markers, `${traceId}-localhost`),
      'the approved run to run',
    );
    const record = await interruptedWorkflow(viaB, workflowRunId, LEASE_MS * 10);
    expect(record.error?.message).toContain(`its run ${guarded.id as string} was taken over`);
    expect(record.steps.find((step) => step.id === 'after')?.status).toBe('skipped');
    // It ends on its own; nothing of the workflow runs after it.
    process.kill(sleepPid as number, 'SIGTERM');
    await until('the approved run to end', async () => {
      const run = await viaB.get(`/v1/runs/${guarded.id as string}`);
      return run.status === 'succeeded' ? run : undefined;
    });
    const runs = await runsOfTrace(b, traceId);
    expect(runs).toEqual([{ id: guarded.id, status: 'succeeded' }]);
  }, 120_000);

  it('a held workflow taken over that cannot be resumed (its file is gone) is interrupted, not left running', async () => {
    const { home, token } = await setUp();
    const a = await serveChild(home);
    const { heldRun, traceId } = await holdWorkflowOn(a, token);
    const b = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(b);
    const bUrl = await b.listen();
    const workflowRunId = (await workflowOfTrace(b, traceId)).id;
    rmSync(join(home.dir, 'workflows', 'two-notes.yaml'));
    await a.kill9();

    const record = await interruptedWorkflow(client(bUrl, token), workflowRunId, LEASE_MS * 10);
    expect(record.error?.message).toContain('it could not be resumed (no workflow two-notes)');
    expect(await ownerOf(b, workflowRunId)).toBe(b.manager.cluster.instanceId);
    // Its held run is cancelled with it: a later approval runs nothing.
    expect(await runsOfTrace(b, traceId)).toEqual([{ id: heldRun, status: 'cancelled' }]);
  }, 120_000);

  it('an instance whose held workflow was taken over (declared dead while it stalled) does not submit its next step', async () => {
    const { home, token, admin } = await setUp();
    const a = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    servers.push(a);
    const aUrl = await a.listen();
    const { heldRun, traceId } = await holdWorkflowOn({ url: aUrl }, token);
    const row = await workflowOfTrace(a, traceId);
    // A live taker (its heartbeat ahead of the clock: A's sweep never declares it dead) and the
    // takeover's own conditional UPDATE, as its sweep does it once A is declared dead.
    await a.store.db
      .insertInto('cluster_instances')
      .values({
        id: 'the-taker',
        host: 'test',
        pid: 1,
        started_at: new Date().toISOString(),
        heartbeat_ms: Date.now() + 3_600_000,
        lease_ms: LEASE_MS,
        state: 'active',
        taken_over_by: null,
      })
      .execute();
    expect(await takeWorkflowRun(a.store.db, row.id, row.instance_id, 'the-taker')).toBe(true);

    // A's engine still follows the held run: approved, the run ends, and A must not go on.
    const approved = await client(aUrl, admin).post(`/v1/runs/${heldRun}/approve`, {
      comment: 'looked at',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBeLessThan(300);
    // A's engine: started, then its end (its second step refused).
    const [, ended] = await workflowAudit(a, row.id, 2);
    expect(ended, JSON.stringify(ended)).toMatchObject({ error_code: 'WORKFLOW_INTERRUPTED' });
    const runs = await runsOfTrace(a, traceId);
    expect(runs).toEqual([{ id: heldRun, status: 'succeeded' }]);
    // The taker's row stands: A's saves were refused.
    expect(
      await a.store.db
        .selectFrom('workflow_runs')
        .select(['status', 'instance_id'])
        .where('id', '=', row.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'running', instance_id: 'the-taker' });
  }, 90_000);

  it('a held workflow of a dead instance follows its held run: followed, left to the run takeover, or interrupted', async () => {
    const store = await openRunStore(await postgres.freshUrl());
    try {
      const now = new Date().toISOString();
      const instance = (id: string, state: string) => ({
        id,
        host: 'test',
        pid: 1,
        started_at: now,
        heartbeat_ms: Date.now(),
        lease_ms: LEASE_MS,
        state,
        taken_over_by: null,
      });
      await store.db
        .insertInto('cluster_instances')
        .values([instance('dead-1', 'dead'), instance('live-0', 'active')])
        .execute();
      const traceId = 'b'.repeat(32);
      await store.insertRun(
        newRun('held-1', {
          trace_id: traceId,
          source: 'workflow',
          status: 'running',
          workflow_run_id: 'wf-held',
        }),
        ['web1'],
      );
      const record = {
        schema_version: 'rune-workflow-run/v1',
        workflow_run_id: 'wf-held',
        workflow: 'two-notes',
        trace_id: traceId,
        status: 'running',
        started_at: now,
        steps: [],
      } as unknown as WorkflowRunRecord;
      await saveWorkflowRun(store.db, record, 'alert:am', new Date(), 'dead-1');
      await store.db
        .insertInto('alerts')
        .values({
          id: 'alert-1',
          received_at: now,
          receiver: 'am',
          kind: 'alertmanager',
          status: 'firing',
          fingerprint: 'f1',
          starts_at: now,
          closed: 0,
          alertname: 'Notes',
          labels_json: '{}',
          annotations_json: '{}',
          rule: 'notes',
          group_key: null,
          action: null,
          node: 'web1',
          outcome: 'released',
          reason: null,
          error_json: null,
          run_id: 'held-1',
          request_json: null,
          due_at: null,
          held_until: null,
          released_by: 'lead',
          automatic: 0,
          decided_at: now,
        })
        .execute();
      await store.db
        .insertInto('alert_workflow_runs')
        .values({
          alert_id: 'alert-1',
          workflow: 'two-notes',
          workflow_run_id: 'wf-held',
          episode_key: 'e1',
        })
        .execute();
      const fate = async (): Promise<string> => {
        const fates = await heldWorkflowFates(store.db, new Set(['wf-held']), true);
        if (fates.follow.some((held) => held.workflowRunId === 'wf-held')) return 'follow';
        if (fates.wait.has('wf-held')) return 'wait';
        return fates.interrupt.has('wf-held') ? 'interrupt' : 'not held';
      };
      const claim = (instanceId: string, state: string) =>
        store.db
          .insertInto('run_claims')
          .values({ run_id: 'held-1', instance_id: instanceId, state, claimed_at: now })
          .onConflict((conflict) =>
            conflict.column('run_id').doUpdateSet({ instance_id: instanceId, state }),
          )
          .execute();
      const status = (value: string) =>
        store.db.updateTable('runs').set({ status: value }).where('id', '=', 'held-1').execute();

      // Approved and started on the dead instance: left alone until the run takeover has ended it
      // (interrupted), also while a survivor holds its `interrupting` claim.
      await claim('dead-1', 'running');
      expect(await fate()).toBe('wait');
      await claim('live-0', 'interrupting');
      expect(await fate()).toBe('wait');
      // Queued under the dead claim: adopted or interrupted by the run takeover first.
      await status('queued');
      await claim('dead-1', 'queued');
      expect(await fate()).toBe('wait');
      // Adopted (queued or running on a live instance): followed.
      await claim('live-0', 'queued');
      expect(await fate()).toBe('follow');
      await status('running');
      await claim('live-0', 'running');
      expect(await fate()).toBe('follow');
      // Ended, or still awaiting approval: followed; interrupted: the workflow is interrupted.
      await store.db.deleteFrom('run_claims').where('run_id', '=', 'held-1').execute();
      for (const ended of ['succeeded', 'failed', 'cancelled', 'awaiting_approval']) {
        await status(ended);
        expect(await fate(), ended).toBe('follow');
      }
      await status('interrupted');
      expect(await fate()).toBe('interrupt');
      // A run of another workflow in the same trace (one webhook's alerts share its trace): this
      // one is still held.
      await status('succeeded');
      await store.insertRun(
        newRun('other-1', {
          trace_id: traceId,
          source: 'workflow',
          status: 'queued',
          workflow_run_id: 'wf-other',
        }),
        ['web2'],
      );
      expect(await fate()).toBe('follow');
      // A second run of the workflow (its next step was submitted): no longer held at all.
      await store.insertRun(
        newRun('step-2', {
          trace_id: traceId,
          source: 'workflow',
          status: 'queued',
          workflow_run_id: 'wf-held',
        }),
        ['web1'],
      );
      expect(await fate()).toBe('not held');
    } finally {
      await store.close();
    }
  }, 60_000);

  it("a dead instance's workflow run goes to exactly one of many takers at once; a former owner cannot overwrite it", async () => {
    const store = await openRunStore(await postgres.freshUrl());
    try {
      const instance = (id: string, state: string) => ({
        id,
        host: 'test',
        pid: 1,
        started_at: new Date().toISOString(),
        heartbeat_ms: Date.now(),
        lease_ms: LEASE_MS,
        state,
        taken_over_by: null,
      });
      const takers = Array.from({ length: 8 }, (_, index) => `live-${index}`);
      await store.db
        .insertInto('cluster_instances')
        .values([instance('dead-1', 'dead'), ...takers.map((id) => instance(id, 'active'))])
        .execute();
      const record = {
        schema_version: 'rune-workflow-run/v1',
        workflow_run_id: 'wf-1',
        workflow: 'w',
        trace_id: 'a'.repeat(32),
        status: 'running',
        started_at: new Date().toISOString(),
        steps: [],
      } as unknown as WorkflowRunRecord;
      expect(await saveWorkflowRun(store.db, record, 'ops', new Date(), 'dead-1')).toBe(true);
      expect(
        (await orphanedWorkflowRuns(store.db, 'live-0', { unowned: false })).map((r) => r.id),
      ).toEqual(['wf-1']);
      // Every taker read the dead owner; the conditional UPDATE lets one of them win.
      const won = await Promise.all(
        takers.map((me) => takeWorkflowRun(store.db, 'wf-1', 'dead-1', me)),
      );
      expect(won.filter(Boolean)).toHaveLength(1);
      const owner = takers[won.indexOf(true)] as string;
      expect(await orphanedWorkflowRuns(store.db, 'live-0', { unowned: false })).toEqual([]);
      // The dead instance (fenced, still running) writes again: refused, the taker's row stands.
      expect(
        await saveWorkflowRun(
          store.db,
          { ...record, status: 'failed' },
          'ops',
          new Date(),
          'dead-1',
        ),
      ).toBe(false);
      expect(
        await saveWorkflowRun(
          store.db,
          { ...record, status: 'interrupted' },
          'ops',
          new Date(),
          owner,
        ),
      ).toBe(true);
      const row = await store.db
        .selectFrom('workflow_runs')
        .select(['status', 'instance_id'])
        .where('id', '=', 'wf-1')
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ status: 'interrupted', instance_id: owner });
    } finally {
      await store.close();
    }
  }, 60_000);
});
