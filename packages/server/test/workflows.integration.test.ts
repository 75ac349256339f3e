/**
 * `POST /v1/workflows/{name}/runs` against a real server: workflows come from the `[server]
 * workflows` directory, every step is a run submitted through the run manager (stored with source
 * `workflow` and the workflow's trace id), the record is readable while and after it runs, and
 * refusals happen before anything runs. The restart test kills a real `rune serve` (-9) while a
 * step holds its node (readiness: the plugin's pid file) and starts it again: the workflow is
 * `interrupted`, not resumed. That test runs the built CLI (`npx -y pnpm@10.34.9 build` first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { validateWorkflowRunRecord, type WorkflowRunRecord } from '@rune/protocol';
import { isProcessAlive } from '@rune/transport/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuneServer, createToken, openRunStore } from '../src/index.js';
import {
  createTestHome,
  HOLD_THEN_NOOP,
  serveListening,
  startTestServer,
  type TestHome,
  type TestServer,
  until,
  waitForWorkflow,
} from './harness.js';

type Json = Record<string, unknown>;
const CLI = new URL('../../../apps/cli/bin/rune.js', import.meta.url).pathname;

/** A workflow directory with the workflows these tests run. */
function writeWorkflows(home: TestHome): string {
  const dir = join(home.dir, 'workflows');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'check-then-diagnose.yaml'),
    [
      'schema_version: workflow_v1',
      'name: check-then-diagnose',
      'inputs:',
      '  paths: { type: array, default: ["/nonexistent-rune-path"] }',
      'steps:',
      '  - id: check',
      '    action: check-disk',
      '    nodes: localhost',
      '    params: { mounts: "${{ inputs.paths }}" }',
      '    on_failure: continue',
      '  - id: diagnose',
      '    action: noop',
      '    failed_in: check',
      '    params: { message: "${{ \'diagnosing \' + steps.check.failed_nodes[0] }}" }',
      'outputs:',
      '  failed: steps.check.failed_nodes',
      '',
    ].join('\n'),
  );
  copyFileSync(HOLD_THEN_NOOP, join(dir, 'hold-then-noop.yaml'));
  writeFileSync(
    join(dir, 'restart.yaml'),
    'schema_version: workflow_v1\nname: restart\nsteps:\n  - { id: restart, action: restart-docker, nodes: localhost }\n',
  );
  return dir;
}

/**
 * Waits until the hold plugin of the workflow traced `traceId` wrote "<sleep pid> <plugin pid>"
 * into `markers` on its node (the step is running); those pids.
 */
function holdStarted(markers: string, traceId: string): Promise<number[]> {
  const marker = join(markers, `${traceId}-localhost`);
  return until('the hold step to start', async () => {
    const text = existsSync(marker) ? readFileSync(marker, 'utf8') : '';
    return /^\d+ \d+\n$/.test(text) ? text.trim().split(' ').map(Number) : undefined;
  });
}

/** A hold-then-noop workflow cancelled by token:ops during its hold step. */
function expectCancelledByOps(record: WorkflowRunRecord): void {
  expect(record).toMatchObject({ status: 'cancelled', exit_code: 130 });
  expect(record.error).toMatchObject({
    code: 'RUN_CANCELLED',
    message: 'cancelled by token:ops',
  });
  expect(record.steps.map((step) => [step.id, step.status, step.reason])).toEqual([
    ['hold', 'cancelled', 'cancelled by token:ops'],
    ['after', 'skipped', 'cancelled'],
  ]);
}

/**
 * Starts a server on `home` with the workflows of `dir` and the RBAC policy file `policy`, and
 * fills `tokens` with a token per principal (name, role of the policy).
 */
