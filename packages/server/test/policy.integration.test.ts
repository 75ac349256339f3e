/**
 * RBAC against a real `rune serve` (real HTTP on loopback, local transport, real bash plugins,
 * the real audit log and SQLite store) with a real policy file and inventory: the decisions, the
 * bypass attempts of issue 14 (each with its EPS code), four-eyes approvals with a real webhook
 * receiver on 127.0.0.1, tokens that cannot outgrow their creator, and SIGHUP-style reloads.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuneServer, createToken, loadServerPolicy, type RuneServer } from '../src/index.js';
import { createTestHome, type TestHome, waitForRun } from './harness.js';

type Json = Record<string, unknown>;

const INVENTORY = `nodes:
  web1: { address: localhost, tags: [web] }
  web2: { address: localhost, tags: [web] }
  db1: { address: localhost, tags: [database] }
groups:
  team-a: [web1, db1]
`;

/** The policy of the tests (docs/rbac.md explains the same shape). */
function testPolicy(webhook: string, extra = ''): string {
  return `version: rune-policy/v1
roles:
  soc-analyst:
    description: diagnostics anywhere; restarts on the team's nodes after approval
    rules:
      - id: soc-view
        verbs: [view]
        actions: ['*']
        nodes: ['@all']
      - id: soc-diagnostics
        verbs: [dry-run, run]
        actions: [check-disk, noop]
        nodes: ['@all']
      - id: soc-logs-recent
        verbs: [dry-run, run]
        actions: [gather-logs]
        nodes: ['@all']
        params:
          since: { max_age: 24h }
          lines: { maximum: 1000, required: false }
      - id: soc-restart-team
        verbs: [dry-run, run]
        actions: ['restart-*']
        nodes: ['@team-a']
        require_approval: true
        params:
          service: { enum: [nginx, docker] }
      - id: soc-no-database-restarts
        effect: deny
        verbs: [run]
        actions: ['restart-*']
        nodes: ['tag:database']
  approver:
    rules:
      - id: leads-approve-restarts
        verbs: [view, approve]
        actions: ['restart-*']
        nodes: ['@all']
  ci:
    rules:
      - id: ci-dry-run-everything
        verbs: [view, dry-run]
        actions: ['*']
        nodes: ['@all']
  token-admin:
    rules:
      - id: admins-mint-tokens
        verbs: [admin]
        actions: ['*']
        nodes: ['@all']
bindings:
  - subjects: [token:alice, token:bob]
    roles: [soc-analyst]
  - subjects: [token:lead1, token:lead2]
    roles: [approver]
  - subjects: [token:delegator]
    roles: [soc-analyst, token-admin]
${extra}approvals:
  quorum: 2
  expires: 4h
  webhook: ${webhook}
`;
}

let home: TestHome;
let server: RuneServer;
let url: string;
let hookServer: Server;
const hooks: Json[] = [];
const hookWaiters: (() => void)[] = [];
const tokens: Record<string, string> = {};
let policyFile: string;
let webhook: string;

