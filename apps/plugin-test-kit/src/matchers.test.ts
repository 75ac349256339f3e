import { describe, expect, it } from 'vitest';
import { MISSING, matchValue, resolvePointer } from './matchers.js';

describe('resolvePointer', () => {
  const doc = { a: { 'b/c': [10, { d: 'x' }], '~e': true } };
  it('follows RFC 6901 pointers, with escapes and array indices', () => {
    expect(resolvePointer(doc, '')).toBe(doc);
    expect(resolvePointer(doc, '/a/b~1c/0')).toBe(10);
    expect(resolvePointer(doc, '/a/b~1c/1/d')).toBe('x');
    expect(resolvePointer(doc, '/a/~0e')).toBe(true);
  });
  it('returns MISSING for absent paths', () => {
    expect(resolvePointer(doc, '/a/zz')).toBe(MISSING);
    expect(resolvePointer(doc, '/a/b~1c/9')).toBe(MISSING);
    expect(resolvePointer(doc, '/a/b~1c/01')).toBe(MISSING);
    expect(resolvePointer(doc, 'a')).toBe(MISSING);
  });
});

describe('matchValue', () => {
  it('compares plain values deeply', () => {
    expect(matchValue({ x: [1] }, { x: [1] })).toBeNull();
    expect(matchValue(2, 1)).toMatch(/expected 1, got 2/);
    expect(matchValue(MISSING, 1)).toMatch(/absent/);
  });
  it('applies $-matchers', () => {
    expect(matchValue('active', { $matches: '^act' })).toBeNull();
    expect(matchValue(5, { $gte: 1, $lt: 10 })).toBeNull();
    expect(matchValue(5, { $gt: 5 })).toMatch(/gt 5/);
    expect(matchValue([1, 2], { $contains: 2, $length: 2 })).toBeNull();
    expect(matchValue(3, { $type: 'integer' })).toBeNull();
    expect(matchValue('3', { $type: 'number' })).toMatch(/expected type number/);
    expect(matchValue(MISSING, { $exists: false })).toBeNull();
    expect(matchValue('b', { $any: ['a', { $matches: 'b' }] })).toBeNull();
    expect(matchValue({ $x: 1 }, { $equals: { $x: 1 } })).toBeNull();
    expect(matchValue(1, { $nope: 1 })).toMatch(/unknown matcher/);
  });
});
