/** Shared helpers of the integration tests: plugins from inline scripts, requests, transports. */

import { execFileSync } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import type { TargetNode, Transport, TransportExecRequest, TransportPlugin } from '@rune/transport';
import { isProcessAlive } from '@rune/transport/testing';
import { describe, expect, it } from 'vitest';
import { createSshTransport, type SshTransportOptions } from '../src/index.js';
import type { SshdInstance } from '../src/testing/index.js';

export const encoder = new TextEncoder();
export const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

/** A plugin from a bash script body. */
export function plugin(script: string, action = 'test-plugin'): TransportPlugin {
  const content = encoder.encode(`#!/usr/bin/env bash\n${script}\n`);
  return {
    action,
    version: '1.0.0',
    sha256: createHash('sha256').update(content).digest('hex'),
    content,
  };
}

/** A request with sensible test defaults. */
export function request(
  node: TargetNode,
  thePlugin: TransportPlugin,
  overrides: Partial<TransportExecRequest> = {},
): TransportExecRequest {
  return {
    node,
    plugin: thePlugin,
    deployMode: 'ship',
    stdin: encoder.encode('{}'),
    timeoutMs: 20_000,
    limits: { maxStdoutBytes: 1024 * 1024, maxStderrBytes: 64 * 1024 },
    signal: new AbortController().signal,
    traceId: '0123456789abcdef0123456789abcdef',
    ...overrides,
  };
}

/** Transport options for one test sshd: its key, its known_hosts, a private cache dir. */
export function optionsFor(
  sshd: SshdInstance,
  overrides: SshTransportOptions = {},
): SshTransportOptions {
  return {
    identityFiles: [sshd.clientKey.privateKeyFile],
    knownHostsFiles: [sshd.knownHostsFile],
    runeKnownHostsFile: `${sshd.dir}/rune_known_hosts`,
    remoteCacheDir: sshd.remoteCacheDir,
    useSshConfig: false,
    useAgent: false,
    connectTimeoutMs: 5000,
    ...overrides,
  };
}

export function transportFor(sshd: SshdInstance, overrides: SshTransportOptions = {}): Transport {
  return createSshTransport(optionsFor(sshd, overrides));
}

/** Awaits a rejection and returns the RuneError (fails the test otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<RuneError> {
  try {
    await promise;
  } catch (error) {
    expect(RuneError.is(error), `expected a RuneError, got ${String(error)}`).toBe(true);
    return error as RuneError;
  }
  throw new Error('expected a rejection');
}

/** True when `pid` is a live (non-zombie) process. */
export const isAlive = isProcessAlive;

/** Waits up to `ms` for every pid to be gone; returns the survivors. */
export async function waitGone(pids: number[], ms = 5000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until `file` has at least `count` non-empty lines; returns them as numbers. */
export async function waitForPids(file: string, count: number, ms = 10_000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
      if (pids.length >= count) return pids;
    } catch {
      // not yet written
    }
    if (Date.now() > deadline) throw new Error(`${file} never got ${count} pids`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Plugin lines that start `/bin/sleep <seconds>` without the run marker (`env -i`) in the
 * background, holding stdout, and wait until it has escaped. The child carries the marker from
 * its fork until `env -i` has exec'd the sleep; a plugin that exited inside that window would have
 * it swept (correctly) by the bootstrap, and nothing would hold stdout — the test would then see
 * a complete containment under load. So the plugin waits until the child IS the unmarked sleep.
 */
export function escapedSleepLines(seconds: string): string {
  return `env -i /bin/sleep ${seconds} &\nuntil [ "$(tr '\\0' ' ' < /proc/$!/cmdline)" = "/bin/sleep ${seconds} " ]; do :; done`;
}

/** PIDs of live (non-zombie) processes whose argv is exactly `args`, from /proc. */
export function processesWith(args: string[]): number[] {
  const wanted = `${args.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1') !== wanted) continue;
      if (isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Waits up to `ms` until no process has argv `args`; returns the survivors. */
export async function waitNoProcess(args: string[], ms = 5000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = processesWith(args);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits up to `ms` until a process with argv `args` exists (a readiness signal); returns its pids. */
export async function waitForProcess(args: string[], ms = 10_000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = processesWith(args);
    if (found.length > 0) return found;
    if (Date.now() > deadline) throw new Error(`no process ${args.join(' ')} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A unique number to put in a sleeper's argv, so /proc tells its processes apart. */
export function uniqueSeconds(): string {
  return String(randomInt(100_000_000, 999_999_999));
}

/** True when `tool` is an executable file in a PATH directory (or the absolute path exists). */
export function onPath(tool: string): boolean {
  if (tool.includes('/')) return existsSync(tool);
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  return dirs.some((dir) => dir !== '' && existsSync(join(dir, tool)));
}

/**
 * What a test file needs from the machine and lacks: `root` when it must run as root, then each
 * tool missing from PATH. Pass the result to {@link describeWithPrerequisites}.
 */
export function missingPrerequisites(needs: { root?: boolean; tools?: string[] }): string[] {
  const missing: string[] = [];
  if (needs.root === true && process.getuid?.() !== 0) missing.push('root');
  for (const tool of needs.tools ?? []) if (!onPath(tool)) missing.push(tool);
  return missing;
}

/**
 * `describe` for tests that need system tools. In CI (CI=true) they always run, and fail loudly
 * naming what is missing (never a silent skip); elsewhere they are skipped with the reason in the
 * suite name and a warning on stderr.
 */
export function describeWithPrerequisites(
  name: string,
  missing: string[],
  install: string,
  body: () => void,
): void {
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const reason = `missing ${missing.join(', ')} (${install})`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('has its prerequisites (CI never skips these tests)', () => {
        throw new Error(`${name}: ${reason}`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${reason}`);
  describe.skip(`${name} [skipped: ${reason}]`, body);
}

/** Local users and a sudoers drop-in made for one test file; `remove()` undoes both. */
export interface TestUsers {
  remove(): void;
}

/**
 * Creates `users` (home, /bin/sh, no password but not locked: sshd refuses a locked account even
 * for keys) and installs `sudoers` as one checked drop-in under /etc/sudoers.d. Needs root.
 */
export function createTestUsers(
  users: readonly string[],
  sudoers: string,
  name: string,
): TestUsers {
  const created: string[] = [];
  const dropIn = `/etc/sudoers.d/${name}`;
  const remove = (): void => {
    rmSync(dropIn, { force: true });
    for (const user of created) {
      try {
        execFileSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  try {
    for (const user of users) {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
      created.push(user);
      // useradd locks the account ('!'); '*' = no password, and not locked.
      execFileSync('usermod', ['-p', '*', user]);
    }
    const draft = `/tmp/${name}-draft`;
    writeFileSync(draft, sudoers);
    try {
      execFileSync('visudo', ['-q', '-c', '-f', draft]);
      execFileSync('install', ['-m', '0440', draft, dropIn]);
    } finally {
      rmSync(draft, { force: true });
    }
  } catch (error) {
    remove();
    throw error;
  }
  return { remove };
}
