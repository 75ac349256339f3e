/**
 * What the root-run wrapper guarantees, end to end: the real @aws-sdk/client-ssm against the
 * local endpoint, which runs the generated wrapper with sh on this machine (as root here, as the
 * agent does).
 *
 * - The cache dir and a preinstalled plugin must be out of other users' reach, or nothing runs
 *   (PLUGIN_CACHE_UNSAFE naming the component), and nothing is chmodded through a symlink.
 * - Exactly the bytes hashed are executed (PLUGIN_INTEGRITY_FAILED otherwise, nothing ran).
 * - Everything a run starts dies with it: at its normal end (the sweep, counted), and on timeout
 *   or cancel even a child that left the process group with setsid (the detached reaper).
 * - Output that is not printable ASCII (invalid UTF-8) reaches core byte-exact, so the verdict is
 *   the same as over the local transport (INVALID_ENCODING, not OUTPUT_TOO_LARGE).
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryAuditSink, createRune, type Rune } from '@rune/core';
import { RuneError } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, INSTANCE, plugin, request, startHarness, text } from './helpers.js';

/** Another user: the tests run as root (as the agent does) and hand files to nobody. */
const NOBODY = 65534;

let harness: Harness;
let scratch: string;
beforeAll(async () => {
  harness = await startHarness({ pendingMs: 10 });
  scratch = mkdtempSync(join(tmpdir(), 'rune-ssm-safety-'));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

const fresh = (name: string): string => mkdtempSync(join(scratch, `${name}-`));

/** The EPS code (and details) an exec rejected with. */
async function refusal(
  promise: Promise<unknown>,
): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    if (RuneError.is(error)) return { code: error.code, details: error.details ?? {} };
    return { code: `not a RuneError: ${String(error)}`, details: {} };
  }
  return { code: 'resolved', details: {} };
}

/** A plugin that leaves proof that it ran. */
const touching = (marker: string) => plugin(`#!/bin/sh\ntouch ${marker}\necho '{}'\n`);

/** True while `pid` exists and is not a zombie. */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The session id of `pid`, from /proc. */
const sessionOf = (pid: number): number =>
  Number(
    readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ')[3],
  );

/** Waits (bounded) until every pid is gone; returns the survivors. */
async function survivors(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 100 && pids.some(alive); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pids.filter(alive);
}

