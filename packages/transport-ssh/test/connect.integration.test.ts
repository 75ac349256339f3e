import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateClientKey,
  refusedEndpoint,
  type SshdInstance,
  sshConfigHost,
  startSilentHost,
  startSshd,
} from '../src/testing/index.js';
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

const noop = plugin('echo ok', 'noop-connect');
let sshd: SshdInstance;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

describe('precise connection errors', () => {
  it('refused port → CONNECTION_REFUSED', async () => {
    const closed = await refusedEndpoint();
    const transport = transportFor(sshd);
    try {
      const error = await rejection(
        transport.exec(request(sshd.node({ address: closed.address, port: closed.port }), noop)),
      );
      expect(error.code).toBe('CONNECTION_REFUSED');
      expect(error.source.node).toBe(sshd.node().name);
    } finally {
      await transport.close();
    }
  });

  it('a host that accepts TCP but never speaks SSH → HANDSHAKE_TIMEOUT', async () => {
    const silent = await startSilentHost();
    const transport = transportFor(sshd, { connectTimeoutMs: 800 });
    try {
      const started = Date.now();
      const error = await rejection(
        transport.exec(
          request({ name: 'silent', address: silent.address, port: silent.port }, noop),
        ),
      );
      expect(error.code).toBe('HANDSHAKE_TIMEOUT');
      expect(silent.accepted()).toBe(1);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await transport.close();
      await silent.close();
    }
  });

  it('an unresolvable name → DNS_LOOKUP_FAILED', async () => {
    const transport = transportFor(sshd, { connectTimeoutMs: 3000 });
    try {
      const error = await rejection(
        transport.exec(request({ name: 'no-such-host.invalid', port: 22 }, noop)),
      );
      expect(error.code).toBe('DNS_LOOKUP_FAILED');
    } finally {
      await transport.close();
    }
  });

  it('an injected connection factory decides the connect error (e.g. CONNECT_TIMEOUT)', async () => {
    const { RuneError } = await import('@rune/protocol');
    const transport = transportFor(sshd, {
      connectionFactory: async ({ host, port }) => {
        throw new RuneError('CONNECT_TIMEOUT', `no TCP connection to ${host}:${port}`);
      },
    });
    try {
      expect((await rejection(transport.exec(request(sshd.node(), noop)))).code).toBe(
        'CONNECT_TIMEOUT',
      );
    } finally {
      await transport.close();
    }
  });

  it('auth failure → AUTH_FAILED listing the methods tried', async () => {
    const stranger = await generateClientKey(sshd.dir);
    const transport = transportFor(sshd, {
      identityFiles: [stranger.privateKeyFile, join(sshd.dir, 'no-such-key')],
    });
    try {
      const error = await rejection(transport.exec(request(sshd.node(), noop)));
      expect(error.code).toBe('AUTH_FAILED');
      expect(error.details?.methods_tried).toEqual([
        `publickey ${stranger.privateKeyFile}`,
        `publickey ${join(sshd.dir, 'no-such-key')} (skipped: missing)`,
      ]);
      expect(error.message).toContain(stranger.privateKeyFile);
    } finally {
      await transport.close();
    }
  });

  it('sshd killed mid-run → CONNECTION_LOST (never exit 0)', async () => {
    const transport = transportFor(sshd);
    const pids = join(sshd.dir, 'lost.pids');
    try {
      const pending = transport.exec(
        request(sshd.node(), plugin(`echo $$ >> ${pids}\nsleep 30\nexit 0`, 'long-running')),
      );
      const all = await waitForPids(pids, 1);
      sshd.killConnections();
      const error = await rejection(pending);
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.retryable).toBe(true);
      expect(await waitGone(all)).toEqual([]);
      // The next exec opens a fresh connection.
      expect((await transport.exec(request(sshd.node(), noop))).exitCode).toBe(0);
    } finally {
      await transport.close();
    }
  });
});

