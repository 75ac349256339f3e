/**
 * docs/writing-a-transport.md shows this package's source verbatim; this keeps the two in step,
 * so the guide's code is always the tested code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const guide = read('../../../docs/writing-a-transport.md');

describe('docs/writing-a-transport.md', () => {
  for (const file of [
    '../src/workdir-transport.ts',
    '../src/index.ts',
    '../src/config.ts',
    './conformance.test.ts',
  ]) {
    it(`contains ${file.replace(/^\.\.?\//, '')} verbatim`, () => {
      expect(
        guide.includes(`\`\`\`ts\n${read(file)}\`\`\``),
        `copy ${file} into the guide (see the end of docs/writing-a-transport.md)`,
      ).toBe(true);
    });
  }
});
