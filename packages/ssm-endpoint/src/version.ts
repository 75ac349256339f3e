/** The version of @rune/ssm-endpoint; `version.test.ts` keeps it equal to package.json. */
export const VERSION = '0.1.0';
