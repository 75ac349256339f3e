import { loadConfig } from '@rune/core';
import { describe, expect, it } from 'vitest';
import {
  remoteTransportProviders,
  sshTransportOptions,
  ssmTransportOptions,
} from './transports.js';

const load = (toml: string, env: Record<string, string> = {}) =>
  loadConfig({
    env,
    home: '/home/op',
    cwd: '/w',
    readFile: (path) => (path === '/w/rune.toml' ? toml : undefined),
  });

describe('transport options from config', () => {
  const loaded = load(
    '[core]\ndefault_user = "ops"\n[ssh]\npassphrase_env = "MY_PASS"\nidentity_files = ["~/.ssh/id_ed25519"]\n[ssm]\nregion = "eu-west-1"\n[remote_plugins]\nbase_dir = "/srv/rune"\n',
  );

  it('maps [ssh] to camelCase options, with the passphrase from the named variable', () => {
    const options = sshTransportOptions(loaded, { MY_PASS: 'pw' });
    expect(options).toMatchObject({
      user: 'ops',
      identityFiles: ['/home/op/.ssh/id_ed25519'],
      passphrase: 'pw',
      remoteCacheDir: '~/.cache/rune/plugins',
      remotePluginDir: '/srv/rune',
      maxSessionsPerConnection: 8,
    });
    expect('proxyJump' in options).toBe(false);
  });

  it('leaves port and user to ~/.ssh/config unless the operator set them', () => {
    const defaults = load('');
    for (const input of [defaults, defaults.config]) {
      const options = sshTransportOptions(input, {});
      expect('port' in options).toBe(false);
      expect('user' in options).toBe(false);
      // An empty known_hosts_files means the OpenSSH default files: let the transport decide.
      expect('knownHostsFiles' in options).toBe(false);
    }
    expect(sshTransportOptions(load('[ssh]\nport = 2222\nuser = "deploy"\n'), {})).toMatchObject({
      port: 2222,
      user: 'deploy',
    });
    // Set explicitly to the default value: still explicit, it overrides ~/.ssh/config.
    expect(sshTransportOptions(load('', { RUNE_SSH_PORT: '22' }), {}).port).toBe(22);
    expect(sshTransportOptions(load('[ssh]\nport = 22\n'), {}).port).toBe(22);
    expect(
      sshTransportOptions(load('[ssh]\nknown_hosts_files = ["/etc/rune/known_hosts"]\n'), {})
        .knownHostsFiles,
    ).toEqual(['/etc/rune/known_hosts']);
  });

  it('leaves host key checking, connect timeout and keepalive to ~/.ssh/config unless set', () => {
    const defaults = load('');
    for (const input of [defaults, defaults.config]) {
      const options = sshTransportOptions(input, {});
      for (const key of ['hostKeyChecking', 'connectTimeoutMs', 'keepaliveIntervalMs']) {
        expect(key in options, key).toBe(false);
      }
    }
    expect(
      sshTransportOptions(
        load(
          '[ssh]\nhost_key_checking = "strict"\nconnect_timeout_ms = 10000\nkeepalive_interval_ms = 5000\n',
        ),
        {},
      ),
    ).toMatchObject({
      hostKeyChecking: 'strict',
      connectTimeoutMs: 10_000,
      keepaliveIntervalMs: 5000,
    });
    expect(
      sshTransportOptions(load('', { RUNE_SSH_HOST_KEY_CHECKING: 'accept-new' }), {})
        .hostKeyChecking,
    ).toBe('accept-new');
  });

  it('maps [ssm]', () => {
    expect(ssmTransportOptions(loaded.config)).toMatchObject({
      region: 'eu-west-1',
      pollIntervalMs: 1000,
      maxAttempts: 10,
      remoteCacheDir: '/var/lib/rune/plugins',
      remotePluginDir: '/srv/rune',
    });
  });

  it('names the config file to edit for SSM settings: the last file read, else the user file', () => {
    expect(ssmTransportOptions(loaded)).toMatchObject({ configFile: '/w/rune.toml' });
    const none = loadConfig({ env: {}, home: '/home/op', cwd: '/w', readFile: () => undefined });
    expect(ssmTransportOptions(none)).toMatchObject({
      configFile: '/home/op/.config/rune/config.toml',
    });
  });

  it('creates the SSH transport with a TTY passphrase prompt', async () => {
    const providers = remoteTransportProviders(load(''), {});
    const ssh = providers.ssh;
    expect(typeof ssh).toBe('function');
    const transport = await (ssh as () => Promise<{ name: string; close(): Promise<void> }>)();
    expect(transport.name).toBe('ssh');
    await transport.close();
  });
});
