import { loadConfig, transportConfigContext } from '@rune/core';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_SESSIONS_PER_CONNECTION,
  DEFAULT_PASSPHRASE_ENV,
  DEFAULT_REMOTE_CACHE_DIR,
} from '@rune/transport-ssh';
import { sshConfigDefaults, sshTransportOptions } from '@rune/transport-ssh/config';
import {
  DEFAULT_SSM_MAX_ATTEMPTS,
  DEFAULT_SSM_POLL_INTERVAL_MS,
  DEFAULT_SSM_REMOTE_CACHE_DIR,
} from '@rune/transport-ssm';
import { ssmConfigDefaults, ssmTransportOptions } from '@rune/transport-ssm/config';
import { describe, expect, it } from 'vitest';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from './transports.js';

const load = (toml: string, env: Record<string, string> = {}) =>
  loadConfig({
    env,
    home: '/home/op',
    cwd: '/w',
    readFile: (path) => (path === '/w/rune.toml' ? toml : undefined),
    transportModules: CLI_TRANSPORT_MODULES,
    configModules: CLI_CONFIG_MODULES,
  });

/** The SSH options the CLI's config gives (as `fromConfig` builds them). */
const ssh = (toml: string, env: Record<string, string> = {}, processEnv = env) => {
  const loaded = load(toml, env);
  return sshTransportOptions(
    loaded.transportSections.ssh,
    transportConfigContext(loaded, { env: processEnv }),
  );
};
const ssm = (toml: string) => {
  const loaded = load(toml);
  return ssmTransportOptions(loaded.transportSections.ssm, transportConfigContext(loaded));
};

describe('transport options from config', () => {
  const toml =
    '[core]\ndefault_user = "ops"\n[ssh]\npassphrase_env = "MY_PASS"\nidentity_files = ["~/.ssh/id_ed25519"]\n[ssm]\nregion = "eu-west-1"\n[remote_plugins]\nbase_dir = "/srv/rune"\n';

  it('maps [ssh] to camelCase options, with the passphrase from the named variable', () => {
    const options = ssh(toml, {}, { MY_PASS: 'pw' });
    // The transport reads the passphrase from `env`, in the variable `passphraseEnv` names.
    expect(options.env?.[options.passphraseEnv ?? '']).toBe('pw');
    expect(options).toMatchObject({
      user: 'ops',
      identityFiles: ['/home/op/.ssh/id_ed25519'],
      passphraseEnv: 'MY_PASS',
      remotePluginDir: '/srv/rune',
      runeKnownHostsFile: '/home/op/.local/state/rune/known_hosts',
    });
    expect('proxyJump' in options).toBe(false);
    // Unset keys are the transport's defaults, applied once, by the transport.
    expect('remoteCacheDir' in options).toBe(false);
    expect('maxSessionsPerConnection' in options).toBe(false);
  });

  it('leaves port and user to ~/.ssh/config unless the operator set them', () => {
    const options = ssh('');
    expect('port' in options).toBe(false);
    expect('user' in options).toBe(false);
    // An empty known_hosts_files means the OpenSSH default files: let the transport decide.
    expect('knownHostsFiles' in options).toBe(false);
    expect(ssh('[ssh]\nport = 2222\nuser = "deploy"\n')).toMatchObject({
      port: 2222,
      user: 'deploy',
    });
    // Set explicitly to the default value: still explicit, it overrides ~/.ssh/config.
    expect(ssh('', { RUNE_SSH_PORT: '22' }).port).toBe(22);
    expect(ssh('[ssh]\nport = 22\n').port).toBe(22);
    expect(ssh('[ssh]\nknown_hosts_files = ["/etc/rune/known_hosts"]\n').knownHostsFiles).toEqual([
      '/etc/rune/known_hosts',
    ]);
  });

  it('leaves host key checking, connect timeout and keepalive to ~/.ssh/config unless set', () => {
    const options = ssh('');
    for (const key of ['hostKeyChecking', 'connectTimeoutMs', 'keepaliveIntervalMs']) {
      expect(key in options, key).toBe(false);
    }
    expect(
      ssh(
        '[ssh]\nhost_key_checking = "strict"\nconnect_timeout_ms = 10000\nkeepalive_interval_ms = 5000\n',
      ),
    ).toMatchObject({
      hostKeyChecking: 'strict',
      connectTimeoutMs: 10_000,
      keepaliveIntervalMs: 5000,
    });
    expect(ssh('', { RUNE_SSH_HOST_KEY_CHECKING: 'accept-new' }).hostKeyChecking).toBe(
      'accept-new',
    );
  });

  it('maps [ssm], with the instance map, and leaves unset keys to the transport', () => {
    expect(ssm(`${toml}[ssm.instances]\nweb1 = "i-0123456789abcdef0"\n`)).toEqual({
      region: 'eu-west-1',
      configFile: '/w/rune.toml',
      instances: { web1: 'i-0123456789abcdef0' },
    });
  });

  it('names the config file to edit for SSM settings: the last file read, else the user file', () => {
    expect(ssm(toml)).toMatchObject({ configFile: '/w/rune.toml' });
    const none = loadConfig({
      env: {},
      home: '/home/op',
      cwd: '/w',
      readFile: () => undefined,
      transportModules: CLI_TRANSPORT_MODULES,
      configModules: CLI_CONFIG_MODULES,
    });
    expect(ssmTransportOptions(undefined, transportConfigContext(none))).toMatchObject({
      configFile: '/home/op/.config/rune/config.toml',
    });
  });

  it('rejects an unknown [ssh] or [ssm] key naming the file and key', () => {
    for (const [text, key] of [
      ['[ssh]\nprot = 22\n', 'ssh.prot'],
      ['[ssm]\nregoin = "x"\n', 'ssm.regoin'],
      ['[ssm.instances]\nweb1 = "web1"\n', 'ssm.instances.web1'],
    ] as const) {
      let message = '';
      try {
        load(text);
      } catch (error) {
        message = (error as Error).message;
        expect((error as { code?: string }).code).toBe('INVALID_CONFIG');
      }
      expect(message).toContain('/w/rune.toml');
      expect(message).toContain(key);
    }
  });

  it('documents the defaults each transport applies (drift check against its constants)', () => {
    expect(sshConfigDefaults).toMatchObject({
      port: 22,
      connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
      keepalive_interval_ms: DEFAULT_KEEPALIVE_INTERVAL_MS,
      keepalive_count_max: DEFAULT_KEEPALIVE_COUNT_MAX,
      max_sessions_per_connection: DEFAULT_MAX_SESSIONS_PER_CONNECTION,
      passphrase_env: DEFAULT_PASSPHRASE_ENV,
      remote_cache_dir: DEFAULT_REMOTE_CACHE_DIR,
    });
    expect(ssmConfigDefaults).toMatchObject({
      poll_interval_ms: DEFAULT_SSM_POLL_INTERVAL_MS,
      max_attempts: DEFAULT_SSM_MAX_ATTEMPTS,
      remote_cache_dir: DEFAULT_SSM_REMOTE_CACHE_DIR,
    });
  });

  it('creates the SSH transport from its module, with a TTY passphrase prompt', async () => {
    const loaded = load('');
    const module = CLI_TRANSPORT_MODULES.find((candidate) => candidate.name === 'ssh');
    const transport = await module?.fromConfig(
      loaded.transportSections.ssh,
      transportConfigContext(loaded, { interactive: true }),
    );
    expect(transport?.name).toBe('ssh');
    await transport?.close();
  });
});
