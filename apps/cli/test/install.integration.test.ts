/**
 * RUNE as its users install it (issue 11): every published package is packed with `pnpm pack`
 * (which turns `workspace:*` into versions, as `pnpm publish` does), the tarballs are installed
 * with plain npm into an EMPTY global prefix — third-party dependencies come from the npm
 * registry (the local npm cache first, `--prefer-offline`), RUNE's own only from the tarballs —
 * and the installed commands are run from that prefix, outside the repository: `rune --version`,
 * `rune list-actions`, `rune run noop --node localhost`, an SSH run against a real sshd, an SSM
 * run against the installed `rune-ssm-endpoint` (package `@rune/ssm-endpoint`), and `rune-plugin-test` on a plugin written the
 * way docs/writing-plugins.md shows, next to no copy of the Bash library.
 *
 * The install command is the README's: `npm install -g --ignore-scripts` (RUNE has no install
 * scripts; the only ones in the tree build ssh2's optional native addon — see CONTRIBUTING.md,
 * "Native addons"). Needs the build (`npx -y pnpm@10.34.9 build`); prints each tarball's size.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SshdInstance, startSshd } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const PNPM = join(repoRoot, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
/** Every published package (the root, plugins/ and examples/ are private). */
const PACKAGES = [
  'packages/protocol',
  'packages/transport',
  'packages/core',
  'packages/transport-ssh',
  'packages/transport-ssm',
  'packages/ssm-endpoint',
  'packages/dashboard',
  'packages/server',
  'apps/cli',
  'apps/plugin-test-kit',
] as const;
const BUILTIN_PLUGINS = ['check-disk', 'gather-logs', 'noop', 'restart-docker', 'restart-nomad'];
/** The local SSM endpoint's default instance. */
const SSM_INSTANCE = 'i-0123456789abcdef0';
/** The key pair this test starts the endpoint with (it answers only requests signed with it). */
const SSM_ACCESS_KEY_ID = `AKIARUNE${randomBytes(6).toString('hex').toUpperCase()}`;
const SSM_SECRET_ACCESS_KEY = randomBytes(24).toString('base64');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env,
        maxBuffer: 64 * 1024 * 1024,
        timeout: options.timeoutMs ?? 120_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 999;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

