import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defaultSshConfigContext,
  expandIdentityPath,
  localUserName,
  ProxyJumpSyntaxError,
  parseProxyJump,
  parseSshConfig,
  type RouteInputs,
  readSshConfig,
  resolveRoute,
} from './ssh-config.js';

const config = parseSshConfig(
  `
Host web*
  HostName 10.0.0.%h
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web_key
  ProxyJump bastion

Host bastion
  HostName bastion.example.com
  User jumper
  Port 2200
  IdentityFile %d/.ssh/bastion_%r

Host db01
  hostname 10.0.1.1
  proxyjump alice@j1:2022,j2

Host *
  User fallback
  IdentityFile ~/.ssh/default_key
`,
  { checkPermissions: false },
);

describe('parseSshConfig', () => {
  it('reads HostName, User, Port, IdentityFile (accumulated), ProxyJump; first value wins', () => {
    expect(config.lookup('web01')).toMatchObject({
      hostName: '10.0.0.web01',
      user: 'deploy',
      port: 2222,
      identityFiles: ['~/.ssh/web_key', '~/.ssh/default_key'],
      proxyJump: 'bastion',
    });
    expect(config.lookup('db01')).toMatchObject({
      hostName: '10.0.1.1',
      proxyJump: 'alice@j1:2022,j2',
    });
    expect(config.lookup('other')).toMatchObject({
      user: 'fallback',
      identityFiles: ['~/.ssh/default_key'],
    });
    expect(config.lookup('other').hostName).toBeUndefined();
  });

  it('an empty config gives nothing', () => {
    expect(parseSshConfig('', { checkPermissions: false }).lookup('x')).toEqual({});
  });
});

describe('parseProxyJump', () => {
  it('parses hop lists', () => {
    expect(parseProxyJump('a')).toEqual([{ host: 'a' }]);
    expect(parseProxyJump('u@a:2022, b ,[::1]:22')).toEqual([
      { host: 'a', user: 'u', port: 2022 },
      { host: 'b' },
      { host: '::1', port: 22 },
    ]);
    expect(parseProxyJump('none')).toEqual([]);
    expect(parseProxyJump(undefined)).toEqual([]);
  });

  it('rejects malformed values', () => {
    expect(parseProxyJump('a b')).toBeUndefined();
    expect(parseProxyJump('a:99999')).toBeUndefined();
    expect(parseProxyJump('a;rm -rf /')).toBeUndefined();
    expect(parseProxyJump('ftp://a')).toBeUndefined();
    // OpenSSH accepts ssh:// URIs in ProxyJump.
    expect(parseProxyJump('ssh://u@a:2022')).toEqual([{ host: 'a', user: 'u', port: 2022 }]);
  });
});