async function serveWithPolicy(
  home: TestHome,
  dir: string,
  policy: string,
  tokens: Record<string, string>,
  principals: readonly (readonly [string, string])[],
): Promise<TestServer> {
  writeFileSync(
    home.configFile,
    `${readFileSync(home.configFile, 'utf8')}workflows = ${JSON.stringify(dir)}\npolicy = ${JSON.stringify(policy)}\n`,
  );
  const t = await startTestServer(home);
  const knownRoles = [...t.server.policy.current().roles.keys()];
  for (const [name, role] of principals) {
    tokens[name] = (
      await createToken(t.server.store, { name, role, expires: '1d', knownRoles })
    ).token;
  }
  return t;
}
describe('POST /v1/workflows/{name}/runs', () => {
  let home: TestHome;
  let t: TestServer;
  beforeAll(async () => {
    home = createTestHome();
    const dir = writeWorkflows(home);
    writeFileSync(
      home.configFile,
      `${readFileSync(home.configFile, 'utf8')}workflows = ${JSON.stringify(dir)}\n`,
    );
    t = await startTestServer(home);
  });
  afterAll(async () => {
    await t?.close();
    home?.remove();
  });

  it('runs every step through the run manager, under one trace id', async () => {
    const response = await t.request('/v1/workflows/check-then-diagnose/runs', { json: {} });
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as Json;
    expect(response.headers.get('location')).toBe(`/v1/workflows/runs/${accepted.workflow_run_id}`);
    const record = await waitForWorkflow(t.request, accepted.workflow_run_id as string);
    expect(validateWorkflowRunRecord(record).ok).toBe(true);
    expect(record.trace_id).toBe(accepted.trace_id);
    expect(record.status).toBe('succeeded');
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['check', 'failed'],
      ['diagnose', 'succeeded'],
    ]);
    expect(record.outputs).toEqual({ failed: ['localhost'] });
    // Each attempt is a stored run of the API, with source "workflow" and the workflow's trace.
    for (const step of record.steps) {
      for (const attempt of step.attempts) {
        const run = (await (await t.request(`/v1/runs/${attempt.run_id}`)).json()) as Json;
        expect(run).toMatchObject({ source: 'workflow', trace_id: record.trace_id });
      }
    }
    const audit = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((entry) => entry.trace_id === record.trace_id && entry.event === 'intent');
    expect(audit).toHaveLength(2);
    for (const entry of audit) {
      expect((entry.metadata as Json).workflow).toMatchObject({ run_id: record.workflow_run_id });
    }
    // The workflow's own records: started, then ended with every step's run ids.
    const own = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((entry) => entry.event === 'workflow' && entry.run_id === record.workflow_run_id);
    expect(own.map((entry) => entry.status)).toEqual(['started', 'succeeded']);
    expect(own[0]).toMatchObject({
      operator: 'token:ops',
      action: 'workflow:check-then-diagnose',
      trace_id: record.trace_id,
    });
    expect((own[1]?.metadata as Json | undefined)?.steps).toEqual(
      record.steps.map((step) => ({
        id: step.id,
        status: step.status,
        run_ids: step.attempts.map((attempt) => attempt.run_id),
      })),
    );
  });

  it('a dry run answers with the record and runs nothing', async () => {
    const response = await t.request('/v1/workflows/check-then-diagnose/runs', {
      json: { dry_run: true },
    });
    expect(response.status).toBe(200);
    const record = (await response.json()) as WorkflowRunRecord;
    expect(record.dry_run).toBe(true);
    expect(record.steps[0]?.reason).toBe('would run check-disk on localhost (local)');
  });

  it.each([
    ['an unknown workflow', '/v1/workflows/nope/runs', {}, 404, 'NOT_FOUND'],
    ['a name that is not a name', '/v1/workflows/..%2Fetc/runs', {}, 400, 'INVALID_ARGUMENT'],
    [
      'an undeclared input',
      '/v1/workflows/check-then-diagnose/runs',
      { inputs: { x: 1 } },
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'an input of the wrong type',
      '/v1/workflows/check-then-diagnose/runs',
      { inputs: { paths: 'x' } },
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'a dangerous action unconfirmed',
      '/v1/workflows/restart/runs',
      {},
      403,
      'DANGEROUS_ACTION_REFUSED',
    ],
  ])('refuses %s before anything runs', async (_name, path, json, status, code) => {
    const before = readFileSync(home.auditLog, 'utf8').length;
    const response = await t.request(path, { json });
    expect(response.status).toBe(status);
    const body = (await response.json()) as { error: Json };
    expect(body.error.code).toBe(code);
    // Refused before its first step: the workflow leaves an audit record of its own.
    const records = readFileSync(home.auditLog, 'utf8')
      .slice(before)
      .trim()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Json);
    const refusal = records.find((entry) => entry.event === 'workflow');
    if (path.includes('%2F')) {
      // Refused by the route's schema: it names no workflow.
      expect(refusal).toBeUndefined();
    } else {
      expect(refusal).toMatchObject({ status: 'refused', error_code: code, operator: 'token:ops' });
    }
    expect(records.filter((entry) => entry.event === 'intent')).toEqual([]);
  });

  it('GET /v1/workflows/runs: newest first, pages by cursor, filters (workflow, status, principal, since, until)', async () => {
    const since = new Date().toISOString();
    const ids: string[] = [];
    for (const name of ['check-then-diagnose', 'check-then-diagnose', 'restart']) {
      const response = await t.request(`/v1/workflows/${name}/runs`, {
        json: { confirm: true },
      });
      expect(response.status).toBe(202);
      const id = String(((await response.json()) as Json).workflow_run_id);
      // One after the other: each has its own start time, so "newest first" is the reverse.
      await waitForWorkflow(t.request, id);
      ids.push(id);
    }
    type Listed = {
      workflow_runs: { workflow_run_id: string; workflow: string; status: string }[];
      next_cursor: string | null;
    };
    const list = async (query: string, token?: string): Promise<Listed> => {
      const response = await t.request(
        `/v1/workflows/runs?since=${encodeURIComponent(since)}&${query}`,
        token === undefined ? {} : { token },
      );
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as Listed;
    };
    const newestFirst = [...ids].reverse();
    const first = await list('limit=2');
    expect(first.workflow_runs.map((run) => run.workflow_run_id)).toEqual(newestFirst.slice(0, 2));
    expect(first.next_cursor).not.toBeNull();
    const second = await list(`limit=2&cursor=${first.next_cursor}`);
    expect(second.workflow_runs.map((run) => run.workflow_run_id)).toEqual(newestFirst.slice(2));
    expect(second.next_cursor).toBeNull();
    // A viewer lists them too (reading needs view, as GET /v1/workflows/runs/{id}).
    const all = await list('', t.viewer);
    expect(all.workflow_runs.map((run) => run.workflow_run_id)).toEqual(newestFirst);
    expect(all.workflow_runs[0]).toMatchObject({
      workflow: 'restart',
      principal: 'token:ops',
      links: { self: `/v1/workflows/runs/${newestFirst[0]}` },
    });
    const checks = await list('workflow=check-then-diagnose');
    expect(checks.workflow_runs.map((run) => run.workflow_run_id)).toEqual(newestFirst.slice(1));
    const statuses = new Set(all.workflow_runs.map((run) => run.status));
    for (const status of statuses) {
      const only = await list(`status=${status}`);
      expect(only.workflow_runs.map((run) => run.workflow_run_id)).toEqual(
        all.workflow_runs.filter((run) => run.status === status).map((run) => run.workflow_run_id),
      );
    }
    expect((await list('principal=token:ops')).workflow_runs).toHaveLength(3);
    expect((await list('principal=token:nobody')).workflow_runs).toEqual([]);
    expect((await list(`until=${encodeURIComponent(since)}`)).workflow_runs).toEqual([]);
    // Bad filters are refused with the parameter named, never a stack trace.
    for (const [query, parameter] of [
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['since=yesterday', 'since'],
    ] as const) {
      const bad = await t.request(`/v1/workflows/runs?${query}`);
      expect(bad.status).toBe(400);
      const body = (await bad.json()) as { error: { code: string; details?: Json } };
      expect(body.error).toMatchObject({ code: 'INVALID_ARGUMENT', details: { parameter } });
    }
    expect((await t.request('/v1/workflows/runs?status=sleeping')).status).toBe(400);
  });

  it('needs an operator token to run, a viewer token to read', async () => {
    const response = await t.request('/v1/workflows/check-then-diagnose/runs', {
      json: {},
      token: t.viewer,
    });
    expect(response.status).toBe(403);
    const missing = await t.request('/v1/workflows/runs/00000000-0000-4000-8000-000000000000', {
      token: t.viewer,
    });
    expect(missing.status).toBe(404);
  });
});