/** Waits (bounded) until `file` holds a line of pids; returns them. */
async function pidsIn(file: string, count: number): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(file)) {
      const pids = readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      if (pids.length >= count) return pids;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no ${count} pids in ${file}`);
}

describe('SSM wrapper: the cache dir and preinstalled plugins must be out of other users reach', () => {
  it('refuses a cache dir under a world-writable, non-sticky parent (names the parent)', async () => {
    const parent = fresh('open');
    chmodSync(parent, 0o777);
    const marker = join(scratch, 'ran-open');
    const { code, details } = await refusal(
      harness
        .transport({ remoteCacheDir: join(parent, 'cache') })
        .exec(request(INSTANCE, touching(marker))),
    );
    expect(code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(details).toMatchObject({ stage: 'cache-unsafe', component: parent });
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(parent, 'cache'))).toBe(false);
  });

  it('refuses a cache dir owned by another user', async () => {
    const cacheDir = join(fresh('owned'), 'cache');
    mkdirSync(cacheDir, { mode: 0o700 });
    chownSync(cacheDir, NOBODY, NOBODY);
    const marker = join(scratch, 'ran-owned');
    const { code, details } = await refusal(
      harness.transport({ remoteCacheDir: cacheDir }).exec(request(INSTANCE, touching(marker))),
    );
    expect(code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(details).toMatchObject({ component: cacheDir });
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a cache dir that is a symlink, and chmods nothing through it', async () => {
    const base = fresh('link');
    const target = join(base, 'somebody-elses-dir');
    mkdirSync(target);
    chmodSync(target, 0o755);
    const cacheDir = join(base, 'cache');
    symlinkSync(target, cacheDir);
    const marker = join(scratch, 'ran-link');
    const { code, details } = await refusal(
      harness.transport({ remoteCacheDir: cacheDir }).exec(request(INSTANCE, touching(marker))),
    );
    expect(code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(details).toMatchObject({ component: cacheDir });
    expect(statSync(target).mode & 0o7777).toBe(0o755);
    expect(existsSync(marker)).toBe(false);
  });

  it("refuses another user's symlink above the cache dir, even to a safe place", async () => {
    const base = fresh('hop');
    const safe = join(base, 'safe');
    // The whole physical path is safe and exists: only the hop is another user's.
    mkdirSync(join(safe, 'cache'), { recursive: true, mode: 0o700 });
    const hop = join(base, 'hop');
    symlinkSync(safe, hop);
    lchownSync(hop, NOBODY, NOBODY);
    const marker = join(scratch, 'ran-hop');
    const { code, details } = await refusal(
      harness
        .transport({ remoteCacheDir: join(hop, 'cache') })
        .exec(request(INSTANCE, touching(marker))),
    );
    expect(code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(details).toMatchObject({ component: hop });
    expect(readdirSync(join(safe, 'cache'))).toEqual([]);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a preinstalled plugin in a directory others can write', async () => {
    const dir = fresh('preinstalled-open');
    chmodSync(dir, 0o777);
    const marker = join(scratch, 'ran-preinstalled-open');
    const installed = touching(marker);
    const path = join(dir, 'plugin.sh');
    writeFileSync(path, installed.content, { mode: 0o755 });
    const { code, details } = await refusal(
      harness
        .transport()
        .exec(
          request(INSTANCE, { ...installed, remotePath: path }, { deployMode: 'preinstalled' }),
        ),
    );
    expect(code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(details).toMatchObject({ stage: 'plugin-unsafe', component: dir });
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a preinstalled plugin owned by another user', async () => {
    const dir = fresh('preinstalled-owned');
    const marker = join(scratch, 'ran-preinstalled-owned');
    const installed = touching(marker);
    const path = join(dir, 'plugin.sh');
    writeFileSync(path, installed.content, { mode: 0o755 });
    chownSync(path, NOBODY, NOBODY);
    const { code, details } = await refusal(
      harness
        .transport()
        .exec(
          request(INSTANCE, { ...installed, remotePath: path }, { deployMode: 'preinstalled' }),
        ),
    );
    expect(code).toBe('PLUGIN_CACHE_UNSAFE');
    expect(details).toMatchObject({ component: path });
    expect(existsSync(marker)).toBe(false);
  });

  it('runs a safe preinstalled plugin from a private copy', async () => {
    const dir = fresh('preinstalled-safe');
    const installed = plugin('#!/bin/sh\nprintf "%s" "$0"\n');
    const path = join(dir, 'plugin.sh');
    writeFileSync(path, installed.content, { mode: 0o755 });
    const result = await harness
      .transport()
      .exec(request(INSTANCE, { ...installed, remotePath: path }, { deployMode: 'preinstalled' }));
    expect(result.exitCode).toBe(0);
    // What ran is the copy that was hashed, in the run's private directory, not the file itself.
    expect(text(result.stdout)).toMatch(
      new RegExp(`^${harness.cacheDir}/rune-run\\.[^/]+/plugin$`),
    );
  });
});

describe('SSM wrapper: one sha256 check, of the bytes that run', () => {
  it('a preinstalled plugin that does not match its sha256 never runs (PLUGIN_INTEGRITY_FAILED)', async () => {
    const dir = fresh('preinstalled-changed');
    const marker = join(scratch, 'ran-changed');
    const expected = plugin('#!/bin/sh\necho "{}"\n');
    const path = join(dir, 'plugin.sh');
    writeFileSync(path, touching(marker).content, { mode: 0o755 });
    const { code } = await refusal(
      harness
        .transport()
        .exec(request(INSTANCE, { ...expected, remotePath: path }, { deployMode: 'preinstalled' })),
    );
    expect(code).toBe('PLUGIN_INTEGRITY_FAILED');
    expect(existsSync(marker)).toBe(false);
  });

  it('shipped bytes that do not match the declared sha256 never run (PLUGIN_INTEGRITY_FAILED)', async () => {
    const marker = join(scratch, 'ran-shipped');
    const shipped = { ...touching(marker), sha256: plugin('#!/bin/sh\necho "{}"\n').sha256 };
    const { code } = await refusal(harness.transport().exec(request(INSTANCE, shipped)));
    expect(code).toBe('PLUGIN_INTEGRITY_FAILED');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('SSM wrapper: nothing a run starts outlives it', () => {
  it('a background child holding stdout open: the result is kept, the child is swept and counted', async () => {
    const pidFile = join(scratch, 'held.pids');
    const script = [
      '#!/bin/sh',
      'sleep 300 &',
      'a=$!',
      `setsid sh -c 'echo $$ > ${pidFile}.s; exec sleep 300' &`,
      `while [ ! -s ${pidFile}.s ]; do sleep 0.05; done`,
      `echo "$a $(cat ${pidFile}.s)" > ${pidFile}`,
      'echo \'{"ok":true}\'',
      'exit 0',
    ].join('\n');
    const result = await harness.transport().exec(request(INSTANCE, plugin(script)));
    expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
    expect(text(result.stdout)).toBe('{"ok":true}\n');
    expect(result.containment).toMatchObject({ method: 'run-marker', complete: true });
    expect(result.containment?.killed).toBeGreaterThanOrEqual(2);
    const pids = await pidsIn(pidFile, 2);
    // Swept before the wrapper printed its result: gone by the time the result is here.
    expect(pids.filter(alive)).toEqual([]);
  });

  it('timeout: a child that left the process group with setsid does not survive', async () => {
    const pidFile = join(scratch, 'timeout-setsid.pids');
    const script = [
      '#!/bin/sh',
      `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 300' &`,
      'sleep 300',
    ].join('\n');
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin(script), { timeoutMs: 1000 }));
    expect(result.termination).toBe('timeout');
    expect(result.containment).toMatchObject({ method: 'run-marker', complete: false });
    const [child] = await pidsIn(pidFile, 1);
    expect(await survivors([child!])).toEqual([]);
  });

  it('cancel: a child that left the process group with setsid does not survive', async () => {
    const pidFile = join(scratch, 'cancel-setsid.pids');
    const script = [
      '#!/bin/sh',
      `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 300' &`,
      'sleep 300',
    ].join('\n');
    const controller = new AbortController();
    const run = harness
      .transport()
      .exec(request(INSTANCE, plugin(script), { timeoutMs: 60_000, signal: controller.signal }));
    const [child] = await pidsIn(pidFile, 1);
    // It really escaped: a session (and so a process group) of its own.
    expect(sessionOf(child!)).toBe(child);
    controller.abort();
    const result = await run;
    expect(result.termination).toBe('cancelled');
    expect(await survivors([child!])).toEqual([]);
  });

  it('cancel: once the agent killed the wrapper, the reaper removes the run directory', async () => {
    const pidFile = join(scratch, 'cancel-workdir.pids');
    const controller = new AbortController();
    const run = harness.transport().exec(
      request(INSTANCE, plugin(`#!/bin/sh\necho $$ > ${pidFile}\nsleep 300\n`), {
        timeoutMs: 60_000,
        signal: controller.signal,
      }),
    );
    await pidsIn(pidFile, 1);
    const runDirs = (): string[] =>
      readdirSync(harness.cacheDir).filter((name) => name.startsWith('rune-run.'));
    expect(runDirs().length).toBeGreaterThan(0);
    controller.abort();
    expect((await run).termination).toBe('cancelled');
    // SIGKILL runs no trap: only the reaper can remove it (bounded wait, no fixed sleep).
    for (let i = 0; i < 100 && runDirs().length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(runDirs()).toEqual([]);
  });

  it('the reaper exits promptly after a normal run', async () => {
    const before = new Set(reapers());
    await harness.transport().exec(request(INSTANCE, plugin('#!/bin/sh\necho "{}"\n')));
    const left = reapers().filter((pid) => !before.has(pid));
    expect(await survivors(left)).toEqual([]);
  });
});

