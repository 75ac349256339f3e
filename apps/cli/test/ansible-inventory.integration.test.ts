/**
 * `rune run --inventory` with Ansible inventories, through the built CLI: the dry run lists the
 * nodes a group resolves to, with Ansible's connection variables mapped, and hosts RUNE cannot
 * honour are refused only when selected. Also `[core] inventory` pointing at an INI file. The
 * inventory is the example of docs/fleet.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, type CliSandbox, cliIsBuilt, createCliSandbox } from './cli-harness.js';

interface PlanDocument {
  plan?: {
    nodes: {
      target: { name: string; address?: string; port?: number; user?: string };
      transport: string;
    }[];
  };
  error?: { code: string; message: string };
}

/** The INI example of docs/fleet.md ("Ansible inventories"): the docs show what is tested. */
function docsExample(language: string): string {
  const docs = readFileSync(
    fileURLToPath(new URL('../../../docs/fleet.md', import.meta.url)),
    'utf8',
  );
  const section = docs.split('\n## Ansible inventories\n')[1] ?? '';
  const block = section.split(`\n\`\`\`${language}\n`)[1]?.split('\n```\n')[0];
  if (block === undefined)
    throw new Error(`docs/fleet.md: no ${language} example under Ansible inventories`);
  return `${block}\n`;
}
const HOSTS_INI = docsExample('ini');

let sandbox: CliSandbox;
let inventory: string;

beforeAll(() => {
  if (!cliIsBuilt()) {
    throw new Error('the CLI is not built: run `npx turbo run build --filter=@rune/cli...` first');
  }
  sandbox = createCliSandbox();
  inventory = join(sandbox.root, 'hosts.ini');
  writeFileSync(inventory, HOSTS_INI);
});
afterAll(() => sandbox?.cleanup());

function parse(result: CliResult): PlanDocument {
  try {
    return JSON.parse(result.stdout) as PlanDocument;
  } catch {
    throw new Error(`stdout is not JSON:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

describe('rune run with an Ansible inventory', () => {
  it('--node @web --dry-run lists the group with Ansible precedence', async () => {
    const result = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      inventory,
      '--node',
      '@web',
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const nodes = parse(result).plan?.nodes ?? [];
    expect(nodes.map((node) => node.target.name)).toEqual([
      'web01.example.com',
      'web02.example.com',
      'web03.example.com',
      'web-canary',
    ]);
    expect(nodes.every((node) => node.transport === 'ssh')).toBe(true);
    // prod:vars beats all:vars for every web host.
    expect(nodes.map((node) => node.target.user)).toEqual(['deploy', 'deploy', 'deploy', 'deploy']);
    expect(nodes[3]?.target).toMatchObject({ address: '10.0.0.9', port: 2222 });
    expect(result.stdout).not.toContain('not-used');
  });

  it('pretty dry run: the node names, and a warning that the password is ignored', async () => {
    const result = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      inventory,
      '--node',
      '@web',
      '--dry-run',
    ]);
    expect(result.code, result.stderr).toBe(0);
    for (const name of [
      'web01.example.com',
      'web02.example.com',
      'web03.example.com',
      'web-canary',
    ])
      expect(result.stdout).toContain(name);
    expect(result.stdout).not.toContain('db01');
    expect(result.stderr).toMatch(/warning: .*ansible_password is ignored/);
    expect(result.stderr).not.toContain('not-used');
  });

  it('localhost with ansible_connection=local runs through the local transport', async () => {
    const result = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      inventory,
      '-n',
      'localhost',
      '-o',
      'json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const real = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      inventory,
      '-n',
      'localhost',
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(parse(real).plan?.nodes[0]?.transport).toBe('local');
  });

  it('a winrm host is refused when selected (exit 2), and only then', async () => {
    const refused = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      inventory,
      '-n',
      '@all',
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(refused.code).toBe(2);
    expect(parse(refused).error?.code).toBe('INVALID_INVENTORY');
    expect(parse(refused).error?.message).toMatch(/hosts\.ini:12: host "win01".*winrm/);
    const rest = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      inventory,
      '-n',
      '@all,!win01',
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(rest.code, rest.stderr).toBe(0);
    expect(parse(rest).plan?.nodes).toHaveLength(6);
  });

  it('[core] inventory may name an Ansible file; a broken one names file, line and format', async () => {
    const config = join(sandbox.root, 'ansible.toml');
    writeFileSync(config, `[core]\ninventory = "${inventory}"\n`);
    const viaConfig = await sandbox.run([
      'run',
      'noop',
      '--config',
      config,
      '-n',
      '@db',
      '--dry-run',
      '-o',
      'json',
    ]);
    expect(viaConfig.code, viaConfig.stderr).toBe(0);
    expect(parse(viaConfig).plan?.nodes.map((node) => node.target.name)).toEqual(['db01']);

    const broken = join(sandbox.root, 'broken.ini');
    writeFileSync(broken, '[web]\nweb01\n[web:childs]\n');
    const result = await sandbox.run([
      'run',
      'noop',
      '--inventory',
      broken,
      '-n',
      '@web',
      '-o',
      'json',
    ]);
    expect(result.code).toBe(2);
    expect(parse(result).error?.message).toMatch(
      /broken\.ini:3: section \[web:childs\] has unknown type.*\(read as an Ansible INI inventory\)/,
    );
  });
});
