import { describe, expect, it } from 'vitest';
import { editDistance, suggestNames } from './did-you-mean.js';

describe('did-you-mean', () => {
  it('measures edit distance with transpositions', () => {
    expect(editDistance('web01', 'web01')).toBe(0);
    expect(editDistance('web1', 'web01')).toBe(1);
    expect(editDistance('wbe01', 'web01')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests close names, best first, none for distant ones', () => {
    expect(suggestNames('web1', ['db01', 'web01', 'web11', 'web02'])).toEqual(['web01', 'web11']);
    expect(suggestNames('WEB01', ['web01'])).toEqual(['web01']);
    expect(suggestNames('x', ['web01', 'db01'])).toEqual([]);
  });
});