describe('POST /v1/workflows/runs/{id}/cancel', () => {
  let home: TestHome;
  let t: TestServer;
  let markers: string;
  beforeAll(async () => {
    home = createTestHome();
    const dir = writeWorkflows(home);
    writeFileSync(
      home.configFile,
      `${readFileSync(home.configFile, 'utf8')}workflows = ${JSON.stringify(dir)}\n`,
    );
    markers = join(home.dir, 'markers');
    mkdirSync(markers);
    t = await startTestServer(home);
  });
  afterAll(async () => {
    await t?.close();
    home?.remove();
  });

  it('mid-step: the plugin is killed on its node, the step ends cancelled, the rest skipped', async () => {
    const response = await t.request('/v1/workflows/hold-then-noop/runs', {
      json: { inputs: { marker_dir: markers } },
    });
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as { workflow_run_id: string; trace_id: string };
    const id = accepted.workflow_run_id;
    const pids = await holdStarted(markers, accepted.trace_id);
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(true);

    // A viewer may not cancel; an unknown workflow run is 404.
    expect(
      (await t.request(`/v1/workflows/runs/${id}/cancel`, { method: 'POST', token: t.viewer }))
        .status,
    ).toBe(403);
    const unknown = await t.request(
      '/v1/workflows/runs/00000000-0000-4000-8000-000000000000/cancel',
      { method: 'POST' },
    );
    expect(unknown.status).toBe(404);

    const cancel = await t.request(`/v1/workflows/runs/${id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect(await cancel.json()).toMatchObject({ workflow_run_id: id, trace_id: accepted.trace_id });
    const record = await waitForWorkflow(t.request, id);
    expect(validateWorkflowRunRecord(record).ok).toBe(true);
    expectCancelledByOps(record);
    // Nothing is left running on the node; the step's run is cancelled, no later step ran.
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
    const runId = record.steps[0]?.attempts[0]?.run_id;
    const run = (await (await t.request(`/v1/runs/${runId}`)).json()) as Json;
    expect(run.status).toBe('cancelled');
    const runs = (await (await t.request('/v1/runs?limit=50')).json()) as { runs: Json[] };
    expect(runs.runs.filter((entry) => entry.trace_id === accepted.trace_id)).toHaveLength(1);
    // The workflow's own audit trail ends with the cancel.
    const own = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter((entry) => entry.event === 'workflow' && entry.run_id === id);
    expect(own.map((entry) => [entry.status, entry.error_code])).toEqual([
      ['started', null],
      ['cancelled', 'RUN_CANCELLED'],
    ]);

    // An ended workflow is left as it is.
    const again = await t.request(`/v1/workflows/runs/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ status: 'cancelled' });
  });

  it('a cancel of a step run (POST /v1/runs/{id}/cancel) cancels its workflow: no later step runs', async () => {
    const response = await t.request('/v1/workflows/hold-then-noop/runs', {
      json: { inputs: { marker_dir: markers } },
    });
    const accepted = (await response.json()) as { workflow_run_id: string; trace_id: string };
    const pids = await holdStarted(markers, accepted.trace_id);
    const runs = (await (await t.request('/v1/runs?limit=50')).json()) as { runs: Json[] };
    const runId = runs.runs.find((entry) => entry.trace_id === accepted.trace_id)?.id;
    expect(runId).toBeTypeOf('string');
    expect((await t.request(`/v1/runs/${runId}/cancel`, { method: 'POST' })).status).toBe(202);
    const record = await waitForWorkflow(t.request, accepted.workflow_run_id);
    expectCancelledByOps(record);
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
  });
});

