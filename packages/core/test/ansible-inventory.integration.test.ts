/**
 * RUNE's reading of Ansible inventories, checked against Ansible itself: for every fixture,
 * `ansible-inventory -i FILE --list` (ansible-core, installed by scripts/ensure-test-tools.mjs)
 * gives the groups, their hosts and every host's merged variables; RUNE must resolve the same
 * groups, the same variables (precedence host > child group > parent group > all, group
 * priority, ranges, INI value typing) and map the connection variables onto its nodes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAnsibleInventoryModel } from '../src/inventory/ansible-inventory.js';
import { ANSIBLE_ALL } from '../src/inventory/ansible-model.js';
import {
  detectInventoryFormat,
  type Inventory,
  loadInventory,
} from '../src/inventory/inventory.js';
import { selectTargets } from '../src/inventory/select-targets.js';
import { catchRuneError } from '../src/testing/catch-rune-error.js';

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, 'fixtures', 'ansible');
const FIXTURE_FILES = [
  'precedence.ini',
  'hosts',
  'values.ini',
  'fleet.yml',
  'priority.yaml',
  'refused.ini',
];

interface AnsibleList {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: unknown;
}

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rune-ansible-'));
  // An empty config, so no ansible.cfg or ~/.ansible.cfg on the machine changes the answer.
  await writeFile(join(home, 'ansible.cfg'), '[defaults]\n');
});

function ansibleEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    ANSIBLE_CONFIG: join(home, 'ansible.cfg'),
    ANSIBLE_LOCAL_TEMP: join(home, 'tmp'),
    // An unparsable file must fail here, not fall back to "only implicit localhost".
    ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
    ANSIBLE_INVENTORY_ENABLED: 'ini,yaml',
  };
}
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

async function ansibleList(file: string): Promise<AnsibleList> {
  // Fails (not skips) without ansible-inventory: `pnpm test` installs it (ensure-test-tools).
  const { stdout } = await run('ansible-inventory', ['-i', file, '--list'], {
    env: ansibleEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as AnsibleList;
}

/** Group -> every host in it or its descendants, from `--list` output. */
function ansibleGroups(list: AnsibleList): Map<string, Set<string>> {
  const entry = (name: string) => (list[name] ?? {}) as { hosts?: string[]; children?: string[] };
  const closure = (name: string, seen = new Set<string>()): Set<string> => {
    const hosts = new Set(entry(name).hosts ?? []);
    for (const child of entry(name).children ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      for (const host of closure(child, seen)) hosts.add(host);
    }
    return hosts;
  };
  const groups = new Map<string, Set<string>>();
  for (const name of Object.keys(list)) if (name !== '_meta') groups.set(name, closure(name));
  groups.set(ANSIBLE_ALL, new Set(Object.keys(list._meta.hostvars)));
  return groups;
}

/** What RUNE's node must be, derived from Ansible's merged variables. */
function expectedNode(name: string, vars: Record<string, unknown>) {
  const node: Record<string, unknown> = { name };
  const address = vars.ansible_host ?? vars.ansible_ssh_host;
  if (address !== undefined) node.address = String(address);
  const port = vars.ansible_port ?? vars.ansible_ssh_port;
  if (port !== undefined) node.port = Number(port);
  const user = vars.ansible_user ?? vars.ansible_ssh_user;
  if (user !== undefined) node.user = String(user);
  node.transport = vars.ansible_connection === 'local' ? 'local' : 'ssh';
  const become = vars.ansible_become;
  if (become === true || (typeof become === 'string' && /^(yes|true|1|y|on|t)$/i.test(become)))
    node.runAs = String(vars.ansible_become_user ?? 'root');
  return node;
}

