import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkHostKey,
  formatKnownHostsLine,
  hashKnownHostName,
  hostFieldMatches,
  KnownHostsStore,
  keyTypeOfBlob,
  knownHostName,
  matchWildcard,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  sshFingerprint,
} from './known-hosts.js';

function sshString(value: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(value.byteLength);
  return Buffer.concat([length, value]);
}

function fakeKey(type = 'ssh-ed25519'): Buffer {
  return Buffer.concat([sshString(Buffer.from(type)), sshString(randomBytes(32))]);
}

const line = (hosts: string, key: Buffer, marker = ''): string =>
  `${marker ? `${marker} ` : ''}${hosts} ${keyTypeOfBlob(key)} ${key.toString('base64')}`;

const keyA = fakeKey();
const keyB = fakeKey();
const keyRsa = fakeKey('ssh-rsa');

describe('parseKnownHosts', () => {
  it('skips blank lines, comments and CRLF, keeps line numbers', () => {
    const text = `# comment\n\n   \n${line('web01', keyA)} comment here\r\n${line('web02', keyB)}\n`;
    const { entries, problems } = parseKnownHosts(text, 'f');
    expect(problems).toEqual([]);
    expect(entries.map((entry) => [entry.hosts, entry.line, entry.file])).toEqual([
      ['web01', 4, 'f'],
      ['web02', 5, 'f'],
    ]);
    expect(entries[0]?.key.equals(keyA)).toBe(true);
  });

  it('parses markers and reports unknown markers and malformed lines', () => {
    const text = [
      line('*', keyA, '@revoked'),
      line('*.example.com', keyB, '@cert-authority'),
      line('x', keyA, '@bogus'),
      'onlyhost ssh-ed25519',
      'host ssh-ed25519 !!!notbase64',
      `host ssh-rsa ${keyA.toString('base64')}`,
      `|1|short|bad ssh-ed25519 ${keyA.toString('base64')}`,
    ].join('\n');
    const { entries, problems } = parseKnownHosts(text);
    expect(entries.map((entry) => entry.marker)).toEqual(['revoked', 'cert-authority']);
    expect(problems.map((problem) => problem.line)).toEqual([3, 4, 5, 6, 7]);
  });
});