describe('approval steps wait for the RBAC approvals', () => {
  let home: TestHome;
  let t: TestServer;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    home = createTestHome();
    const dir = join(home.dir, 'workflows');
    mkdirSync(dir);
    const gated = (name: string, gate: string) =>
      writeFileSync(
        join(dir, `${name}.yaml`),
        [
          'schema_version: workflow_v1',
          `name: ${name}`,
          'inputs:',
          '  marker_dir: { type: string, required: true }',
          'steps:',
          `  - id: gate`,
          `    approval: ${gate}`,
          '  - id: mark',
          '    action: mark',
          '    nodes: localhost',
          '    params: { marker_dir: "${{ inputs.marker_dir }}" }',
          '  - id: after',
          '    action: noop',
          '    nodes: localhost',
          '',
        ].join('\n'),
      );
    gated('gate-then-mark', '{ message: "Mark localhost?", approvers: [lead], timeout: 1h }');
    gated('gate-expires', '{ message: "Quick, mark it?", timeout: 1s }');
    const policy = join(home.dir, 'policy.yaml');
    writeFileSync(
      policy,
      `version: rune-policy/v1
roles:
  operator:
    rules:
      - { id: ops-all, verbs: [view, dry-run, run, cancel], actions: ["*"], nodes: [localhost] }
  viewer:
    rules:
      - { id: view-all, verbs: [view], actions: ["*"], nodes: [localhost] }
  lead:
    rules:
      - { id: lead-approve, verbs: [view, approve], actions: ["*"], nodes: [localhost] }
  auditor:
    rules:
      - { id: auditor-approve, verbs: [view, approve], actions: ["*"], nodes: [localhost] }
approvals: { quorum: 2, expires: 1h }
`,
    );
    t = await serveWithPolicy(home, dir, policy, tokens, [
      ['lead1', 'lead'],
      ['lead2', 'lead'],
      ['auditor', 'auditor'],
    ]);
  });
  afterAll(async () => {
    await t?.close();
    home?.remove();
  });

  /** Starts the workflow and returns its id and the step run held for the approval. */
  async function startGated(name: string): Promise<{ id: string; runId: string; markers: string }> {
    const markers = join(home.dir, `markers-${name}-${Date.now()}`);
    mkdirSync(markers);
    const response = await t.request(`/v1/workflows/${name}/runs`, {
      json: { inputs: { marker_dir: markers } },
    });
    expect(response.status).toBe(202);
    const id = String(((await response.json()) as Json).workflow_run_id);
    // Held: the record says the step awaits its approval (not `running`), its attempt too,
    // with the held run's id, and so does the approval step.
    const record = await waitForWorkflow(t.request, id, (r) =>
      r.steps.some((step) => step.id === 'mark' && step.status === 'awaiting_approval'),
    );
    expect(validateWorkflowRunRecord(record).ok).toBe(true);
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['gate', 'awaiting_approval'],
      ['mark', 'awaiting_approval'],
      ['after', 'pending'],
    ]);
    const attempts = record.steps[1]?.attempts ?? [];
    expect(attempts).toEqual([
      expect.objectContaining({
        status: 'awaiting_approval',
        exit_code: 0,
        nodes: [],
        ended_at: null,
      }),
    ]);
    const held = await t.server.store.getRun(attempts[0]?.run_id ?? '');
    expect(held).toMatchObject({ action: 'mark', status: 'awaiting_approval' });
    return { id, runId: String(held?.id), markers };
  }

  const vote = (runId: string, verb: 'approve' | 'reject', token: string, comment: string) =>
    t.request(`/v1/runs/${runId}/${verb}`, { json: { comment }, token });

  it('approve (quorum 2, listed approvers only, not the requester) -> the next step runs', async () => {
    const { id, runId, markers } = await startGated('gate-then-mark');
    const approval = (await (await t.request(`/v1/runs/${runId}/approval`)).json()) as Json;
    expect(approval).toMatchObject({ state: 'pending', requester: 'token:ops', quorum: 2 });
    expect(String(approval.reason)).toContain(
      'workflow gate-then-mark, step gate: Mark localhost?',
    );
    // The requester may not approve its own workflow; a principal outside `approvers` may not
    // either, even holding `approve` in the policy.
    const self = await t.request(`/v1/runs/${runId}/approve`, { json: {} });
    expect(((await self.json()) as { error: Json }).error.code).toBe('APPROVAL_SELF_FORBIDDEN');
    const outsider = await vote(runId, 'approve', tokens.auditor as string, 'me too');
    expect(outsider.status).toBe(403);
    expect(((await outsider.json()) as { error: Json }).error.code).toBe('POLICY_DENIED');
    // One vote of two: still waiting, nothing ran.
    const first = (await (
      await vote(runId, 'approve', tokens.lead1 as string, 'looked at the graphs')
    ).json()) as Json;
    expect(first).toMatchObject({ state: 'pending', approvals: 1 });
    expect(readdirSync(markers)).toEqual([]);
    const waiting = (await (
      await t.request(`/v1/workflows/runs/${id}`)
    ).json()) as WorkflowRunRecord;
    expect(waiting.steps[1]?.attempts[0]?.status).toBe('awaiting_approval');
    const second = (await (
      await vote(runId, 'approve', tokens.lead2 as string, 'ok')
    ).json()) as Json;
    expect(second).toMatchObject({ state: 'approved', approvals: 2 });
    const record = await waitForWorkflow(t.request, id);
    expect(record.status).toBe('succeeded');
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['gate', 'succeeded'],
      ['mark', 'succeeded'],
      ['after', 'succeeded'],
    ]);
    expect(record.steps[1]?.attempts[0]).toMatchObject({ run_id: runId, status: 'succeeded' });
    expect(readdirSync(markers)).toHaveLength(1);
    const view = (await (await t.request(`/v1/runs/${runId}/approval`)).json()) as {
      votes: Json[];
    };
    expect(view.votes.map((entry) => [entry.approver, entry.comment])).toEqual([
      ['token:lead1', 'looked at the graphs'],
      ['token:lead2', 'ok'],
    ]);
  });

  it('reject -> the workflow ends with APPROVAL_REJECTED and nothing after the gate runs', async () => {
    const { id, runId, markers } = await startGated('gate-then-mark');
    const rejected = (await (
      await vote(runId, 'reject', tokens.lead1 as string, 'not during the sale')
    ).json()) as Json;
    expect(rejected.state).toBe('rejected');
    const record = await waitForWorkflow(t.request, id);
    expect(record.status).toBe('failed');
    expect(record.error?.code).toBe('APPROVAL_REJECTED');
    expect(record.exit_code).not.toBe(0);
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['gate', 'failed'],
      ['mark', 'skipped'],
      ['after', 'skipped'],
    ]);
    expect(record.steps[0]?.error?.message).toContain('not during the sale');
    expect(readdirSync(markers)).toEqual([]);
  });

  it('an approval step timeout expires the request: APPROVAL_EXPIRED', async () => {
    const { id, markers } = await startGated('gate-expires');
    const record = await waitForWorkflow(t.request, id);
    expect(record.status).toBe('failed');
    expect(record.error?.code).toBe('APPROVAL_EXPIRED');
    expect(record.steps.map((step) => step.status)).toEqual(['failed', 'skipped', 'skipped']);
    expect(readdirSync(markers)).toEqual([]);
  });

  it('a restart interrupts the workflow and cancels its step run that waited for approval', async () => {
    const { id, runId, markers } = await startGated('gate-then-mark');
    await t.close();
    const server = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
    const url = await server.listen();
    const operator = t.operator;
    t = {
      ...t,
      server,
      url,
      close: () => server.close(),
      request: (path, init = {}) =>
        fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${operator}` } }),
    };
    const record = await waitForWorkflow(t.request, id);
    expect(record.status).toBe('interrupted');
    // Nothing awaits approval in an ended record: the held step ends like a running one.
    expect(validateWorkflowRunRecord(record).ok).toBe(true);
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['gate', 'cancelled'],
      ['mark', 'cancelled'],
      ['after', 'skipped'],
    ]);
    expect(record.steps[1]?.attempts[0]).toMatchObject({ run_id: runId, status: 'interrupted' });
    const run = (await (await t.request(`/v1/runs/${runId}`)).json()) as Json;
    expect(run.status).toBe('cancelled');
    // Approving it now is refused: nothing of the interrupted workflow runs unattended.
    const late = await fetch(`${url}/v1/runs/${runId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.lead1}`, 'content-type': 'application/json' },
      body: JSON.stringify({ comment: 'too late' }),
    });
    expect(((await late.json()) as { error: Json }).error.code).toBe('APPROVAL_NOT_PENDING');
    expect(readdirSync(markers)).toEqual([]);
  });
});

/** A `rune serve` child process; resolves with its URL once it listens. */
function serve(home: TestHome): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--config', home.configFile, '--listen', '127.0.0.1:0'],
    { env: home.env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return serveListening(child).url.then((url) => ({ child, url }));
}

describe('a server restart mid-workflow', () => {
  it('marks the workflow interrupted (WORKFLOW_INTERRUPTED) and does not resume it', async () => {
    const home = createTestHome();
    const dir = writeWorkflows(home);
    writeFileSync(
      home.configFile,
      `${readFileSync(home.configFile, 'utf8')}workflows = ${JSON.stringify(dir)}\n`,
    );
    const markers = join(home.dir, 'markers');
    mkdirSync(markers);
    const store = await openRunStore(home.storePath);
    const token = (await createToken(store, { name: 'ops', role: 'operator', expires: '1h' }))
      .token;
    await store.close();
    const children: ChildProcess[] = [];
    let pids: number[] = [];
    try {
      const first = await serve(home);
      children.push(first.child);
      const call =
        (url: string) =>
        (path: string, init: RequestInit = {}) =>
          fetch(`${url}${path}`, {
            ...init,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          });
      const response = await call(first.url)('/v1/workflows/hold-then-noop/runs', {
        method: 'POST',
        body: JSON.stringify({ inputs: { marker_dir: markers } }),
      });
      expect(response.status).toBe(202);
      const accepted = (await response.json()) as Json;
      pids = await holdStarted(markers, accepted.trace_id as string);
      // The record on disk says the hold step is running.
      await waitForWorkflow(call(first.url), accepted.workflow_run_id as string, (record) =>
        record.steps.some((step) => step.id === 'hold' && step.status === 'running'),
      );
      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));

      const second = await serve(home);
      children.push(second.child);
      const record = await waitForWorkflow(call(second.url), accepted.workflow_run_id as string);
      expect(validateWorkflowRunRecord(record).ok).toBe(true);
      expect(record).toMatchObject({ status: 'interrupted', exit_code: 70 });
      expect(record.error?.code).toBe('WORKFLOW_INTERRUPTED');
      expect(record.steps.map((step) => [step.id, step.status])).toEqual([
        ['hold', 'cancelled'],
        ['after', 'skipped'],
      ]);
      // Its step's run is interrupted by the run manager's recovery; nothing started after it.
      const runId = record.steps[0]?.attempts[0]?.run_id;
      if (runId !== undefined) {
        const run = (await (await call(second.url)(`/v1/runs/${runId}`)).json()) as Json;
        expect(run.status).toBe('interrupted');
      }
      const runs = (await (await call(second.url)('/v1/runs?limit=50')).json()) as {
        runs: Json[];
      };
      expect(runs.runs.filter((run) => run.action === 'noop')).toEqual([]);
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      // The local hold plugin outlived the killed server: stop it here.
      for (const pid of pids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      home.remove();
    }
  }, 90_000);
});

describe('GET /v1/workflows/runs/{id}: view rights on every run of it', () => {
  const POLICY = `version: rune-policy/v1
roles:
  noop-viewer:
    rules:
      - { id: noop-view, verbs: [view], actions: [noop], nodes: [localhost] }
  both-viewer:
    rules:
      - { id: both-view, verbs: [view], actions: [noop, check-disk], nodes: [localhost] }
  everything:
    rules:
      - { id: all, verbs: [view, dry-run, run, cancel], actions: ['*'], nodes: [localhost] }
bindings:
  - { subjects: [token:carol], roles: [noop-viewer] }
  - { subjects: [token:dave], roles: [both-viewer] }
  - { subjects: [token:root], roles: [everything] }
`;
  let home: TestHome;
  let t: TestServer;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    home = createTestHome();
    const dir = writeWorkflows(home);
    const policy = join(home.dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    t = await serveWithPolicy(home, dir, policy, tokens, [
      ['carol', 'noop-viewer'],
      ['dave', 'both-viewer'],
      ['root', 'everything'],
    ]);
  });
  afterAll(async () => {
    await t?.close();
    home?.remove();
  });

  it('a principal who may not view one of its runs reads none of the record (403, audited)', async () => {
    const response = await t.request('/v1/workflows/check-then-diagnose/runs', {
      json: {},
      token: tokens.root as string,
    });
    expect(response.status).toBe(202);
    const { workflow_run_id: id } = (await response.json()) as { workflow_run_id: string };
    const record = await waitForWorkflow(
      (path) => t.request(path, { token: tokens.root as string }),
      id,
    );
    // check-disk, then noop: dave may view both actions' runs, carol only noop's.
    expect(record.steps.map((step) => [step.id, step.action, step.attempts.length])).toEqual([
      ['check', 'check-disk', 1],
      ['diagnose', 'noop', 1],
    ]);
    const asDave = await t.request(`/v1/workflows/runs/${id}`, { token: tokens.dave as string });
    expect(asDave.status).toBe(200);
    expect(await asDave.json()).toEqual(record);
    const asCarol = await t.request(`/v1/workflows/runs/${id}`, { token: tokens.carol as string });
    expect(asCarol.status).toBe(403);
    const body = (await asCarol.json()) as { error: { code: string } } & Json;
    expect(body.error.code).toBe('POLICY_DENIED');
    expect(JSON.stringify(body)).not.toContain('/nonexistent-rune-path');
    const checkRun = record.steps[0]?.attempts[0]?.run_id;
    const denied = readFileSync(home.auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json)
      .filter(
        (entry) =>
          entry.event === 'policy' && entry.status === 'denied' && entry.run_id === checkRun,
      );
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ action: 'check-disk' });
    // The list shows a workflow run only to who may read its record.
    const listed = async (token: string) =>
      (
        (await (await t.request('/v1/workflows/runs', { token })).json()) as {
          workflow_runs: { workflow_run_id: string }[];
        }
      ).workflow_runs.map((run) => run.workflow_run_id);
    expect(await listed(tokens.dave as string)).toEqual([id]);
    expect(await listed(tokens.carol as string)).toEqual([]);
  });
});
