import { describe, expect, it } from 'vitest';
import { escapeXml } from './render-junit.js';

describe('escapeXml', () => {
  it('escapes markup and drops characters XML 1.0 forbids', () => {
    expect(escapeXml(`<a b="c">&'\u0000\u001b[31m`)).toBe(
      '&lt;a b=&quot;c&quot;&gt;&amp;&apos;[31m',
    );
  });
});
