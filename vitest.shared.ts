/**
 * Shared Vitest settings. Tests resolve `@rune/*` workspace packages to their TypeScript
 * sources, so a test run never depends on another package's build output being fresh, and
 * several packages can be tested while another one is being rebuilt.
 */
import { fileURLToPath } from 'node:url';
import type { UserConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const src = (path: string): string => `${root}${path}`;

export const runeAliases: { find: RegExp; replacement: string }[] = [
  { find: /^@rune\/protocol$/, replacement: src('packages/protocol/src/index.ts') },
  { find: /^@rune\/core$/, replacement: src('packages/core/src/index.ts') },
  { find: /^@rune\/core\/testing$/, replacement: src('packages/core/src/testing/index.ts') },
  { find: /^@rune\/transport-ssh$/, replacement: src('packages/transport-ssh/src/index.ts') },
  {
    find: /^@rune\/transport-ssh\/testing$/,
    replacement: src('packages/transport-ssh/src/testing/index.ts'),
  },
  { find: /^@rune\/transport-ssm$/, replacement: src('packages/transport-ssm/src/index.ts') },
  { find: /^@rune\/ssm-endpoint$/, replacement: src('packages/ssm-endpoint/src/index.ts') },
];

export function runeVitestConfig(overrides: UserConfig['test'] = {}): UserConfig {
  return {
    resolve: { alias: runeAliases },
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 30_000,
      // The JSON report feeds scripts/run-tests.mjs, which prints one total for the whole repo.
      reporters: ['default', 'json'],
      outputFile: { json: '.vitest-report.json' },
      hookTimeout: 60_000,
      ...overrides,
    },
  };
}
