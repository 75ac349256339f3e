import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { createRunMarker } from '@rune/transport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  buildWrapperScript,
  isIntact,
  isSafeRemotePath,
  parseWrapperOutput,
  REAPER_MARGIN_S,
  receiveStream,
  stripTruncationSuffix,
  type WrapperDoneLine,
  type WrapperScriptOptions,
} from './wrapper-script.js';

const sha = (bytes: Uint8Array | string): string =>
  createHash('sha256').update(bytes).digest('hex');
const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);
const isZombie = (pid: number): boolean => {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-wrapper-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the generated wrapper for real with sh, stdin at /dev/null, as the SSM agent does. */
function runWrapper(
  options: Partial<WrapperScriptOptions> & {
    script?: string;
    /** Run the wrapper as this uid (needs root; setpriv from util-linux). */
    uid?: number;
  },
) {
  const pluginText = options.script ?? '#!/bin/sh\ncat\n';
  const content = options.content ?? bytes(pluginText);
  const wrapper = buildWrapperScript({
    sha256: options.sha256 ?? sha(content),
    content,
    ...(options.remotePath ? { remotePath: options.remotePath } : {}),
    stdin: options.stdin ?? bytes('{"request":true}'),
    cacheDir: options.cacheDir ?? join(dir, 'cache'),
    maxStdoutBytes: options.maxStdoutBytes ?? 1024 * 1024,
    maxStderrBytes: options.maxStderrBytes ?? 7000,
    executionTimeoutS: options.executionTimeoutS ?? 30,
    runMarker: createRunMarker(),
    ...(options.preflight ? { preflight: options.preflight } : {}),
    ...(options.requireRoot ? { requireRoot: true } : {}),
  });
  const asUser =
    options.uid === undefined
      ? []
      : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups'];
  const [command = 'sh', ...args] = [...asUser, 'sh', '-c', wrapper.script];
  const run = spawnSync(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dir,
    // A wrapper that hangs fails its test instead of blocking the worker (spawnSync is synchronous).
    timeout: 20_000,
    killSignal: 'SIGKILL',
  });
  const stdout = new Uint8Array(run.stdout);
  return {
    run,
    wrapper,
    stdout,
    stderr: new Uint8Array(run.stderr),
    parsed: parseWrapperOutput(stdout, wrapper.nonce),
  };
}

