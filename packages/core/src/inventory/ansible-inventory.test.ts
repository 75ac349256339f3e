import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import { expandHostPattern } from './ansible-host-pattern.js';
import { parseIniValue, shlexSplit } from './ansible-ini-values.js';
import { parseAnsibleInventory } from './ansible-inventory.js';
import { loadInventory } from './inventory.js';
import { parseInventoryText } from './inventory-text.js';

const ini = (text: string) =>
  parseAnsibleInventory(text, { file: 'hosts.ini', format: 'ansible-ini' });
const yaml = (text: string) =>
  parseAnsibleInventory(text, { file: 'hosts.yml', format: 'ansible-yaml' });

describe('Ansible INI values', () => {
  it('splits host lines like shlex with comments', () => {
    expect(shlexSplit(`h a=1 b="x y" c='q "r"' d=e\\ f g=h#i j=k`)).toEqual([
      'h',
      'a=1',
      'b=x y',
      'c=q "r"',
      'd=e f',
      'g=h',
    ]);
    expect(shlexSplit(`h a="\\"q\\" \\n"`)).toEqual(['h', 'a="q" \\n']);
    expect(() => shlexSplit('h a="open')).toThrow(/No closing quotation/);
  });

  it('types values like ast.literal_eval, else keeps the string', () => {
    const cases: [string, unknown][] = [
      ['2222', 2222],
      ['-3', -3],
      ['1.10', 1.1],
      ['010', '010'],
      ['0x1f', 31],
      ['1_000', 1000],
      ['True', true],
      ['None', null],
      ['yes', 'yes'],
      ['10.0.0.1', '10.0.0.1'],
      ["'a' 'b'", 'ab'],
      ['"é\\t"', 'é\t'],
      ['[1, (2, 3), {"k": None}]', [1, [2, 3], { k: null }]],
      ['5 # comment', 5],
      ['prod # comment', 'prod # comment'],
      ['1j', '1j'],
      ['[1,', '[1,'],
      ['', ''],
    ];
    for (const [text, value] of cases) expect(parseIniValue(text), text).toEqual(value);
  });
});

describe('Ansible host patterns', () => {
  it('expands numeric, padded, stepped, letter and repeated ranges, and a port', () => {
    expect(expandHostPattern('web[01:03].x')).toEqual({ hosts: ['web01.x', 'web02.x', 'web03.x'] });
    expect(expandHostPattern('n[0:10:5]:2222')).toEqual({ hosts: ['n0', 'n5', 'n10'], port: 2222 });
    expect(expandHostPattern('[a:b]-[1:2]').hosts).toEqual(['a-1', 'a-2', 'b-1', 'b-2']);
    expect(expandHostPattern('db:22')).toEqual({ hosts: ['db'], port: 22 });
  });

  it('rejects malformed ranges with file and line', () => {
    for (const [pattern, reason] of [
      ['w[01:3]', /equal-length/],
      ['w[1:]', /end value/],
      ['w[1]', /begin:end/],
      ['w[c:a]', /begin <= end/],
      ['w[1:9999999]', /more than/],
    ] as const) {
      const error = catchRuneError(() => ini(`[g]\n${pattern}\n`));
      expect(error.code).toBe('INVALID_INVENTORY');
      expect(error.message).toMatch(/^hosts\.ini:2: /);
      expect(error.message).toMatch(reason);
      expect(error.message).toMatch(/\(read as an Ansible INI inventory\)$/);
    }
  });
});

describe('Ansible INI errors name file, line and format', () => {
  const cases: [string, string, RegExp][] = [
    [
      'unknown section type',
      '[web:hostz]\n',
      /^hosts\.ini:1: section \[web:hostz\] has unknown type/,
    ],
    ['spaces in a section', '[web servers]\n', /^hosts\.ini:1: invalid section/],
    ['a bare word after a host', '[g]\nh1 oops\n', /^hosts\.ini:2: expected key=value/],
    ['a vars line without =', '[g]\nh1\n[g:vars]\njunk\n', /^hosts\.ini:4: expected key=value/],
    [
      'undefined child group',
      '[p:children]\nnothere\n',
      /^hosts\.ini:2: .*undefined group "nothere"/,
    ],
    ['vars of an undefined group', '[q:vars]\nx=1\n', /^hosts\.ini:1: .*not defined anywhere/],
    ['a group loop', '[a:children]\nb\n[b:children]\na\n', /^hosts\.ini:4: .*creates a loop/],
    ['an unclosed quote', '[g]\nh1 a="x\n', /^hosts\.ini:2: cannot parse host line/],
    ['an invalid node name', '[g]\nbad!name\n', /^hosts\.ini:2: host name "bad!name"/],
  ];
  it.each(cases)('%s', (_, text, message) => {
    const error = catchRuneError(() => ini(text));
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.message).toMatch(message);
    expect(error.details).toMatchObject({ file: 'hosts.ini', format: 'ansible-ini' });
  });
});

