import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import {
  encoder,
  plugin,
  rejection,
  request,
  text,
  transportFor,
  waitForPids,
  waitGone,
} from './helpers.js';

/**
 * A full garbage collection, for memory measurements. `--expose-gc` at run time: V8 exposes
 * `gc` to contexts created after the flag is set (the test worker itself started without it).
 * Twice: V8 frees the backing stores of dead ArrayBuffers (every Buffer) on a sweeper task after
 * a GC, and `process.memoryUsage().arrayBuffers` counts them until it has run, which a busy
 * machine delays (50 MB of dropped Buffers still counted after one gc(), seen here). The next GC
 * first finishes that sweep, and between the two nothing new has died.
 */
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;
const collectGarbage = (): void => {
  fullGc();
  fullGc();
};

let sshd: SshdInstance;
let transport: Transport;

beforeAll(async () => {
  sshd = await startSshd();
  transport = transportFor(sshd);
});
afterAll(async () => {
  await transport?.close();
  await sshd?.stop();
});

describe('ship mode', () => {
  it('first run uploads into a private dir named by sha256; the cached run is ONE exec', async () => {
    const echo = plugin('cat; echo; echo "to stderr" >&2; exit 0', 'ship-once');
    const first = await transport.exec(
      request(sshd.node(), echo, { stdin: encoder.encode('{"a":1}') }),
    );
    expect(first).toMatchObject({ termination: 'exit', exitCode: 0, signal: null });
    expect(text(first.stdout)).toBe('{"a":1}\n');
    expect(text(first.stderr)).toBe('to stderr\n');
    expect(first.metadata).toMatchObject({ shipped: true, cache_hit: false, exec_round_trips: 3 });
    expect(statSync(sshd.remoteCacheDir).mode & 0o777).toBe(0o700);
    const cached = join(sshd.remoteCacheDir, echo.sha256);
    expect(statSync(cached).mode & 0o777).toBe(0o700);
    expect(readdirSync(sshd.remoteCacheDir).filter((name) => !name.startsWith('.'))).toContain(
      echo.sha256,
    );

    const second = await transport.exec(
      request(sshd.node(), echo, { stdin: encoder.encode('{"a":2}') }),
    );
    expect(text(second.stdout)).toBe('{"a":2}\n');
    expect(second.metadata).toMatchObject({
      shipped: false,
      cache_hit: true,
      exec_round_trips: 1,
      connection_reused: true,
      connection_id: first.metadata?.connection_id,
    });
    expect(second.timings.connectMs).toBe(0);
  });

  it('re-uploads a cached plugin that was altered on the node, and runs the right bytes', async () => {
    const good = plugin('echo genuine', 'tamper-test');
    await transport.exec(request(sshd.node(), good));
    writeFileSync(join(sshd.remoteCacheDir, good.sha256), '#!/bin/sh\necho evil\n');
    chmodSync(join(sshd.remoteCacheDir, good.sha256), 0o700);
    const result = await transport.exec(request(sshd.node(), good));
    expect(text(result.stdout)).toBe('genuine\n');
    expect(result.metadata).toMatchObject({ shipped: true, cache_hit: false });
  });

  it('delivers parameters with shell metacharacters verbatim and stdin byte-exact', async () => {
    const cat = plugin('exec cat', 'cat-stdin');
    const nasty = `{"p":"'; rm -rf / #\\"$(id)\`uname\`|&;<>*?[]{}~!$HOME\\n\\u0000"}`;
    const binary = Buffer.concat([
      encoder.encode(nasty),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      randomBytes(4096),
    ]);
    const result = await transport.exec(request(sshd.node(), cat, { stdin: binary }));
    expect(Buffer.from(result.stdout).equals(binary)).toBe(true);
    const empty = await transport.exec(request(sshd.node(), cat, { stdin: new Uint8Array(0) }));
    expect(empty.stdout.byteLength).toBe(0);
  });

  it('returns binary stdout intact and keeps stderr separate', async () => {
    const result = await transport.exec(
      request(sshd.node(), plugin('head -c 300000 /dev/urandom | tee >(sha256sum >&2)', 'bin-out')),
    );
    expect(result.stdout.byteLength).toBe(300000);
    const digest = (await import('node:crypto'))
      .createHash('sha256')
      .update(result.stdout)
      .digest('hex');
    expect(text(result.stderr)).toContain(digest);
  });

  it('reports exit codes and signals as such', async () => {
    const code = await transport.exec(request(sshd.node(), plugin('exit 42', 'exit-42')));
    expect(code).toMatchObject({ termination: 'exit', exitCode: 42, signal: null });
    const signalled = await transport.exec(
      request(sshd.node(), plugin('kill -s TERM $$', 'self-term')),
    );
    expect(signalled).toMatchObject({ termination: 'signal', exitCode: null, signal: 'SIGTERM' });
  });

  it('rejects oversized stdin and plugins client-side (PAYLOAD_TOO_LARGE)', async () => {
    const small = transportFor(sshd, { maxStdinBytes: 1024, maxPluginBytes: 64 });
    try {
      const error = await rejection(
        small.exec(request(sshd.node(), plugin('true', 'p1'), { stdin: new Uint8Array(2048) })),
      );
      expect(error.code).toBe('PAYLOAD_TOO_LARGE');
      const big = plugin(`# ${'x'.repeat(100)}`, 'p2');
      expect((await rejection(small.exec(request(sshd.node(), big)))).code).toBe(
        'PAYLOAD_TOO_LARGE',
      );
    } finally {
      await small.close();
    }
  });
});