describe.each(FIXTURE_FILES)('Ansible inventory %s', (fixture) => {
  const file = join(FIXTURES, fixture);
  let list: AnsibleList;
  let inventory: Inventory;
  beforeAll(async () => {
    [list, inventory] = await Promise.all([ansibleList(file), loadInventory(file)]);
  });

  it('is detected as the format Ansible reads it in', () => {
    expect(inventory.format).toBe(
      fixture.endsWith('.yml') || fixture.endsWith('.yaml') ? 'ansible-yaml' : 'ansible-ini',
    );
  });

  it('has exactly the hosts Ansible lists, with the same merged variables', async () => {
    const format = inventory.format === 'ansible-yaml' ? 'ansible-yaml' : 'ansible-ini';
    const model = parseAnsibleInventoryModel(await readFile(file, 'utf8'), { file, format });
    const ours = Object.fromEntries(
      [...model.hosts.keys()].map((host) => [host, model.hostVariables(host)]),
    );
    expect(JSON.parse(JSON.stringify(ours))).toEqual(list._meta.hostvars);
    expect(inventory.nodes.map((node) => node.name).sort()).toEqual(
      Object.keys(list._meta.hostvars).sort(),
    );
  });

  it('resolves every group (all, ungrouped, children) to the hosts Ansible does', () => {
    const expected = ansibleGroups(list);
    for (const [group, hosts] of expected)
      expect([...(inventory.groups.get(group) ?? [])].sort(), group).toEqual([...hosts].sort());
    // Groups Ansible leaves out of --list are empty ones.
    for (const [group, members] of inventory.groups)
      if (!expected.has(group)) expect(members, group).toEqual([]);
  });

  it('maps ansible_host/port/user/connection/become onto the nodes', () => {
    for (const node of inventory.nodes) {
      if (node.refusal !== undefined) continue;
      const vars = list._meta.hostvars[node.name] ?? {};
      expect(node, node.name).toMatchObject(expectedNode(node.name, vars));
      for (const key of ['address', 'port', 'user', 'runAs'] as const)
        if (expectedNode(node.name, vars)[key] === undefined)
          expect(node[key], `${node.name}.${key}`).toBeUndefined();
    }
  });
});

/** A code block of the "Ansible inventories" section of docs/fleet.md. */
async function docsExample(language: string): Promise<string> {
  const docs = await readFile(
    join(import.meta.dirname, '..', '..', '..', 'docs', 'fleet.md'),
    'utf8',
  );
  const section = docs.split('\n## Ansible inventories\n')[1] ?? '';
  const block = section.split(`\n\`\`\`${language}\n`)[1]?.split('\n```\n')[0];
  if (block === undefined) throw new Error(`docs/fleet.md: no ${language} example`);
  return `${block}\n`;
}

describe('the examples of docs/fleet.md', () => {
  it('INI and YAML are the same inventory, and Ansible agrees', async () => {
    const files: string[] = [];
    for (const [language, name] of [
      ['ini', 'hosts.ini'],
      ['yaml', 'hosts.yml'],
    ] as const) {
      const file = join(home, name);
      await writeFile(file, await docsExample(language));
      files.push(file);
    }
    const [ini, yml] = await Promise.all(files.map((file) => loadInventory(file)));
    const [iniList, ymlList] = await Promise.all(files.map((file) => ansibleList(file)));
    expect(ini?.format).toBe('ansible-ini');
    expect(yml?.format).toBe('ansible-yaml');
    // INI `ansible_become=true` is the string "true" (not a Python literal), YAML's is a boolean.
    const normalized = (list: AnsibleList | undefined) =>
      JSON.parse(
        JSON.stringify(list?._meta).replaceAll('"ansible_become":"true"', '"ansible_become":true'),
      );
    expect(normalized(ymlList)).toEqual(normalized(iniList));
    // Equal but for where a refused host is (file:line).
    const view = (inventory: Inventory | undefined) => ({
      nodes: inventory?.nodes.map((node) =>
        node.refusal === undefined
          ? node
          : { ...node, refusal: node.refusal.replace(/^\S+:\d+: /, '') },
      ),
      groups: Object.fromEntries(inventory?.groups ?? []),
    });
    expect(view(yml)).toEqual(view(ini));
    for (const [group, hosts] of ansibleGroups(iniList as AnsibleList))
      expect([...(ini?.groups.get(group) ?? [])].sort(), group).toEqual([...hosts].sort());
  });
});