/** Pids of running reapers (their argv[0] is rune-reaper). */
function reapers(): number[] {
  const found: number[] = [];
  for (const entry of readdirNumeric('/proc')) {
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes('rune-reaper')) {
        found.push(entry);
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

function readdirNumeric(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

describe('SSM: output that is not valid UTF-8 is judged like on every transport', () => {
  const PLUGIN = `#!/bin/sh
input=$(cat)
trace=$(printf '%s' "$input" | grep -o '"trace_id":"[0-9a-f]*"' | head -n1 | cut -d'"' -f4)
printf '{"message_metadata":{"trace_id":"%s","timestamp":"2026-01-01T00:00:00Z"},"payload":{"schema_version":"bpcs_v1","result":"success","summary":"bad \\377\\376 bytes","output_data":{}},"error":null}\\n' "$trace"
`;
  let pluginDir: string;
  let rune: Rune;
  beforeAll(() => {
    pluginDir = fresh('utf8');
    writeFileSync(join(pluginDir, 'latin.sh'), PLUGIN, { mode: 0o755 });
    rune = createRune({
      env: { HOME: pluginDir, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      home: pluginDir,
      cwd: pluginDir,
      auditSink: createMemoryAuditSink(),
      pluginSources: [{ kind: 'user', dir: pluginDir }],
      transports: { ssm: () => harness.transport() },
    });
  });
  afterAll(async () => rune?.close());

  it('the transport returns the exact bytes, not flagged truncated', async () => {
    const result = await harness
      .transport()
      .exec(request(INSTANCE, plugin('#!/bin/sh\nprintf \'{"a":"\\377\\376"}\'\n')));
    expect(result.stdoutTruncated).toBe(false);
    expect(Buffer.from(result.stdout)).toEqual(
      Buffer.from([...Buffer.from('{"a":"'), 0xff, 0xfe, ...Buffer.from('"}')]),
    );
    expect(result.metadata).toMatchObject({ stdout_encoding: 'b64' });
  });

  it('INVALID_ENCODING over SSM, as over the local transport', async () => {
    const over = async (transport: string, node: string): Promise<string | undefined> => {
      const report = await rune.run({
        action: 'latin',
        selections: [node],
        transport,
        // An inferred manifest (no manifest file) is dangerous by default.
        confirmDangerous: true,
      });
      return report.outcome?.nodes[0]?.error?.code;
    };
    const local = await over('local', 'localhost');
    expect(local).toBe('INVALID_ENCODING');
    expect(await over('ssm', INSTANCE)).toBe(local);
  });
});