const show = (result: Result): string =>
  `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

const packageJson = (dir: string): { name: string; version: string } =>
  JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8'));

let root: string;
let prefix: string;
let home: string;
let userEnv: NodeJS.ProcessEnv;
const tarballs: { dir: string; file: string; entries: string[]; modes: Map<string, number> }[] = [];
let installOutput: Result;
let sshd: SshdInstance | undefined;
let endpoint: ChildProcess | undefined;

/** Runs an installed command from the prefix's bin directory, as a user would. */
const installed = (bin: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  run(join(prefix, 'bin', bin), args, { cwd: root, env: { ...userEnv, ...env } });

/** File names and modes of a tarball (`tar tvzf`: GNU tar prints mode, owner, size, date, name). */
async function listTarball(file: string): Promise<Map<string, number>> {
  const listing = await run('tar', ['tvzf', file], { cwd: root, env: process.env });
  if (listing.code !== 0) throw new Error(`tar tvzf ${file}: ${show(listing)}`);
  const modes = new Map<string, number>();
  for (const line of listing.stdout.split('\n').filter(Boolean)) {
    const fields = line.trim().split(/\s+/);
    const permissions = fields[0] ?? '';
    const name = fields[fields.length - 1] ?? '';
    let mode = 0;
    for (const [index, bit] of [...permissions.slice(1)].entries()) {
      if (bit !== '-') mode |= 1 << (8 - index);
    }
    modes.set(name.replace(/^package\//, ''), mode);
  }
  return modes;
}

beforeAll(async () => {
  for (const dir of PACKAGES) {
    if (!existsSync(join(repoRoot, dir, 'dist'))) {
      throw new Error(`${dir} is not built: run \`npx -y pnpm@10.34.9 build\` first`);
    }
  }
  root = mkdtempSync(join(tmpdir(), 'rune-install-it-'));
  prefix = join(root, 'prefix');
  home = join(root, 'home');
  mkdirSync(prefix);
  mkdirSync(join(home, '.config'), { recursive: true });
  const packDir = join(root, 'tarballs');
  mkdirSync(packDir);

  for (const dir of PACKAGES) {
    const packed = await run(process.execPath, [PNPM, 'pack', '--pack-destination', packDir], {
      cwd: join(repoRoot, dir),
      env: process.env,
    });
    if (packed.code !== 0) throw new Error(`pnpm pack in ${dir}: ${show(packed)}`);
    const { name, version } = packageJson(dir);
    const file = join(packDir, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`);
    const modes = await listTarball(file);
    tarballs.push({ dir, file, entries: [...modes.keys()], modes });
  }
  console.log(
    [
      'tarball sizes (bytes, gzipped):',
      ...tarballs.map(
        ({ file, entries }) =>
          `  ${file.slice(packDir.length + 1)}  ${statSync(file).size}  (${entries.length} files)`,
      ),
    ].join('\n'),
  );

  // An EMPTY prefix and a throw-away HOME: nothing from the repository or the real home is seen.
  // npm keeps its own configuration (registry, CA, proxy) and its cache.
  userEnv = {
    PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: home,
    USER: process.env.USER ?? 'root',
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_STATE_HOME: join(home, '.local/state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    NO_COLOR: '1',
  };
  // npm runs with the real HOME: its own configuration (registry, CA, proxy) and cache. The
  // other npm_* variables of the pnpm/turbo process running this test must not leak into it.
  const keep =
    /^npm_config_(registry|proxy|https_proxy|noproxy|cafile|ca|strict_ssl|cache|userconfig|globalconfig)$/i;
  const npmEnv: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || keep.test(key)),
  );
  installOutput = await run(
    'npm',
    [
      'install',
      '--global',
      '--prefix',
      prefix,
      '--ignore-scripts',
      // Any install script that still ran would print here, not in a log file.
      '--foreground-scripts',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--no-update-notifier',
      ...tarballs.map(({ file }) => file),
    ],
    { cwd: root, env: npmEnv, timeoutMs: 240_000 },
  );
  if (installOutput.code !== 0) throw new Error(`npm install: ${show(installOutput)}`);
}, 300_000);

afterAll(async () => {
  endpoint?.kill('SIGTERM');
  await sshd?.stop();
  // An npm prefix with every package installed: removing it took over a minute on a busy disk.
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
}, 180_000);

describe('the packed tarballs', () => {
  it('carry versions instead of workspace: ranges', async () => {
    for (const { file, dir } of tarballs) {
      const manifest = await run('tar', ['xzfO', file, 'package/package.json'], {
        cwd: root,
        env: process.env,
      });
      expect(manifest.stdout, dir).not.toContain('workspace:');
      expect(JSON.parse(manifest.stdout).publishConfig?.access, dir).toBe('public');
    }
  });

  it('are lean: no source maps, no tests, no TypeScript sources', () => {
    for (const { dir, entries } of tarballs) {
      const unwanted = entries.filter(
        (entry) =>
          entry.endsWith('.map') ||
          /\.test\.[cm]?[jt]s$/.test(entry) ||
          /(^|\/)(src|test)\//.test(entry) ||
          (entry.endsWith('.ts') && !entry.endsWith('.d.ts')),
      );
      expect(unwanted, dir).toEqual([]);
    }
  });

  it('keep the execute bit of the built-in plugins and ship the Bash plugin library', () => {
    const core = tarballs.find(({ dir }) => dir === 'packages/core')!;
    for (const name of BUILTIN_PLUGINS) {
      // A new built-in plugin must be listed in packages/core/package.json publishConfig.executableFiles.
      expect(core.modes.get(`dist/builtin-plugins/${name}.sh`), name).toBe(0o755);
    }
    for (const lib of readdirSync(join(repoRoot, 'plugins', 'lib'))) {
      expect(core.entries).toContain(`dist/bash-lib/${lib}`);
    }
  });
});

describe('npm install -g of the tarballs into an empty prefix', () => {
  it('is quiet: no native build, no errors', () => {
    const output = `${installOutput.stdout}\n${installOutput.stderr}`;
    expect(output).not.toMatch(/gyp/i);
    expect(output).not.toMatch(/^> \S+ (pre|post)?install$/m);
    expect(output).not.toMatch(/npm (ERR|error)/);
    expect(output).toMatch(/added \d+ packages/);
  });

  it('takes RUNE packages only from the tarballs (one copy each, exactly the build)', () => {
    const modules = join(prefix, 'lib', 'node_modules');
    expect(readdirSync(join(modules, '@rune')).sort()).toEqual(
      PACKAGES.map((dir) => packageJson(dir).name.slice('@rune/'.length)).sort(),
    );
    // No nested @rune/* copy fetched from a registry anywhere below the prefix.
    const nested: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const path = join(dir, entry.name);
        if (entry.name === '@rune' && path !== join(modules, '@rune')) nested.push(path);
        else walk(path);
      }
    };
    walk(modules);
    expect(nested).toEqual([]);
    const sums = (dir: string) => readFileSync(join(dir, 'SHA256SUMS'), 'utf8');
    expect(sums(join(modules, '@rune', 'core', 'dist', 'builtin-plugins'))).toBe(
      sums(join(repoRoot, 'packages', 'core', 'dist', 'builtin-plugins')),
    );
    for (const bin of ['rune', 'rune-plugin-test', 'rune-ssm-endpoint']) {
      expect(lstatSync(join(prefix, 'bin', bin)).isSymbolicLink(), bin).toBe(true);
      expect(realpathSync(join(prefix, 'bin', bin)).startsWith(join(modules, '@rune')), bin).toBe(
        true,
      );
    }
    for (const name of BUILTIN_PLUGINS) {
      const file = join(modules, '@rune', 'core', 'dist', 'builtin-plugins', `${name}.sh`);
      expect(statSync(file).mode & 0o777, name).toBe(0o755);
    }
  });
});

describe('the installed commands, run from the prefix', () => {
  it('rune --version prints the CLI version', async () => {
    const result = await installed('rune', ['--version']);
    expect(result.code, show(result)).toBe(0);
    const [first, ...rest] = result.stdout.trim().split('\n');
    expect(first).toBe(`rune ${packageJson('apps/cli').version}`);
    // The versions of the packages it was built with travel in the tarball (dist/versions.json).
    expect(rest.join('\n')).toContain(`@rune/core`);
  });

  it('rune list-actions lists the built-in plugins', async () => {
    const result = await installed('rune', ['list-actions']);
    expect(result.code, show(result)).toBe(0);
    for (const name of BUILTIN_PLUGINS) expect(result.stdout).toContain(name);
  });

  it('rune run noop --node localhost succeeds', async () => {
    const result = await installed('rune', ['run', 'noop', '--node', 'localhost']);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toMatch(/success\s+localhost/);
  });

  it('rune token create works from the installed @rune/server (WebAssembly SQLite from npm)', async () => {
    const result = await installed('rune', [
      'token',
      'create',
      '--name',
      'install-check',
      '--role',
      'viewer',
      '--expires',
      '1h',
    ]);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout.trim()).toMatch(/^rune_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const list = await installed('rune', ['token', 'list', '-o', 'json']);
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toContain('install-check');
    expect(list.stdout).not.toContain(result.stdout.trim());
  });

  it('rune run over SSH against a real sshd succeeds', async () => {
    sshd = await startSshd();
    const inventory = join(root, 'fleet.yaml');
    writeFileSync(
      inventory,
      `nodes:\n  web1: { address: "${sshd.address}", port: ${sshd.port}, user: ${sshd.user} }\n`,
    );
    writeFileSync(
      join(root, 'rune.toml'),
      [
        '[ssh]',
        `identity_files = ["${sshd.clientKey.privateKeyFile}"]`,
        `known_hosts_files = ["${sshd.knownHostsFile}"]`,
        'host_key_checking = "strict"',
        'use_agent = false',
        'use_ssh_config = false',
        `remote_cache_dir = "${join(root, 'ssh-cache')}"`,
        '',
        '[ssm]',
        'region = "us-east-1"',
        `remote_cache_dir = "${join(root, 'ssm-cache')}"`,
        '',
      ].join('\n'),
    );
    const result = await installed('rune', [
      'run',
      'noop',
      '--node',
      'web1',
      '--inventory',
      inventory,
      '--output',
      'json',
    ]);
    expect(result.code, show(result)).toBe(0);
    const document = JSON.parse(result.stdout) as {
      nodes: { node: string; status: string; transport: string }[];
    };
    expect(document.nodes).toMatchObject([{ node: 'web1', status: 'success', transport: 'ssh' }]);
  });

  it('rune run --use-ssm against the installed rune-ssm-endpoint succeeds, without the SDK warning', async () => {
    const child = spawn(join(prefix, 'bin', 'rune-ssm-endpoint'), ['--port', '0'], {
      cwd: root,
      env: {
        ...userEnv,
        RUNE_SSM_ENDPOINT_ACCESS_KEY_ID: SSM_ACCESS_KEY_ID,
        RUNE_SSM_ENDPOINT_SECRET_ACCESS_KEY: SSM_SECRET_ACCESS_KEY,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    endpoint = child;
    // Readiness: the endpoint prints its URL once it listens.
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.once('exit', (code) =>
        reject(new Error(`rune-ssm-endpoint exited ${code}: ${output}`)),
      );
    });
    const config = readFileSync(join(root, 'rune.toml'), 'utf8').replace(
      '[ssm]\n',
      `[ssm]\nendpoint = "${url}"\n`,
    );
    writeFileSync(join(root, 'rune.toml'), config);
    const result = await installed('rune', ['run', 'noop', '--node', SSM_INSTANCE, '--use-ssm'], {
      AWS_ACCESS_KEY_ID: SSM_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SSM_SECRET_ACCESS_KEY,
    });
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`success\\s+${SSM_INSTANCE}`));
    expect(result.stderr).not.toContain('NodeVersionSupportWarning');
  });

  it('rune-plugin-test passes a plugin written as docs/writing-plugins.md shows, outside the repository', async () => {
    // Only the plugin and its manifest: no ../lib/bpcs.sh, no build.mjs; the kit inlines the
    // library RUNE ships (in @rune/core), as the registry does.
    const pluginDir = join(root, 'my-plugins');
    mkdirSync(pluginDir);
    const guide = readFileSync(join(repoRoot, 'docs', 'writing-plugins.md'), 'utf8');
    const block = (language: string, after: string): string => {
      const start = guide.indexOf(`\`\`\`${language}\n`, guide.indexOf(after));
      const end = guide.indexOf('\n```', start);
      return `${guide.slice(start + language.length + 4, end)}\n`;
    };
    writeFileSync(join(pluginDir, 'hello.sh'), block('bash', '`hello.sh`:'), { mode: 0o755 });
    writeFileSync(join(pluginDir, 'hello.manifest.json'), block('json', '`hello.manifest.json`:'));
    const result = await installed('rune-plugin-test', [pluginDir]);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toMatch(/^PASS hello /m);
    const sha = createHash('sha256')
      .update(readFileSync(join(repoRoot, 'plugins', 'lib', 'bpcs.sh')))
      .digest('hex');
    const shipped = createHash('sha256')
      .update(readFileSync(join(prefix, 'lib/node_modules/@rune/core/dist/bash-lib/bpcs.sh')))
      .digest('hex');
    expect(shipped).toBe(sha);
  });

  it('rune plugin new scaffolds a plugin that the installed kit passes and the installed rune runs', async () => {
    const created = await installed('rune', ['plugin', 'new', 'installed-hello']);
    expect(created.code, show(created)).toBe(0);
    // The library it includes is the one installed with RUNE, not the repository's.
    expect(created.stdout).toContain(join(prefix, 'lib/node_modules/@rune/core/dist/bash-lib'));
    const plugin = join(home, '.local/share/rune/plugins/installed-hello.sh');
    const kit = await installed('rune-plugin-test', [plugin]);
    expect(kit.code, show(kit)).toBe(0);
    const ran = await installed('rune', [
      'run',
      'installed-hello',
      '--node',
      'localhost',
      '-o',
      'json',
    ]);
    expect(ran.code, show(ran)).toBe(0);
    expect(JSON.parse(ran.stdout).nodes[0].response.payload.output_data.said).toBe('hello');
  });
});
