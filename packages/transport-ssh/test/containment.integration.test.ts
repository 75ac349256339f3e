/**
 * Containment over SSH against a real sshd: every process a run starts carries the run marker and
 * is swept when the run ends — on a normal exit (by the bootstrap), on timeout and on cancel (by
 * the control side, over a second channel), and by the remote watchdog when the control node is
 * gone. Processes are found through /proc by a unique argv.
 *
 * The timeout and cancel tests use a remote watchdog far beyond the test (watchdogGraceSeconds
 * 600) and a plugin that ignores TERM and HUP with a setsid child: within the bound, only the
 * control side's sweep can explain that child's death.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKillCommand } from '../src/remote-command.js';
import { tcpConnectionFactory } from '../src/ssh-connector.js';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import {
  escapedSleepLines,
  plugin,
  processesWith,
  rejection,
  request,
  text,
  transportFor,
  uniqueSeconds,
  waitForProcess,
  waitNoProcess,
} from './helpers.js';

let sshd: SshdInstance;
let transport: Transport;

beforeAll(async () => {
  sshd = await startSshd();
  transport = transportFor(sshd, { watchdogGraceSeconds: 600 });
});
afterAll(async () => {
  await transport?.close();
  await sshd?.stop();
});

/** A plugin that ignores TERM and HUP, starts a setsid child and then hangs. */
function stubborn(child: string, own: string): string {
  return `trap "" TERM HUP\nsetsid sleep ${child} &\necho started\nsleep ${own}\n`;
}

