import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import { loadInventory, parseInventory } from './inventory.js';

const FLEET = `
version: 1
defaults:
  user: ops
  port: 22
  identity_file: ~/.ssh/fleet
nodes:
  web01: { address: 10.0.0.1, tags: [web, eu] }
  web02:
    address: 10.0.0.2
    tags: [web, us]
    port: 2222
    proxy_jump: bastion.example.com
  web03: { tags: [web, eu], run_as: root }
  db01:
    transport: ssm
    instance_id: i-0123456789abcdef0
    tags: [db, eu]
    settings: { region: eu-west-1 }
  lonely: ~
groups:
  web: [web01, web02, web03]
  eu-web: ['tag:eu+tag:web']
  frontline: ['@eu-web', db01, '!web03']
  numbered: ['web0[12]']
`;

describe('parseInventory', () => {
  it('applies defaults, keeps file order and resolves groups', () => {
    const inventory = parseInventory(FLEET, { file: 'fleet.yaml' });
    expect(inventory.file).toBe('fleet.yaml');
    expect(inventory.nodes.map((node) => node.name)).toEqual([
      'web01',
      'web02',
      'web03',
      'db01',
      'lonely',
    ]);
    expect(inventory.nodes[1]).toEqual({
      name: 'web02',
      address: '10.0.0.2',
      port: 2222,
      user: 'ops',
      tags: ['web', 'us'],
      settings: { identity_file: '~/.ssh/fleet', proxy_jump: 'bastion.example.com' },
    });
    expect(inventory.nodes[3]).toMatchObject({
      name: 'db01',
      transport: 'ssm',
      instanceId: 'i-0123456789abcdef0',
      settings: { region: 'eu-west-1', identity_file: '~/.ssh/fleet' },
    });
    expect(inventory.nodes[2]?.runAs).toBe('root');
    expect(inventory.nodes[4]).toMatchObject({ name: 'lonely', tags: [], user: 'ops' });
    expect(Object.fromEntries(inventory.groups)).toEqual({
      all: ['web01', 'web02', 'web03', 'db01', 'lonely'],
      web: ['web01', 'web02', 'web03'],
      'eu-web': ['web01', 'web03'],
      frontline: ['web01', 'db01'],
      numbered: ['web01', 'web02'],
    });
  });

  it('reports YAML syntax errors with file and line', () => {
    const error = catchRuneError(() => parseInventory('nodes:\n  web01: [a\n', { file: 'f.yaml' }));
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.message).toMatch(/^f\.yaml:\d+:\d+: \/ is not valid YAML/);
    expect(error.details).toMatchObject({ file: 'f.yaml', pointer: '' });
  });

  it('rejects duplicate keys', () => {
    const error = catchRuneError(() =>
      parseInventory('nodes:\n  a: ~\n  a: ~\n', { file: 'f.yaml' }),
    );
    expect(error.code).toBe('INVALID_INVENTORY');
  });

  it.each([
    ['nodes:\n  web01:\n    adress: 10.0.0.1\n', '/nodes/web01/adress', 3],
    ['nodes:\n  web01:\n    port: 99999\n', '/nodes/web01/port', 3],
    ['nodes:\n  web01:\n    port: "22"\n', '/nodes/web01/port', 3],
    ['nodes:\n  "bad name": ~\n', '/nodes/bad name', 2],
    ['nodes:\n  web01: { tags: [a, a] }\n', '/nodes/web01/tags', 2],
    ['nodes:\n  web01: { instance_id: "x" }\n', '/nodes/web01/instance_id', 2],
    ['nodes:\n  web01: { host_key_checking: maybe }\n', '/nodes/web01/host_key_checking', 2],
    ['nodes: {}\nextra: 1\n', '/extra', 2],
    ['defaults:\n  tags: [x]\nnodes: {}\n', '/defaults/tags', 2],
  ])('names the path of a schema violation: %j', (text, pointer, line) => {
    const error = catchRuneError(() => parseInventory(text, { file: 'fleet.yaml' }));
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.details).toMatchObject({ file: 'fleet.yaml', pointer, line });
    expect(error.message).toContain(`fleet.yaml:${line}:`);
    expect(error.message).toContain(pointer);
  });

  it.each([
    ['nodes:\n  web01: { address: "10.0.0.1\\0" }\n', '/nodes/web01/address', 0x00],
    ['nodes:\n  web01: { address: "evil\\e[2J" }\n', '/nodes/web01/address', 0x1b],
    ['nodes:\n  web01: { address: "a\\rb" }\n', '/nodes/web01/address', 0x0d],
    ['nodes:\n  web01: { address: "a\\x9bb" }\n', '/nodes/web01/address', 0x9b],
    ['nodes:\n  web01: { address: "a\\x7f" }\n', '/nodes/web01/address', 0x7f],
    ['nodes:\n  web01: { address: "a\\u202eb" }\n', '/nodes/web01/address', 0x202e],
    ['nodes:\n  web01: { user: "ops\\0" }\n', '/nodes/web01/user', 0x00],
    ['nodes:\n  web01: { identity_file: "/k\\0" }\n', '/nodes/web01/identity_file', 0x00],
    ['nodes:\n  web01: { proxy_jump: "b\\e" }\n', '/nodes/web01/proxy_jump', 0x1b],
    ['nodes:\n  web01: { settings: { region: "x\\0" } }\n', '/nodes/web01/settings/region', 0],
    ['nodes:\n  "web\\e01": ~\n', '/nodes/web\x1b01', 0x1b],
    ['defaults: { user: "a\\0" }\nnodes: {}\n', '/defaults/user', 0x00],
    ['nodes: { a: ~ }\ngroups: { g: ["a\\0"] }\n', '/groups/g/0', 0x00],
  ])('refuses a control character in %j, naming where', (text, pointer, character) => {
    const error = catchRuneError(() => parseInventory(text, { file: 'fleet.yaml' }));
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.details).toMatchObject({ pointer, character });
    expect(error.message).toContain('control character');
    if (pointer.startsWith('/nodes/web01')) {
      expect(error.message).toContain('node "web01"');
      expect(error.details?.node).toBe('web01');
    }
  });

  it.each([
    ['', 'empty file'],
    ['- a\n- b\n', 'a list'],
    ['groups: {}\n', 'no nodes'],
  ])('rejects %j (%s)', (text) => {
    expect(catchRuneError(() => parseInventory(text)).code).toBe('INVALID_INVENTORY');
  });

  it.each([
    ['nodes: { a: ~ }\ngroups: { g: [b] }\n', /unknown node "b"/],
    ['nodes: { a: ~ }\ngroups: { g: ["@h"] }\n', /unknown group "@h"/],
    ['nodes: { a: ~ }\ngroups: { g: ["tag:x"] }\n', /no node has tag "x"/],
    ['nodes: { a: ~ }\ngroups: { g: ["z*"] }\n', /glob "z\*" matches no node/],
    ['nodes: { a: ~ }\ngroups: { g: ["a,,b"] }\n', /invalid node selector/],
    ['nodes: { a: ~ }\ngroups: { all: [a] }\n', /reserved/],
    ['nodes: { a: ~ }\ngroups: { g: ["@h"], h: ["@g"] }\n', /cycle: @g -> @h -> @g/],
  ])('rejects broken groups: %j', (text, message) => {
    const error = catchRuneError(() => parseInventory(text, { file: 'i.yaml' }));
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.message).toMatch(message);
    expect(error.details?.pointer).toMatch(/^\/groups\//);
  });

  it('refuses alias bombs', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'nodes: {}',
    ].join('\n');
    expect(catchRuneError(() => parseInventory(bomb)).code).toBe('INVALID_INVENTORY');
  });
});

describe('loadInventory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rune-inventory-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file', async () => {
    const file = join(dir, 'fleet.yaml');
    await writeFile(file, FLEET);
    const inventory = await loadInventory(file);
    expect(inventory.file).toBe(file);
    expect(inventory.nodes).toHaveLength(5);
  });

  it('reports a missing file as INVALID_INVENTORY naming it', async () => {
    const file = join(dir, 'missing.yaml');
    await expect(loadInventory(file)).rejects.toMatchObject({
      code: 'INVALID_INVENTORY',
      details: { file, reason: 'ENOENT' },
    });
  });
});