beforeAll(async () => {
  hookServer = createServer((request, response) => {
    let data = '';
    request.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
    });
    request.on('end', () => {
      hooks.push(JSON.parse(data) as Json);
      for (const wake of hookWaiters.splice(0)) wake();
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  webhook = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
  home = createTestHome('', { inventory: 'PLACEHOLDER' });
  const inventory = join(home.dir, 'inventory.yaml');
  writeFileSync(inventory, INVENTORY);
  policyFile = join(home.dir, 'policy.yaml');
  writeFileSync(policyFile, testPolicy(webhook));
  writeFileSync(
    home.configFile,
    readFileSync(home.configFile, 'utf8').replace('"PLACEHOLDER"', JSON.stringify(inventory)) +
      `policy = ${JSON.stringify(policyFile)}\nrate_limit = 10000\n`,
  );
  server = await createRuneServer({ configFile: home.configFile, env: home.env, port: 0 });
  url = await server.listen();
  const knownRoles = [...server.policy.current().roles.keys()];
  for (const [name, role] of [
    ['alice', 'soc-analyst'],
    ['bob', 'soc-analyst'],
    ['lead1', 'approver'],
    ['lead2', 'approver'],
    ['ci', 'ci'],
    ['delegator', 'token-admin'],
  ] as const) {
    tokens[name] = (
      await createToken(server.store, { name, role, expires: '1d', knownRoles })
    ).token;
  }
});
afterAll(async () => {
  await server?.close();
  await new Promise((resolve) => hookServer?.close(resolve));
  home?.remove();
});

async function call(
  as: string,
  path: string,
  json?: unknown,
): Promise<{ status: number; body: Json; code: string | undefined }> {
  const response = await fetch(`${url}${path}`, {
    method: json === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${tokens[as] ?? as}`,
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const body = (await response.json()) as Json;
  return { status: response.status, body, code: (body.error as Json | undefined)?.code as string };
}

const run = (as: string, action: string, targets: string[], params?: Json, options?: Json) =>
  call(as, '/v1/runs', {
    action,
    targets,
    ...(params === undefined ? {} : { params }),
    ...(options === undefined ? {} : { options }),
  });

const auditRecords = (): Json[] =>
  readFileSync(home.auditLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Json);

describe('policy decisions after planning', () => {
  it('allows a diagnostic anywhere and records the allow with its rule id', async () => {
    const accepted = await run('alice', 'noop', ['@all']);
    expect(accepted.status).toBe(202);
    const document = await waitForRun(
      {
        request: (path: string) =>
          fetch(`${url}${path}`, { headers: { authorization: `Bearer ${tokens.alice}` } }),
      } as never,
      accepted.body.id as string,
    );
    expect(document.status).toBe('succeeded');
    const decision = auditRecords().find(
      (record) => record.event === 'policy' && record.run_id === accepted.body.id,
    );
    expect(decision).toMatchObject({
      operator: 'token:alice',
      status: 'allowed',
      nodes: ['web1', 'web2', 'db1'],
      metadata: expect.objectContaining({ verb: 'run', rule: 'soc-diagnostics' }),
    });
  });

  it('refuses a request touching any node outside the grant whole, naming the nodes (and audits the deny)', async () => {
    const before = (await call('alice', '/v1/runs?limit=200')).body.runs as Json[];
    const refused = await run(
      'alice',
      'restart-service',
      ['@all'],
      { service: 'nginx' },
      { confirm: true },
    );
    expect(refused).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    const error = refused.body.error as Json;
    expect((error.details as Json).offending_nodes).toEqual(['web2', 'db1']);
    expect(error.message).toMatch(/web2/);
    // Nothing was created, not even for the permitted part.
    const after = (await call('alice', '/v1/runs?limit=200')).body.runs as Json[];
    expect(after.length).toBe(before.length);
    const denied = auditRecords().filter(
      (record) =>
        record.event === 'policy' &&
        record.status === 'denied' &&
        record.action === 'restart-service',
    );
    expect(denied.at(-1)).toMatchObject({
      error_code: 'POLICY_DENIED',
      metadata: expect.objectContaining({
        rule: 'default-deny',
        offending: [
          { node: 'web2', rule: 'default-deny', reason: 'no rule grants this node' },
          {
            node: 'db1',
            rule: 'soc-no-database-restarts',
            reason: 'denied by rule soc-no-database-restarts',
          },
        ],
      }),
    });
  });

  it('an explicit deny wins over an allow (db1 is in team-a and tagged database)', async () => {
    const refused = await run(
      'alice',
      'restart-service',
      ['db1'],
      { service: 'nginx' },
      { confirm: true },
    );
    expect(refused).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(((refused.body.error as Json).details as Json).rule).toBe('soc-no-database-restarts');
  });

  it('selector tricks cannot widen a grant', async () => {
    const attempt = (targets: string[]) =>
      run('alice', 'restart-service', targets, { service: 'nginx' }, { confirm: true });
    // Exclusion, glob, intersection that still reaches web2: refused whole with POLICY_DENIED.
    for (const targets of [['!db1'], ['web*'], ['tag:web'], ['@all+tag:web'], ['web1,web2']]) {
      const result = await attempt(targets);
      expect({ targets, ...result, body: undefined }).toMatchObject({
        status: 403,
        code: 'POLICY_DENIED',
      });
    }
    // The address of an inventory node is an ad-hoc node of its own name, covered by no grant.
    expect(await attempt(['127.0.0.1'])).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(await attempt(['localhost'])).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    // Case and Unicode look-alikes, user@host:port forms: not inventory nodes at all.
    expect(await attempt(['WEB1'])).toMatchObject({ status: 400, code: 'UNKNOWN_NODE' });
    expect(await attempt(['w\u0435b1'])).toMatchObject({ status: 400, code: 'INVALID_TARGET' });
    expect(await attempt(['root@web1:22'])).toMatchObject({ status: 400 });
    expect((await attempt(['root@web1:22'])).code).toMatch(/^(UNKNOWN_NODE|INVALID_TARGET)$/);
    // An intersection that stays inside the grant is allowed (and held for approval).
    expect(await attempt(['@team-a+tag:web'])).toMatchObject({ status: 202 });
  });

  it('action aliases do not exist: only the canonical name is decided', async () => {
    for (const action of [
      'Restart-Service',
      'restart_service',
      'restart-service ',
      'noop/../restart-service',
    ]) {
      const result = await run('alice', action, ['web1'], { service: 'nginx' }, { confirm: true });
      expect(result.status).toBeGreaterThanOrEqual(400);
      expect(result.code).toMatch(
        /^(INVALID_ACTION_NAME|UNKNOWN_ACTION|SCHEMA_VIOLATION|INVALID_ARGUMENT)$/,
      );
    }
  });

  it('parameter constraints hold on the typed, effective values (no coercion dodge)', async () => {
    const logs = (params: Json) => run('alice', 'gather-logs', ['web1'], params, { dry_run: true });
    expect(await logs({ since: '-2h' })).toMatchObject({ status: 202 });
    expect(await logs({ since: '2h' })).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(await logs({ since: '-48h' })).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(await logs({ since: 'yesterday' })).toMatchObject({
      status: 403,
      code: 'POLICY_DENIED',
    });
    expect(await logs({})).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(await logs({ since: '-2h', lines: 5000 })).toMatchObject({
      status: 403,
      code: 'POLICY_DENIED',
    });
    // A number smuggled as a string is refused by the manifest's types, never coerced past the limit.
    expect(await logs({ since: '-2h', lines: '5000' })).toMatchObject({
      status: 400,
      code: 'INVALID_PARAMETERS',
    });
    expect(await logs({ since: '-2h', lines: 1000 })).toMatchObject({ status: 202 });
    // enum compares JSON type and value.
    const restart = (service: unknown) =>
      run('alice', 'restart-service', ['web1'], { service }, { confirm: true, dry_run: true });
    expect(await restart('nginx')).toMatchObject({ status: 202 });
    expect(await restart('sshd')).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(await restart(['nginx'])).toMatchObject({ status: 400 });
  });

  it('CI may dry-run everything and run nothing', async () => {
    expect(
      await run(
        'ci',
        'restart-service',
        ['@all'],
        { service: 'nginx' },
        { confirm: true, dry_run: true },
      ),
    ).toMatchObject({ status: 202 });
    expect(await run('ci', 'noop', ['web1'])).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    // and has no approve, cancel or admin verb
    expect(await call('ci', '/v1/tokens', { name: 'x', roles: ['ci'] })).toMatchObject({
      status: 403,
      code: 'ROLE_FORBIDDEN',
    });
  });

  it('a principal without any rule is refused by default', async () => {
    const stranger = (
      await createToken(server.store, {
        name: 'stranger',
        role: 'ci',
        expires: '1d',
        knownRoles: ['ci'],
      })
    ).token;
    // ci exists, so give the stranger a role the policy does not define by editing nothing:
    // a token whose roles the policy lacks holds nothing.
    await server.store.db
      .updateTable('api_tokens')
      .set({ role: 'nobody' })
      .where('name', '=', 'stranger')
      .execute();
    expect(await call(stranger, '/v1/runs', { action: 'noop', targets: ['web1'] })).toMatchObject({
      status: 403,
      code: 'ROLE_FORBIDDEN',
    });
    expect(await call(stranger, '/v1/runs')).toMatchObject({ status: 403, code: 'ROLE_FORBIDDEN' });
  });

  it('reading a run needs view on its action and nodes; listings show only those runs', async () => {
    const accepted = await run('alice', 'noop', ['web2']);
    expect(accepted.status).toBe(202);
    // lead1 may view restart-* only
    expect(await call('lead1', `/v1/runs/${accepted.body.id as string}`)).toMatchObject({
      status: 403,
      code: 'POLICY_DENIED',
    });
    const listed = (await call('lead1', '/v1/runs?limit=200')).body.runs as Json[];
    expect(listed.every((entry) => String(entry.action).startsWith('restart-'))).toBe(true);
    // and may not cancel another principal's run
    expect(await call('lead1', `/v1/runs/${accepted.body.id as string}/cancel`, {})).toMatchObject({
      status: 403,
    });
  });
});

describe('four-eyes approvals', () => {
  const hold = async (as = 'alice', targets = ['web1']) => {
    const accepted = await run(
      as,
      'restart-service',
      targets,
      { service: 'nginx' },
      { confirm: true },
    );
    expect(accepted.status).toBe(202);
    expect(accepted.body.status).toBe('awaiting_approval');
    return accepted.body.id as string;
  };

  it('holds a dangerous action, notifies the webhook, refuses self-approval and non-approvers, and starts at the quorum', async () => {
    const notified = new Promise<void>((resolve) => hookWaiters.push(resolve));
    const id = await hold();
    await notified;
    const notice = hooks.find((hook) => (hook.rune as Json | undefined)?.run_id === id) as Json;
    expect(notice.text).toMatch(/token:alice asks to run restart-service on web1/);
    expect((notice.rune as Json).link).toBe(`${url}/v1/runs/${id}`);
    expect((await call('alice', `/v1/runs/${id}`)).body.status).toBe('awaiting_approval');

    expect(await call('alice', `/v1/runs/${id}/approve`, {})).toMatchObject({
      status: 403,
      code: 'APPROVAL_SELF_FORBIDDEN',
    });
    expect(await call('ci', `/v1/runs/${id}/approve`, {})).toMatchObject({
      status: 403,
      code: 'POLICY_DENIED',
    });
    expect(await call('bob', `/v1/runs/${id}/approve`, {})).toMatchObject({
      status: 403,
      code: 'POLICY_DENIED',
    });

    const first = await call('lead1', `/v1/runs/${id}/approve`, {
      comment: 'checked the dashboard',
    });
    expect(first).toMatchObject({
      status: 200,
      body: { state: 'pending', approvals: 1, quorum: 2 },
    });
    expect(await call('lead1', `/v1/runs/${id}/approve`, {})).toMatchObject({
      status: 409,
      code: 'APPROVAL_NOT_PENDING',
    });
    const second = await call('lead2', `/v1/runs/${id}/approve`, {
      binding_sha256: first.body.binding_sha256,
    });
    expect(second).toMatchObject({ status: 200, body: { state: 'approved', approvals: 2 } });
    const document = await waitForRun(
      {
        request: (path: string) =>
          fetch(`${url}${path}`, { headers: { authorization: `Bearer ${tokens.alice}` } }),
      } as never,
      id,
    );
    expect(document.status).toBe('succeeded');
    const votes = auditRecords().filter(
      (record) => record.event === 'approval' && record.run_id === id,
    );
    expect(votes.map((vote) => vote.operator)).toEqual(['token:lead1', 'token:lead2']);
  });

  it('an approval bound to another request is refused (replay)', async () => {
    const a = await hold();
    const b = await hold('bob');
    const bindingOfA = (await call('lead1', `/v1/runs/${a}/approval`)).body
      .binding_sha256 as string;
    // Same action, same node, same params: the binding is per request content, so replaying A's
    // binding on B is accepted only because B is the same request; change B's request instead.
    const c = await run(
      'bob',
      'restart-service',
      ['web1'],
      { service: 'docker' },
      { confirm: true },
    );
    expect(
      await call('lead1', `/v1/runs/${c.body.id as string}/approve`, {
        binding_sha256: bindingOfA,
      }),
    ).toMatchObject({ status: 409, code: 'APPROVAL_MISMATCH' });
    await call('alice', `/v1/runs/${a}/cancel`, {});
    await call('bob', `/v1/runs/${b}/cancel`, {});
    expect((await call('bob', `/v1/runs/${b}`)).body.status).toBe('cancelled');
  });

  it('a changed request (the inventory moved the nodes) invalidates the approval', async () => {
    const accepted = await run(
      'alice',
      'restart-service',
      ['@team-a+tag:web'],
      { service: 'nginx' },
      { confirm: true },
    );
    const id = accepted.body.id as string;
    const inventory = join(home.dir, 'inventory.yaml');
    writeFileSync(
      inventory,
      INVENTORY.replace(
        '  web2: { address: localhost, tags: [web] }',
        '  web2: { address: localhost, tags: [web] }\n  web3: { address: localhost, tags: [web] }',
      ).replace('team-a: [web1, db1]', 'team-a: [web1, web3, db1]'),
    );
    try {
      expect((await call('lead1', `/v1/runs/${id}/approve`, {})).status).toBe(200);
      expect(await call('lead2', `/v1/runs/${id}/approve`, {})).toMatchObject({
        status: 409,
        code: 'APPROVAL_MISMATCH',
      });
      const document = (await call('alice', `/v1/runs/${id}`)).body;
      expect(document.status).toBe('failed');
      expect((document.error as Json).code).toBe('APPROVAL_MISMATCH');
    } finally {
      writeFileSync(inventory, INVENTORY);
    }
  });

  it('a rejection ends the run; the approval view names the votes', async () => {
    const id = await hold();
    expect(
      await call('lead1', `/v1/runs/${id}/reject`, { comment: 'not during the freeze' }),
    ).toMatchObject({ status: 200, body: { state: 'rejected' } });
    const document = (await call('alice', `/v1/runs/${id}`)).body;
    expect(document.status).toBe('cancelled');
    expect((document.error as Json).code).toBe('APPROVAL_REJECTED');
    expect(await call('lead2', `/v1/runs/${id}/approve`, {})).toMatchObject({
      status: 409,
      code: 'APPROVAL_NOT_PENDING',
    });
  });

  it('an approval request expires after approvals.expires', async () => {
    writeFileSync(policyFile, testPolicy(webhook).replace('expires: 4h', 'expires: 1s'));
    expect(server.reloadPolicy()).toMatchObject({ ok: true });
    try {
      const id = await hold();
      // Past the 1 s deadline (waiting for a deadline, not for readiness).
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      expect(await call('lead1', `/v1/runs/${id}/approve`, {})).toMatchObject({
        status: 409,
        code: 'APPROVAL_EXPIRED',
      });
      const document = (await call('alice', `/v1/runs/${id}`)).body;
      expect(document.status).toBe('cancelled');
      expect((document.error as Json).code).toBe('APPROVAL_EXPIRED');
      expect((await call('lead1', `/v1/runs/${id}/approval`)).body.state).toBe('expired');
    } finally {
      writeFileSync(policyFile, testPolicy(webhook));
      expect(server.reloadPolicy()).toMatchObject({ ok: true });
    }
  });

  it('submit(..., { requireApproval }) holds any run (the alerts storm breaker)', async () => {
    const { run: held } = await server.manager.submit(
      { action: 'noop', targets: ['web1'] },
      {
        principal: 'token:alice',
        source: 'api',
        subject: { principal: 'token:alice', subjects: ['token:alice'], roles: ['soc-analyst'] },
      },
      { requireApproval: { reason: 'alert storm: 40 runs in 1 minute' } },
    );
    expect(held.status).toBe('awaiting_approval');
    const view = await call('alice', `/v1/runs/${held.id}/approval`);
    expect(view.body.reason).toMatch(/alert storm/);
    await server.manager.cancel(held.id, 'test over');
  });
});

describe('tokens with roles', () => {
  it('a token can never be created with more rights than its creator', async () => {
    // delegator holds soc-analyst and token-admin, not approver.
    expect(
      await call('delegator', '/v1/tokens', { name: 'child-approver', roles: ['approver'] }),
    ).toMatchObject({ status: 403, code: 'TOKEN_RIGHTS_EXCEEDED' });
    expect(
      await call('delegator', '/v1/tokens', {
        name: 'child-admin',
        roles: ['token-admin', 'approver'],
      }),
    ).toMatchObject({ status: 403, code: 'TOKEN_RIGHTS_EXCEEDED' });
    // alice holds no admin at all
    expect(
      await call('alice', '/v1/tokens', { name: 'alice-child', roles: ['soc-analyst'] }),
    ).toMatchObject({ status: 403, code: 'ROLE_FORBIDDEN' });
    const created = await call('delegator', '/v1/tokens', {
      name: 'child',
      roles: ['soc-analyst'],
      expires: '1h',
    });
    expect(created).toMatchObject({
      status: 201,
      body: { role: 'soc-analyst', bounded_by: ['token:delegator'] },
    });
    tokens.child = created.body.token as string;
    expect(await run('child', 'noop', ['web1'], undefined, { dry_run: true })).toMatchObject({
      status: 202,
    });
  });

  it("a token minted by the requester cannot approve the requester's run", async () => {
    // delegator (soc-analyst) requests; its child would act for it.
    const accepted = await run(
      'delegator',
      'restart-service',
      ['web1'],
      { service: 'nginx' },
      { confirm: true },
    );
    const id = accepted.body.id as string;
    expect(await call('child', `/v1/runs/${id}/approve`, {})).toMatchObject({
      status: 403,
      code: 'APPROVAL_SELF_FORBIDDEN',
    });
    await call('delegator', `/v1/runs/${id}/cancel`, {});
  });

  it('the child stays bounded by its creator after the policy changes or the creator is revoked', async () => {
    writeFileSync(
      policyFile,
      testPolicy(webhook).replace('roles: [soc-analyst, token-admin]', 'roles: [token-admin]'),
    );
    try {
      expect(server.reloadPolicy()).toMatchObject({ ok: true });
      // child still carries soc-analyst itself, but its creator no longer does.
      const refused = await run('child', 'noop', ['web1'], undefined, { dry_run: true });
      // The route's coarse check already refuses it (no dry-run left through the creator).
      expect(refused).toMatchObject({ status: 403, code: 'ROLE_FORBIDDEN' });
      expect((refused.body.error as Json).message).toMatch(
        /bounded by its creator token:delegator/,
      );
    } finally {
      writeFileSync(policyFile, testPolicy(webhook));
      expect(server.reloadPolicy()).toMatchObject({ ok: true });
    }
    expect(await run('child', 'noop', ['web1'], undefined, { dry_run: true })).toMatchObject({
      status: 202,
    });
    const { revokeToken } = await import('../src/auth/tokens.js');
    const grandchild = await call('child', '/v1/tokens', {
      name: 'grandchild',
      roles: ['soc-analyst'],
    });
    // child holds no admin: it cannot mint at all
    expect(grandchild).toMatchObject({ status: 403, code: 'ROLE_FORBIDDEN' });
    await revokeToken(server.store, 'delegator');
    expect(await run('child', 'noop', ['web1'], undefined, { dry_run: true })).toMatchObject({
      status: 403,
      code: 'ROLE_FORBIDDEN',
    });
  });
});

describe('policy file problems', () => {
  it('a reload with errors keeps the old policy and says why', async () => {
    const digest = server.policy.current().digest;
    writeFileSync(policyFile, `${testPolicy(webhook)}unknown_key: 1\n`);
    try {
      const result = server.reloadPolicy();
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.error.code).toBe('INVALID_POLICY');
        expect(result.error.message).toMatch(/policy\.yaml:\d+:1/);
      }
      expect(server.policy.current().digest).toBe(digest);
      expect(await run('alice', 'noop', ['web1'], undefined, { dry_run: true })).toMatchObject({
        status: 202,
      });
    } finally {
      writeFileSync(policyFile, testPolicy(webhook));
    }
  });

  it('an invalid policy stops the server at start-up with file, line and key', async () => {
    const bad = join(home.dir, 'bad-policy.yaml');
    writeFileSync(bad, testPolicy(webhook).replace("nodes: ['@team-a']", "nodes: ['@team-a+']"));
    expect(() => loadServerPolicy(bad)).toThrow(
      /bad-policy\.yaml:\d+:\d+ \(roles\.soc-analyst\.rules\.3\.nodes\.0\): bad node selection/,
    );
    writeFileSync(
      bad,
      testPolicy(webhook).replace('require_approval: true', 'require_aproval: true'),
    );
    expect(() => loadServerPolicy(bad)).toThrow(/INVALID_POLICY|require_aproval/);
    writeFileSync(bad, testPolicy(webhook).replace('roles: [approver]', 'roles: [approvers]'));
    expect(() => loadServerPolicy(bad)).toThrow(/unknown role approvers/);
    const config = join(home.dir, 'bad.toml');
    writeFileSync(
      config,
      readFileSync(home.configFile, 'utf8')
        .replace(JSON.stringify(policyFile), JSON.stringify(bad))
        .replace(/store = .*/, `store = ${JSON.stringify(join(home.dir, 'other.sqlite'))}`),
    );
    await expect(
      createRuneServer({ configFile: config, env: home.env, port: 0 }),
    ).rejects.toMatchObject({ code: 'INVALID_POLICY' });
  });
});