describe('containment (run marker)', () => {
  it('a normal run reports containment, and leaves no watchdog behind', async () => {
    const grace = Number(uniqueSeconds().slice(0, 4));
    const own = transportFor(sshd, { watchdogGraceSeconds: grace });
    try {
      const result = await own.exec(
        request(sshd.node(), plugin('echo hi', 'contain-plain'), { timeoutMs: 20_000 }),
      );
      expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
      expect(result.containment).toEqual({ method: 'run-marker', killed: 0, complete: true });
      // The bootstrap waits for its watchdog before it exits: none is left now.
      expect(processesWith(['sleep', String(20 + grace)])).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('a valid result while background children hold stdout open: exit 0, at once, children gone', async () => {
    const held = uniqueSeconds();
    const escaped = uniqueSeconds();
    const result = await transport.exec(
      request(
        sshd.node(),
        plugin(
          `sleep ${held} &\nsetsid sleep ${escaped} &\necho '{"ok":true}'\nexit 0`,
          'contain-held-stdout',
        ),
        { timeoutMs: 60_000 },
      ),
    );
    expect(result).toMatchObject({ termination: 'exit', exitCode: 0, signal: null });
    expect(text(result.stdout)).toBe('{"ok":true}\n');
    expect(result.containment?.method).toBe('run-marker');
    expect(result.containment?.killed).toBeGreaterThanOrEqual(2);
    expect(result.containment?.complete).toBe(true);
    expect(processesWith(['sleep', held])).toEqual([]);
    expect(processesWith(['sleep', escaped])).toEqual([]);
  });

  it('a timeout sweeps the setsid child too (control-side sweep, not the watchdog)', async () => {
    const child = uniqueSeconds();
    const own = uniqueSeconds();
    const result = await transport.exec(
      request(sshd.node(), plugin(stubborn(child, own), 'contain-timeout'), { timeoutMs: 1500 }),
    );
    expect(result).toMatchObject({ termination: 'timeout', exitCode: null, signal: null });
    expect(text(result.stdout)).toBe('started\n');
    expect(result.containment).toMatchObject({ method: 'run-marker', complete: true });
    expect(result.containment?.killed).toBeGreaterThanOrEqual(3); // plugin, its sleep, setsid child
    // The watchdog would sweep only after 600 s: the child is gone because of the timeout's sweep.
    expect(await waitNoProcess(['sleep', child], 2000)).toEqual([]);
    expect(await waitNoProcess(['sleep', own], 2000)).toEqual([]);
  });

  it('a cancel sweeps the setsid child too', async () => {
    const child = uniqueSeconds();
    const own = uniqueSeconds();
    const controller = new AbortController();
    const pending = transport.exec(
      request(sshd.node(), plugin(stubborn(child, own), 'contain-cancel'), {
        signal: controller.signal,
        timeoutMs: 60_000,
      }),
    );
    // Readiness: the plugin's own sleep exists once the setsid child was started before it.
    await waitForProcess(['sleep', own]);
    controller.abort();
    const result = await pending;
    expect(result.termination).toBe('cancelled');
    expect(result.containment).toMatchObject({ method: 'run-marker', complete: true });
    expect(result.containment?.killed).toBeGreaterThanOrEqual(3);
    expect(await waitNoProcess(['sleep', child], 2000)).toEqual([]);
    expect(await waitNoProcess(['sleep', own], 2000)).toEqual([]);
  });

  it('the remote watchdog sweeps a run whose control node vanished', async () => {
    const sockets: Duplex[] = [];
    const vanishing = transportFor(sshd, {
      watchdogGraceSeconds: 1,
      keepaliveIntervalMs: 0,
      connectionFactory: async (socketRequest) => {
        const socket = await tcpConnectionFactory(socketRequest);
        sockets.push(socket);
        return socket;
      },
    });
    const child = uniqueSeconds();
    const own = uniqueSeconds();
    try {
      const pending = vanishing.exec(
        request(sshd.node(), plugin(stubborn(child, own), 'contain-vanished'), {
          timeoutMs: 1000,
        }),
      );
      await waitForProcess(['sleep', own]);
      // The control node disappears: its TCP connection is gone, nobody sends a kill.
      for (const socket of sockets) socket.destroy();
      expect((await rejection(pending)).code).toBe('CONNECTION_LOST');
      expect(processesWith(['sleep', child]).length).toBe(1);
      // Watchdog: 1 s timeout + 1 s grace after the plugin started.
      expect(await waitNoProcess(['sleep', child], 10_000)).toEqual([]);
      expect(await waitNoProcess(['sleep', own], 2000)).toEqual([]);
    } finally {
      await vanishing.close();
    }
  });

  it('a child that dropped the marker and holds stdout: exit 0 after a short drain, containment incomplete', async () => {
    const escaped = uniqueSeconds();
    try {
      const result = await transport.exec(
        request(
          sshd.node(),
          plugin(`${escapedSleepLines(escaped)}\necho '{"ok":true}'\nexit 0`, 'contain-escaped'),
          { timeoutMs: 60_000 },
        ),
      );
      expect(result).toMatchObject({ termination: 'exit', exitCode: 0 });
      expect(text(result.stdout)).toBe('{"ok":true}\n');
      expect(result.containment?.complete).toBe(false);
      expect(result.containment?.detail).toContain('without the run marker');
    } finally {
      for (const pid of processesWith(['/bin/sleep', escaped])) process.kill(pid, 'SIGKILL');
    }
  });

  it('a kill channel the server refuses: the timeout still resolves, containment says incomplete', async () => {
    // The run takes the server's only session, so its kill channel is refused. Preinstalled: one
    // exec, no upload before it.
    const full = await startSshd({ maxSessions: 1 });
    const grace = 600 + Number(uniqueSeconds().slice(0, 3));
    const pluginDir = join(full.dir, 'installed');
    mkdirSync(pluginDir, { mode: 0o755 });
    const own = uniqueSeconds();
    writeFileSync(
      join(pluginDir, 'no-kill-channel.sh'),
      `#!/bin/sh\necho started\nsleep ${own}\n`,
      {
        mode: 0o755,
      },
    );
    const limited = transportFor(full, {
      watchdogGraceSeconds: grace,
      maxSessionsPerConnection: 1,
      remotePluginDir: pluginDir,
    });
    try {
      const result = await limited.exec(
        request(full.node(), plugin('', 'no-kill-channel'), {
          deployMode: 'preinstalled',
          timeoutMs: 1000,
        }),
      );
      expect(result.termination).toBe('timeout');
      expect(text(result.stdout)).toBe('started\n');
      expect(result.containment?.complete).toBe(false);
      expect(result.containment?.detail).toContain('kill channel could not be opened');
    } finally {
      await limited.close();
      await full.stop();
      // Nobody could sweep these runs, and their watchdogs would only after ~10 minutes: clean up
      // with the same sweep, run here (the "node" is this machine), then the watchdogs.
      for (const pid of processesWith(['sleep', own])) {
        const marker = /RUNE_RUN_MARKER=([0-9a-f]{32})/.exec(
          readFileSync(`/proc/${pid}/environ`, 'latin1'),
        )?.[1];
        if (marker !== undefined) execFileSync('sh', ['-c', buildKillCommand(marker)]);
      }
      for (const pid of processesWith(['sleep', String(1 + grace)])) {
        const parent = Number(
          readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.split(' ')[1],
        );
        for (const victim of [parent, pid]) {
          try {
            process.kill(victim, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    expect(await waitNoProcess(['sleep', own], 5000)).toEqual([]);
    expect(await waitNoProcess(['sleep', String(1 + grace)], 5000)).toEqual([]);
  });
});
