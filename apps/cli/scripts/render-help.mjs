#!/usr/bin/env node
/**
 * Build step: renders the top-level `rune --help` text into dist/help.txt. main.ts prints that
 * file for a bare `rune --help` / `rune -h` without loading yargs (which alone costs more than
 * the 150 ms start-up budget). Any other invocation goes through yargs as usual, and a missing
 * file simply means the slow path.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const out = fileURLToPath(new URL('../dist/help.txt', import.meta.url));
const result = spawnSync(process.execPath, [main, '--help'], {
  encoding: 'utf8',
  env: { ...process.env, RUNE_NO_STATIC_HELP: '1' },
});
if (result.status !== 0 || !result.stdout.includes('rune run [action]')) {
  process.stderr.write(`render-help: could not render the help text\n${result.stderr}`);
  process.exit(1);
}
writeFileSync(out, result.stdout);
