import { describe, expect, it } from 'vitest';
import { globToRegExp, matchesGlob } from './glob.js';

describe('matchesGlob', () => {
  it.each([
    ['web*', 'web01', true],
    ['web*', 'web', true],
    ['web*', 'db01', false],
    ['*01', 'web01', true],
    ['web0?', 'web01', true],
    ['web0?', 'web010', false],
    ['web[0-2]1', 'web11', true],
    ['web[0-2]1', 'web31', false],
    ['web[!0]1', 'web01', false],
    ['web[!0]1', 'web11', true],
    ['a.b*', 'a.bc', true],
    ['a.b*', 'axbc', false],
    ['*', 'anything.at-all', true],
  ])('%s vs %s -> %s', (glob, name, expected) => {
    expect(matchesGlob(glob, name)).toBe(expected);
  });

  it('anchors the whole name and escapes regexp characters', () => {
    expect(globToRegExp('a.b').source).toBe('^a\\.b$');
    expect(matchesGlob('web', 'web01')).toBe(false);
  });
});
