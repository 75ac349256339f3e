#!/usr/bin/env node
// The whole test suite, as CI runs it: system tools, build, typecheck + tests of every package
// (turbo), lint, then one line with the totals of every vitest run in the repository.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const workspaces = ['packages', 'apps', 'examples'].flatMap((dir) => {
  const base = join(root, dir);
  if (!existsSync(base)) return [];
  return spawnSync('ls', [base], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map((name) => join(base, name));
});
workspaces.push(join(root, 'plugins'));
const reports = workspaces.map((dir) => join(dir, '.vitest-report.json'));
for (const report of reports) rmSync(report, { force: true });

const step = (label, command, args) => {
  console.log(`\n=== ${label}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root });
  // A step killed by a signal failed, whatever it printed on the way out.
  if (result.signal !== null) return 1;
  return result.status ?? 1;
};

const failedSteps = [];
if (step('tools', process.execPath, ['scripts/ensure-test-tools.mjs']) !== 0) process.exit(1);
if (step('build', 'npx', ['turbo', 'run', 'build', '--output-logs=errors-only']) !== 0)
  process.exit(1);
if (
  step('typecheck + test', 'npx', [
    'turbo',
    'run',
    'typecheck',
    'test',
    '--concurrency=1',
    '--continue',
  ]) !== 0
) {
  failedSteps.push('typecheck/test');
}
if (step('lint', 'npx', ['biome', 'check', '.']) !== 0) failedSteps.push('lint');

let passed = 0;
let failed = 0;
let skipped = 0;
for (const [index, report] of reports.entries()) {
  if (!existsSync(report)) {
    // A workspace with tests and no report did not finish its run (killed, crashed, skipped by
    // turbo): its tests are not "passed", and the totals below would not say so.
    const manifest = join(workspaces[index] ?? '', 'package.json');
    const scripts = existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).scripts : {};
    if (typeof scripts?.test === 'string') failedSteps.push(`no test report: ${report}`);
    continue;
  }
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed += json.numPassedTests ?? 0;
  failed += json.numFailedTests ?? 0;
  skipped += (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
}
if (failed > 0 && !failedSteps.includes('typecheck/test')) failedSteps.push('failed tests');
console.log(`\nsteps failed: ${failedSteps.length === 0 ? 'none' : failedSteps.join(', ')}`);
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failedSteps.length === 0 ? 0 : 1);