describe('buildWrapperScript (run for real with sh)', () => {
  it('delivers stdin byte-exact and reports exit code, counts and sha256 of the output', () => {
    const stdin = new Uint8Array([0, 1, 2, 255, 254, 10, 13, 36, 40, 96, 39, 34]);
    const { run, parsed, stderr } = runWrapper({
      stdin,
      script: '#!/bin/sh\ncat\necho oops >&2\n',
    });
    expect(run.status).toBe(0);
    expect(parsed?.result).toMatchObject({
      stage: 'done',
      exitCode: 0,
      stdoutBytes: stdin.length,
      // Not printable ASCII: sent base64, so the text API cannot alter it.
      stdoutEncoding: 'b64',
      stderrEncoding: 'raw',
      killed: 0,
      contained: true,
    });
    const result = parsed!.result as WrapperDoneLine;
    const out = receiveStream(parsed!.body, 'b64', result.stdoutSent, result.stdoutSha256);
    expect(out.intact).toBe(true);
    expect(Buffer.from(out.bytes)).toEqual(Buffer.from(stdin));
    expect(isIntact(stderr, result.stderrSent, result.stderrSha256)).toBe(true);
    expect(new TextDecoder().decode(stderr)).toBe('oops\n');
  });

  it.each([194, 137, 1, 42, 255])(
    'never lets plugin exit code %i reach the agent (wrapper exits 1)',
    (code) => {
      const { run, parsed } = runWrapper({ script: `#!/bin/sh\nexit ${code}\n` });
      expect(run.status).toBe(1);
      expect(parsed?.result).toMatchObject({ stage: 'done', exitCode: code });
    },
  );

  it('reports a plugin killed by a signal as 128+n', () => {
    const { run, parsed } = runWrapper({ script: '#!/bin/sh\nkill -KILL $$\n' });
    expect(run.status).toBe(1);
    expect(parsed?.result).toMatchObject({ exitCode: 137 });
  });

  it('keeps the head of stdout and the tail of stderr and counts the full sizes', () => {
    const { parsed, stderr } = runWrapper({
      script: '#!/bin/sh\nseq 1 1000\nseq 1 1000 >&2\n',
      maxStdoutBytes: 10,
      maxStderrBytes: 9,
    });
    const total = Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join('');
    expect(parsed?.result).toMatchObject({
      stdoutBytes: total.length,
      stdoutSent: 10,
      stderrBytes: total.length,
      stderrSent: 9,
    });
    expect(new TextDecoder().decode(parsed!.body)).toBe(total.slice(0, 10));
    expect(new TextDecoder().decode(stderr)).toBe(total.slice(-9));
  });

  it('creates a missing cache dir (and its missing parents) 0700, keeps no plugin copy there', () => {
    const cacheDir = join(dir, 'var', 'rune', 'cache');
    const first = runWrapper({ cacheDir });
    expect(first.parsed?.result).toMatchObject({ stage: 'done', exitCode: 0 });
    expect(statSync(join(dir, 'var')).mode & 0o777).toBe(0o700);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect(readdirSync(cacheDir)).toEqual([]);
    const second = runWrapper({ cacheDir });
    expect(second.parsed?.result).toMatchObject({ stage: 'done', exitCode: 0 });
  });

  it('refuses to run a plugin whose sha256 does not match (nothing executed)', () => {
    const marker = join(dir, 'ran');
    const { run, parsed } = runWrapper({
      script: `#!/bin/sh\ntouch ${marker}\n`,
      sha256: 'a'.repeat(64),
    });
    expect(run.status).toBe(1);
    expect(parsed?.result).toEqual({ stage: 'integrity' });
    expect(() => statSync(marker)).toThrow();
  });

  it('never executes a stray file named by the sha256 in the cache dir', () => {
    const cacheDir = join(dir, 'cache');
    mkdirSync(cacheDir, { mode: 0o700 });
    const pluginSha = sha(bytes('#!/bin/sh\ncat\n'));
    writeFileSync(join(cacheDir, pluginSha), '#!/bin/sh\necho evil\n', { mode: 0o700 });
    const { parsed } = runWrapper({ cacheDir, stdin: bytes('good') });
    expect(new TextDecoder().decode(parsed!.body)).toBe('good');
  });

  it('runs a preinstalled plugin after checking its sha256, and reports a missing one', () => {
    const path = join(dir, 'installed.sh');
    const content = bytes('#!/bin/sh\necho installed\n');
    writeFileSync(path, content, { mode: 0o755 });
    const ok = runWrapper({ remotePath: path, sha256: sha(content) });
    expect(new TextDecoder().decode(ok.parsed!.body)).toBe('installed\n');
    const missing = runWrapper({ remotePath: join(dir, 'absent.sh'), sha256: sha(content) });
    expect(missing.parsed?.result).toEqual({ stage: 'not-installed' });
  });

  it('leaves no run directory behind', () => {
    const cacheDir = join(dir, 'cache');
    runWrapper({ cacheDir });
    const entries = spawnSync('ls', ['-A', cacheDir]).stdout.toString().trim().split('\n');
    expect(entries.filter((name) => name.startsWith('rune-run.'))).toEqual([]);
  });

  it('embeds only base64, hex, integers and checked paths', () => {
    const wrapper = buildWrapperScript({
      sha256: 'b'.repeat(64),
      content: bytes("'; rm -rf / #"),
      stdin: bytes('$(reboot) `halt` \'"'),
      cacheDir: '/var/lib/rune/plugins',
      maxStdoutBytes: 10,
      maxStderrBytes: 10,
      executionTimeoutS: 30,
      runMarker: '0'.repeat(32),
      nonce: '0123456789abcdef',
    });
    expect(wrapper.script).not.toContain('rm -rf /');
    expect(wrapper.script).not.toContain('reboot');
    expect(() =>
      buildWrapperScript({
        sha256: 'b'.repeat(64),
        stdin: bytes(''),
        cacheDir: "/tmp/x'; reboot; '",
        maxStdoutBytes: 1,
        maxStderrBytes: 1,
        executionTimeoutS: 1,
        runMarker: '0'.repeat(32),
      }),
    ).toThrow(TypeError);
  });
});

