#!/usr/bin/env node
/**
 * Build step: records the versions of the RUNE packages this CLI was built with in
 * dist/versions.json, for `rune --version`. @rune/core and @rune/protocol are bundled into
 * dist/ at build time, so the versions read here are exactly the code that runs; the transports
 * are resolved at run time but come from the same workspace/release. Reading package.json
 * files by path (not through `exports`, which does not list them) keeps `--version` from
 * importing any of those packages.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const read = (url) => JSON.parse(readFileSync(url, 'utf8')).version;
const packages = {
  '@rune/cli': read(new URL('../package.json', import.meta.url)),
};
for (const name of ['@rune/core', '@rune/protocol', '@rune/transport-ssh', '@rune/transport-ssm']) {
  packages[name] = read(new URL(`../node_modules/${name}/package.json`, import.meta.url));
}
writeFileSync(
  fileURLToPath(new URL('../dist/versions.json', import.meta.url)),
  `${JSON.stringify(packages, null, 2)}\n`,
);
