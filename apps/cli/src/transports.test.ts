import { loadConfig } from '@rune/core';
import { describe, expect, it } from 'vitest';
import { sshTransportOptions, ssmTransportOptions } from './transports.js';

describe('transport options from config', () => {
  const loaded = loadConfig({
    env: { MY_PASS: 'pw' },
    home: '/home/op',
    cwd: '/w',
    readFile: (path) =>
      path === '/w/rune.toml'
        ? '[core]\ndefault_user = "ops"\n[ssh]\npassphrase_env = "MY_PASS"\nidentity_files = ["~/.ssh/id_ed25519"]\n[ssm]\nregion = "eu-west-1"\n[remote_plugins]\nbase_dir = "/srv/rune"\n'
        : undefined,
  });

  it('maps [ssh] to camelCase options, with the passphrase from the named variable', () => {
    const options = sshTransportOptions(loaded.config, { MY_PASS: 'pw' });
    expect(options).toMatchObject({
      user: 'ops',
      port: 22,
      identityFiles: ['/home/op/.ssh/id_ed25519'],
      hostKeyChecking: 'strict',
      passphrase: 'pw',
      remoteCacheDir: '~/.cache/rune/plugins',
      remotePluginDir: '/srv/rune',
      maxSessionsPerConnection: 8,
    });
    expect('proxyJump' in options).toBe(false);
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
});