describe('buildWrapperScript: preflight and root, in the same command, before the plugin', () => {
  it('runs the plugin when every required command exists', () => {
    const { parsed } = runWrapper({ preflight: ['sh', 'cat'], stdin: bytes('ran') });
    expect(parsed?.result).toMatchObject({ stage: 'done', exitCode: 0 });
    expect(new TextDecoder().decode(parsed!.body)).toBe('ran');
  });

  it('names every missing command and never starts the plugin nor writes to the node', () => {
    const marker = join(dir, 'plugin-ran');
    const cacheDir = join(dir, 'cache');
    const { run, parsed } = runWrapper({
      script: `#!/bin/sh\ntouch ${marker}\n`,
      cacheDir,
      // A leading dash is a name, not an option of `command -v`.
      preflight: ['sh', 'rune-no-such-a', '-rune-no-such-b', 'cat'],
    });
    expect(run.status).toBe(1);
    expect(parsed?.result).toEqual({
      stage: 'preflight',
      missing: ['rune-no-such-a', '-rune-no-such-b'],
    });
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('refuses a hostile name before it is written into any script', () => {
    const pwned = join(dir, 'pwned');
    for (const hostile of [`x';touch ${pwned};'`, '$(reboot)', 'a b', '', 'x\ny']) {
      let thrown: unknown;
      try {
        runWrapper({ preflight: ['sh', hostile] });
      } catch (error) {
        thrown = error;
      }
      expect(RuneError.is(thrown) && thrown.code, JSON.stringify(hostile)).toBe('INVALID_ARGUMENT');
    }
    expect(existsSync(pwned)).toBe(false);
  });

  it('writes the names only as single-quoted words', () => {
    const wrapper = buildWrapperScript({
      sha256: 'b'.repeat(64),
      stdin: bytes(''),
      cacheDir: '/var/lib/rune/plugins',
      maxStdoutBytes: 1,
      maxStderrBytes: 1,
      executionTimeoutS: 1,
      runMarker: '0'.repeat(32),
      preflight: ['docker', 'jq'],
    });
    expect(wrapper.script).toContain("rune_preflight 'docker' 'jq'");
  });

  // Root runs the not-root case as nobody (setpriv); anyone else runs it as themselves.
  const root = process.getuid?.() === 0;
  it('requireRoot: a wrapper not running as uid 0 stops before anything (stage not-root)', () => {
    const marker = join(dir, 'plugin-ran');
    const cacheDir = join(dir, 'cache');
    const { run, parsed } = runWrapper({
      script: `#!/bin/sh\ntouch ${marker}\n`,
      cacheDir,
      requireRoot: true,
      ...(root ? { uid: 65534 } : {}),
    });
    expect(run.status, run.stderr.toString()).toBe(1);
    expect(parsed?.result).toEqual({ stage: 'not-root' });
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it.runIf(root)('requireRoot: as uid 0 the plugin runs, without sudo', () => {
    const { parsed } = runWrapper({ requireRoot: true, script: '#!/bin/sh\nid -u\n' });
    expect(parsed?.result).toMatchObject({ stage: 'done', exitCode: 0 });
    expect(new TextDecoder().decode(parsed!.body)).toBe('0\n');
  });
});

describe('buildWrapperScript: the reaper on its own deadline', () => {
  it('when nothing kills the wrapper, the reaper stops the run at executionTimeout + 5 s (setsid children too)', () => {
    // What an agent that never enforced executionTimeout would leave: only the reaper is left to act.
    const pidFile = join(dir, 'escaped.pid');
    const started = Date.now();
    const { run, parsed } = runWrapper({
      executionTimeoutS: 1,
      script: `#!/bin/sh\nsetsid sh -c 'echo $$ > ${pidFile}; exec sleep 300' &\nsleep 300\n`,
    });
    expect(run.status).toBe(1);
    // The plugin died by SIGKILL (128 + 9) from the reaper's sweep, not by its own hand.
    expect(parsed?.result).toMatchObject({ stage: 'done', exitCode: 137 });
    expect(Date.now() - started).toBeGreaterThanOrEqual((1 + REAPER_MARGIN_S) * 1000 - 500);
    const escaped = Number(readFileSync(pidFile, 'utf8').trim());
    expect(existsSync(`/proc/${escaped}`) && !isZombie(escaped)).toBe(false);
  });
});

describe('helpers', () => {
  it('isSafeRemotePath accepts plain absolute paths only', () => {
    expect(isSafeRemotePath('/var/lib/rune/plugins')).toBe(true);
    expect(isSafeRemotePath('relative/path')).toBe(false);
    expect(isSafeRemotePath('/a/../etc')).toBe(false);
    expect(isSafeRemotePath('/a b')).toBe(false);
    expect(isSafeRemotePath('/a$(x)')).toBe(false);
    expect(isSafeRemotePath('/')).toBe(false);
  });

  it('parseWrapperOutput keeps only command names from a preflight line', () => {
    const names = Buffer.from('docker\n$(reboot)\njq', 'utf8').toString('base64');
    const line = bytes(
      `RUNE-SSM-RESULT v2 nonce=ffffffffffffffff stage=preflight missing=${names}\n`,
    );
    expect(parseWrapperOutput(line, 'ffffffffffffffff')?.result).toEqual({
      stage: 'preflight',
      missing: ['docker', 'jq'],
    });
  });

  it('parseWrapperOutput ignores a result line with another nonce', () => {
    const line = bytes('RUNE-SSM-RESULT v2 nonce=ffffffffffffffff stage=integrity\n');
    expect(parseWrapperOutput(line, '0000000000000000')).toBeUndefined();
    expect(parseWrapperOutput(line, 'ffffffffffffffff')?.result).toEqual({ stage: 'integrity' });
    expect(parseWrapperOutput(bytes('no newline'), 'ffffffffffffffff')).toBeUndefined();
  });

  it('stripTruncationSuffix removes the agent markers', () => {
    expect(
      new TextDecoder().decode(stripTruncationSuffix(bytes('abc\n---Output truncated---'))),
    ).toBe('abc');
    expect(
      new TextDecoder().decode(stripTruncationSuffix(bytes('abc\n---Error truncated----'))),
    ).toBe('abc');
    expect(new TextDecoder().decode(stripTruncationSuffix(bytes('abc')))).toBe('abc');
  });
});