describe('resolveRoute precedence: node > RUNE > ~/.ssh/config > defaults', () => {
  it('uses ~/.ssh/config when nothing else is given, including the jump chain', () => {
    const route = resolveRoute({ name: 'web01', node: {}, rune: {}, sshConfig: config });
    expect(route.target).toMatchObject({ host: '10.0.0.web01', port: 2222, user: 'deploy' });
    expect(route.target.identityFiles).toEqual([
      join(homedir(), '.ssh/web_key'),
      join(homedir(), '.ssh/default_key'),
    ]);
    expect(route.jumps).toHaveLength(1);
    expect(route.jumps[0]).toMatchObject({
      name: 'bastion',
      host: 'bastion.example.com',
      port: 2200,
      user: 'jumper',
    });
    expect(route.jumps[0]?.identityFiles[0]).toBe(join(homedir(), '.ssh/bastion_jumper'));
  });

  it('RUNE config beats ~/.ssh/config, node settings beat both', () => {
    const rune = { user: 'rune', port: 22, identityFiles: ['/keys/rune'], proxyJump: 'none' };
    const viaRune = resolveRoute({ name: 'web01', node: {}, rune, sshConfig: config });
    expect(viaRune.target).toMatchObject({ host: '10.0.0.web01', port: 22, user: 'rune' });
    expect(viaRune.target.identityFiles[0]).toBe('/keys/rune');
    expect(viaRune.jumps).toEqual([]);
    const viaNode = resolveRoute({
      name: 'web01',
      node: {
        address: '127.0.0.9',
        port: 2022,
        user: 'ops',
        identityFiles: ['/keys/node'],
        proxyJump: 'x@j:1',
      },
      rune,
      sshConfig: config,
    });
    expect(viaNode.target).toMatchObject({ host: '127.0.0.9', port: 2022, user: 'ops' });
    expect(viaNode.target.identityFiles.slice(0, 2)).toEqual(['/keys/node', '/keys/rune']);
    expect(viaNode.jumps).toMatchObject([{ host: 'j', user: 'x', port: 1 }]);
  });

  it('defaults: port 22, local user, ~/.ssh/id_* keys', () => {
    const route = resolveRoute({ name: 'plain', node: {}, rune: {} });
    expect(route.target).toMatchObject({
      host: 'plain',
      port: 22,
      user: localUserName(),
      identityFilesConfigured: false,
    });
    expect(route.target.identityFiles[0]).toBe(join(homedir(), '.ssh/id_ed25519'));
  });

  it('hop user@/:port win over the hop config, RUNE user applies only as a fallback', () => {
    const route = resolveRoute({
      name: 'db01',
      node: {},
      rune: { user: 'rune' },
      sshConfig: config,
    });
    expect(route.jumps).toMatchObject([
      { name: 'j1', user: 'alice', port: 2022 },
      { name: 'j2', user: 'fallback', port: 22 },
    ]);
    const noConfig = resolveRoute({
      name: 'n',
      node: { proxyJump: 'j' },
      rune: { user: 'rune', port: 2 },
    });
    expect(noConfig.jumps).toMatchObject([{ host: 'j', user: 'rune', port: 22 }]);
  });

  it('throws on a malformed ProxyJump', () => {
    expect(() => resolveRoute({ name: 'n', node: { proxyJump: 'a b' }, rune: {} })).toThrow(
      ProxyJumpSyntaxError,
    );
  });

  it('expands identity tokens', () => {
    expect(expandIdentityPath('~/.ssh/%h_%r_%%', 'h1', 'r1')).toBe(join(homedir(), '.ssh/h1_r1_%'));
  });
});

