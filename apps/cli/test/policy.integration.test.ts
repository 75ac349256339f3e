/**
 * The RBAC commands of the built CLI: `rune policy check` and `rune policy test` offline (no
 * server; nothing audited), `rune token create` with policy roles, and against a real
 * `rune serve` process: a held run approved with `rune approve`, a workflow step held for its
 * approval step (`rune workflow run --server` says so; the record shows it `awaiting_approval`
 * until approved), and SIGHUP reloads (a broken
 * file keeps the old policy, a good one applies) while the server keeps answering.
 */

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowRunRecord } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  runCli,
  type ServeProcess,
  serveHome,
  startCli,
  startServeProcess,
  waitFor,
} from './cli-harness.js';

const { dir, env } = serveHome('rune-policy-cli-');
const policyFile = join(dir, 'policy.yaml');
const configFile = join(dir, 'rune.toml');
const auditLog = join(dir, 'audit.jsonl');
const workflowsDir = join(dir, 'workflows');

const POLICY = `version: rune-policy/v1
roles:
  soc-analyst:
    rules:
      - id: soc-diagnostics
        verbs: [view, dry-run, run]
        actions: ['tag:diagnostics', noop]
        nodes: ['@all']
      - id: soc-noop-after-approval
        verbs: [run]
        actions: [noop]
        nodes: ['@team-a']
        require_approval: true
      - id: soc-restart-team
        verbs: [run]
        actions: [restart-docker]
        nodes: ['@team-a']
        require_approval: true
  approver:
    rules:
      - id: leads-approve
        verbs: [view, approve]
        actions: ['*']
        nodes: ['@all']
bindings:
  - subjects: [user:alice, group:soc, token:alice]
    roles: [soc-analyst]
  - subjects: [token:lead]
    roles: [approver]
approvals:
  quorum: 1
`;

let serve: ServeProcess;
let url = '';
const tokens: Record<string, string> = {};

const rune = (args: string[], extra: Record<string, string> = {}) =>
  runCli([...args, '--config', configFile], { ...env, ...extra });

beforeAll(async () => {
  writeFileSync(
    join(dir, 'inventory.yaml'),
    'nodes:\n  web1: { address: localhost, tags: [web] }\n  web2: { address: localhost, tags: [web] }\ngroups:\n  web: [web1, web2]\n  team-a: [web1]\n',
  );
  writeFileSync(policyFile, POLICY);
  mkdirSync(workflowsDir);
  writeFileSync(
    join(workflowsDir, 'approve-then-noop.yaml'),
    [
      'schema_version: workflow_v1',
      'name: approve-then-noop',
      'steps:',
      '  - id: gate',
      '    approval: { message: "noop on web1?" }',
      '  - id: go',
      '    action: noop',
      '    nodes: web1',
      '',
    ].join('\n'),
  );
  writeFileSync(
    configFile,
    `[core]\ninventory = ${JSON.stringify(join(dir, 'inventory.yaml'))}\naudit_log = ${JSON.stringify(auditLog)}\n\n[server]\nlisten = "127.0.0.1:0"\nstore = ${JSON.stringify(join(dir, 'server.sqlite'))}\npolicy = ${JSON.stringify(policyFile)}\nworkflows = ${JSON.stringify(workflowsDir)}\nshutdown_grace = "5s"\n`,
  );
  for (const [name, role] of [
    ['alice', 'soc-analyst'],
    ['lead', 'approver'],
  ]) {
    const created = await rune([
      'token',
      'create',
      '--name',
      name as string,
      '--role',
      role as string,
    ]);
    expect(created.code, created.stderr).toBe(0);
    tokens[name as string] = created.stdout.trim();
  }
  serve = await startServeProcess(configFile, env);
  url = serve.url;
}, 120_000);
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await serve?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const logLine = (pattern: RegExp): Promise<string> => serve.logLine(pattern);

