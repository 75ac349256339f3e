import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load-config.js';
import { parseInventory } from '../inventory/inventory.js';
import { catchRuneError } from '../testing/catch-rune-error.js';
import {
  mentionedNodes,
  type PlanRequest,
  readParamsSource,
  requestedTransport,
  resolvePlanRequest,
} from './plan-request.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-plan-request-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (toml = '') =>
  loadConfig({
    env: {},
    home: '/h',
    cwd: '/w',
    readFile: (path) => (path === '/w/rune.toml' ? toml : undefined),
  }).config;

const resolve = (request: Omit<PlanRequest, 'action'>, toml = '') =>
  resolvePlanRequest({ action: 'tool', ...request }, { config: config(toml) });

const targetsOf = async (request: Omit<PlanRequest, 'action'>, toml = '') =>
  (await resolve(request, toml)).input.targets.map(
    (target) => `${target.node.name}=${target.transport}`,
  );

async function refusalOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code: string }).code;
  }
  return 'none';
}

const inventory = parseInventory(
  'nodes:\n  web01: { address: 10.0.0.1, tags: [web] }\n  db01: { transport: ssm, instance_id: i-0123456789abcdef0 }\n  box: { address: 127.0.0.1 }\n',
  { file: 'fleet.yaml' },
);

describe('resolvePlanRequest: selector strings to targets', () => {
  it('selects ad-hoc names once each, with the local rule and [core] default_transport', async () => {
    expect(await targetsOf({ selections: ['web1,web2', 'web1', 'localhost', ' '] })).toEqual([
      'web1=ssh',
      'web2=ssh',
      'localhost=local',
    ]);
    expect(
      await targetsOf({ selections: ['web1', 'localhost'] }, '[core]\ndefault_transport = "ssm"\n'),
    ).toEqual(['web1=ssm', 'localhost=local']);
  });

  it('selects from a parsed inventory or an inventory file ([core] inventory by default)', async () => {
    expect(await targetsOf({ selections: ['tag:web,db01,box'], inventory })).toEqual([
      'web01=ssh',
      'db01=ssm',
      'box=local',
    ]);
    const file = join(dir, 'fleet.yaml');
    writeFileSync(file, 'nodes:\n  web01: { address: 10.0.0.1 }\n  web02: {}\n');
    expect(await targetsOf({ selections: ['web*'], inventory: file })).toEqual([
      'web01=ssh',
      'web02=ssh',
    ]);
    expect(await targetsOf({ selections: ['web*'] }, `[core]\ninventory = "${file}"\n`)).toEqual([
      'web01=ssh',
      'web02=ssh',
    ]);
    expect(await refusalOf(targetsOf({ selections: ['web09'], inventory: file }))).toBe(
      'UNKNOWN_NODE',
    );
  });

  it('reads node lists after the selections', async () => {
    const list = join(dir, 'nodes.txt');
    writeFileSync(list, '# fleet\nweb3\nweb1 # again\n');
    expect(await targetsOf({ selections: ['web1'], nodeLists: [list] })).toEqual([
      'web1=ssh',
      'web3=ssh',
    ]);
    expect(await refusalOf(targetsOf({ nodeLists: [join(dir, 'missing.txt')] }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('lets transport and useSsm override the inventory and the local rule, and refuses both at odds', async () => {
    expect(await targetsOf({ selections: ['db01,box'], inventory, transport: 'ssh' })).toEqual([
      'db01=ssh',
      'box=ssh',
    ]);
    expect(await targetsOf({ selections: ['localhost,web1'], useSsm: true })).toEqual([
      'localhost=ssm',
      'web1=ssm',
    ]);
    expect(requestedTransport({ useSsm: true, transport: 'ssm' })).toBe('ssm');
    const error = catchRuneError(() => requestedTransport({ useSsm: true, transport: 'ssh' }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('--use-ssm contradicts --transport ssh');
  });

  it('validates names before anything runs and leaves an empty selection to planning', async () => {
    expect(await refusalOf(targetsOf({ selections: ['-oProxyCommand=x'] }))).toBe('INVALID_TARGET');
    expect(await refusalOf(targetsOf({ selections: ['a/b'] }))).toBe('INVALID_TARGET');
    expect(await targetsOf({})).toEqual([]);
  });

  it('parses durations, counts and the policy as typed', async () => {
    const { input, policy } = await resolve({
      selections: ['web1'],
      timeout: '1.5s',
      concurrency: '7',
      policy: { canary: '1', maxFailures: '10%', deadline: '5m' },
    });
    expect(input).toMatchObject({ timeoutMs: 1500, concurrency: 7 });
    expect(policy).toEqual({ canary: 1, maxFailures: { percent: 10 }, deadlineMs: 300_000 });
    expect((await resolve({ timeout: 250, concurrency: 3 })).input).toMatchObject({
      timeoutMs: 250,
      concurrency: 3,
    });
    for (const bad of [
      { timeout: 'soon' },
      { concurrency: '0x10' },
      { policy: { canary: '-1' } },
      { policy: { maxFailures: '150%' } },
      { policy: { deadline: '999h' } },
      { paramsSource: '-', nodeLists: ['-'] },
    ] satisfies Omit<PlanRequest, 'action'>[]) {
      expect(await refusalOf(resolve(bad)), JSON.stringify(bad)).toBe('INVALID_ARGUMENT');
    }
  });

  it('reads parameters from text over typed ones', async () => {
    const { input } = await resolve({ params: { a: 1, b: 2 }, paramsSource: '{"b":3}' });
    expect(input.params).toEqual({ a: 1, b: 3 });
  });
});

describe('readParamsSource', () => {
  it('reads --params from stdin, inline JSON, and refuses non-objects', () => {
    expect(readParamsSource('-', () => '{"a":1}')).toEqual({ a: 1 });
    expect(readParamsSource('{"b":"x"}')).toEqual({ b: 'x' });
    for (const bad of ['[1]', '{', '@/no/such/file.json']) {
      expect(catchRuneError(() => readParamsSource(bad)).code, bad).toBe('INVALID_PARAMETERS');
    }
  });
});

describe('mentionedNodes', () => {
  it('lists the names a refused request mentions, comma lists split', () => {
    expect(mentionedNodes({ selections: ['a,b', ' c ', '', 'd,,'] })).toEqual(['a', 'b', 'c', 'd']);
    expect(mentionedNodes({})).toEqual([]);
  });
});
