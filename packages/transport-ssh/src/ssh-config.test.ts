import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  expandIdentityPath,
  localUserName,
  ProxyJumpSyntaxError,
  parseProxyJump,
  parseSshConfig,
  resolveRoute,
} from './ssh-config.js';

const config = parseSshConfig(`
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
`);

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
