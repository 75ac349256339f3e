import { describe, expect, it } from 'vitest';
import {
  argvSplit,
  convtime,
  expandTokens,
  matchGlobComponent,
  matchPattern,
  matchPatternList,
  strdelim,
} from './ssh-config-syntax.js';

describe('OpenSSH lexical rules', () => {
  it('strdelim splits on whitespace or one =, and reads a quoted token', () => {
    expect(strdelim('Host foo')).toEqual({ token: 'Host', rest: 'foo' });
    expect(strdelim('User=bob')).toEqual({ token: 'User', rest: 'bob' });
    expect(strdelim('User = bob')).toEqual({ token: 'User', rest: 'bob' });
    expect(strdelim('"a b" c')).toEqual({ token: 'a b', rest: 'c' });
    expect(strdelim('"open')).toBeUndefined();
    expect(strdelim('last')).toEqual({ token: 'last', rest: undefined });
  });

  it('argvSplit: quotes, escapes, comments', () => {
    expect(argvSplit('a "b c" \'d e\' f\\ g h\\"i # comment')).toEqual([
      'a',
      'b c',
      'd e',
      'f g',
      'h"i',
    ]);
    expect(() => argvSplit('"unterminated')).toThrow(/quotes/);
  });

  it('match_pattern is case-sensitive with * and ?; lists with ! veto', () => {
    expect(matchPattern('web01', 'web*')).toBe(true);
    expect(matchPattern('web01', 'WEB*')).toBe(false);
    expect(matchPattern('db1', 'db?')).toBe(true);
    expect(matchPattern('db12', 'db?')).toBe(false);
    expect(matchPattern('a.b.c', '*.c')).toBe(true);
    expect(matchPatternList('x.internal', '*.internal,!x.*', true)).toBe(-1);
    expect(matchPatternList('y.internal', '*.INTERNAL,!x.*', true)).toBe(1);
    expect(matchPatternList('z', 'a,b', false)).toBe(0);
  });

  it('convtime', () => {
    expect(convtime('90')).toBe(90);
    expect(convtime('1m30s')).toBe(90);
    expect(convtime('1h1M1s')).toBe(3661);
    expect(convtime('2w')).toBe(1_209_600);
    expect(convtime('soon')).toBeUndefined();
    expect(convtime('')).toBeUndefined();
  });

  it('tokens and environment variables', () => {
    // Built with a helper so that no string literal looks like a mistaken template.
    const v = (name: string): string => `$${'{'}${name}}`;
    const env = { HOME_DIR: '/h' };
    expect(expandTokens(`%h:%p %% ${v('HOME_DIR')}`, { h: 'host', p: '22' }, env)).toBe(
      'host:22 % /h',
    );
    expect(() => expandTokens('%z', { h: 'x' })).toThrow(/unknown token %z/);
    expect(() => expandTokens(v('NOPE'), {}, {})).toThrow(/not set/);
    // Without env, ${...} stays literal (HostName, ProxyJump).
    expect(expandTokens(v('X'), {})).toBe(v('X'));
  });

  it('glob components: *, ?, classes; a leading dot must be explicit', () => {
    expect(matchGlobComponent('10-a.conf', '*.conf')).toBe(true);
    expect(matchGlobComponent('.hidden.conf', '*.conf')).toBe(false);
    expect(matchGlobComponent('.hidden.conf', '.*.conf')).toBe(true);
    expect(matchGlobComponent('a1', 'a[0-9]')).toBe(true);
    expect(matchGlobComponent('ab', 'a[!b]')).toBe(false);
    expect(matchGlobComponent('a?', 'a\\?')).toBe(true);
  });
});
