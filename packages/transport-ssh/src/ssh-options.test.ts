import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_MAX_SESSIONS_PER_CONNECTION,
  DEFAULT_PASSPHRASE_ENV,
  DEFAULT_REMOTE_CACHE_DIR,
  DEFAULT_REMOTE_PLUGIN_DIR,
  DEFAULT_WATCHDOG_GRACE_S,
  defaultRuneKnownHostsFile,
  resolveSshTransportOptions,
} from './ssh-options.js';

describe('defaultRuneKnownHostsFile', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("lives in RUNE's state dir, as core computes it", () => {
    vi.stubEnv('XDG_STATE_HOME', '/var/tmp/state');
    expect(defaultRuneKnownHostsFile()).toBe('/var/tmp/state/rune/known_hosts');
    vi.stubEnv('XDG_STATE_HOME', '');
    vi.stubEnv('HOME', '/home/someone');
    expect(defaultRuneKnownHostsFile()).toBe('/home/someone/.local/state/rune/known_hosts');
  });
});

describe('resolveSshTransportOptions', () => {
  it('fills every library default once and leaves ~/.ssh/config decisions unset', () => {
    const resolved = resolveSshTransportOptions({ env: {} });
    expect(resolved).toMatchObject({
      closeGraceMs: DEFAULT_CLOSE_GRACE_MS,
      watchdogGraceSeconds: DEFAULT_WATCHDOG_GRACE_S,
      maxSessionsPerConnection: DEFAULT_MAX_SESSIONS_PER_CONNECTION,
      remoteCacheDir: DEFAULT_REMOTE_CACHE_DIR,
      remotePluginDir: DEFAULT_REMOTE_PLUGIN_DIR,
      passphraseEnv: DEFAULT_PASSPHRASE_ENV,
      sshConfigFile: '~/.ssh/config',
    });
    for (const key of ['user', 'port', 'connectTimeoutMs', 'hostKeyChecking'] as const) {
      expect(resolved[key]).toBeUndefined();
    }
  });

  it('refuses bad options with INVALID_CONFIG naming the option', () => {
    for (const [options, text] of [
      [{ maxSessionsPerConnection: 0 }, 'maxSessionsPerConnection'],
      [{ closeGraceMs: -1 }, 'closeGraceMs'],
      [{ remoteCacheDir: '/tmp/../etc' }, 'remoteCacheDir'],
      [{ remotePluginDir: 'relative' }, 'remotePluginDir'],
      [{ hostKeyChecking: 'yes' as never }, 'hostKeyChecking'],
    ] as const) {
      expect(() => resolveSshTransportOptions(options)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining(text) }),
      );
    }
  });
});
