#!/usr/bin/env node
// Stable entry point committed to the repo so that package managers can link the `rune-ssm-endpoint` bin
// before the TypeScript build has run. The real program lives in dist/endpoint-cli.js.
import { existsSync } from 'node:fs';

import('../dist/endpoint-cli.js').catch((error) => {
  if (
    error &&
    error.code === 'ERR_MODULE_NOT_FOUND' &&
    String(error.message).includes('endpoint-cli.js')
  ) {
    // A checkout has the sources next to dist/; an installed package ships only dist/.
    const checkout = existsSync(new URL('../src/endpoint-cli.ts', import.meta.url));
    process.stderr.write(
      checkout
        ? 'rune-ssm-endpoint: the local SSM endpoint is not built yet. Run `npx -y pnpm@10.34.9 build` in the repository root.\n'
        : 'rune-ssm-endpoint: this installation of @rune/ssm-endpoint is incomplete (dist/endpoint-cli.js is missing); reinstall @rune/ssm-endpoint (see the README, section Install).\n',
    );
    process.exit(70);
  }
  throw error;
});
