/**
 * Selection-based requests through the facade (`rune.run` / `rune.start`): selector strings and
 * node lists become a plan with the local rule applied once, inventory warnings reach
 * `onWarning`, and every refusal — a malformed value, a contradiction, an unknown node, an
 * unknown action — leaves exactly one audit record. Real bash plugins, the real local transport.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalTransport,
  createMemoryAuditSink,
  createRune,
  type PlanRequest,
  type Rune,
} from '../src/index.js';
import { createFixtureEnv, type FixtureEnv } from './fixture-env.js';

let fx: FixtureEnv;
let rune: Rune;
const audit = createMemoryAuditSink();
const warnings: string[] = [];

beforeAll(() => {
  fx = createFixtureEnv();
  rune = createRune({
    env: fx.env,
    home: fx.home,
    cwd: fx.root,
    auditSink: audit,
    pluginSources: [{ kind: 'user', dir: fx.pluginDir }],
    transports: { local: () => createLocalTransport({ env: fx.env }) },
    onWarning: (message, origin) => warnings.push(`${origin}: ${message}`),
  });
});
afterAll(async () => {
  await rune.close();
  fx.cleanup();
});

describe('a selection-based request', () => {
  it('plans selector strings and node lists with the local rule, once per node', async () => {
    const list = join(fx.root, 'nodes.txt');
    writeFileSync(list, 'localhost\n127.0.0.1 # the same machine, another name\n');
    const plan = await rune.plan({
      action: 'ok',
      selections: ['localhost,web01:2222', 'localhost'],
      nodeLists: [list],
      dryRun: true,
    });
    expect(plan.nodes.map((node) => `${node.target.name}=${node.transport}`)).toEqual([
      'localhost=local',
      'web01:2222=ssh',
      '127.0.0.1=local',
    ]);
    expect(plan.nodes[1]?.target).toEqual({ name: 'web01:2222', address: 'web01', port: 2222 });
  });

  it('runs through start() and reports inventory warnings', async () => {
    const hosts = join(fx.root, 'hosts');
    writeFileSync(hosts, 'localhost ansible_connection=local ansible_password=secret\n');
    const handle = await rune.start({
      action: 'ok',
      selections: ['@all'],
      inventory: hosts,
      confirmDangerous: true,
    });
    const outcome = await handle.result;
    expect(outcome.nodes.map((node) => [node.node, node.transport, node.status])).toEqual([
      ['localhost', 'local', 'success'],
    ]);
    expect(warnings.some((warning) => warning.startsWith('inventory: '))).toBe(true);
  });

  it.each<[string, Omit<PlanRequest, 'action'> & { action?: string }, string]>([
    ['a malformed timeout', { selections: ['localhost'], timeout: 'soon' }, 'INVALID_ARGUMENT'],
    [
      '--use-ssm against --transport',
      { selections: ['localhost'], useSsm: true, transport: 'ssh' },
      'INVALID_ARGUMENT',
    ],
    ['a bad canary', { selections: ['localhost'], policy: { canary: 'two' } }, 'INVALID_ARGUMENT'],
    ['an unknown group', { selections: ['@web'] }, 'UNKNOWN_NODE'],
    ['a malformed node', { selections: ['-oProxyCommand=x'] }, 'INVALID_TARGET'],
    ['no node', { selections: [] }, 'NO_TARGETS'],
    [
      'an unknown action',
      { action: 'no-such-action', selections: ['localhost'] },
      'UNKNOWN_ACTION',
    ],
    [
      'unreadable params',
      { selections: ['localhost'], paramsSource: '@/no/such.json' },
      'INVALID_PARAMETERS',
    ],
  ])('refuses %s before anything runs, with exactly one audit record', async (_, request, code) => {
    const before = audit.records.length;
    await expect(rune.start({ action: 'ok', ...request })).rejects.toMatchObject({ code });
    const written = audit.records.slice(before);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ event: 'refusal', error_code: code, node: null });
  });

  it('names the selected nodes in the refusal record once they are known', async () => {
    const before = audit.records.length;
    await expect(
      rune.run({ action: 'no-such-action', selections: ['localhost,box'], useSsm: true }),
    ).rejects.toMatchObject({ code: 'UNKNOWN_ACTION' });
    expect(audit.records.slice(before)).toMatchObject([
      { event: 'refusal', nodes: ['localhost', 'box'], transport: 'ssm' },
    ]);
  });
});
