/**
 * Fine view checks of the listings that are not about one run, against a real `rune serve`
 * (real HTTP, local transport, real bash plugins, real audit log) with a policy that grants one
 * subject the view of one team's nodes and two actions: `GET /v1/actions`, `/v1/actions/{name}`,
 * `/v1/nodes` and `/v1/audit` show it only those actions, those nodes and the records about them.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../src/index.js';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

type Json = Record<string, unknown>;

const INVENTORY = `nodes:
  web1: { address: localhost, tags: [web] }
  web2: { address: localhost, tags: [web] }
  db1: { address: localhost, tags: [database] }
groups:
  team-a: [web1, db1]
`;

const POLICY = `version: rune-policy/v1
roles:
  team-a-viewer:
    rules:
      - id: team-a-view
        verbs: [view]
        actions: [noop, check-disk]
        nodes: ['@team-a']
  everything:
    rules:
      - id: all
        verbs: [view, dry-run, run, cancel]
        actions: ['*']
        nodes: ['@all']
bindings:
  - subjects: [token:carol]
    roles: [team-a-viewer]
  - subjects: [token:root]
    roles: [everything]
`;

let home: TestHome;
let t: TestServer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  home = createTestHome('', { inventory: 'PLACEHOLDER' });
  const inventory = join(home.dir, 'inventory.yaml');
  writeFileSync(inventory, INVENTORY);
  const policy = join(home.dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  writeFileSync(
    home.configFile,
    `${readFileSync(home.configFile, 'utf8').replace('"PLACEHOLDER"', JSON.stringify(inventory))}policy = ${JSON.stringify(policy)}\n\n[execution]\nfetch_artifacts = true\n`,
  );
  t = await startTestServer(home);
  const knownRoles = [...t.server.policy.current().roles.keys()];
  for (const [name, role] of [
    ['carol', 'team-a-viewer'],
    ['root', 'everything'],
  ] as const) {
    tokens[name] = (
      await createToken(t.server.store, { name, role, expires: '1d', knownRoles })
    ).token;
  }
  // One run on a team-a node, one on another node.
  for (const node of ['web1', 'web2']) {
    const response = await t.request('/v1/runs', {
      token: tokens.root as string,
      json: { action: 'noop', targets: [node], params: { message: `on ${node}` } },
    });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const done = await waitForRun(
      { ...t, request: (path) => t.request(path, { token: tokens.root as string }) },
      id,
    );
    expect(done.status).toBe('succeeded');
  }
});
afterAll(async () => {
  await t?.close();
  home?.remove();
});

const get = async (as: string, path: string): Promise<{ status: number; body: Json }> => {
  const response = await t.request(path, { token: tokens[as] as string });
  return { status: response.status, body: (await response.json()) as Json };
};

it('GET /v1/actions lists only the actions a view rule names; one other action is refused', async () => {
  const names = (as: string) =>
    get(as, '/v1/actions').then((r) => (r.body.actions as Json[]).map((a) => a.name as string));
  expect((await names('carol')).sort()).toEqual(['check-disk', 'noop']);
  expect((await names('root')).length).toBeGreaterThan(2);
  expect((await get('carol', '/v1/actions/noop')).status).toBe(200);
  const refused = await get('carol', '/v1/actions/gather-logs');
  expect(refused.status).toBe(403);
  expect((refused.body.error as Json).code).toBe('POLICY_DENIED');
});

it('GET /v1/nodes shows and matches only the nodes the subject may view', async () => {
  const all = await get('carol', '/v1/nodes?selector=%40all');
  expect(all.status).toBe(200);
  expect((all.body.nodes as Json[]).map((node) => node.name).sort()).toEqual(['db1', 'web1']);
  expect((all.body.matched as string[]).sort()).toEqual(['db1', 'web1']);
  const root = await get('root', '/v1/nodes');
  expect((root.body.nodes as Json[]).map((node) => node.name).sort()).toEqual([
    'db1',
    'web1',
    'web2',
  ]);
});

it('GET /v1/audit returns only records about viewable actions and nodes', async () => {
  const nodesOf = (record: Json): string[] => [
    ...(typeof record.node === 'string' ? [record.node] : []),
    ...((record.nodes as string[] | undefined) ?? []),
  ];
  const carol = (await get('carol', '/v1/audit?limit=1000')).body.records as Json[];
  const root = (await get('root', '/v1/audit?limit=1000')).body.records as Json[];
  expect(root.some((record) => nodesOf(record).includes('web2'))).toBe(true);
  expect(carol.some((record) => nodesOf(record).includes('web1'))).toBe(true);
  for (const record of carol) {
    expect(
      nodesOf(record).every((node) => node === 'web1' || node === 'db1'),
      JSON.stringify(record),
    ).toBe(true);
    if (typeof record.action === 'string' && record.action !== '') {
      expect(['noop', 'check-disk']).toContain(record.action);
    }
  }
  // Asking for web2 by name does not reveal it either.
  expect((await get('carol', '/v1/audit?node=web2')).body.records).toEqual([]);
});

it('an artifact download is an audit record (the one allowed read that is), written before the file is sent', async () => {
  const response = await t.request('/v1/runs', {
    token: tokens.root as string,
    json: { action: 'report', targets: ['web1'], params: { message: 'file', artifact: true } },
  });
  expect(response.status).toBe(202);
  const { id } = (await response.json()) as { id: string };
  const done = await waitForRun(
    { ...t, request: (path) => t.request(path, { token: tokens.root as string }) },
    id,
  );
  expect(done.status).toBe('succeeded');
  const node = (done.nodes as Json[])[0] as Json;
  const artifact = (node.artifacts as Json[])[0] as Json;
  const name = String(artifact.path).split('/').at(-1) as string;
  try {
    const reads = () =>
      readFileSync(home.auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Json)
        .filter(
          (record) =>
            record.event === 'policy' &&
            record.run_id === id &&
            (record.metadata as Json).verb === 'view',
        );
    expect(reads()).toEqual([]);
    const download = await t.request(`/v1/runs/${id}/nodes/web1/artifacts/${name}`, {
      token: tokens.root as string,
    });
    expect(download.status).toBe(200);
    expect(await download.text()).toMatch(/^report /);
    expect(reads()).toMatchObject([
      { status: 'allowed', operator: 'token:root', action: 'report', nodes: ['web1'] },
    ]);
    // Reading the run itself (an allowed read) writes nothing.
    expect((await t.request(`/v1/runs/${id}`, { token: tokens.root as string })).status).toBe(200);
    expect(reads()).toHaveLength(1);
  } finally {
    rmSync(String(artifact.path), { force: true });
  }
});