describe('what RUNE refuses, warns about and rejects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rune-sshcfg-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let count = 0;
  const file = (text: string, mode = 0o600): string => {
    const path = join(dir, `config${count++}`);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };
  const route = async (
    text: string,
    name: string,
    node: RouteInputs['node'] = {},
    rune: RouteInputs['rune'] = {},
  ) => resolveRoute({ name, node, rune, sshConfig: await readSshConfig(file(text)) });
  const refusal = async (promise: Promise<unknown>): Promise<RuneError> => {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(RuneError.is(error), String(error)).toBe(true);
    return error as RuneError;
  };

  it('ProxyCommand for the host: UNSUPPORTED_FEATURE naming keyword, file and line', async () => {
    const error = await refusal(route('Host a\n  User u\n  ProxyCommand nc %h %p\n', 'a'));
    expect(error.code).toBe('UNSUPPORTED_FEATURE');
    expect(error.details).toMatchObject({ keyword: 'ProxyCommand', line: 3 });
    expect(String(error.details?.file)).toMatch(/config\d+$/);
    expect(error.message).toMatch(/ProxyCommand .*line 3.* applies to a/);
  });

  it('ProxyCommand is not refused when it does not apply, is none, or a ProxyJump came first', async () => {
    await expect(route('Host other\n  ProxyCommand nc %h %p\n', 'a')).resolves.toBeDefined();
    await expect(route('Host a\n  ProxyCommand none\n', 'a')).resolves.toBeDefined();
    await expect(
      route('Host a\n  ProxyJump j\n  ProxyCommand nc %h %p\n', 'a'),
    ).resolves.toMatchObject({ jumps: [{ name: 'j' }] });
    // RUNE's proxy_jump is set first (like ssh -J), so the config's ProxyCommand is ignored.
    await expect(
      route('Host a\n  ProxyCommand nc %h %p\n', 'a', {}, { proxyJump: 'none' }),
    ).resolves.toMatchObject({ jumps: [] });
  });

  it('CertificateFile, CanonicalizeHostname, KnownHostsCommand, RevokedHostKeys are refused', async () => {
    for (const [line, keyword] of [
      ['CertificateFile ~/.ssh/id_ed25519-cert.pub', 'CertificateFile'],
      ['CanonicalizeHostname yes', 'CanonicalizeHostname'],
      ['KnownHostsCommand /bin/true %H', 'KnownHostsCommand'],
      ['RevokedHostKeys ~/.ssh/revoked', 'RevokedHostKeys'],
    ]) {
      const error = await refusal(route(`Host a\n  ${line}\n`, 'a'));
      expect(error.code, line).toBe('UNSUPPORTED_FEATURE');
      expect(error.details?.keyword).toBe(keyword);
    }
    await expect(route('Host a\n  CanonicalizeHostname no\n', 'a')).resolves.toBeDefined();
  });

  it('Match exec is never run: refused only when it could change a value RUNE uses', async () => {
    const marker = join(dir, 'exec-ran');
    const exec = `Match exec "touch ${marker}"`;
    const error = await refusal(route(`${exec}\n  User maybe\n`, 'a'));
    expect(error.code).toBe('UNSUPPORTED_FEATURE');
    expect(error.details).toMatchObject({ keyword: 'Match exec', line: 1 });
    // Only keywords RUNE ignores in the block, an earlier failing criterion, or a value
    // already obtained: nothing to decide.
    await expect(route(`${exec}\n  ForwardAgent yes\n`, 'a')).resolves.toBeDefined();
    await expect(
      route(`Match host other exec "touch ${marker}"\n  User maybe\n`, 'a'),
    ).resolves.toBeDefined();
    await expect(
      route(`Host a\n  User first\n${exec}\n  User maybe\n`, 'a'),
    ).resolves.toMatchObject({ target: { user: 'first' } });
    // An Include inside the undecidable block is undecidable too.
    const included = file('Port 2222\n');
    await expect(refusal(route(`${exec}\n  Include ${included}\n`, 'a'))).resolves.toMatchObject({
      code: 'UNSUPPORTED_FEATURE',
    });
    expect(existsSync(marker)).toBe(false);
  });

  it('a jump host with its own ProxyJump is refused (RUNE does not chain them)', async () => {
    const error = await refusal(route('Host a\n  ProxyJump b\nHost b\n  ProxyJump c\n', 'a'));
    expect(error.code).toBe('UNSUPPORTED_FEATURE');
  });

  it('warns about keywords it does not apply and unknown keywords, unless IgnoreUnknown', async () => {
    const resolved = await route(
      'Host a\n  Ciphers aes128-ctr\n  UseKeychain yes\n  ForwardAgent yes\n',
      'a',
    );
    expect(resolved.warnings).toEqual([
      expect.stringMatching(/line 3: unknown ssh_config keyword "UseKeychain"/),
      expect.stringMatching(/line 2: Ciphers is not applied by RUNE/),
    ]);
    const silenced = await route('IgnoreUnknown UseKeychain\nHost a\n  UseKeychain yes\n', 'a');
    expect(silenced.warnings).toEqual([]);
  });

  it('INVALID_CONFIG for bad values (with file and line) and group-writable files', async () => {
    for (const text of [
      'Host a\n  Port abc\n',
      'Host a\n  StrictHostKeyChecking maybe\n',
      'Host a\n  ConnectTimeout soon\n',
      'Host a\n  UserKnownHostsFile none /x\n',
      'Host a\n  User "unterminated\n',
      'Match bogus x\n',
      'Host a\n  User\n',
    ]) {
      const error = await refusal(route(text, 'a'));
      expect(error.code, text).toBe('INVALID_CONFIG');
      expect(error.details?.line, text).toBeGreaterThan(0);
    }
    const error = await refusal(readSshConfig(file('Host a\n  User u\n', 0o664)));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toMatch(/bad owner or permissions/);
    const writable = file('User u\n', 0o666);
    const included = await refusal(readSshConfig(file(`Include ${writable}\n`)));
    expect(included.message).toMatch(/bad owner or permissions/);
  });

  it('an unset environment variable is INVALID_CONFIG naming the keyword', async () => {
    const unset = ['$', '{RUNE_SURELY_UNSET_VARIABLE}'].join('');
    const error = await refusal(route(`Host a\n  UserKnownHostsFile ${unset}/kh\n`, 'a'));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toMatch(/UserKnownHostsFile/);
  });
});

