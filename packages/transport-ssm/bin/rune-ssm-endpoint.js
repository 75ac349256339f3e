#!/usr/bin/env node
// Stable entry point committed to the repo so that package managers can link the `rune-ssm-endpoint` bin
// before the TypeScript build has run. The real program lives in dist/testing/endpoint-cli.js.
import('../dist/testing/endpoint-cli.js').catch((error) => {
  if (
    error &&
    error.code === 'ERR_MODULE_NOT_FOUND' &&
    String(error.message).includes('endpoint-cli.js')
  ) {
    process.stderr.write(
      'rune-ssm-endpoint: the local SSM endpoint is not built yet. Run `npx -y pnpm@10.34.9 build` in the repository root.\n',
    );
    process.exit(70);
  }
  throw error;
});