describe('offline', () => {
  it('rune policy check prints allow or deny and the deciding rule; exit 4 on deny; nothing audited', async () => {
    const before = existsSync(auditLog) ? readFileSync(auditLog, 'utf8') : '';
    const denied = await rune([
      'policy',
      'check',
      '--as',
      'alice',
      '--action',
      'restart-docker',
      '--node',
      '@web',
    ]);
    expect(denied.code).toBe(4);
    expect(denied.stdout).toBe('deny (rule default-deny)\n');
    expect(denied.stderr).toMatch(/may not run restart-docker on web2/);
    const held = await rune([
      'policy',
      'check',
      '--as',
      'alice',
      '--action',
      'restart-docker',
      '--node',
      'web1',
    ]);
    expect(held.code).toBe(0);
    expect(held.stdout).toBe('allow after 1 approval (rule soc-restart-team)\n');
    const group = await rune([
      'policy',
      'check',
      '--as',
      'bob',
      '--group',
      'soc',
      '--action',
      'check-disk',
      '--node',
      '@all',
      '-o',
      'json',
    ]);
    expect(group.code, group.stderr).toBe(0);
    expect(JSON.parse(group.stdout)).toMatchObject({
      outcome: 'allow',
      rule: 'soc-diagnostics',
      nodes: ['web1', 'web2'],
    });
    const bad = await rune([
      'policy',
      'check',
      '--as',
      'alice',
      '--action',
      'noop',
      '--node',
      'web1',
      '--policy',
      join(dir, 'missing.yaml'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/INVALID_POLICY/);
    expect(existsSync(auditLog) ? readFileSync(auditLog, 'utf8') : '').toBe(before);
  });

  it('rune policy test runs a table of expectations; exit 1 when one fails', async () => {
    const cases = join(dir, 'cases.yaml');
    const table = `policy: policy.yaml
cases:
  - name: team node after approval
    as: alice
    action: restart-docker
    nodes: [web1]
    expect: approval
    rule: soc-restart-team
  - name: not the whole web group
    as: alice
    action: restart-docker
    nodes: ['@web']
    expect: deny
  - name: approvers do not run
    as: token:lead
    action: noop
    nodes: [web1]
    expect: deny
`;
    writeFileSync(cases, table);
    const passed = await rune(['policy', 'test', cases]);
    expect(passed.code, passed.stdout + passed.stderr).toBe(0);
    expect(passed.stdout).toMatch(/3 passed, 0 failed/);
    writeFileSync(
      cases,
      `${table}  - name: wrong on purpose\n    as: alice\n    action: restart-docker\n    nodes: [web2]\n    expect: allow\n`,
    );
    const failed = await rune(['policy', 'test', cases]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(
      /FAIL wrong on purpose: expected allow, got deny \(default-deny\)/,
    );
    writeFileSync(cases, 'cases:\n  - as: alice\n    expect: allow\n    colour: red\n');
    const unknown = await rune(['policy', 'test', cases]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown key colour/);
  });

  it('rune token create refuses a role the policy does not define', async () => {
    const result = await rune(['token', 'create', '--name', 'x', '--role', 'operator']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/soc-analyst, approver/);
  });
});

describe('against rune serve', () => {
  const api = async (token: string, path: string, json?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method: json === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        ...(json === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('a held run starts after `rune approve`; the requester cannot approve it', async () => {
    const accepted = await api(tokens.alice as string, '/v1/runs', {
      action: 'noop',
      targets: ['web1'],
    });
    expect(accepted).toMatchObject({ status: 202, body: { status: 'awaiting_approval' } });
    const id = accepted.body.id as string;
    const self = await rune(['approve', id, '--server', url], {
      RUNE_TOKEN: tokens.alice as string,
    });
    expect(self.code).toBe(4);
    expect(self.stderr).toMatch(/APPROVAL_SELF_FORBIDDEN/);
    const approved = await rune(['approve', id, '--server', url, '--comment', 'ok'], {
      RUNE_TOKEN: tokens.lead as string,
    });
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(/approved \(1\/1 approvals\) — noop on web1/);
    const done = await api(tokens.alice as string, `/v1/runs/${id}?wait=20s`);
    expect(done.body.status).toBe('succeeded');
  });

  it('rune workflow run --server: a step held for its approval step says so on stderr; the record shows it awaiting_approval until `rune approve`', async () => {
    const cli = startCli(
      ['workflow', 'run', 'approve-then-noop', '--server', url, '--config', configFile],
      { ...env, RUNE_TOKEN: tokens.alice as string },
    );
    children.push(cli.child);
    const notice =
      /^step go: run ([0-9a-f-]{36}) awaits approval by another principal \(rune approve \1 --server http:\/\/127\.0\.0\.1:\d+\); waiting$/m;
    await waitFor(
      () => notice.test(cli.stderr()) || cli.child.exitCode !== null,
      'the CLI to say the step awaits approval',
    );
    const runId = notice.exec(cli.stderr())?.[1] ?? '';
    expect(runId, cli.stderr()).not.toBe('');
    const id = /^workflow approve-then-noop \(run ([0-9a-f-]{36}),/m.exec(cli.stderr())?.[1];
    const held = (await api(tokens.alice as string, `/v1/workflows/runs/${id}`))
      .body as unknown as WorkflowRunRecord;
    expect(held.steps.map((step) => [step.id, step.status])).toEqual([
      ['gate', 'awaiting_approval'],
      ['go', 'awaiting_approval'],
    ]);
    expect(held.steps[1]?.attempts[0]).toMatchObject({
      run_id: runId,
      status: 'awaiting_approval',
    });
    const approved = await rune(['approve', runId, '--server', url, '--comment', 'go'], {
      RUNE_TOKEN: tokens.lead as string,
    });
    expect(approved.code, approved.stderr).toBe(0);
    expect(await cli.exited, cli.stderr()).toBe(0);
    expect(cli.stdout()).toMatch(/^✓ go noop succeeded on web1/m);
    const record = (await api(tokens.alice as string, `/v1/workflows/runs/${id}`))
      .body as unknown as WorkflowRunRecord;
    expect(record.steps.map((step) => [step.id, step.status])).toEqual([
      ['gate', 'succeeded'],
      ['go', 'succeeded'],
    ]);
    expect(record.steps[1]?.attempts[0]).toMatchObject({ run_id: runId, status: 'succeeded' });
  });

  it('SIGHUP reloads the policy; a broken file keeps the old one and says why', async () => {
    writeFileSync(policyFile, `${POLICY}surprise: true\n`);
    serve.child.kill('SIGHUP');
    expect(await logLine(/SIGHUP: policy NOT reloaded[^\n]*policy\.yaml:\d+:\d+[^\n]*/)).toMatch(
      /surprise/,
    );
    // The old policy still decides: alice's diagnostics run.
    expect(
      (
        await api(tokens.alice as string, '/v1/runs', {
          action: 'noop',
          targets: ['web2'],
          options: { dry_run: true },
        })
      ).status,
    ).toBe(202);
    writeFileSync(
      policyFile,
      POLICY.replace("actions: ['tag:diagnostics', noop]", 'actions: [check-disk]'),
    );
    serve.child.kill('SIGHUP');
    await logLine(/SIGHUP: policy reloaded/);
    expect(
      await api(tokens.alice as string, '/v1/runs', {
        action: 'noop',
        targets: ['web2'],
        options: { dry_run: true },
      }),
    ).toMatchObject({ status: 403 });
  });
});
