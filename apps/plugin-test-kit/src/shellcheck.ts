/**
 * shellcheck for Bash plugins. Optional on a workstation: when shellcheck is not installed the
 * check is reported as skipped, with how to install it, never silently dropped. In CI (`CI` set
 * to anything but `false`/`0`) a missing shellcheck FAILS the check: a pipeline that lost its
 * linter must not keep reporting green.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { CheckResult } from './report.js';

const execFileAsync = promisify(execFile);

/** True for `.sh` files and files whose `#!` line names bash or sh. */
export async function isShellScript(file: string): Promise<boolean> {
  if (file.endsWith('.sh')) return true;
  const head = await readFile(file, 'utf8').then(
    (text) => text.slice(0, 200),
    () => '',
  );
  return /^#!\s*\S*\/(env\s+)?(ba)?sh\b/.test(head);
}

/** Options of {@link runShellcheck}. */
export interface ShellcheckOptions {
  /** Environment: `PATH` finds shellcheck, `CI` makes a missing one a failure. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** True when `env` says this is a CI run (`CI=true`, `CI=1`, ...; not `false`, `0` or empty). */
export function isCi(env: Readonly<Record<string, string | undefined>>): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== 'false' && value !== '0';
}

/** Runs `shellcheck -S warning` on a Bash plugin. */
export async function runShellcheck(
  file: string,
  options: ShellcheckOptions = {},
): Promise<CheckResult> {
  const env = options.env ?? process.env;
  const started = performance.now();
  const done = (check: Omit<CheckResult, 'durationMs' | 'name'>): CheckResult => ({
    name: 'shellcheck',
    ...check,
    durationMs: performance.now() - started,
  });
  if (!(await isShellScript(file))) {
    return done({ status: 'skip', message: 'not a shell script' });
  }
  try {
    await execFileAsync('shellcheck', ['--version'], { timeout: 10_000, env });
  } catch {
    if (isCi(env)) {
      return done({
        status: 'fail',
        message:
          'shellcheck is not installed, and this is a CI run (CI is set): the lint cannot be skipped here',
        expected: 'shellcheck on PATH',
        actual: `no shellcheck on PATH (${env.PATH ?? ''})`,
        fix: 'Install shellcheck in the CI image (apt-get install shellcheck), or run with --no-shellcheck to opt out explicitly.',
      });
    }
    return done({
      status: 'skip',
      message:
        'shellcheck is not installed, so the plugin was not linted; install it (apt-get install shellcheck, brew install shellcheck) to enable this check',
    });
  }
  try {
    await execFileAsync('shellcheck', ['-S', 'warning', '-f', 'gcc', '-x', file], {
      cwd: dirname(file),
      env,
      timeout: 60_000,
      maxBuffer: 4 * 1024 * 1024,
    });
    return done({ status: 'pass', message: 'no warnings' });
  } catch (error) {
    const output = String((error as { stdout?: string }).stdout ?? '').trim();
    const findings = output.split('\n').filter((line) => line !== '');
    return done({
      status: 'fail',
      message: `${findings.length} shellcheck finding(s) at severity warning or above`,
      expected: 'no shellcheck warnings or errors',
      actual: findings.slice(0, 20).join('\n') || String(error),
      fix: 'Fix each finding (see https://www.shellcheck.net/wiki/SCxxxx for the code), or disable one with a `# shellcheck disable=SCxxxx` comment that says why.',
      details: { findings },
    });
  }
}
