/**
 * The version of @rune/core. A constant rather than a runtime read of package.json: the CLI
 * bundles core, and a bundled `new URL('../package.json', import.meta.url)` would read the CLI's
 * manifest instead. `version.test.ts` keeps it equal to package.json.
 */
export const CORE_VERSION = '0.1.0';
