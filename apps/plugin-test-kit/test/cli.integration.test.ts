/** The rune-plugin-test command line: exit codes, formats, JUnit, help. */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type TestRunReport } from '../src/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'rune-plugin-test-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const BIN = fileURLToPath(new URL('../bin/rune-plugin-test.js', import.meta.url));

/** Runs the built `rune-plugin-test` bin as a child process with `env`. */
function bin(args: string[], env: Record<string, string | undefined>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code ?? 999), stdout, stderr }),
    );
  });
}

/**
 * A PATH of symlinks to everything in /usr/bin and /bin except shellcheck: the machine "without
 * shellcheck", simulated instead of skipped.
 */
function pathWithoutShellcheck(): string {
  const dir = join(scratch, 'no-shellcheck-bin');
  mkdirSync(dir, { recursive: true });
  for (const source of ['/usr/local/bin', '/usr/bin', '/bin']) {
    let names: string[] = [];
    try {
      names = readdirSync(source);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name === 'shellcheck') continue;
      try {
        symlinkSync(join(source, name), join(dir, name));
      } catch {
        // already linked from an earlier directory of PATH
      }
    }
  }
  return dir;
}

async function cli(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    isTTY: false,
  });
  return { code, stdout, stderr };
}

describe('rune-plugin-test CLI', () => {
  it('exits 0 and prints a readable report without colours when not a TTY', async () => {
    const { code, stdout } = await cli(`${fixtures}good.sh`, '--no-shellcheck');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^PASS good /m);
    expect(stdout).toMatch(/PASSED 1 plugin\(s\), 0 failed/);
    expect(stdout).not.toContain('\u001b[');
  });

  it('exits 1 on a failing plugin and explains the failure', async () => {
    const { code, stdout } = await cli(`${fixtures}two-documents.sh`, '--no-shellcheck');
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL two-documents /m);
    expect(stdout).toMatch(/problem: +OUTPUT_MULTIPLE_DOCUMENTS/);
    expect(stdout).toMatch(/expected: /);
    expect(stdout).toMatch(/got: /);
    expect(stdout).toMatch(/fix: /);
  });

  it('prints the report as JSON with --format json', async () => {
    const { code, stdout } = await cli(
      `${fixtures}exit-zero-failure.sh`,
      '--format',
      'json',
      '--no-shellcheck',
    );
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as TestRunReport;
    expect(report.tool).toBe('rune-plugin-test');
    expect(report.ok).toBe(false);
    expect(report.summary.failed).toBe(1);
    const failed = report.plugins[0]!.checks.find((check) => check.status === 'fail');
    expect(failed?.details?.error).toMatchObject({ code: 'EXIT_CODE_MISMATCH' });
  });

  it('writes JUnit XML with --junit', async () => {
    const file = join(scratch, 'junit.xml');
    const { code } = await cli(
      `${fixtures}text-before-json.sh`,
      '--junit',
      file,
      '--no-shellcheck',
    );
    expect(code).toBe(1);
    const xml = readFileSync(file, 'utf8');
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>/);
    expect(xml).toMatch(/<testsuite name="text-before-json" tests="\d+" failures="1"/);
    expect(xml).toMatch(
      /<failure message="OUTPUT_TEXT_BEFORE_JSON: [^"]*" type="OUTPUT_TEXT_BEFORE_JSON">/,
    );
  });

  it('the built bin exits 1 for a plugin with a shellcheck finding and names SC2164', async () => {
    const result = await bin([`${fixtures}shellcheck-finding.sh`, '--format', 'json'], {
      ...process.env,
      CI: undefined,
    });
    expect(result.code, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout) as TestRunReport;
    const lint = report.plugins[0]?.checks.find((check) => check.name === 'shellcheck');
    expect(lint?.status).toBe('fail');
    expect(lint?.actual).toContain('[SC2164]');
    const text = await bin([`${fixtures}shellcheck-finding.sh`], { ...process.env, CI: undefined });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/✖ shellcheck\n\s+problem: +1 shellcheck finding/);
    expect(text.stdout).toContain('[SC2164]');
  });

  it('shellcheck missing: a skip on a workstation, a failure in CI (CI=true)', async () => {
    const env = { ...process.env, PATH: pathWithoutShellcheck() };
    const local = await bin([`${fixtures}good.sh`, '--format', 'json'], { ...env, CI: undefined });
    const localLint = (JSON.parse(local.stdout) as TestRunReport).plugins[0]?.checks.find(
      (check) => check.name === 'shellcheck',
    );
    expect(localLint?.status, local.stderr).toBe('skip');
    expect(local.code).toBe(0);
    for (const ci of ['true', '1']) {
      const result = await bin([`${fixtures}good.sh`, '--format', 'json'], { ...env, CI: ci });
      expect(result.code, result.stderr).toBe(1);
      const lint = (JSON.parse(result.stdout) as TestRunReport).plugins[0]?.checks.find(
        (check) => check.name === 'shellcheck',
      );
      expect(lint?.status).toBe('fail');
      expect(lint?.message).toMatch(/not installed.*CI/);
    }
    // Opting out explicitly still works in CI.
    const optOut = await bin([`${fixtures}good.sh`, '--no-shellcheck'], { ...env, CI: 'true' });
    expect(optOut.code).toBe(0);
  });

  it('exits 2 for a path that does not exist, for no plugins, and for an unknown option', async () => {
    expect((await cli(join(scratch, 'nope'))).code).toBe(2);
    expect((await cli(scratch)).code).toBe(2);
    expect((await cli(`${fixtures}good.sh`, '--bogus')).code).toBe(2);
    expect((await cli()).code).toBe(2);
  });

  it('prints --help with examples and exit codes', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('rune-plugin-test <plugin file or directory...>');
    expect(stdout).toContain('Examples:');
    expect(stdout).toContain('--junit');
    expect(stdout).toMatch(/Exit codes: 0 all checks passed/);
  });
});
