#!/usr/bin/env node
// Stable entry point committed to the repo so that package managers can link the `rune-plugin-test` bin
// before the TypeScript build has run. The real program lives in dist/main.js.
import { existsSync } from 'node:fs';

import('../dist/main.js').catch((error) => {
  if (
    error &&
    error.code === 'ERR_MODULE_NOT_FOUND' &&
    String(error.message).includes('dist/main.js')
  ) {
    // A checkout has the sources next to dist/; an installed package ships only dist/.
    const checkout = existsSync(new URL('../src/main.ts', import.meta.url));
    process.stderr.write(
      checkout
        ? 'rune-plugin-test: the plugin test kit is not built yet. Run `npx -y pnpm@10.34.9 build` in the repository root.\n'
        : 'rune-plugin-test: this installation of @rune/plugin-test-kit is incomplete (dist/main.js is missing); reinstall @rune/plugin-test-kit (see the README, section Install).\n',
    );
    process.exit(70);
  }
  throw error;
});
