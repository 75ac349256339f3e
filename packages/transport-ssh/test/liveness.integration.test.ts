/**
 * A host that stops answering (its sshd frozen with SIGSTOP: the TCP connection stays up, nothing
 * is ever answered) must neither hang a run nor keep the process alive after `close()`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSshTransport, type SshTransportOptions } from '../src/index.js';
import { tcpConnectionFactory } from '../src/ssh-connector.js';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import { optionsFor, plugin, rejection, request, waitForPids } from './helpers.js';

let sshd: SshdInstance;
let frozen: number[] = [];

beforeAll(async () => {
  sshd = await startSshd();
});
afterEach(() => {
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  frozen = [];
  sshd.killConnections();
});
afterAll(async () => {
  await sshd?.stop();
});

/** SIGSTOPs every per-connection sshd process (the listener keeps running). */
function freezeConnections(): void {
  for (const pid of sshd.descendants()) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sshd') continue;
      process.kill(pid, 'SIGSTOP');
      frozen.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  expect(frozen.length).toBeGreaterThan(0);
}

/** A transport whose TCP sockets the test can inspect. */
function recordingTransport(overrides: SshTransportOptions): {
  transport: ReturnType<typeof createSshTransport>;
  sockets: Duplex[];
} {
  const sockets: Duplex[] = [];
  const transport = createSshTransport(
    optionsFor(sshd, {
      ...overrides,
      connectionFactory: async (socketRequest) => {
        const socket = await tcpConnectionFactory(socketRequest);
        sockets.push(socket);
        return socket;
      },
    }),
  );
  return { transport, sockets };
}

describe('liveness against a host that stops answering', () => {
  it('mid-run: the exec ends as CONNECTION_LOST within the keepalive bound, close() is bounded', async () => {
    const { transport, sockets } = recordingTransport({
      keepaliveIntervalMs: 300,
      keepaliveCountMax: 2,
      watchdogGraceSeconds: 1,
    });
    const pids = join(sshd.dir, 'frozen.pids');
    try {
      const pending = transport.exec(
        request(sshd.node(), plugin(`echo $$ >> ${pids}\nsleep 30`, 'frozen-run'), {
          timeoutMs: 60_000,
        }),
      );
      await waitForPids(pids, 1);
      freezeConnections();
      const frozenAt = Date.now();
      const error = await rejection(pending);
      expect(error.code).toBe('CONNECTION_LOST');
      // 300 ms x (2 + 1) keepalives, plus slack for a loaded machine; never the 60 s timeout.
      expect(Date.now() - frozenAt).toBeLessThan(10_000);
      const closing = Date.now();
      await transport.close();
      expect(Date.now() - closing).toBeLessThan(5_000);
      expect(sockets.every((socket) => socket.destroyed)).toBe(true);
    } finally {
      await transport.close();
    }
  });

  it('idle: close() destroys the socket of a frozen host after a short grace', async () => {
    const { transport, sockets } = recordingTransport({ keepaliveIntervalMs: 0 });
    try {
      const result = await transport.exec(request(sshd.node(), plugin('true', 'before-freeze')));
      expect(result.exitCode).toBe(0);
      freezeConnections();
      const closing = Date.now();
      await transport.close();
      expect(Date.now() - closing).toBeLessThan(5_000);
      // Left open, this socket would keep the process alive forever after the results.
      expect(sockets.length).toBe(1);
      expect(sockets.every((socket) => socket.destroyed)).toBe(true);
    } finally {
      await transport.close();
    }
  });
});
