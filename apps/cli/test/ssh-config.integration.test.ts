/**
 * ~/.ssh/config through the whole CLI path: `rune run noop --node <alias>` against a real sshd on
 * loopback, where only ~/.ssh/config knows the alias's HostName, Port, User and IdentityFile and
 * the host key sits in the OpenSSH default ~/.ssh/known_hosts. The rune config sets neither port
 * nor user, so the built-in default port 22 must not override the alias's Port; a port set in
 * the rune config does override it. Build first: `npx turbo run build --filter=@rune/cli...`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type SshdInstance, startSshd } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertCliBuildFresh,
  type CliSandbox,
  createCliSandbox,
  writeSshConfigHost,
} from './cli-harness.js';

let sandbox: CliSandbox;
let sshd: SshdInstance;
let configFile: string;

beforeAll(async () => {
  assertCliBuildFresh();
  sandbox = createCliSandbox();
  sshd = await startSshd();
  writeSshConfigHost(sandbox, 'web-alias', sshd);
  // Only transport plumbing in the rune config: no [ssh] port, no user.
  configFile = join(sandbox.env.XDG_CONFIG_HOME!, 'rune', 'config.toml');
  mkdirSync(join(sandbox.env.XDG_CONFIG_HOME!, 'rune'), { recursive: true });
  writeFileSync(
    configFile,
    `[ssh]\nuse_agent = false\nremote_cache_dir = ${JSON.stringify(sshd.remoteCacheDir)}\n`,
  );
});
afterAll(async () => {
  await sshd?.stop();
  sandbox?.cleanup();
});

describe('rune run over SSH with a ~/.ssh/config Host alias', () => {
  it('honours the alias HostName, Port, User and IdentityFile when rune config sets no port or user', async () => {
    const result = await sandbox.run(['run', 'noop', '--node', 'web-alias', '-o', 'json']);
    const document = JSON.parse(result.stdout) as {
      exit_code: number;
      nodes: {
        node: string;
        transport: string;
        status: string;
        error: { code: string } | null;
        response: { payload: { output_data: { runtime: { user: string } } } } | null;
      }[];
    };
    expect(document.nodes[0]?.error ?? null, result.stderr).toBeNull();
    expect(result.code).toBe(0);
    expect(document.nodes[0]).toMatchObject({
      node: 'web-alias',
      transport: 'ssh',
      status: 'success',
    });
    expect(document.nodes[0]?.response?.payload.output_data.runtime.user).toBe(sshd.user);
  });

  it('a port set in the rune config overrides the alias Port', async () => {
    const result = await sandbox.run(
      ['run', 'noop', '--node', 'web-alias', '-o', 'json', '--timeout', '20s'],
      {
        env: {
          RUNE_SSH_PORT: String(sshd.port === 1 ? 2 : 1),
          RUNE_SSH_CONNECT_TIMEOUT_MS: '3000',
        },
      },
    );
    const document = JSON.parse(result.stdout) as { nodes: { error: { code: string } | null }[] };
    expect(document.nodes[0]?.error?.code).toBe('CONNECTION_REFUSED');
    expect(result.code).toBe(3);
  });

  it('a port set in a config file wins too, and an unknown [ssh] key names the file and key', async () => {
    const other = join(sandbox.root, 'other-port.toml');
    writeFileSync(
      other,
      `[ssh]\nuse_agent = false\nport = ${sshd.port === 1 ? 2 : 1}\nconnect_timeout_ms = 3000\n`,
    );
    const refused = await sandbox.run(['run', 'noop', '--node', 'web-alias', '-o', 'json'], {
      env: { RUNE_CONFIG: other },
    });
    const document = JSON.parse(refused.stdout) as { nodes: { error: { code: string } | null }[] };
    expect(document.nodes[0]?.error?.code).toBe('CONNECTION_REFUSED');

    const typo = join(sandbox.root, 'typo.toml');
    writeFileSync(typo, '[ssh]\nprot = 2222\n');
    const bad = await sandbox.run(['run', 'noop', '--node', 'web-alias'], {
      env: { RUNE_CONFIG: typo },
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('INVALID_CONFIG');
    expect(bad.stderr).toContain(`${typo}:2:1: ssh.prot: unknown key; did you mean ssh.port?`);
  });
});
