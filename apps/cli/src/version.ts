/**
 * The version of @rune/cli. A constant (no package.json read at start-up, and nothing that
 * depends on where the bundler puts this code); `version.test.ts` keeps it equal to package.json.
 */
export const CLI_VERSION = '0.1.0';
