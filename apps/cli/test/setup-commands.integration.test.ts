/**
 * The built CLI's `rune config init`, `rune --version` and the shipped man page (dist/rune.1,
 * the package.json "man" entry): the starter config loads, an existing file is never overwritten
 * without --force, the versions are the packages', and every command and flag of the yargs
 * help is in the man page, which groff renders without warnings.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSandbox, cliIsBuilt, createCliSandbox } from './cli-harness.js';

const CLI_PACKAGE = fileURLToPath(new URL('../package.json', import.meta.url));
const MAN_PAGE = fileURLToPath(new URL('../dist/rune.1', import.meta.url));
const packageVersion = (path: string): string =>
  (
    JSON.parse(readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8')) as {
      version: string;
    }
  ).version;

let sandbox: CliSandbox;

beforeAll(() => {
  if (!cliIsBuilt()) {
    throw new Error('the CLI is not built: run `npx turbo run build --filter=@rune/cli...` first');
  }
  sandbox = createCliSandbox();
});
afterAll(() => sandbox?.cleanup());

describe('rune config init', () => {
  it('writes the starter config to the user config file; it loads; no overwrite without --force', async () => {
    const path = join(sandbox.env.XDG_CONFIG_HOME as string, 'rune', 'config.toml');
    const first = await sandbox.run(['config', 'init']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(path);
    const written = readFileSync(path, 'utf8');
    expect(written).toMatch(/^# RUNE configuration/);

    // The file loads: config show reads it and reports no error.
    const shown = await sandbox.run(['config', 'show', '-o', 'json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect((JSON.parse(shown.stdout) as { files: string[] }).files).toContain(path);

    writeFileSync(path, '# mine\n[core]\noutput = "json"\n');
    const again = await sandbox.run(['config', 'init', '-o', 'json']);
    expect(again.code).toBe(2);
    expect(
      (JSON.parse(again.stdout) as { error: { code: string; message: string } }).error,
    ).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/already exists.*--force/),
    });
    expect(readFileSync(path, 'utf8')).toBe('# mine\n[core]\noutput = "json"\n');

    const forced = await sandbox.run(['config', 'init', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe(written);
  });

  it('--path writes elsewhere; a symlink there is refused, and replaced (not followed) with --force', async () => {
    const target = join(sandbox.root, 'victim.txt');
    writeFileSync(target, 'untouched\n');
    const link = join(sandbox.root, 'linked.toml');
    symlinkSync(target, link);
    const refused = await sandbox.run(['config', 'init', '--path', link]);
    expect(refused.code).toBe(2);
    const forced = await sandbox.run(['config', 'init', '--path', link, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe('untouched\n');
    expect(lstatSync(link).isSymbolicLink()).toBe(false);

    const other = join(sandbox.root, 'sub', 'dir', 'rune.toml');
    const result = await sandbox.run(['config', 'init', '--path', other]);
    expect(result.code, result.stderr).toBe(0);
    const check = await sandbox.run(['config', 'show', '--config', other, '-o', 'json']);
    expect(check.code, check.stderr).toBe(0);
    expect(readFileSync(link, 'utf8')).toMatch(/^# RUNE configuration/);
  });
});

describe('rune --version', () => {
  it('prints the CLI version first, then the packages it was built with and Node', async () => {
    const result = await sandbox.run(['--version']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`rune ${packageVersion('../package.json')}`);
    expect(result.stdout).toMatch(
      new RegExp(`@rune/core\\s+${packageVersion('../../../packages/core/package.json')}`),
    );
    expect(result.stdout).toMatch(
      new RegExp(`@rune/protocol\\s+${packageVersion('../../../packages/protocol/package.json')}`),
    );
    expect(result.stdout).toContain(process.version);
  });

  it('-o json gives the same as one document', async () => {
    const result = await sandbox.run(['--version', '-o', 'json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      rune: packageVersion('../package.json'),
      packages: {
        '@rune/core': packageVersion('../../../packages/core/package.json'),
        '@rune/protocol': packageVersion('../../../packages/protocol/package.json'),
        '@rune/transport-ssh': packageVersion('../../../packages/transport-ssh/package.json'),
        '@rune/transport-ssm': packageVersion('../../../packages/transport-ssm/package.json'),
      },
      node: process.version,
    });
  });
});

/** Every command path and its flags, read from the yargs help of the built CLI. */
async function helpTree(): Promise<{ path: string[]; flags: string[] }[]> {
  const found: { path: string[]; flags: string[] }[] = [];
  const visit = async (path: string[]): Promise<void> => {
    const result = await sandbox.run([...path, '--help'], { env: { RUNE_NO_STATIC_HELP: '1' } });
    expect(result.code, `rune ${path.join(' ')} --help`).toBe(0);
    if (path.length > 0 && !result.stdout.startsWith(`rune ${path.join(' ')}`)) {
      found.push({ path, flags: [] }); // `completion --help` prints the script itself
      return;
    }
    const flags = [...result.stdout.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map(
      (m) => m[1] as string,
    );
    if (path.length > 0) found.push({ path, flags });
    const commands = result.stdout.split(/^Commands:$/m)[1]?.split(/^\S/m)[0] ?? '';
    for (const match of commands.matchAll(/^ {2}rune ((?:[a-z-]+ ?)+)/gm)) {
      const sub = (match[1] as string).trim().split(' ');
      if (sub.length > path.length) await visit(sub);
    }
  };
  await visit([]);
  return found;
}

describe('the man page', () => {
  it('is shipped: package.json "man" names dist/rune.1', () => {
    const pkg = JSON.parse(readFileSync(CLI_PACKAGE, 'utf8')) as {
      man?: string[];
      files?: string[];
    };
    expect(pkg.man).toEqual(['./dist/rune.1']);
    expect(pkg.files).toContain('dist/rune.1');
    expect(existsSync(MAN_PAGE)).toBe(true);
  });

  it('has every command (and subcommand) of the CLI, with its flags', async () => {
    const page = readFileSync(MAN_PAGE, 'utf8').replaceAll('\\-', '-');
    const tree = await helpTree();
    expect(tree.map((entry) => entry.path.join(' '))).toEqual(
      expect.arrayContaining([
        'run',
        'list-actions',
        'plugin-info',
        'config',
        'config init',
        'config show',
        'audit',
        'audit verify',
        'completion',
      ]),
    );
    for (const { path, flags } of tree) {
      expect(page, `rune ${path.join(' ')}`).toMatch(
        new RegExp(`^\\.SS "rune ${path.join(' ')}(?: |")`, 'm'),
      );
      for (const flag of flags) expect(page, `${path.join(' ')} ${flag}`).toContain(flag);
    }
  });

  it('renders with groff without warnings', () => {
    // groff (groff-base) is installed by scripts/ensure-test-tools.mjs when missing.
    const stderr = execFileSync(
      'sh',
      ['-c', 'groff -man -Tutf8 -ww -z "$1" 2>&1 >/dev/null', 'sh', MAN_PAGE],
      {
        encoding: 'utf8',
      },
    );
    expect(stderr).toBe('');
  });
});
