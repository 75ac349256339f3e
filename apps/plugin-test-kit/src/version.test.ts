import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TEST_KIT_VERSION } from './version.js';

describe('TEST_KIT_VERSION', () => {
  it('equals package.json (update both when versioning)', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(TEST_KIT_VERSION).toBe(pkg.version);
  });
});
