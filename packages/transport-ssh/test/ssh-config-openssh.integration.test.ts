/**
 * RUNE's ~/.ssh/config resolution against the real OpenSSH client: for each config and host,
 * `ssh -G -F <file> <host>` (which resolves without connecting) and resolveRoute() must agree on
 * every keyword RUNE honours. `ssh` expands `~` and `%d` with the passwd home directory and Include
 * globs with $HOME, so the context below uses the passwd home, and the Include cases run ssh with
 * HOME set to the temp dir (and use no `~` elsewhere).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  readSshConfig,
  resolveRoute,
  SSH_CONFIG_KEYWORDS,
  type SshConfigContext,
  type SshConfigHost,
} from '../src/ssh-config.js';

const passwd = userInfo();
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rune-sshcfg-'));
  dirs.push(dir);
  return dir;
}

function write(path: string, text: string): string {
  writeFileSync(path, text);
  chmodSync(path, 0o600);
  return path;
}

const env = { ...process.env, RUNE_TEST_DIR: '/srv/from-env' };

function contextFor(homeDir: string): SshConfigContext {
  return {
    localUser: passwd.username,
    homeDir,
    uid: process.getuid?.() ?? 0,
    localHostName: hostname(),
    env,
  };
}

type Resolution = Record<string, string>;

/** `ssh -G` output for the keywords RUNE honours, normalized to RUNE's vocabulary. */
function sshG(file: string, host: string, home = passwd.homedir): Resolution {
  const output = execFileSync('ssh', ['-G', '-F', file, host], {
    encoding: 'utf8',
    env: { ...env, HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = new Map<string, string[]>();
  for (const line of output.split('\n')) {
    const space = line.indexOf(' ');
    if (space === -1) continue;
    const key = line.slice(0, space);
    lines.set(key, [...(lines.get(key) ?? []), line.slice(space + 1)]);
  }
  const one = (key: string): string | undefined => lines.get(key)?.[0];
  const strict = one('stricthostkeychecking');
  const tilde = (path: string): string =>
    path === '~'
      ? passwd.homedir
      : path.startsWith('~/')
        ? join(passwd.homedir, path.slice(2))
        : path;
  const timeout = one('connecttimeout');
  const resolution: Resolution = {
    hostname: one('hostname') ?? '',
    user: one('user') ?? '',
    port: one('port') ?? '',
    stricthostkeychecking:
      strict === 'false' ? 'off' : strict === 'accept-new' ? 'accept-new' : 'strict',
    connecttimeout: timeout === 'none' || timeout === '0' ? '10000' : `${Number(timeout) * 1000}`,
    serveraliveinterval: one('serveraliveinterval') ?? '',
    serveralivecountmax: one('serveralivecountmax') ?? '',
    identitiesonly: one('identitiesonly') ?? '',
    userknownhostsfile:
      one('userknownhostsfile') === 'none' ? '' : (one('userknownhostsfile') ?? ''),
    globalknownhostsfile:
      one('globalknownhostsfile') === 'none'
        ? ''
        : (one('globalknownhostsfile') ?? '').split(' ').map(tilde).join(' '),
    identityagent: one('identityagent') ?? '(unset)',
    hostkeyalias: one('hostkeyalias') ?? '(unset)',
    proxyjump: one('proxyjump') ?? '(unset)',
  };
  return resolution;
}

async function rune(file: string, host: string, homeDir = passwd.homedir): Promise<Resolution> {
  const context = contextFor(homeDir);
  const sshConfig = await readSshConfig(file, { context });
  const raw: SshConfigHost = sshConfig.lookup(host);
  const route = resolveRoute({
    name: host,
    node: {},
    rune: {},
    sshConfig,
    context: { ...context, env: { ...env, SSH_AUTH_SOCK: 'SSH_AUTH_SOCK' } },
  });
  const target = route.target;
  const agent = raw.identityAgent;
  return {
    hostname: target.host,
    user: target.user,
    port: String(target.port),
    stricthostkeychecking: target.strictHostKeyChecking,
    connecttimeout: String(target.connectTimeoutMs),
    // ssh -G prints OpenSSH's defaults (0 and 3); RUNE's own keepalive default is 15 s.
    serveraliveinterval: String(raw.serverAliveIntervalSeconds ?? 0),
    serveralivecountmax: String(target.serverAliveCountMax),
    identitiesonly: target.identitiesOnly ? 'yes' : 'no',
    userknownhostsfile: target.userKnownHostsFiles.join(' '),
    globalknownhostsfile: target.globalKnownHostsFiles.join(' '),
    // ssh -G prints the special forms as written and expands paths.
    identityagent:
      agent === undefined
        ? '(unset)'
        : agent === 'none' || agent === 'SSH_AUTH_SOCK' || /^\$[A-Za-z0-9_]+$/.test(agent)
          ? agent
          : (target.identityAgent ?? ''),
    hostkeyalias: target.hostKeyAlias ?? '(unset)',
    // ssh -G omits `proxyjump none`.
    proxyjump: raw.proxyJump === undefined || raw.proxyJump === 'none' ? '(unset)' : raw.proxyJump,
  };
}

/** ssh -G's raw IdentityFile list (it prints them unexpanded) against RUNE's lookup. */
function sshIdentityFiles(file: string, host: string, home = passwd.homedir): string[] {
  const output = execFileSync('ssh', ['-G', '-F', file, host], {
    encoding: 'utf8',
    env: { ...env, HOME: home },
  });
  return output
    .split('\n')
    .filter((line) => line.startsWith('identityfile '))
    .map((line) => line.slice('identityfile '.length));
}

async function expectSameAsSsh(file: string, hosts: string[], home?: string): Promise<void> {
  for (const host of hosts) {
    const expected = sshG(file, host, home);
    const actual = await rune(file, host, home);
    expect({ host, ...actual }).toEqual({ host, ...expected });
  }
}

describe('resolution equals `ssh -G`', () => {
  it('Host patterns: lists, *, ?, ! negation, case-sensitive names, first value wins', async () => {
    const dir = tempDir();
    const file = write(
      join(dir, 'config'),
      [
        'Host web* !web9',
        '  HostName %h.Example.COM',
        '  User deploy',
        '  HostKeyAlias Alias-One',
        'Host web9 db?',
        '  User other',
        '  Port 2201',
        '  HostName 10.0.0.9',
        'Host WEB1',
        '  User upper',
        'Host *',
        '  User fallback',
        '  Port 2200',
        '  User ignored-second-value',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['web1', 'web9', 'db1', 'dbx1', 'WEB1', 'other']);
  });

  it('Match host/originalhost/user/localuser/all with negation and pattern lists', async () => {
    const dir = tempDir();
    const me = passwd.username;
    const file = write(
      join(dir, 'config'),
      [
        'Match originalhost alias1,alias2',
        '  HostName 10.1.2.3',
        `Match host 10.1.2.* user ${me}`,
        '  Port 2022',
        'Match user nobody-here',
        '  Port 1',
        `Match localuser ${me}`,
        '  ServerAliveInterval 1m30s',
        'Match !host *.internal,!10.*',
        '  ConnectTimeout 7',
        'Match host=*.internal',
        '  StrictHostKeyChecking accept-new',
        'Match all',
        '  ServerAliveCountMax 5',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['alias1', 'alias2', 'db.internal', 'plain']);
  });

  it('Match final and canonical apply in the second pass, where Host sees the expanded HostName', async () => {
    const dir = tempDir();
    const file = write(
      join(dir, 'config'),
      [
        'Host short',
        '  HostName Short.Example.com',
        'Match final host *.example.com',
        '  User finaluser',
        'Host *.example.com',
        '  Port 2345',
        'Match canonical',
        '  IdentitiesOnly yes',
        'Match !final',
        '  HostKeyAlias first-pass-only',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['short', 'other.example.com', 'unrelated']);
    const noFinal = write(join(dir, 'config2'), 'Match canonical\n  User never\n');
    await expectSameAsSsh(noFinal, ['short']);
  });

  it('Include: globs in sorted order, relative to ~/.ssh, nested, inside Host and Match blocks', async () => {
    const home = tempDir();
    const ssh = join(home, '.ssh');
    mkdirSync(join(ssh, 'conf.d'), { recursive: true });
    mkdirSync(join(ssh, 'sub'), { recursive: true });
    write(join(ssh, 'conf.d', '20-b.conf'), 'Host inc*\n  Port 2002\n  User from-b\n');
    write(join(ssh, 'conf.d', '10-a.conf'), 'Host inc*\n  Port 2001\nInclude sub/*.conf\n');
    write(join(ssh, 'conf.d', 'ignored.txt'), 'Host *\n  Port 9999\n');
    write(join(ssh, 'sub', 'nested.conf'), 'Host inc2\n  HostKeyAlias nested-alias\n');
    const blockOnly = write(
      join(home, 'block-only.conf'),
      'User from-block\nHost other\n  ConnectTimeout 3\n',
    );
    const never = write(join(home, 'never.conf'), 'Host *\n  HostName never.example.com\n');
    const matchInclude = write(join(home, 'match.conf'), 'IdentitiesOnly yes\n');
    const file = write(
      join(ssh, 'config'),
      [
        'Include conf.d/*.conf',
        'Host inc1',
        `  Include ${blockOnly}`,
        // The included file's `Host other` must not switch this block off.
        '  StrictHostKeyChecking no',
        'Host nomatch',
        `  Include ${never}`,
        'Match originalhost inc3',
        `  Include ${matchInclude}`,
        'Include missing-*.conf',
        'Host *',
        '  User main',
        // ssh's `~` is the passwd home even with HOME set, RUNE's is $HOME: name the file.
        '  UserKnownHostsFile /kh',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['inc1', 'inc2', 'inc3', 'other', 'x'], home);
  });

  it('tokens and environment variables in UserKnownHostsFile and IdentityAgent, ~ expansion, none', async () => {
    const dir = tempDir();
    const file = write(
      join(dir, 'config'),
      [
        'Host tok*',
        '  HostName %h.example.net',
        '  User ruser',
        '  Port 2200',
        '  HostKeyAlias KeyAlias',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: an ssh_config ${VAR}, not a template
        '  UserKnownHostsFile ~/kh/%h_%p_%r %d/kh/%u_%n_%k_%% /x/%C_%l_%L_%i ${RUNE_TEST_DIR}/kh',
        '  IdentityAgent ~/agent.%h.%p',
        '  GlobalKnownHostsFile ~/global /etc/extra',
        'Host agent-env',
        '  IdentityAgent $SSH_AUTH_SOCK',
        'Host agent-none',
        '  IdentityAgent none',
        '  UserKnownHostsFile none',
        '  GlobalKnownHostsFile none',
        '  ProxyJump none',
        'Host jump*',
        '  ProxyJump u@j1:2022,j2',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['tok1', 'agent-env', 'agent-none', 'jumpy']);
  });

  it('StrictHostKeyChecking values map to strict / accept-new / off', async () => {
    const dir = tempDir();
    const values = ['yes', 'no', 'ask', 'accept-new', 'off', 'true', 'false', 'Yes'];
    const file = write(
      join(dir, 'config'),
      values.map((value, index) => `Host s${index}\n  StrictHostKeyChecking ${value}\n`).join(''),
    );
    await expectSameAsSsh(file, values.map((_value, index) => `s${index}`).concat('unset'));
  });

  it('ConnectTimeout, ServerAliveInterval/CountMax, IdentitiesOnly, `none` keeps looking', async () => {
    const dir = tempDir();
    const file = write(
      join(dir, 'config'),
      [
        'Host t1',
        '  ConnectTimeout 90',
        '  ServerAliveInterval 2m',
        '  ServerAliveCountMax 7',
        '  IdentitiesOnly yes',
        'Host t2',
        '  ConnectTimeout none',
        '  ServerAliveInterval none',
        'Host t*',
        '  ConnectTimeout 5',
        '  ServerAliveInterval 1h1m1s',
        '  IdentitiesOnly no',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['t1', 't2', 't3']);
  });

  it('keyword=value, quotes and comments', async () => {
    const dir = tempDir();
    const file = write(
      join(dir, 'config'),
      [
        '# a comment',
        'Host="quoted"',
        '  User = eq-user',
        '  HostName\t"10.9.8.7"   # trailing comment',
        '  UserKnownHostsFile "/path with space/kh" /b\\ c',
        '',
      ].join('\n'),
    );
    await expectSameAsSsh(file, ['quoted']);
  });

  it('IdentityFile accumulates across blocks in order, duplicates once, `none` disables defaults', async () => {
    const dir = tempDir();
    const file = write(
      join(dir, 'config'),
      [
        'Host k1',
        '  IdentityFile ~/.ssh/k1_%h_%r',
        '  IdentityFile /keys/shared',
        'Host k*',
        '  IdentityFile /keys/shared',
        '  IdentityFile /keys/last',
        'Host none-keys',
        '  IdentityFile none',
        '',
      ].join('\n'),
    );
    const context = contextFor(passwd.homedir);
    const sshConfig = await readSshConfig(file, { context });
    for (const host of ['k1', 'k2', 'none-keys']) {
      expect(sshConfig.lookup(host).identityFiles, host).toEqual(sshIdentityFiles(file, host));
    }
    // The same expansion as UserKnownHostsFile (compared above), applied to the identity files.
    const route = resolveRoute({ name: 'k1', node: {}, rune: {}, sshConfig, context });
    expect(route.target.identityFiles).toEqual([
      join(passwd.homedir, '.ssh', `k1_k1_${passwd.username}`),
      '/keys/shared',
      '/keys/last',
    ]);
    const none = resolveRoute({ name: 'none-keys', node: {}, rune: {}, sshConfig, context });
    expect(none.target).toMatchObject({ identityFiles: [], identityFilesConfigured: true });
  });
});

describe('docs/ssh.md', () => {
  const docs = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'ssh.md'), 'utf8');

  it('every ```sshconfig example resolves as `ssh -G` resolves it', async () => {
    const examples = [...docs.matchAll(/```sshconfig\n([\s\S]*?)```/g)].map(
      (match) => match[1] as string,
    );
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) {
      const hosts = /^# hosts: (.+)$/m.exec(example)?.[1]?.split(' ') ?? [];
      expect(hosts.length, example).toBeGreaterThan(0);
      const file = write(join(tempDir(), 'config'), example);
      await expectSameAsSsh(file, hosts);
    }
  });

  it('the keyword table says honoured / refused / warned exactly as the code does', () => {
    // The header may be padded by the formatter: find it by its cells, not its spacing.
    const table = docs.slice(docs.search(/^\| keyword +\| RUNE +\|$/m));
    const rows = table
      .slice(0, table.indexOf('\n\n'))
      .split('\n')
      .filter((line) => line.startsWith('| `'));
    for (const [keyword, handling] of Object.entries(SSH_CONFIG_KEYWORDS)) {
      if (handling === 'ignored') continue;
      const row = rows.find((line) => {
        const cell = line.split('|')[1] ?? '';
        return [...cell.matchAll(/`([A-Za-z0-9]+)(?: [^`]*)?`/g)].some(
          (match) => (match[1] as string).toLowerCase() === keyword,
        );
      });
      expect(row, keyword).toBeDefined();
      const word =
        handling === 'honoured' ? 'honoured' : handling === 'refused' ? 'refused' : 'warned';
      expect(row?.split('|')[2], keyword).toContain(word);
    }
  });
});