describe('resolved endpoint settings and their precedence', () => {
  const sshConfig = parseSshConfig(
    [
      'Host a b',
      '  StrictHostKeyChecking accept-new',
      '  ConnectTimeout 3',
      '  ServerAliveInterval 20',
      '  ServerAliveCountMax 4',
      '  IdentitiesOnly yes',
      '  IdentityAgent /run/agent.sock',
      '  HostKeyAlias Alias-A',
      '  UserKnownHostsFile /kh/%h',
      '  ProxyJump b',
      'Host b',
      '  StrictHostKeyChecking no',
      '',
    ].join('\n'),
    { checkPermissions: false },
  );
  const context = { ...defaultSshConfigContext(), env: { SSH_AUTH_SOCK: '/env/agent' } };

  it('~/.ssh/config values when RUNE sets nothing', () => {
    const route = resolveRoute({ name: 'a', node: {}, rune: {}, sshConfig, context });
    expect(route.target).toMatchObject({
      strictHostKeyChecking: 'accept-new',
      strictHostKeyCheckingSource: 'ssh-config',
      connectTimeoutMs: 3000,
      serverAliveIntervalSeconds: 20,
      serverAliveCountMax: 4,
      identitiesOnly: true,
      identityAgent: '/run/agent.sock',
      hostKeyAlias: 'alias-a',
      userKnownHostsFiles: ['/kh/a'],
      globalKnownHostsFiles: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    });
    // The jump host gets its own block's values first.
    expect(route.jumps[0]).toMatchObject({ name: 'b', strictHostKeyChecking: 'accept-new' });
  });

  it('RUNE settings beat ~/.ssh/config; per-node host key checking beats both, for the node only', () => {
    const route = resolveRoute({
      name: 'a',
      node: { hostKeyChecking: 'off' },
      rune: {
        hostKeyChecking: 'strict',
        connectTimeoutMs: 1234,
        keepaliveIntervalMs: 5000,
        knownHostsFiles: ['/rune/kh'],
        useAgent: false,
      },
      sshConfig,
      context,
    });
    expect(route.target).toMatchObject({
      strictHostKeyChecking: 'off',
      strictHostKeyCheckingSource: 'node',
      connectTimeoutMs: 1234,
      serverAliveIntervalSeconds: 5,
      userKnownHostsFiles: ['/rune/kh'],
    });
    expect(route.target.identityAgent).toBeUndefined();
    expect(route.jumps[0]).toMatchObject({
      strictHostKeyChecking: 'strict',
      strictHostKeyCheckingSource: 'rune',
    });
  });

  it('defaults: strict, 10 s, 5 s keepalive x3, SSH_AUTH_SOCK, OpenSSH known_hosts files', () => {
    const route = resolveRoute({ name: 'zzz', node: {}, rune: {}, sshConfig, context });
    expect(route.target).toMatchObject({
      strictHostKeyChecking: 'strict',
      strictHostKeyCheckingSource: 'default',
      connectTimeoutMs: 10_000,
      serverAliveIntervalSeconds: 5,
      serverAliveCountMax: 3,
      identitiesOnly: false,
      identityAgent: '/env/agent',
      userKnownHostsFiles: [
        join(context.homeDir, '.ssh/known_hosts'),
        join(context.homeDir, '.ssh/known_hosts2'),
      ],
    });
    expect(route.target.hostKeyAlias).toBeUndefined();
  });
});