describe('authentication sources', () => {
  let locked: SshdInstance;
  beforeAll(async () => {
    locked = await startSshd({ clientKeyPassphrase: 'correct horse' });
  });
  afterAll(async () => {
    await locked?.stop();
  });

  it('encrypted key: passphrase from the env var, the option, or the prompt; wrong one is AUTH_FAILED', async () => {
    const viaEnv = transportFor(locked, { env: { RUNE_SSH_PASSPHRASE: 'correct horse' } });
    const viaOption = transportFor(locked, { passphrase: 'correct horse', env: {} });
    const prompts: string[] = [];
    const viaPrompt = transportFor(locked, {
      env: {},
      passphrasePrompt: async (file) => {
        prompts.push(file);
        return 'correct horse';
      },
    });
    const wrong = transportFor(locked, { env: { MY_PASS: 'wrong' }, passphraseEnv: 'MY_PASS' });
    const none = transportFor(locked, { env: {} });
    try {
      expect((await viaEnv.exec(request(locked.node(), noop))).exitCode).toBe(0);
      expect((await viaOption.exec(request(locked.node(), noop))).exitCode).toBe(0);
      expect((await viaPrompt.exec(request(locked.node(), noop))).exitCode).toBe(0);
      expect(prompts).toEqual([locked.clientKey.privateKeyFile]);
      const wrongError = await rejection(wrong.exec(request(locked.node(), noop)));
      expect(wrongError.code).toBe('AUTH_FAILED');
      expect(String(wrongError.details?.methods_tried)).toContain('wrong passphrase');
      const noneError = await rejection(none.exec(request(locked.node(), noop)));
      expect(String(noneError.details?.methods_tried)).toContain('RUNE_SSH_PASSPHRASE');
    } finally {
      await Promise.all([viaEnv, viaOption, viaPrompt, wrong, none].map((t) => t.close()));
    }
  });

  it('ssh-agent (SSH_AUTH_SOCK)', async () => {
    const socket = join(sshd.dir, 'agent.sock');
    let agent: ChildProcess | undefined;
    try {
      agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
      for (let i = 0; i < 50 && !existsSync(socket); i++)
        await new Promise((r) => setTimeout(r, 50));
      execFileSync('ssh-add', ['-q', sshd.clientKey.privateKeyFile], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: 'ignore',
      });
      const transport = transportFor(sshd, {
        identityFiles: [join(sshd.dir, 'absent-key')],
        useAgent: true,
        env: { SSH_AUTH_SOCK: socket },
      });
      try {
        expect((await transport.exec(request(sshd.node(), noop))).exitCode).toBe(0);
      } finally {
        await transport.close();
      }
    } finally {
      agent?.kill('SIGKILL');
    }
  });

  it('~/.ssh/config: Host alias with HostName, Port, User and IdentityFile', async () => {
    const config = join(sshd.dir, 'ssh_config');
    writeFileSync(config, sshConfigHost(sshd, 'webalias'));
    const transport = transportFor(sshd, {
      identityFiles: [],
      useSshConfig: true,
      sshConfigFile: config,
    });
    try {
      const result = await transport.exec(request({ name: 'webalias' }, noop));
      expect(text(result.stdout)).toBe('ok\n');
    } finally {
      await transport.close();
    }
  });
});

describe('ProxyJump', () => {
  let target: SshdInstance;
  beforeAll(async () => {
    // The target only needs to be reachable from the jump host; on loopback both are local.
    target = await startSshd({ clientKey: sshd.clientKey });
  });
  afterAll(async () => {
    await target?.stop();
  });

  const knownBoth = (): string => {
    const file = join(sshd.dir, 'known_both');
    writeFileSync(file, `${[...sshd.knownHostsLines, ...target.knownHostsLines].join('\n')}\n`);
    return file;
  };

  it('reaches the target through the jump host; each hop verified under its own name', async () => {
    const transport = transportFor(target, { knownHostsFiles: [knownBoth()] });
    try {
      const node = target.node({
        settings: { proxy_jump: `${sshd.user}@${sshd.address}:${sshd.port}` },
      });
      const result = await transport.exec(
        request(node, plugin('cat', 'via-jump'), { stdin: encoder.encode('hop') }),
      );
      expect(text(result.stdout)).toBe('hop');
      expect(result.metadata?.proxy_jump).toEqual([`${sshd.user}@${sshd.address}:${sshd.port}`]);
      // Two hops: jump → jump → target.
      const twoHops = target.node({
        settings: { proxy_jump: `${sshd.address}:${sshd.port},${sshd.address}:${sshd.port}` },
      });
      expect((await transport.exec(request(twoHops, noop))).exitCode).toBe(0);
    } finally {
      await transport.close();
    }
  });

  it('an unknown jump host key is refused and names the hop', async () => {
    const transport = transportFor(target, { knownHostsFiles: [target.knownHostsFile] });
    try {
      const node = target.node({ settings: { proxy_jump: `${sshd.address}:${sshd.port}` } });
      const error = await rejection(transport.exec(request(node, noop)));
      expect(error.code).toBe('HOST_KEY_UNKNOWN');
      expect(error.details).toMatchObject({ hop_role: 'jump', host: sshd.address });
    } finally {
      await transport.close();
    }
  });

  it('a jump host that cannot reach the target → PROXY_JUMP_FAILED', async () => {
    const closed = await refusedEndpoint();
    const transport = transportFor(target, { knownHostsFiles: [knownBoth()] });
    try {
      const node = {
        name: 'behind',
        address: closed.address,
        port: closed.port,
        user: target.user,
      };
      const error = await rejection(
        transport.exec(
          request({ ...node, settings: { proxy_jump: `${sshd.address}:${sshd.port}` } }, noop),
        ),
      );
      expect(error.code).toBe('PROXY_JUMP_FAILED');
    } finally {
      await transport.close();
    }
  });

  it('a malformed proxy_jump is INVALID_CONFIG', async () => {
    const transport = transportFor(target);
    try {
      const error = await rejection(
        transport.exec(request(target.node({ settings: { proxy_jump: 'a;b' } }), noop)),
      );
      expect(error.code).toBe('INVALID_CONFIG');
    } finally {
      await transport.close();
    }
  });
});
