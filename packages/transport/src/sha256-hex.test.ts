import { describe, expect, it } from 'vitest';
import { sha256Hex } from './sha256-hex.js';

describe('sha256Hex', () => {
  it('is the lowercase hex sha256 of bytes and of UTF-8 text alike', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex('abc')).toBe(abc);
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(abc);
    expect(sha256Hex('é')).toBe(sha256Hex(Uint8Array.of(0xc3, 0xa9)));
  });
});
