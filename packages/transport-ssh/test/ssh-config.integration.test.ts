/**
 * ~/.ssh/config keywords applied for real, against sshd on loopback: UserKnownHostsFile from an
 * Included file, StrictHostKeyChecking accept-new / no, HostKeyAlias, IdentitiesOnly with an
 * agent, ConnectTimeout against a host that never sends the SSH banner, and ProxyCommand refused
 * before anything runs. RUNE's own settings that ~/.ssh/config could decide are left unset here
 * (as the CLI does when the operator did not set them).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshTransportOptions } from '../src/index.js';
import {
  generateClientKey,
  type SshdInstance,
  startSilentHost,
  startSshd,
} from '../src/testing/index.js';
import { plugin, rejection, request, text, transportFor } from './helpers.js';

const noop = plugin('echo ok', 'noop-sshconfig');
let sshd: SshdInstance;
let counter = 0;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

function writePrivate(path: string, content: string): string {
  writeFileSync(path, content);
  chmodSync(path, 0o600);
  return path;
}

/** A fresh config dir and transport options that let ~/.ssh/config decide. */
function setup(lines: string[], overrides: SshTransportOptions = {}) {
  const dir = join(sshd.dir, `cfg${counter++}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const config = writePrivate(join(dir, 'config'), `${lines.join('\n')}\n`);
  const warnings: string[] = [];
  const options: SshTransportOptions = {
    knownHostsFiles: undefined,
    runeKnownHostsFile: join(dir, 'rune_known_hosts'),
    useSshConfig: true,
    sshConfigFile: config,
    connectTimeoutMs: undefined,
    identityFiles: [],
    onWarning: (message) => warnings.push(message),
    ...overrides,
  };
  return { dir, config, options, warnings };
}

/** The host block every test uses: the alias names the test sshd (and its key, unless told). */
const alias = (name: string, withKey = true): string[] => [
  `Host ${name}`,
  `  HostName ${sshd.address}`,
  `  Port ${sshd.port}`,
  `  User ${sshd.user}`,
  '  GlobalKnownHostsFile none',
  ...(withKey ? [`  IdentityFile ${sshd.clientKey.privateKeyFile}`] : []),
];

describe('~/.ssh/config applied to real connections', () => {
  it('UserKnownHostsFile from an Included file: the only entry for the host, strict mode connects', async () => {
    const { dir, options } = setup([]);
    const knownHosts = writePrivate(join(dir, 'only_here'), `${sshd.knownHostsLines.join('\n')}\n`);
    const included = writePrivate(
      join(dir, 'fleet.conf'),
      `${[...alias('kh-alias'), `  UserKnownHostsFile ${knownHosts}`].join('\n')}\n`,
    );
    writePrivate(options.sshConfigFile as string, `Include ${dir}/*.conf\n`);
    const transport = transportFor(sshd, options);
    try {
      const result = await transport.exec(request({ name: 'kh-alias' }, noop));
      expect(text(result.stdout)).toBe('ok\n');
      expect(result.metadata?.host_key_checking).toBe('strict');
    } finally {
      await transport.close();
    }
    // Without the Include, nothing knows the host: strict refuses it.
    const { options: bare } = setup(alias('kh-alias'));
    const strict = transportFor(sshd, bare);
    try {
      const error = await rejection(strict.exec(request({ name: 'kh-alias' }, noop)));
      expect(error.code).toBe('HOST_KEY_UNKNOWN');
    } finally {
      await strict.close();
    }
    expect(included).toBeTruthy();
  });

  it('StrictHostKeyChecking accept-new from the config records the key; `no` is off and loud', async () => {
    const { options, warnings } = setup([
      ...alias('new-alias'),
      '  UserKnownHostsFile /dev/null',
      '  StrictHostKeyChecking accept-new',
    ]);
    const transport = transportFor(sshd, options);
    try {
      const result = await transport.exec(request({ name: 'new-alias' }, noop));
      expect(result.exitCode).toBe(0);
      expect(result.metadata?.host_key_checking).toBe('accept-new');
      expect(readFileSync(options.runeKnownHostsFile as string, 'utf8')).toContain(
        `[${sshd.address}]:${sshd.port} `,
      );
      expect(warnings.some((warning) => warning.startsWith('accept-new: recorded'))).toBe(true);
    } finally {
      await transport.close();
    }
    const off = setup([
      ...alias('off-alias'),
      '  UserKnownHostsFile /dev/null',
      '  StrictHostKeyChecking no',
    ]);
    const loose = transportFor(sshd, off.options);
    try {
      const result = await loose.exec(request({ name: 'off-alias' }, noop));
      expect(result.metadata?.host_key_checking).toBe('off');
      expect(off.warnings.some((warning) => warning.includes('host key checking is OFF'))).toBe(
        true,
      );
    } finally {
      await loose.close();
    }
    // RUNE's explicit setting beats the config.
    const explicit = setup(
      [...alias('x-alias'), '  UserKnownHostsFile /dev/null', '  StrictHostKeyChecking no'],
      {
        hostKeyChecking: 'strict',
      },
    );
    const strict = transportFor(sshd, explicit.options);
    try {
      expect((await rejection(strict.exec(request({ name: 'x-alias' }, noop)))).code).toBe(
        'HOST_KEY_UNKNOWN',
      );
    } finally {
      await strict.close();
    }
  });

  it('HostKeyAlias: known_hosts is searched (and accept-new records) under the alias', async () => {
    const { dir, options } = setup([]);
    const keyed = sshd.hostPublicKeys.map((key) => `fleet-web-01 ${key}`).join('\n');
    const knownHosts = writePrivate(join(dir, 'aliased'), `${keyed}\n`);
    writePrivate(
      options.sshConfigFile as string,
      `${[...alias('aliased'), `  UserKnownHostsFile ${knownHosts}`, '  HostKeyAlias Fleet-Web-01'].join('\n')}\n`,
    );
    const transport = transportFor(sshd, options);
    try {
      expect((await transport.exec(request({ name: 'aliased' }, noop))).exitCode).toBe(0);
    } finally {
      await transport.close();
    }
    // Same known_hosts without the alias: the address is not in it.
    const plain = setup([...alias('plain'), `  UserKnownHostsFile ${knownHosts}`]);
    const strict = transportFor(sshd, plain.options);
    try {
      expect((await rejection(strict.exec(request({ name: 'plain' }, noop)))).code).toBe(
        'HOST_KEY_UNKNOWN',
      );
    } finally {
      await strict.close();
    }
    const recorded = setup([
      ...alias('rec'),
      '  UserKnownHostsFile /dev/null',
      '  HostKeyAlias rec-alias',
      '  StrictHostKeyChecking accept-new',
    ]);
    const recorder = transportFor(sshd, recorded.options);
    try {
      expect((await recorder.exec(request({ name: 'rec' }, noop))).exitCode).toBe(0);
      expect(readFileSync(recorded.options.runeKnownHostsFile as string, 'utf8')).toMatch(
        /^rec-alias /,
      );
    } finally {
      await recorder.close();
    }
  });

  it('IdentitiesOnly with an agent: only the agent keys of the configured IdentityFiles are offered', async () => {
    const socket = join(sshd.dir, `agent${counter++}.sock`);
    let agent: ChildProcess | undefined;
    try {
      agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
      // Readiness: the agent creates its socket once it listens.
      for (let i = 0; i < 100 && !existsSync(socket); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const otherDir = join(sshd.dir, `other${counter++}`);
      mkdirSync(otherDir, { mode: 0o700 });
      const other = await generateClientKey(otherDir);
      for (const key of [sshd.clientKey.privateKeyFile, other.privateKeyFile]) {
        execFileSync('ssh-add', ['-q', key], {
          env: { ...process.env, SSH_AUTH_SOCK: socket },
          stdio: 'ignore',
        });
      }
      const env = { SSH_AUTH_SOCK: socket };
      const known = [`  UserKnownHostsFile ${sshd.knownHostsFile}`];
      // The agent holds the authorized key, but IdentitiesOnly names only the other one.
      const only = setup(
        [
          ...alias('only', false),
          ...known,
          `  IdentityFile ${other.privateKeyFile}`,
          '  IdentitiesOnly yes',
        ],
        {
          useAgent: true,
          env,
        },
      );
      const refused = transportFor(sshd, only.options);
      try {
        const error = await rejection(refused.exec(request({ name: 'only' }, noop)));
        expect(error.code).toBe('AUTH_FAILED');
        expect(error.details?.methods_tried).toEqual([
          `publickey ${other.privateKeyFile}`,
          'agent (IdentitiesOnly)',
        ]);
      } finally {
        await refused.close();
      }
      // Without IdentitiesOnly the agent offers every key and the authorized one works.
      const all = setup(
        [...alias('all', false), ...known, `  IdentityFile ${other.privateKeyFile}`],
        {
          useAgent: true,
          env,
        },
      );
      const open = transportFor(sshd, all.options);
      try {
        expect((await open.exec(request({ name: 'all' }, noop))).exitCode).toBe(0);
      } finally {
        await open.close();
      }
      // IdentitiesOnly naming the authorized key by its .pub alone: the agent signs with it.
      const pubOnly = join(sshd.dir, `pub-only${counter++}`);
      writeFileSync(`${pubOnly}.pub`, `${sshd.clientKey.publicKey}\n`);
      const viaPub = setup(
        [...alias('viapub', false), ...known, `  IdentityFile ${pubOnly}`, '  IdentitiesOnly yes'],
        {
          useAgent: true,
          env,
        },
      );
      const signed = transportFor(sshd, viaPub.options);
      try {
        expect((await signed.exec(request({ name: 'viapub' }, noop))).exitCode).toBe(0);
      } finally {
        await signed.close();
      }
      // IdentityAgent none: no agent at all.
      const noAgent = setup(
        [...alias('noagent', false), ...known, `  IdentityFile ${pubOnly}`, '  IdentityAgent none'],
        {
          useAgent: true,
          env,
        },
      );
      const without = transportFor(sshd, noAgent.options);
      try {
        const error = await rejection(without.exec(request({ name: 'noagent' }, noop)));
        expect(error.code).toBe('AUTH_FAILED');
        expect(String(error.details?.methods_tried)).not.toContain('agent');
      } finally {
        await without.close();
      }
    } finally {
      agent?.kill('SIGKILL');
    }
  });

  it('ConnectTimeout bounds a host that accepts TCP but never sends the SSH banner', async () => {
    const silent = await startSilentHost();
    const { options } = setup([
      'Host silent-alias',
      `  HostName ${silent.address}`,
      `  Port ${silent.port}`,
      '  ConnectTimeout 1',
    ]);
    const transport = transportFor(sshd, options);
    try {
      const started = Date.now();
      const error = await rejection(transport.exec(request({ name: 'silent-alias' }, noop)));
      expect(error.code).toBe('HANDSHAKE_TIMEOUT');
      expect(error.details?.timeout_ms).toBe(1000);
      expect(silent.accepted()).toBe(1);
      // Bounded: well below RUNE's 10 s default (not a performance assertion).
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      await transport.close();
      await silent.close();
    }
  });

  it('ProxyCommand for the node: UNSUPPORTED_FEATURE with file and line, nothing connects', async () => {
    const silent = await startSilentHost();
    const { config, options } = setup([
      'Host proxied',
      `  HostName ${silent.address}`,
      `  Port ${silent.port}`,
      '  ProxyCommand nc %h %p',
    ]);
    const transport = transportFor(sshd, options);
    try {
      const error = await rejection(transport.exec(request({ name: 'proxied' }, noop)));
      expect(error.code).toBe('UNSUPPORTED_FEATURE');
      expect(error.details).toMatchObject({ keyword: 'ProxyCommand', file: config, line: 4 });
      expect(silent.accepted()).toBe(0);
    } finally {
      await transport.close();
      await silent.close();
    }
  });
});
