import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BOOTSTRAP_SCRIPT,
  BootstrapStderr,
  buildBootstrapCommand,
  buildKillCommand,
  isSafeRemotePath,
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

describe('bootstrap script', () => {
  it('is fixed text without single quotes', () => {
    expect(BOOTSTRAP_SCRIPT).not.toContain("'");
    expect(
      buildBootstrapCommand({ op: 'ship', sha256: sha, location: '~/x', watchdogSeconds: 5 }),
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
    expect(() => buildKillCommand(1)).toThrow();
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
    expect(parsed.pgid).toBeGreaterThan(1);
    expect(Buffer.concat(parsedErr).toString()).toBe('err\n');
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
      buildBootstrapCommand({ op: 'preinstalled', location: file, watchdogSeconds: 0 }),
      'x',
    );
    expect(found.stdout.toString()).toBe('out:x\n');
    const missing = await run(
      buildBootstrapCommand({
        op: 'preinstalled',
        location: join(root, 'nope.sh'),
        watchdogSeconds: 0,
      }),
    );
    expect(statuses(missing.stderr).find('notinstalled')).toBeDefined();
  });

  it('propagates a fatal signal of the plugin through the watchdog', async () => {
    const file = join(root, 'sig.sh');
    writeFileSync(file, '#!/bin/sh\nkill -s TERM $$\n', { mode: 0o755 });
    const result = await run(
      buildBootstrapCommand({ op: 'preinstalled', location: file, watchdogSeconds: 30 }),
    );
    expect(result.signal).toBe('SIGTERM');
  });

  it('the kill command ends the whole process group', async () => {
    const file = join(root, 'sleepy.sh');
    writeFileSync(file, '#!/bin/sh\nsleep 300 &\nsleep 300\n', { mode: 0o755 });
    const child = spawn(
      '/bin/sh',
      ['-c', buildBootstrapCommand({ op: 'preinstalled', location: file, watchdogSeconds: 60 })],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const parsed = new BootstrapStderr(() => undefined);
    const pgid = await new Promise<number>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        parsed.push(chunk);
        if (parsed.pgid !== undefined) resolve(parsed.pgid);
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const closed = new Promise((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    await run(buildKillCommand(pgid));
    expect(await closed).toBe('SIGKILL');
    // Dying processes may linger for a moment; zombies count as gone.
    let alive = '';
    for (let attempt = 0; attempt < 20; attempt++) {
      alive = (await run(`ps -o stat= -g ${pgid} | grep -v Z || true`)).stdout.toString().trim();
      if (alive === '') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(alive).toBe('');
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
});
