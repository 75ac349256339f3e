import { describe, expect, it } from 'vitest';
import { parseAdHocAddress, parseSelection } from './selector.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('parseSelection', () => {
  it('parses names, groups, tags, globs, intersections and exclusions', () => {
    expect(parseSelection('web01, @db,tag:eu+tag:web,web*,!web03,!@old+tag:eu')).toEqual([
      { text: 'web01', exclude: false, atoms: [{ kind: 'name', value: 'web01' }] },
      { text: '@db', exclude: false, atoms: [{ kind: 'group', value: 'db' }] },
      {
        text: 'tag:eu+tag:web',
        exclude: false,
        atoms: [
          { kind: 'tag', value: 'eu' },
          { kind: 'tag', value: 'web' },
        ],
      },
      { text: 'web*', exclude: false, atoms: [{ kind: 'glob', value: 'web*' }] },
      { text: '!web03', exclude: true, atoms: [{ kind: 'name', value: 'web03' }] },
      {
        text: '!@old+tag:eu',
        exclude: true,
        atoms: [
          { kind: 'group', value: 'old' },
          { kind: 'tag', value: 'eu' },
        ],
      },
    ]);
  });

  it('accepts ad-hoc address forms as names', () => {
    expect(parseSelection('ops@10.0.0.1:2222,[::1]:22,::1')[0]?.atoms[0]).toEqual({
      kind: 'name',
      value: 'ops@10.0.0.1:2222',
    });
    expect(parseSelection('web[0-9]')[0]?.atoms[0]?.kind).toBe('glob');
  });

  it.each([
    ['', 'empty'],
    ['a,,b', 'double comma'],
    ['a,', 'trailing comma'],
    ['!', 'bare bang'],
    ['!!a', 'double negation'],
    ['a+', 'empty intersection operand'],
    ['@', 'empty group'],
    ['@-x', 'bad group'],
    ['tag:', 'empty tag'],
    ['tag:a b', 'whitespace'],
    ['web[0-9', 'unbalanced glob'],
    ['a/b', 'slash'],
    ['a;rm -rf', 'shell characters'],
    ['$(id)', 'command substitution'],
  ])('rejects %j (%s) with INVALID_TARGET', (selection) => {
    expect(code(() => parseSelection(selection))).toBe('INVALID_TARGET');
  });
});

describe('parseAdHocAddress', () => {
  it.each([
    ['web01', { address: 'web01' }],
    ['ops@web01', { address: 'web01', user: 'ops' }],
    ['web01:2222', { address: 'web01', port: 2222 }],
    ['ops@127.0.0.2:2200', { address: '127.0.0.2', user: 'ops', port: 2200 }],
    ['::1', { address: '::1' }],
    ['[::1]:22', { address: '::1', port: 22 }],
    ['[fe80::1%eth0]', { address: 'fe80::1%eth0' }],
  ])('parses %s', (name, expected) => {
    expect(parseAdHocAddress(name)).toEqual(expected);
  });

  it.each([
    'web01:0',
    'web01:70000',
    'web01:x',
    '@web',
    'a@@b',
    '[::1',
    '[web]:22',
    '-web',
    'a:b:c:zz',
  ])('rejects %s with INVALID_TARGET', (name) => {
    expect(code(() => parseAdHocAddress(name))).toBe('INVALID_TARGET');
  });
});