describe('Ansible inventories in RUNE selections', () => {
  it('selects groups, tags, names and globs, and keeps Ansible precedence', async () => {
    const inventory = await loadInventory(join(FIXTURES, 'hosts'));
    const names = (selection: string) =>
      selectTargets([selection], { inventory }).map((target) => target.node.name);
    expect(names('@web')).toEqual([
      'web1.eu.example.com',
      'web2.eu.example.com',
      'web3.eu.example.com',
      'app-a-01',
      'app-a-02',
      'app-b-01',
      'app-b-02',
    ]);
    expect(names('@eu,!@web')).toEqual(['db0', 'db4', 'db8', 'dbx']);
    expect(names('tag:us')).toEqual(['edge01', 'edge02']);
    expect(names('@ungrouped')).toEqual(['localhost', 'jump.example.com']);
    expect(names('app-*+@web')).toEqual(['app-a-01', 'app-a-02', 'app-b-01', 'app-b-02']);
    const [local, jump, , , , appA01] = selectTargets(['@all'], { inventory });
    expect(local).toMatchObject({ transport: 'local', node: { name: 'localhost' } });
    expect(jump).toMatchObject({ transport: 'ssh', node: { port: 2201, user: 'ops' } });
    expect(appA01?.node).toMatchObject({ user: 'app' });
    const [edge01, edge02] = selectTargets(['@edge'], { inventory });
    expect(edge01?.node).toMatchObject({
      address: '192.0.2.10',
      user: 'edge',
      port: 2022,
      settings: { identity_file: '~/.ssh/edge' },
    });
    expect(edge02?.node.settings).toEqual({ proxy_jump: 'jump.example.com:2201' });
    const [db0] = selectTargets(['db0'], { inventory });
    expect(db0?.node.runAs).toBe('postgres');
  });

  it('refuses a selected host RUNE cannot honour, and only when it is selected', async () => {
    const file = join(FIXTURES, 'refused.ini');
    const inventory = await loadInventory(file);
    expect(selectTargets(['@linux'], { inventory }).map((t) => t.node.name)).toEqual([
      'ok01',
      'ok02',
    ]);
    const error = catchRuneError(() => selectTargets(['@all'], { inventory }));
    expect(error.code).toBe('INVALID_INVENTORY');
    const refused = (error.details?.refused as { node: string; reason: string }[]) ?? [];
    expect(refused.map((entry) => entry.node)).toEqual(['win01', 'prx01', 'tmpl01', 'su01']);
    expect(refused[0]?.reason).toMatch(/refused\.ini:7: .*ansible_connection=winrm/);
    expect(refused[1]?.reason).toMatch(/ProxyCommand/);
    expect(refused[2]?.reason).toMatch(/Jinja template/);
    expect(refused[3]?.reason).toMatch(/ansible_become_method=su/);
    // The password is never part of the node, and the operator is told it is ignored.
    const ok02 = inventory.nodes.find((node) => node.name === 'ok02');
    expect(JSON.stringify(ok02)).not.toContain('hunter2');
    expect(inventory.warnings?.join('\n')).toMatch(/ansible_password is ignored.*ok02/);
  });

  it('reads the YAML that `ansible-inventory --list --yaml` writes as the same inventory', async () => {
    for (const fixture of ['precedence.ini', 'fleet.yml']) {
      const original = await loadInventory(join(FIXTURES, fixture));
      const { stdout } = await run(
        'ansible-inventory',
        ['-i', join(FIXTURES, fixture), '--list', '--yaml'],
        { env: ansibleEnv() },
      );
      const exported = join(home, `${fixture}.exported.yml`);
      await writeFile(exported, stdout);
      const reread = await loadInventory(exported);
      const view = (inv: Inventory) => ({
        nodes: [...inv.nodes]
          .map((node) => ({ ...node, tags: [...node.tags].sort() }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        groups: Object.fromEntries(
          [...inv.groups].map(([group, members]) => [group, [...members].sort()]),
        ),
      });
      expect(view(reread)).toEqual(view(original));
    }
  });

  it('detects the format from the extension and the content', () => {
    expect(detectInventoryFormat('hosts.ini', 'all:\n  hosts: {}\n')).toBe('ansible-ini');
    expect(detectInventoryFormat('fleet.yaml', 'nodes:\n  a: ~\n')).toBe('rune');
    expect(detectInventoryFormat('fleet.yaml', 'nodez:\n  a: ~\n')).toBe('rune');
    expect(detectInventoryFormat('hosts.yml', 'all:\n  hosts: {}\n')).toBe('ansible-yaml');
    expect(detectInventoryFormat('hosts.yml', 'web:\n  hosts:\n    a:\n')).toBe('ansible-yaml');
    expect(detectInventoryFormat('hosts', 'web:\n  hosts:\n    a:\n')).toBe('ansible-yaml');
    expect(detectInventoryFormat('hosts', 'nodes:\n  a: ~\n')).toBe('rune');
    expect(detectInventoryFormat('hosts', '[web]\nweb01\n')).toBe('ansible-ini');
    expect(detectInventoryFormat('hosts', 'web01:2222\n')).toBe('ansible-ini');
    expect(detectInventoryFormat('inventory', 'web01 ansible_host=1.2.3.4\n')).toBe('ansible-ini');
  });
});
