import { describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import { parseInventory } from './inventory.js';
import { selectTargets } from './select-targets.js';

const inventory = parseInventory(
  `
defaults: { user: ops }
nodes:
  web01: { address: 10.0.0.1, tags: [web, eu] }
  web02: { address: 10.0.0.2, tags: [web, us], port: 2222 }
  web03: { address: 10.0.0.3, tags: [web, eu] }
  db01: { transport: ssm, instance_id: i-0123456789abcdef0, tags: [db, eu], run_as: root }
  db02: { address: 10.0.1.2, tags: [db, us], identity_file: /keys/db }
  local1: { address: localhost }
groups:
  web: [web01, web02, web03]
  db: ['db*']
`,
  { file: 'fleet.yaml' },
);

const names = (selections: string[]): string[] =>
  selectTargets(selections, { inventory }).map((target) => target.node.name);

describe('selectTargets with an inventory', () => {
  it.each([
    [['web01'], ['web01']],
    [['db01,web01'], ['db01', 'web01']],
    [['@web'], ['web01', 'web02', 'web03']],
    [['@all'], ['web01', 'web02', 'web03', 'db01', 'db02', 'local1']],
    [['tag:eu'], ['web01', 'web03', 'db01']],
    [['tag:eu+tag:web'], ['web01', 'web03']],
    [['@web+tag:us'], ['web02']],
    [['web*'], ['web01', 'web02', 'web03']],
    [['web0[13]'], ['web01', 'web03']],
    [['@web,!web02'], ['web01', 'web03']],
    [['!web02,@web'], ['web01', 'web03']],
    [['!tag:web'], ['db01', 'db02', 'local1']],
    [['!tag:eu+tag:web', 'web*'], ['web02']],
    [
      ['web03', '@web', 'web01'],
      ['web03', 'web01', 'web02'],
    ],
    [['@db,db01,tag:db'], ['db01', 'db02']],
  ])('%j -> %j', (selections, expected) => {
    expect(names(selections)).toEqual(expected);
  });

  it('builds TargetNodes with per-node settings and transports', () => {
    const targets = selectTargets(['db01,db02,web02,local1'], {
      inventory,
      defaultTransport: 'ssh',
    });
    expect(targets).toEqual([
      {
        node: { name: 'db01', user: 'ops', instanceId: 'i-0123456789abcdef0', runAs: 'root' },
        transport: 'ssm',
        source: 'inventory',
      },
      {
        node: {
          name: 'db02',
          address: '10.0.1.2',
          user: 'ops',
          settings: { identity_file: '/keys/db' },
        },
        transport: 'ssh',
        source: 'inventory',
      },
      {
        node: { name: 'web02', address: '10.0.0.2', port: 2222, user: 'ops' },
        transport: 'ssh',
        source: 'inventory',
      },
      {
        node: { name: 'local1', address: 'localhost', user: 'ops' },
        transport: 'local',
        source: 'inventory',
      },
    ]);
  });

  it('lists every unknown name, group and tag with suggestions', () => {
    const error = catchRuneError(() => names(['web1,@wbe,tag:europe,tag:us+nope*', 'zzz', 'web1']));
    expect(error.code).toBe('UNKNOWN_NODE');
    expect(error.message).toContain('web1 (did you mean web01?)');
    expect(error.message).toContain('@wbe (did you mean @web?)');
    expect(error.message).toContain('fleet.yaml');
    expect(error.details?.unknown).toEqual([
      { kind: 'name', name: 'web1', term: 'web1', suggestions: ['web01'] },
      { kind: 'group', name: '@wbe', term: '@wbe', suggestions: ['@web'] },
      { kind: 'tag', name: 'tag:europe', term: 'tag:europe', suggestions: [] },
      { kind: 'glob', name: 'nope*', term: 'tag:us+nope*', suggestions: [] },
      { kind: 'name', name: 'zzz', term: 'zzz', suggestions: [] },
    ]);
  });

  it('treats an unknown name in an exclusion as unknown too', () => {
    expect(catchRuneError(() => names(['@web,!web09'])).code).toBe('UNKNOWN_NODE');
  });

  it('accepts localhost even when it is not in the inventory', () => {
    expect(selectTargets(['localhost'], { inventory })).toEqual([
      { node: { name: 'localhost' }, transport: 'local', source: 'ad-hoc' },
    ]);
  });

  it('reports an empty result as NO_TARGETS', () => {
    expect(catchRuneError(() => names(['@web,!tag:web'])).code).toBe('NO_TARGETS');
    expect(catchRuneError(() => names(['tag:us+tag:eu'])).code).toBe('NO_TARGETS');
    expect(catchRuneError(() => names([])).code).toBe('NO_TARGETS');
  });

  it('reports malformed selectors as INVALID_TARGET before looking anything up', () => {
    expect(catchRuneError(() => names(['nope,a,,b'])).code).toBe('INVALID_TARGET');
    expect(catchRuneError(() => names(['@web', '!'])).code).toBe('INVALID_TARGET');
  });
});

describe('selectTargets without an inventory', () => {
  it('passes plain names and addresses through as ad-hoc nodes', () => {
    expect(
      selectTargets(['web01,ops@10.0.0.7:2222', 'localhost', '[::1]:2200', 'web01'], {
        defaultTransport: 'ssh',
      }),
    ).toEqual([
      { node: { name: 'web01' }, transport: 'ssh', source: 'ad-hoc' },
      {
        node: { name: 'ops@10.0.0.7:2222', address: '10.0.0.7', user: 'ops', port: 2222 },
        transport: 'ssh',
        source: 'ad-hoc',
      },
      { node: { name: 'localhost' }, transport: 'local', source: 'ad-hoc' },
      {
        node: { name: '[::1]:2200', address: '::1', port: 2200 },
        transport: 'ssh',
        source: 'ad-hoc',
      },
    ]);
  });

  it('supports exclusions of ad-hoc names', () => {
    expect(selectTargets(['a,b,c,!b']).map((t) => t.node.name)).toEqual(['a', 'c']);
  });

  it('refuses groups, tags and globs with a hint about the inventory', () => {
    const error = catchRuneError(() => selectTargets(['@web,tag:eu,web*']));
    expect(error.code).toBe('UNKNOWN_NODE');
    expect(error.message).toContain('no inventory');
    expect(error.details?.unknown).toHaveLength(3);
  });

  it('rejects malformed ad-hoc names with INVALID_TARGET', () => {
    expect(catchRuneError(() => selectTargets(['web01:99999'])).code).toBe('INVALID_TARGET');
    expect(catchRuneError(() => selectTargets(['a@b@c'])).code).toBe('INVALID_TARGET');
  });

  it('reports only-exclusions as NO_TARGETS', () => {
    expect(catchRuneError(() => selectTargets(['!web01'])).code).toBe('NO_TARGETS');
  });
});

describe('local names', () => {
  it('uses the local transport for local names, but not for a local address with a port', () => {
    expect(
      selectTargets(['localhost,127.0.0.1,::1,127.0.0.1:2222,[::1]:22'], {
        defaultTransport: 'ssh',
      }).map((t) => `${t.node.name}=${t.transport}`),
    ).toEqual([
      'localhost=local',
      '127.0.0.1=local',
      '::1=local',
      '127.0.0.1:2222=ssh',
      '[::1]:22=ssh',
    ]);
    const inv = parseInventory(
      'nodes:\n  a: { address: 127.0.0.1 }\n  b: { address: 127.0.0.1, port: 2222 }\n  c: { address: localhost, transport: ssh }\n',
    );
    expect(selectTargets(['@all'], { inventory: inv }).map((t) => t.transport)).toEqual([
      'local',
      'ssh',
      'ssh',
    ]);
  });
});