describe('Ansible YAML errors name file, line and format', () => {
  const cases: [string, string, RegExp][] = [
    [
      'a typo in a group key',
      'all:\n  children:\n    web:\n      host:\n        a:\n',
      /^hosts\.yml:4: unexpected key "host"/,
    ],
    ['a group that is a list', 'web: [a, b]\n', /^hosts\.yml:1: group "web" must be a mapping/],
    [
      'host variables that are a list',
      'web:\n  hosts:\n    a: [1]\n',
      /^hosts\.yml:3: host "a" must map/,
    ],
    ['a syntax error', 'all:\n  hosts: [a\n', /^hosts\.yml:\d+: is not valid YAML/],
    ['a duplicate key', 'all:\n  hosts:\n    a:\n    a:\n', /^hosts\.yml:\d+: is not valid YAML/],
    ['an empty file', '', /^hosts\.yml:1: is empty/],
    ['a plugin config', 'plugin: amazon.aws.aws_ec2\n', /dynamic inventory.*--list --yaml/],
    ['--list JSON', '{"_meta": {"hostvars": {}}}', /script format/],
  ];
  it.each(cases)('%s', (_, text, message) => {
    const error = catchRuneError(() => yaml(text));
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/\(read as an Ansible YAML inventory\)$/);
  });

  it('says the RUNE format was assumed when a RUNE file is broken', () => {
    const error = catchRuneError(() => parseInventoryText('nodez: {}\n', { file: 'fleet.yaml' }));
    expect(error.message).toMatch(/read as a RUNE inventory/);
    expect(error.details?.format).toBe('rune');
  });
});

describe('Ansible connection variables', () => {
  it('maps become to run_as, sudo only, and only when become is on', () => {
    const inventory = ini(
      '[g]\na ansible_become=yes\nb ansible_become_user=app\nc ansible_become=1 ansible_become_user=app\nd ansible_become=true ansible_become_method=doas\n',
    );
    const [a, b, c, d] = inventory.nodes;
    expect(a?.runAs).toBe('root');
    expect(b?.runAs).toBeUndefined();
    expect(c?.runAs).toBe('app');
    expect(d?.refusal).toMatch(/ansible_become_method=doas/);
  });

  it('refuses templates, vault values and bad ports; warns on ignored ssh options', () => {
    const inventory = yaml(
      [
        'all:',
        '  hosts:',
        "    t: { ansible_user: \"{{ lookup('env', 'USER') }}\" }",
        '    v:',
        '      ansible_host: !vault |',
        '        $ANSIBLE_VAULT;1.1;AES256',
        '        6162',
        '    p: { ansible_port: 70000 }',
        '    s: { ansible_ssh_extra_args: "-o StrictHostKeyChecking=no -J jump:2200", ansible_host_key_checking: false }',
        '    ok: { ansible_password: secret, ansible_become_pass: secret2 }',
      ].join('\n'),
    );
    const byName = new Map(inventory.nodes.map((node) => [node.name, node]));
    expect(byName.get('t')?.refusal).toMatch(/hosts\.yml:3: .*Jinja template/);
    expect(byName.get('v')?.refusal).toMatch(/vault-encrypted/);
    expect(byName.get('p')?.refusal).toMatch(/not a port/);
    expect(byName.get('s')?.refusal).toBeUndefined();
    expect(byName.get('s')?.settings).toEqual({ proxy_jump: 'jump:2200' });
    const warnings = inventory.warnings?.join('\n') ?? '';
    expect(warnings).toMatch(/StrictHostKeyChecking=no are ignored/);
    expect(warnings).toMatch(/ansible_host_key_checking is ignored/);
    expect(warnings).toMatch(/ansible_password is ignored.*on ok/);
    expect(warnings).toMatch(/ansible_become_pass is ignored/);
    expect(JSON.stringify(inventory.nodes)).not.toMatch(/secret/);
  });

  it('maps localhost to the local transport only with ansible_connection=local', () => {
    const inventory = ini('localhost ansible_connection=local\n[g]\nlocalhost2\n');
    expect(inventory.nodes[0]?.transport).toBe('local');
    const other = ini('localhost\n');
    expect(other.nodes[0]?.transport).toBe('ssh');
  });
});

describe('loadInventory with Ansible files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rune-ansible-load-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads an extension-less INI file', async () => {
    const file = join(dir, 'hosts');
    await writeFile(file, '[web]\nweb[1:2] ansible_user=ops\n');
    const inventory = await loadInventory(file);
    expect(inventory.format).toBe('ansible-ini');
    expect(inventory.groups.get('web')).toEqual(['web1', 'web2']);
  });

  it('refuses an inventory with group_vars/ beside it, naming the way out', async () => {
    const sub = join(dir, 'with-vars');
    await mkdir(join(sub, 'group_vars'), { recursive: true });
    const file = join(sub, 'hosts.ini');
    await writeFile(file, '[web]\nweb1\n');
    let caught: unknown;
    try {
      await loadInventory(file);
    } catch (error) {
      caught = error;
    }
    const error = caught as { code?: string; message?: string };
    expect(error.code).toBe('INVALID_INVENTORY');
    expect(error.message).toMatch(/group_vars.*ansible-inventory -i hosts\.ini --list --yaml/);
  });
});
