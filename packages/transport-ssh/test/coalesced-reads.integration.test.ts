/**
 * A fast command's whole answer (exec reply, output, exit status, EOF, close) can reach the client
 * in ONE read when the control node's event loop is busy — e.g. a fan-out doing 100 handshakes.
 * ssh2 then emits the channel's 'exit' before the transport's listeners exist. This test forces
 * that situation deterministically against a real sshd: the socket is wrapped so that, once armed,
 * everything the server sends is held and delivered as one chunk.
 */
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSshTransport } from '../src/index.js';
import { tcpConnectionFactory } from '../src/ssh-connector.js';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import {
  escapedSleepLines,
  optionsFor,
  plugin,
  processesWith,
  request,
  text,
  uniqueSeconds,
} from './helpers.js';

/** Passes bytes through; when `holdMs` > 0, holds what the server sends and delivers it at once. */
class CoalescingStream extends Duplex {
  holdMs = 0;
  private held: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly inner: Duplex) {
    super();
    inner.on('data', (chunk: Buffer) => {
      if (this.holdMs === 0) {
        this.push(chunk);
        return;
      }
      this.held.push(chunk);
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.push(Buffer.concat(this.held));
        this.held = [];
      }, this.holdMs);
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (error) => this.destroy(error));
    inner.on('close', () => this.destroy());
  }

  override _read(): void {}

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null) => void,
  ): void {
    this.inner.write(chunk, done);
  }

  override _final(done: () => void): void {
    this.inner.end(done);
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.inner.destroy();
    done(error);
  }
}

let sshd: SshdInstance;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

it('a command whose exec reply and exit status arrive in one read still reports its exit', async () => {
  const streams: CoalescingStream[] = [];
  const transport = createSshTransport(
    optionsFor(sshd, {
      connectionFactory: async (socketRequest) => {
        const stream = new CoalescingStream(await tcpConnectionFactory(socketRequest));
        streams.push(stream);
        return stream;
      },
    }),
  );
  try {
    // Does not read stdin, so it can finish before the transport sends anything more.
    const quick = plugin('printf "{\\"quick\\":true}"; exit 3', 'quick-exit');
    const node = sshd.node();
    const warm = await transport.exec(request(node, quick)); // connects and caches the plugin
    expect(warm.exitCode).toBe(3);
    expect(streams).toHaveLength(1);
    // The exec round trip (login shell, bootstrap, plugin) takes well under the hold time here.
    for (const stream of streams) stream.holdMs = 1500;
    const result = await transport.exec(request(node, quick));
    expect(result.metadata?.connection_reused).toBe(true);
    expect(result.termination).toBe('exit');
    expect(result.exitCode).toBe(3);
    expect(text(result.stdout)).toBe('{"quick":true}');
  } finally {
    await transport.close();
  }
});

it('a held-open channel whose exit status came in the same read as the exec reply still ends after the drain', async () => {
  // The mechanism behind a rare failure of the containment test "a child that dropped the marker
  // and holds stdout" under load: the exit status arrived before the transport listened for it,
  // and since the escaped child keeps the channel open, no 'close' ever repeats it: the run waited
  // for its timeout instead of ending after the short drain.
  const streams: CoalescingStream[] = [];
  const transport = createSshTransport(
    optionsFor(sshd, {
      connectionFactory: async (socketRequest) => {
        const stream = new CoalescingStream(await tcpConnectionFactory(socketRequest));
        streams.push(stream);
        return stream;
      },
    }),
  );
  const escaped = uniqueSeconds();
  try {
    const held = plugin(
      `${escapedSleepLines(escaped)}\nprintf '{"held":true}'\nexit 0`,
      'coalesced-held-open',
    );
    const node = sshd.node();
    const warm = await transport.exec(request(node, plugin('exit 0', 'coalesced-warm')));
    expect(warm.exitCode).toBe(0);
    // Cache the plugin first, so the measured run is the one-exec hot path.
    const cached = await transport.exec(request(node, held));
    expect(cached.exitCode).toBe(0);
    for (const pid of processesWith(['/bin/sleep', escaped])) process.kill(pid, 'SIGKILL');
    for (const stream of streams) stream.holdMs = 1500;
    const result = await transport.exec(request(node, held, { timeoutMs: 15_000 }));
    expect(result.metadata?.exec_round_trips).toBe(1);
    expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
    expect(text(result.stdout)).toBe('{"held":true}');
    expect(result.containment?.complete).toBe(false);
    expect(result.containment?.detail).toContain('without the run marker');
  } finally {
    for (const pid of processesWith(['/bin/sleep', escaped])) process.kill(pid, 'SIGKILL');
    await transport.close();
  }
});
