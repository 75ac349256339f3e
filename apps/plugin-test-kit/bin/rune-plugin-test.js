#!/usr/bin/env node
// Stable entry point committed to the repo so that package managers can link the `rune-plugin-test` bin
// before the TypeScript build has run. The real program lives in dist/.
import('../dist/main.js').catch((error) => {
  if (
    error &&
    error.code === 'ERR_MODULE_NOT_FOUND' &&
    String(error.message).includes('dist/main.js')
  ) {
    process.stderr.write(
      'rune-plugin-test: the plugin test kit is not built yet. Run `npx -y pnpm@10.34.9 build` in the repository root.\n',
    );
    process.exit(70);
  }
  throw error;
});
