/**
 * The local transport's own guarantees, with real bash plugins: it executes exactly the bytes that
 * were hashed (a swap on disk never runs), refuses unsafe caches and preinstalled paths, gives
 * plugins a minimal environment, and contains every process a run starts.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import {
  RUN_MARKER_VARIABLE,
  sha256Hex,
  type Transport,
  type TransportExecRequest,
  type TransportExecResult,
  type TransportPlugin,
} from '@rune/transport';
import { createTestPlugin, isProcessAlive } from '@rune/transport/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalTransport,
  type LocalTransportOptions,
} from '../src/transport/local-transport.js';
import { PLUGIN_ENVIRONMENT_VARIABLES } from '../src/transport/plugin-environment.js';

let root: string;
const transports: Transport[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rune-local-it-'));
});
afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function transport(options: LocalTransportOptions = {}): Transport {
  const created = createLocalTransport({ killGraceMs: 300, ...options });
  transports.push(created);
  return created;
}

function request(
  plugin: TransportPlugin,
  extra: Partial<TransportExecRequest> = {},
): TransportExecRequest {
  return {
    node: { name: 'localhost' },
    plugin,
    deployMode: 'ship',
    stdin: new Uint8Array(),
    timeoutMs: 20_000,
    limits: { maxStdoutBytes: 1024 * 1024, maxStderrBytes: 64 * 1024 },
    signal: new AbortController().signal,
    traceId: randomBytes(16).toString('hex'),
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<RuneError> {
  try {
    await promise;
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a RuneError');
}

const text = (result: TransportExecResult): string => new TextDecoder().decode(result.stdout);

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('local transport: what runs is what was hashed', () => {
  it('runs the planned bytes when the registry file is swapped between the hash and the exec', async () => {
    const dir = join(root, 'swap');
    mkdirSync(dir);
    const swapped = join(dir, 'swapped-content-ran');
    const registryFile = join(dir, 'plugin.sh');
    const planned = createTestPlugin('#!/usr/bin/env bash\necho planned\n');
    writeFileSync(registryFile, planned.content, { mode: 0o755 });
    const evil = `#!/usr/bin/env bash\ntouch '${swapped}'\necho swapped\n`;
    const local = transport({
      // The window between every check and the spawn: replace the file the registry points at.
      beforeSpawn: () => writeFileSync(registryFile, evil, { mode: 0o755 }),
    });
    const result = await local.exec(request({ ...planned, localPath: registryFile }));
    expect(readFileSync(registryFile, 'utf8')).toBe(evil);
    expect(result.exitCode).toBe(0);
    expect(text(result)).toBe('planned\n');
    expect(existsSync(swapped), 'the swapped content must never run').toBe(false);
    expect(result.metadata?.path).not.toBe(registryFile);
  });

  it('refuses content that does not match its sha256 (PLUGIN_INTEGRITY_FAILED), running nothing', async () => {
    const ran = join(root, 'integrity-ran');
    const plugin = createTestPlugin(`#!/usr/bin/env bash\ntouch '${ran}'\n`);
    const tampered = { ...plugin, sha256: sha256Hex('something else') };
    const error = await rejection(transport().exec(request(tampered)));
    expect(error.code).toBe('PLUGIN_INTEGRITY_FAILED');
    expect(existsSync(ran)).toBe(false);
  });

  it('executes a private 0700 copy named by its sha256 in a cache that passes the safe-path rule', async () => {
    const cacheDir = join(root, 'cache-ok', 'rune', 'plugins');
    const plugin = createTestPlugin('#!/usr/bin/env bash\nprintf "%s" "$0"\n');
    const result = await transport({ cacheDir }).exec(request(plugin));
    expect(text(result)).toBe(join(cacheDir, plugin.sha256));
    const { statSync } = await import('node:fs');
    expect(statSync(join(cacheDir, plugin.sha256)).mode & 0o777).toBe(0o700);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
  });

  it('replaces a cached copy whose bytes changed instead of running it', async () => {
    const cacheDir = join(root, 'cache-tampered');
    mkdirSync(cacheDir, { mode: 0o700 });
    const ran = join(root, 'tampered-copy-ran');
    const plugin = createTestPlugin('#!/usr/bin/env bash\necho genuine\n');
    writeFileSync(join(cacheDir, plugin.sha256), `#!/usr/bin/env bash\ntouch '${ran}'\n`, {
      mode: 0o700,
    });
    const result = await transport({ cacheDir }).exec(request(plugin));
    expect(text(result)).toBe('genuine\n');
    expect(existsSync(ran)).toBe(false);
  });

  it.each([
    [
      'group-writable',
      (dir: string) => {
        mkdirSync(dir);
        chmodSync(dir, 0o770);
      },
    ],
    [
      'a symlink',
      (dir: string) => {
        mkdirSync(`${dir}-target`, { mode: 0o700 });
        symlinkSync(`${dir}-target`, dir);
      },
    ],
  ])(
    'refuses a cache directory that is %s (PLUGIN_CACHE_UNSAFE), running nothing',
    async (_, make) => {
      const cacheDir = join(root, `cache-unsafe-${randomBytes(4).toString('hex')}`);
      make(cacheDir);
      const ran = join(root, `unsafe-cache-ran-${randomBytes(4).toString('hex')}`);
      const plugin = createTestPlugin(`#!/usr/bin/env bash\ntouch '${ran}'\n`);
      const error = await rejection(transport({ cacheDir }).exec(request(plugin)));
      expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
      expect(error.exitCode).toBe(4);
      expect(existsSync(ran)).toBe(false);
    },
  );
});

describe('local transport: preinstalled plugins', () => {
  it('runs a preinstalled plugin on a safe path and reports the sha256 of the bytes it ran', async () => {
    const dir = join(root, 'opt-safe');
    mkdirSync(dir, { mode: 0o755 });
    const path = join(dir, 'probe.sh');
    const script = '#!/usr/bin/env bash\necho preinstalled\n';
    writeFileSync(path, script, { mode: 0o755 });
    const plugin = { ...createTestPlugin('#!/usr/bin/env bash\necho other\n'), remotePath: path };
    const result = await transport().exec(request(plugin, { deployMode: 'preinstalled' }));
    expect(text(result)).toBe('preinstalled\n');
    expect(result.metadata?.preinstalled_sha256).toBe(sha256Hex(script));
  });

  it.each([
    ['in a directory others can write', 0o777, 0o755],
    ['writable by others', 0o755, 0o757],
  ])('refuses a preinstalled plugin %s (PLUGIN_CACHE_UNSAFE)', async (_, dirMode, fileMode) => {
    const dir = join(root, `opt-unsafe-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir);
    chmodSync(dir, dirMode);
    const ran = join(root, `preinstalled-ran-${randomBytes(4).toString('hex')}`);
    const path = join(dir, 'probe.sh');
    writeFileSync(path, `#!/usr/bin/env bash\ntouch '${ran}'\n`);
    chmodSync(path, fileMode);
    const plugin = { ...createTestPlugin('echo'), remotePath: path };
    const error = await rejection(
      transport().exec(request(plugin, { deployMode: 'preinstalled' })),
    );
    expect(error.code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(existsSync(ran)).toBe(false);
  });

  it('reports a missing preinstalled plugin as PLUGIN_NOT_INSTALLED', async () => {
    const plugin = { ...createTestPlugin('echo'), remotePath: join(root, 'nowhere', 'x.sh') };
    const error = await rejection(
      transport().exec(request(plugin, { deployMode: 'preinstalled' })),
    );
    expect(error.code).toBe('PLUGIN_NOT_INSTALLED');
  });
});

describe('local transport: environment', () => {
  const secrets: Record<string, string> = {
    RUNE_SSH_PASSPHRASE: 'hunter2',
    RUNE_SSM_TOKEN: 'rune-secret',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
    AWS_SESSION_TOKEN: 'aws-session',
    SSH_AUTH_SOCK: '/tmp/ssh-agent.sock',
    GITHUB_TOKEN: 'ghp_example',
    LC_TOKEN: 'smuggled-through-sendenv',
  };
  // Reads the plugin's *initial* environment, before bash adds PWD, SHLVL and _.
  const dumpEnv = createTestPlugin('#!/usr/bin/env bash\ntr "\\0" "\\n" < /proc/$$/environ\n');

  it('passes only the documented minimal environment plus RUNE_RUN_MARKER', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, secrets, { LANG: 'C.UTF-8', TZ: 'UTC' });
    let local: Transport;
    try {
      local = transport();
    } finally {
      for (const name of Object.keys(process.env)) {
        if (!(name in saved)) delete process.env[name];
      }
      Object.assign(process.env, saved);
    }
    const result = await local.exec(request(dumpEnv));
    const env = Object.fromEntries(
      text(result)
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const allowed = [...PLUGIN_ENVIRONMENT_VARIABLES, RUN_MARKER_VARIABLE];
    expect(Object.keys(env).filter((name) => !allowed.includes(name))).toEqual([]);
    for (const [name, value] of Object.entries(secrets)) {
      expect(env[name], name).toBeUndefined();
      expect(text(result)).not.toContain(value);
    }
    expect(env.LANG).toBe('C.UTF-8');
    expect(env.TZ).toBe('UTC');
    expect(env.PATH).toBe(process.env.PATH);
    expect(env[RUN_MARKER_VARIABLE]).toMatch(/^[0-9a-f]{32}$/);
  });

  it('uses an explicit env exactly as given, with a fresh run marker', async () => {
    const result = await transport({
      env: { PATH: process.env.PATH, ONLY: 'this', [RUN_MARKER_VARIABLE]: 'f'.repeat(32) },
    }).exec(request(dumpEnv));
    const names = text(result)
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.slice(0, line.indexOf('=')))
      .sort();
    expect(names).toEqual(['ONLY', 'PATH', RUN_MARKER_VARIABLE]);
    expect(text(result)).not.toContain('f'.repeat(32));
  });
});

describe('local transport: containment', () => {
  // Prints its result, starts a background child and a setsid child that both keep stdout open,
  // writes their pids to the file named on stdin, then exits 0.
  const leaver = createTestPlugin(`#!/usr/bin/env bash
read -r pidfile
sleep 300 &
a=$!
setsid sleep 301 &
b=$!
# Ready only once the child has left the group (its own session): killing the group before that
# would take it along, and the escape this fixture stands for would not happen.
while [ "$(ps -o sid= -p "$b" | tr -d ' ')" != "$b" ]; do sleep 0.01; done
printf '%s %s\\n' "$a" "$b" > "$pidfile"
printf '{"result":"done"}\\n'
exit 0
`);

  it('ends the run when the plugin exits: output kept, leftovers killed and counted', async () => {
    const pidFile = join(root, `leaver-${randomBytes(4).toString('hex')}.pids`);
    const result = await transport().exec(
      request(leaver, { stdin: new TextEncoder().encode(`${pidFile}\n`), timeoutMs: 15_000 }),
    );
    expect(result.termination).toBe('exit');
    expect(result.exitCode).toBe(0);
    expect(text(result)).toBe('{"result":"done"}\n');
    expect(result.containment).toEqual({ method: 'run-marker', killed: 2, complete: true });
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    for (const pid of pids) await waitUntil(() => !isProcessAlive(pid), `pid ${pid} is gone`);
  });

  it('reports containment on a plain run (nothing left: killed 0)', async () => {
    const result = await transport().exec(request(createTestPlugin('echo hi')));
    expect(result.containment).toEqual({ method: 'run-marker', killed: 0, complete: true });
  });

  it('falls back to the process group and says so when /proc cannot be scanned', async () => {
    // A shell that behaves like a system without /proc: the sweep answers "0 0".
    const shim = join(root, 'no-proc-sh');
    writeFileSync(shim, '#!/bin/sh\necho "0 0"\n', { mode: 0o755 });
    const pidFile = join(root, `leaver-noproc-${randomBytes(4).toString('hex')}.pids`);
    const result = await transport({ sweepShell: shim, drainMs: 200 }).exec(
      request(leaver, { stdin: new TextEncoder().encode(`${pidFile}\n`), timeoutMs: 15_000 }),
    );
    expect(result.termination).toBe('exit');
    expect(text(result)).toBe('{"result":"done"}\n');
    expect(result.containment?.method).toBe('process-group');
    expect(result.containment?.complete).toBe(false);
    expect(result.containment?.detail).toMatch(/\/proc is not readable/);
    // The setsid child escaped the group and still holds stdout: said too, then cleaned up here.
    expect(result.containment?.detail).toMatch(/held its output open/);
    const [inGroup, escaped] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    await waitUntil(() => !isProcessAlive(inGroup!), 'the group child is gone');
    process.kill(escaped!, 'SIGKILL');
  });

  it('reports incomplete containment when the sweep cannot run at all', async () => {
    const result = await transport({ sweepShell: join(root, 'no-such-shell') }).exec(
      request(createTestPlugin('echo hi')),
    );
    expect(text(result)).toBe('hi\n');
    expect(result.containment).toMatchObject({ method: 'process-group', complete: false });
    expect(result.containment?.detail).toMatch(/could not start/);
  });
});
