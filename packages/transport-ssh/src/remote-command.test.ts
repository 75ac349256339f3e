import { spawn } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunMarker } from '@rune/transport';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BOOTSTRAP_SCRIPT,
  BootstrapStderr,
  buildBootstrapCommand,
  buildKillCommand,
  isSafeRemotePath,
  ROOT_WRAPPER_SCRIPT,
  signalOfShellStatus,
} from './remote-command.js';

/** Runs a command line the way sshd does: `sh -c <command>`, stdin given, both streams read. */
function run(
  command: string,
  stdin: Uint8Array | string = '',
): Promise<{ code: number | null; signal: string | null; stdout: Buffer; stderr: Buffer }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: 'pipe' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }),
    );
  });
}

/** PIDs of live processes whose argv is exactly `args` (zombies excluded). */
function processesWith(args: string[]): number[] {
  const wanted = `${args.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1') !== wanted) continue;
      if (/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${entry}/stat`, 'latin1'))) continue;
      found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Waits until no process has argv `args`; returns the survivors after `ms`. */
async function waitNone(args: string[], ms = 5000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = processesWith(args);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function statuses(stderr: Buffer): BootstrapStderr {
  const parsed = new BootstrapStderr(() => undefined);
  parsed.push(stderr);
  parsed.flush();
  return parsed;
}

const root = mkdtempSync(join(tmpdir(), 'rune-boot-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const plugin = Buffer.from('#!/bin/sh\necho "out:$(cat)"\necho err >&2\nexit 3\n');
const sha = createHash('sha256').update(plugin).digest('hex');
const marker = createRunMarker();

describe('bootstrap script', () => {
  it('is fixed text without single quotes', () => {
    expect(BOOTSTRAP_SCRIPT).not.toContain("'");
    expect(
      buildBootstrapCommand({
        op: 'ship',
        sha256: sha,
        location: '~/x',
        watchdogSeconds: 5,
        marker,
      }),
    ).toContain(BOOTSTRAP_SCRIPT);
  });

  it('validates every argument', () => {
    expect(() =>
      buildBootstrapCommand({ op: 'ship', sha256: 'abc', location: '/x', watchdogSeconds: 1 }),
    ).toThrow();
    expect(() =>
      buildBootstrapCommand({ op: 'ship', sha256: sha, location: '/x/../etc', watchdogSeconds: 1 }),
    ).toThrow();
    expect(() =>
      buildBootstrapCommand({
        op: 'ship',
        sha256: sha,
        location: '/x',
        watchdogSeconds: 1,
        runAs: 'root;id',
      }),
    ).toThrow();
    expect(() =>
      buildBootstrapCommand({ op: 'ship', sha256: sha, location: '/x', watchdogSeconds: 1 }),
    ).toThrow('marker');
    expect(() =>
      buildBootstrapCommand({
        op: 'preinstalled',
        location: '/x',
        watchdogSeconds: 1,
        marker: `${marker.slice(1)};`,
      }),
    ).toThrow('marker');
    expect(() => buildKillCommand('1')).toThrow();
    expect(() => buildKillCommand(`${marker}'`)).toThrow();
    expect(isSafeRemotePath('~/.cache/rune/plugins')).toBe(true);
    expect(isSafeRemotePath('/opt/rune plugins')).toBe(false);
    expect(isSafeRemotePath('$HOME/x')).toBe(false);
    expect(isSafeRemotePath('relative/x')).toBe(false);
  });

  it('misses, uploads into a 0700 dir, then runs with stdin passed through', async () => {
    const dir = join(root, 'cache', 'plugins');
    const ship = buildBootstrapCommand({
      op: 'ship',
      sha256: sha,
      location: dir,
      watchdogSeconds: 30,
      marker,
    });
    const miss = await run(ship, 'ignored');
    expect(miss.code).toBe(125);
    expect(statuses(miss.stderr).find('miss')).toBeDefined();
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    const upload = await run(
      buildBootstrapCommand({ op: 'upload', sha256: sha, location: dir, watchdogSeconds: 0 }),
      plugin,
    );
    expect(statuses(upload.stderr).find('stored')).toBeDefined();
    expect(upload.code).toBe(0);
    expect(statSync(join(dir, sha)).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([sha]);

    const hit = await run(ship, 'a\'b"$(x)\n');
    expect(hit.code).toBe(3);
    expect(hit.stdout.toString()).toBe('out:a\'b"$(x)\n');
    const parsedErr: Buffer[] = [];
    const parsed = new BootstrapStderr((chunk) => parsedErr.push(Buffer.from(chunk)));
    parsed.push(hit.stderr);
    parsed.flush();
    expect(parsed.pgid).toBeGreaterThan(1);
    expect(Buffer.concat(parsedErr).toString()).toBe('err\n');
    expect(parsed.trailer).toEqual({ status: 3, killed: 0, complete: true });
  });

  it('preflight: a missing command is reported by name and nothing starts, not even an upload', async () => {
    const dir = join(root, 'preflight-cache');
    const proof = join(root, 'preflight-ran');
    const writer = Buffer.from(`#!/bin/sh\necho ran > ${proof}\n`);
    const writerSha = createHash('sha256').update(writer).digest('hex');
    const ship = (commands: string[]): string =>
      buildBootstrapCommand({
        op: 'ship',
        sha256: writerSha,
        location: dir,
        watchdogSeconds: 0,
        marker,
        preflight: commands,
      });
    // Not cached yet: the missing commands are found before the cache lookup (no `miss`).
    const first = await run(ship(['sh', 'rune-no-such-a', 'cat', 'rune-no-such-b']));
    expect(first.code).toBe(125);
    const parsed = statuses(first.stderr);
    expect(parsed.find('missing')?.args).toEqual(['rune-no-such-a', 'rune-no-such-b']);
    expect(parsed.find('miss')).toBeUndefined();
    await run(
      buildBootstrapCommand({ op: 'upload', sha256: writerSha, location: dir, watchdogSeconds: 0 }),
      writer,
    );
    const cached = await run(ship(['rune-no-such-a']));
    expect(statuses(cached.stderr).find('missing')?.args).toEqual(['rune-no-such-a']);
    expect(statuses(cached.stderr).pgid).toBeUndefined();
    expect(readdirSync(root)).not.toContain('preflight-ran');
    const present = await run(ship(['sh', 'cat']));
    expect(statuses(present.stderr).pgid).toBeGreaterThan(1);
    expect(readFileSync(proof, 'utf8')).toBe('ran\n');
  });

  it('preflight: command names travel as validated arguments, never as shell text', async () => {
    expect(() =>
      buildBootstrapCommand({
        op: 'preinstalled',
        location: '/x',
        watchdogSeconds: 0,
        marker,
        preflight: ['x;touch /tmp/rune-pwned'],
      }),
    ).toThrow(/does not match/);
    expect(() =>
      buildBootstrapCommand({
        op: 'preinstalled',
        location: '/x',
        watchdogSeconds: 0,
        marker,
        preflight: ["a'b"],
      }),
    ).toThrow(/does not match/);
    // The script is the same with and without required commands; they come after it.
    const command = buildBootstrapCommand({
      op: 'preinstalled',
      location: '/x',
      watchdogSeconds: 0,
      marker,
      preflight: ['docker', 'jq'],
    });
    expect(command).toContain(BOOTSTRAP_SCRIPT);
    expect(command.endsWith(` '${marker}' 'docker' 'jq'`)).toBe(true);
  });

  it('run-as root decides on the node: itself when uid 0, else sudo -n; other users always sudo -n', () => {
    const base = { op: 'preinstalled', location: '/x', watchdogSeconds: 0, marker } as const;
    const root = buildBootstrapCommand({ ...base, runAs: 'root' });
    expect(root.startsWith(`exec sh -c '${ROOT_WRAPPER_SCRIPT}' rune-root sh -c '`)).toBe(true);
    expect(ROOT_WRAPPER_SCRIPT).not.toContain("'");
    expect(buildKillCommand(marker, 'root')).toContain(ROOT_WRAPPER_SCRIPT);
    const other = buildBootstrapCommand({ ...base, runAs: 'deploy' });
    expect(other.startsWith("exec sudo -n -H -u 'deploy' -- sh -c '")).toBe(true);
    expect(buildBootstrapCommand(base).startsWith("exec sh -c '")).toBe(true);
  });

  it('refuses an upload whose bytes do not hash to the sha256', async () => {
    const dir = join(root, 'integrity');
    const result = await run(
      buildBootstrapCommand({ op: 'upload', sha256: sha, location: dir, watchdogSeconds: 0 }),
      'tampered',
    );
    expect(statuses(result.stderr).find('integrity')).toBeDefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('treats an altered cache file as a miss and removes it', async () => {
    const dir = join(root, 'altered');
    const ship = buildBootstrapCommand({
      op: 'ship',
      sha256: sha,
      location: dir,
      watchdogSeconds: 0,
      marker,
    });
    await run(ship);
    writeFileSync(join(dir, sha), '#!/bin/sh\necho evil\n', { mode: 0o700 });
    const result = await run(ship);
    expect(result.stdout.toString()).toBe('');
    expect(statuses(result.stderr).find('miss')).toBeDefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('preinstalled: runs the file or reports notinstalled', async () => {
    const file = join(root, 'check.sh');
    writeFileSync(file, plugin, { mode: 0o755 });
    const found = await run(
      buildBootstrapCommand({ op: 'preinstalled', location: file, watchdogSeconds: 0, marker }),
      'x',
    );
    expect(found.stdout.toString()).toBe('out:x\n');
    const missing = await run(
      buildBootstrapCommand({
        op: 'preinstalled',
        location: join(root, 'nope.sh'),
        watchdogSeconds: 0,
        marker,
      }),
    );
    expect(statuses(missing.stderr).find('notinstalled')).toBeDefined();
  });

  it('reports a plugin killed by a signal as 128+n in the trailer', async () => {
    const file = join(root, 'sig.sh');
    writeFileSync(file, '#!/bin/sh\nkill -s TERM $$\n', { mode: 0o755 });
    const result = await run(
      buildBootstrapCommand({ op: 'preinstalled', location: file, watchdogSeconds: 30, marker }),
    );
    expect(result.code).toBe(143);
    expect(statuses(result.stderr).trailer?.status).toBe(143);
    expect(signalOfShellStatus(143)).toBe('SIGTERM');
    expect(signalOfShellStatus(137)).toBe('SIGKILL');
    expect(signalOfShellStatus(255)).toBeUndefined();
    expect(signalOfShellStatus(128 + 19)).toBeUndefined(); // SIGSTOP never ends a process
    expect(signalOfShellStatus(42)).toBeUndefined();
  });

  it('sweeps what the plugin left behind (setsid, stdout held open) and stops the watchdog', async () => {
    const tag = String(randomInt(100_000, 999_999));
    const watchdog = 3000 + randomInt(0, 999);
    const file = join(root, 'leaver.sh');
    writeFileSync(file, `#!/bin/sh\nsetsid sleep 1${tag} &\nsleep 2${tag} &\necho done\nexit 0\n`, {
      mode: 0o755,
    });
    const result = await run(
      buildBootstrapCommand({
        op: 'preinstalled',
        location: file,
        watchdogSeconds: watchdog,
        marker,
      }),
    );
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe('done\n');
    expect(statuses(result.stderr).trailer).toEqual({ status: 0, killed: 2, complete: true });
    expect(await waitNone(['sleep', `1${tag}`], 0)).toEqual([]);
    expect(await waitNone(['sleep', `2${tag}`], 0)).toEqual([]);
    // The bootstrap waits for its watchdog: none is left once the run ended.
    expect(processesWith(['sleep', String(watchdog)])).toEqual([]);
  });

  it('the watchdog sweeps the run on its own when nobody stops it', async () => {
    const tag = String(randomInt(100_000, 999_999));
    const file = join(root, 'hang.sh');
    writeFileSync(
      file,
      `#!/bin/sh\ntrap "" TERM HUP\nsetsid sleep 3${tag} &\necho ready\nexec sleep 4${tag}\n`,
      { mode: 0o755 },
    );
    const result = await run(
      buildBootstrapCommand({ op: 'preinstalled', location: file, watchdogSeconds: 1, marker }),
    );
    expect(result.code).toBe(137);
    expect(result.stdout.toString()).toBe('ready\n');
    expect(statuses(result.stderr).trailer?.status).toBe(137);
    expect(await waitNone(['sleep', `3${tag}`])).toEqual([]);
  });

  it('the kill command sweeps every process of the run, setsid ones included', async () => {
    const tag = String(randomInt(100_000, 999_999));
    const file = join(root, 'sleepy.sh');
    writeFileSync(
      file,
      `#!/bin/sh\nsleep 5${tag} &\nsetsid sleep 6${tag} &\necho ready\nsleep 7${tag}\n`,
      { mode: 0o755 },
    );
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        buildBootstrapCommand({
          op: 'preinstalled',
          location: file,
          watchdogSeconds: 600,
          marker,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const parsed = new BootstrapStderr(() => undefined);
    child.stderr.on('data', (chunk: Buffer) => parsed.push(chunk));
    // Readiness: the plugin prints `ready` after it started both children.
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
    });
    const closed = new Promise((resolve) => child.on('close', (code) => resolve(code)));
    const swept = await run(buildKillCommand(marker));
    expect(swept.stdout.toString()).toBe('4 1\n'); // plugin, three sleeps
    expect(await closed).toBe(137);
    parsed.flush();
    // The bootstrap's own sweep may still find a process the kill command SIGKILLed but that has
    // not finished dying, and count it again: only the status and completeness are exact.
    expect(parsed.trailer).toMatchObject({ status: 137, complete: true });
    for (const name of ['5', '6', '7']) {
      expect(await waitNone(['sleep', `${name}${tag}`], 0)).toEqual([]);
    }
  });
});

describe('BootstrapStderr', () => {
  it('splits markers across chunks and passes plugin bytes untouched', () => {
    const out: Buffer[] = [];
    const parsed = new BootstrapStderr((chunk) => out.push(Buffer.from(chunk)));
    const text = Buffer.from('sudo: oops\n\x1eRUNE:pg');
    parsed.push(text);
    parsed.push(Buffer.from('id 4242\n\x1eRUNE:fake 1\nbin\x00ary'));
    parsed.flush();
    expect(parsed.pgid).toBe(4242);
    expect(parsed.preamble).toBe('sudo: oops\n');
    expect(Buffer.concat(out).toString('latin1')).toBe('sudo: oops\n\x1eRUNE:fake 1\nbin\x00ary');
    expect(parsed.find('fake')).toBeUndefined();
  });

  it('strips the last trailer only; a forged one before it stays plugin text', () => {
    const out: Buffer[] = [];
    const parsed = new BootstrapStderr((chunk) => out.push(Buffer.from(chunk)));
    parsed.push(Buffer.from('\x1eRUNE:pgid 77\nlog\n\x1eRUNE:end exit 0 swept 0 1\n'));
    parsed.push(Buffer.from('more\x1e\x1eRUNE:end ex'));
    parsed.push(Buffer.from('it 3 swept 2 1\n'));
    parsed.flush();
    expect(parsed.trailer).toEqual({ status: 3, killed: 2, complete: true });
    expect(Buffer.concat(out).toString('latin1')).toBe(
      'log\n\x1eRUNE:end exit 0 swept 0 1\nmore\x1e',
    );
  });

  it('passes a stream that does not end in a trailer through untouched', () => {
    const out: Buffer[] = [];
    const parsed = new BootstrapStderr((chunk) => out.push(Buffer.from(chunk)));
    const tail = Buffer.from('\x1eRUNE:end exit 0 swept 0 1\nplugin wrote this last');
    parsed.push(Buffer.concat([Buffer.from('\x1eRUNE:pgid 77\n'), tail]));
    parsed.flush();
    expect(parsed.trailer).toBeUndefined();
    expect(Buffer.concat(out).equals(tail)).toBe(true);
  });
});