describe('preinstalled mode', () => {
  it('runs <remotePluginDir>/<action>.sh, and a missing file is PLUGIN_NOT_INSTALLED', async () => {
    const pluginDir = join(sshd.dir, 'installed');
    mkdirSync(pluginDir, { recursive: true });
    writeFileSync(join(pluginDir, 'check-disk.sh'), '#!/bin/sh\necho "installed:$(cat)"\n', {
      mode: 0o755,
    });
    const pre = transportFor(sshd, { remotePluginDir: pluginDir });
    try {
      const found = await pre.exec(
        request(
          sshd.node(),
          { ...plugin('', 'check-disk') },
          { deployMode: 'preinstalled', stdin: encoder.encode('x') },
        ),
      );
      expect(text(found.stdout)).toBe('installed:x\n');
      expect(found.metadata).toMatchObject({ exec_round_trips: 1 });
      const missing = await rejection(
        pre.exec(request(sshd.node(), plugin('', 'not-there'), { deployMode: 'preinstalled' })),
      );
      expect(missing.code).toBe('PLUGIN_NOT_INSTALLED');
      expect(missing.message).toContain(`${pluginDir}/not-there.sh`);
    } finally {
      await pre.close();
    }
  });
});

describe('timeouts, cancellation and output bounds', () => {
  const sleeper = (file: string): string =>
    `sleep 300 & echo $! >> ${file}\necho $$ >> ${file}\necho started\nsleep 300\n`;

  it('a timeout kills the remote process group and reports termination timeout', async () => {
    const pids = join(sshd.dir, 'timeout.pids');
    const started = Date.now();
    const result = await transport.exec(
      request(sshd.node(), plugin(sleeper(pids), 'sleepy-timeout'), { timeoutMs: 1500 }),
    );
    expect(result).toMatchObject({ termination: 'timeout', exitCode: null, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(text(result.stdout)).toBe('started\n');
    const all = await waitForPids(pids, 2);
    expect(await waitGone(all)).toEqual([]);
  });

  it('cancellation kills the remote process group and reports cancelled', async () => {
    const pids = join(sshd.dir, 'cancel.pids');
    const controller = new AbortController();
    const pending = transport.exec(
      request(sshd.node(), plugin(sleeper(pids), 'sleepy-cancel'), { signal: controller.signal }),
    );
    const all = await waitForPids(pids, 2);
    controller.abort();
    const result = await pending;
    expect(result.termination).toBe('cancelled');
    expect(await waitGone(all)).toEqual([]);
  });

  it('an already-aborted signal resolves cancelled without running', async () => {
    const result = await transport.exec(
      request(sshd.node(), plugin('touch /never', 'never'), { signal: AbortSignal.abort() }),
    );
    expect(result.termination).toBe('cancelled');
  });

  it('50 MB of output is capped (head of stdout, tail of stderr) without growing memory', async () => {
    // What is measured is memory the process keeps alive (heap + Buffers, after a full GC),
    // sampled while the 60 MB flow in: a transport that collected the output before capping it
    // would hold tens of MB at some sample. RSS is not used: it also moves with the allocator's
    // retained pages and everything else this test worker does.
    const live = (): number => {
      collectGarbage();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const flood = plugin(
      'head -c 52428800 /dev/zero; head -c 10485760 /dev/zero >&2; echo -n END >&2',
      'flood',
    );
    // Shipped and connected first, so what is measured is what the flood itself keeps.
    await transport.exec(
      request(sshd.node(), flood, { limits: { maxStdoutBytes: 1, maxStderrBytes: 1 } }),
    );
    const before = live();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, live());
    }, 100);
    let result: Awaited<ReturnType<Transport['exec']>>;
    try {
      result = await transport.exec(
        request(sshd.node(), flood, {
          limits: { maxStdoutBytes: 1024 * 1024, maxStderrBytes: 1024 },
          timeoutMs: 60_000,
        }),
      );
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, live());
    expect(result.termination).toBe('exit');
    expect(result.stdout.byteLength).toBe(1024 * 1024);
    expect(result.stdoutTruncated).toBe(true);
    expect(result.stderr.byteLength).toBe(1024);
    expect(result.stderrTruncated).toBe(true);
    expect(text(result.stderr).endsWith('END')).toBe(true);
    // The kept 1 MB head, ssh2's channel window (2 MB) and its in-flight chunks, and slack.
    expect(peak - before).toBeLessThan(16 * 1024 * 1024);
  }, 90_000);
});

