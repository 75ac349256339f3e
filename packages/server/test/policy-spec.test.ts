/**
 * specs/policy-v1.schema.json is generated from the TypeBox schema the loader validates with
 * (`RUNE_UPDATE_SPECS=1 npx vitest run test/policy-spec.test.ts` rewrites it); the examples in
 * specs/policy-examples/ load (valid ones) or fail with INVALID_POLICY naming line and key.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { loadPolicyFile, PolicyDocumentSchema } from '../src/index.js';

const SCHEMA = new URL('../../../specs/policy-v1.schema.json', import.meta.url);
const EXAMPLES = new URL('../../../specs/policy-examples/', import.meta.url);

it('specs/policy-v1.schema.json is the schema the loader uses', () => {
  const generated = `${JSON.stringify(PolicyDocumentSchema, null, 2)}\n`;
  if (process.env.RUNE_UPDATE_SPECS === '1') writeFileSync(SCHEMA, generated);
  expect(readFileSync(SCHEMA, 'utf8')).toBe(generated);
});

it('the valid examples load; each invalid one fails with INVALID_POLICY, line and key', () => {
  const files = readdirSync(EXAMPLES).filter((name) => name.endsWith('.policy.yaml'));
  expect(files.length).toBeGreaterThanOrEqual(4);
  for (const name of files) {
    const path = new URL(name, EXAMPLES).pathname;
    if (name.startsWith('invalid-')) {
      expect(() => loadPolicyFile(path), name).toThrow(/^policy .*:\d+:\d+ \(/);
      try {
        loadPolicyFile(path);
      } catch (error) {
        expect((error as { code: string }).code).toBe('INVALID_POLICY');
      }
    } else {
      expect(loadPolicyFile(path).roles.size, name).toBeGreaterThan(0);
    }
  }
});