describe('host matching', () => {
  it('formats [host]:port for non-22 ports and lowercases', () => {
    expect(knownHostName('Web01', 22)).toBe('web01');
    expect(knownHostName('Web01', 2222)).toBe('[web01]:2222');
  });

  it('matches wildcards * and ? case-insensitively', () => {
    expect(matchWildcard('web01.example.com', '*.example.com')).toBe(true);
    expect(matchWildcard('web01', 'web0?')).toBe(true);
    expect(matchWildcard('web010', 'web0?')).toBe(false);
    expect(matchWildcard('WEB01', 'web*')).toBe(true);
    expect(matchWildcard('a', '*')).toBe(true);
    expect(matchWildcard('abc', 'a*b*c*')).toBe(true);
    expect(matchWildcard('abx', 'a*c')).toBe(false);
    expect(matchWildcard('[web]:2222', '[web]:2222')).toBe(true);
    expect(matchWildcard('[web]:2222', 'web')).toBe(false);
  });

  it('handles comma lists and negation vetoes the line', () => {
    expect(hostFieldMatches('web01,web02,10.0.0.1', 'web02')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'good.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
    expect(hostFieldMatches('!bad.example.com,*.example.com', 'bad.example.com')).toBe(false);
    expect(hostFieldMatches('!web01', 'web02')).toBe(false);
    expect(hostFieldMatches('web01', '[web01]:2222')).toBe(false);
    expect(hostFieldMatches('[web01]:2222', '[web01]:2222')).toBe(true);
    expect(hostFieldMatches('[web0?]:*', '[web01]:2222')).toBe(true);
  });

  it('matches hashed entries via HMAC-SHA1', () => {
    const hashed = hashKnownHostName('[web01]:2222', randomBytes(20));
    expect(hostFieldMatches(hashed, '[web01]:2222')).toBe(true);
    expect(hostFieldMatches(hashed, 'web01')).toBe(false);
    expect(hostFieldMatches(hashed, '[web01]:2223')).toBe(false);
  });
});

describe('checkHostKey', () => {
  const entries = parseKnownHosts(
    [
      line('web01,web01.example.com', keyA),
      line('web01', keyRsa),
      line('[web01]:2222', keyB),
      line('*.lab,!evil.lab', keyA),
      line('*', keyB, '@revoked'),
      line('*.ca.example', keyA, '@cert-authority'),
      line('mixed.ca.example', keyA),
    ].join('\n'),
  ).entries;

  it('trusts the recorded key among several key types', () => {
    expect(checkHostKey(entries, 'web01', 22, keyA)).toMatchObject({ status: 'trusted' });
    expect(checkHostKey(entries, 'WEB01', 22, keyRsa)).toMatchObject({ status: 'trusted' });
    expect(checkHostKey(entries, 'web01.example.com', 22, keyA).status).toBe('trusted');
  });

  it('reports a mismatch with the recorded entries', () => {
    const other = fakeKey();
    const check = checkHostKey(entries, 'web01', 22, other);
    expect(check.status).toBe('mismatch');
    if (check.status === 'mismatch') {
      expect(check.sameType).toBe(true);
      expect(check.recorded.map((entry) => entry.line)).toEqual([1, 2]);
    }
    const ecdsa = checkHostKey(entries, 'web01', 22, fakeKey('ecdsa-sha2-nistp256'));
    expect(ecdsa).toMatchObject({ status: 'mismatch', sameType: false });
  });

  it('keys non-22 ports separately', () => {
    expect(checkHostKey(entries, 'web01', 2222, keyA).status).toBe('mismatch');
    expect(checkHostKey(entries, 'web02', 2222, keyA).status).toBe('unknown');
  });

  it('revoked beats trusted and applies to matching hosts', () => {
    const withTrustedB = [...entries, ...parseKnownHosts(line('web09', keyB)).entries];
    expect(checkHostKey(withTrustedB, 'web09', 22, keyB).status).toBe('revoked');
    expect(checkHostKey(entries, 'web01', 2222, keyB).status).toBe('revoked');
  });

  it('negation makes a host unknown', () => {
    expect(checkHostKey(entries, 'db.lab', 22, keyA).status).toBe('trusted');
    expect(checkHostKey(entries, 'evil.lab', 22, keyA).status).toBe('unknown');
  });

  it('reports cert-authority only when it is the only match', () => {
    expect(checkHostKey(entries, 'x.ca.example', 22, keyA).status).toBe('cert-authority-only');
    expect(checkHostKey(entries, 'mixed.ca.example', 22, keyA).status).toBe('trusted');
  });

  it('unknown host', () => {
    expect(checkHostKey(entries, 'nowhere', 22, keyA).status).toBe('unknown');
    expect(checkHostKey([], 'nowhere', 22, keyA).status).toBe('unknown');
  });

  it('prefers recorded host key algorithms', () => {
    const order = preferredHostKeyAlgorithms(entries, 'web01', 22);
    expect(order.slice(0, 4)).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    const rsaOnly = parseKnownHosts(line('r', keyRsa)).entries;
    expect(preferredHostKeyAlgorithms(rsaOnly, 'r', 22)[0]).toBe('rsa-sha2-512');
    expect(new Set(order).size).toBe(order.length);
  });
});

describe('against real OpenSSH tools', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rune-kh-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('matches entries hashed by ssh-keygen -H and computes the same fingerprint', () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
    const publicLine = readFileSync(join(dir, 'k.pub'), 'utf8').trim();
    const [type, encoded] = publicLine.split(' ');
    const blob = Buffer.from(encoded ?? '', 'base64');
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `web01 ${type} ${encoded}\n[web01]:2222 ${type} ${encoded}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('|1|');
    const { entries } = parseKnownHosts(text, file);
    expect(entries).toHaveLength(2);
    expect(checkHostKey(entries, 'web01', 22, blob).status).toBe('trusted');
    expect(checkHostKey(entries, 'web01', 2222, blob).status).toBe('trusted');
    expect(checkHostKey(entries, 'web02', 22, blob).status).toBe('unknown');
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'k.pub')])
      .toString()
      .split(' ')[1];
    expect(sshFingerprint(blob)).toBe(fingerprint);
  });
});

describe('KnownHostsStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rune-kh-store-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('treats missing files as empty and re-reads changed files', async () => {
    const store = new KnownHostsStore();
    const file = join(dir, 'kh1');
    expect((await store.load([file])).entries).toEqual([]);
    writeFileSync(file, `${line('a', keyA)}\n`);
    expect((await store.load([file])).entries).toHaveLength(1);
    writeFileSync(file, `${line('a', keyA)}\n${line('b', keyB)}\n`);
    expect((await store.load([file])).entries).toHaveLength(2);
  });

  it('appends plain lines once, creating the directory, fixing a missing final newline', async () => {
    const store = new KnownHostsStore();
    const file = join(dir, 'state', 'rune', 'known_hosts');
    expect(await store.append(file, 'Web01', 2222, keyA)).toBe(true);
    expect(await store.append(file, 'web01', 2222, keyA)).toBe(false);
    const results = await Promise.all([
      store.append(file, 'web02', 22, keyB),
      store.append(file, 'web02', 22, keyB),
    ]);
    expect(results.sort()).toEqual([false, true]);
    expect(readFileSync(file, 'utf8')).toBe(
      `${formatKnownHostsLine('web01', 2222, keyA)}\n${formatKnownHostsLine('web02', 22, keyB)}\n`,
    );
    const noNewline = join(dir, 'kh-no-newline');
    writeFileSync(noNewline, line('x', keyA));
    await store.append(noNewline, 'y', 22, keyB);
    const { entries, problems } = parseKnownHosts(readFileSync(noNewline, 'utf8'));
    expect(problems).toEqual([]);
    expect(entries).toHaveLength(2);
  });

  it('formats the line OpenSSH would write', () => {
    expect(formatKnownHostsLine('H', 22, keyA)).toBe(`h ssh-ed25519 ${keyA.toString('base64')}`);
    expect(() => formatKnownHostsLine('h', 22, Buffer.from('xx'))).toThrow();
  });
});