describe('connection reuse and MaxSessions', () => {
  it('runs many concurrent actions on one connection within a small server MaxSessions', async () => {
    const small = await startSshd({ maxSessions: 2 });
    const pooled = transportFor(small, { maxSessionsPerConnection: 8 });
    try {
      const slow = plugin('sleep 0.3; cat', 'slow-cat');
      await pooled.exec(request(small.node(), slow)); // ship it first
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          pooled.exec(request(small.node(), slow, { stdin: encoder.encode(`run-${index}`) })),
        ),
      );
      results.forEach((result, index) => {
        expect(text(result.stdout)).toBe(`run-${index}`);
      });
      expect(new Set(results.map((result) => result.metadata?.connection_id)).size).toBe(1);
    } finally {
      await pooled.close();
      await small.stop();
    }
  });

  it('close() ends every connection and is idempotent', async () => {
    const own = transportFor(sshd);
    await own.exec(request(sshd.node(), plugin('true', 'noop-close')));
    await own.close();
    await own.close();
    expect(
      (await rejection(own.exec(request(sshd.node(), plugin('true', 'noop-close'))))).code,
    ).toBe('TRANSPORT_UNAVAILABLE');
  });
});

describe('artifacts', () => {
  it('fetches a file over SFTP, refuses relative paths and oversized files', async () => {
    const file = join(sshd.dir, 'artifact.bin');
    const bytes = randomBytes(200_000);
    writeFileSync(file, bytes);
    const fetchArtifact = transport.fetchArtifact?.bind(transport);
    expect(fetchArtifact).toBeDefined();
    if (fetchArtifact === undefined) return;
    const fetched = await fetchArtifact(sshd.node(), file, new AbortController().signal);
    expect(Buffer.from(fetched.content).equals(bytes)).toBe(true);
    expect(
      (await rejection(fetchArtifact(sshd.node(), 'relative/x', AbortSignal.abort()))).code,
    ).toBe('ARTIFACT_FETCH_FAILED');
    expect(
      (
        await rejection(
          fetchArtifact(sshd.node(), join(sshd.dir, 'missing'), new AbortController().signal),
        )
      ).code,
    ).toBe('ARTIFACT_FETCH_FAILED');
    const limited = transportFor(sshd, { maxArtifactBytes: 1000 });
    try {
      const error = await rejection(
        limited.fetchArtifact!(sshd.node(), file, new AbortController().signal),
      );
      expect(error.code).toBe('ARTIFACT_FETCH_FAILED');
      expect(error.message).toContain('limit');
    } finally {
      await limited.close();
    }
  });
});
