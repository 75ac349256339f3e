/**
 * OpenSSH known_hosts: parsing, host matching and host-key decisions.
 *
 * No maintained npm parser exists, and this is security code, so it follows OpenSSH's own rules
 * (hostfile.c, match.c) closely and is tested line by line:
 * - a line is `[@marker] hostpatterns keytype base64 [comment]`; blank lines and `#` comments are
 *   skipped, malformed lines are skipped (and reported, so operators can fix them);
 * - the name looked up is the host name for port 22 and `[host]:port` otherwise, lowercased;
 * - host patterns are a comma list of `*`/`?` wildcards, a `!` negation that vetoes the whole line,
 *   or one hashed entry `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`;
 * - keys are compared as raw blobs, byte for byte, against the base64 field;
 * - `@revoked` on a matching line beats any trusted line; `@cert-authority` lines are recognized
 *   but not supported (ssh2 cannot verify OpenSSH certificates), which is reported when they are
 *   the only entries for the host.
 *
 * One deliberate difference: a host that is known only under *other* key types is treated as a
 * mismatch rather than as new, because the transport asks the server for the recorded key types
 * first (see {@link preferredHostKeyAlgorithms}); a server that then offers an unrecorded type is
 * suspicious, and `accept-new` must not quietly add it.
 */

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { matchPattern } from './ssh-config-syntax.js';

/** The marker of a known_hosts line. */
export type KnownHostMarker = 'none' | 'revoked' | 'cert-authority';

/** One parsed known_hosts line. */
export interface KnownHostEntry {
  /** File the line came from (for messages). */
  file: string;
  /** 1-based line number. */
  line: number;
  marker: KnownHostMarker;
  /** The host field as written (patterns or a hashed entry). */
  hosts: string;
  /** Key type as written (e.g. `ssh-ed25519`). */
  keyType: string;
  /** The raw public key blob (the decoded base64 field). */
  key: Buffer;
}

/** A line that could not be parsed. */
export interface KnownHostsProblem {
  file: string;
  line: number;
  reason: string;
}

/** Result of {@link parseKnownHosts}. */
export interface ParsedKnownHosts {
  entries: KnownHostEntry[];
  problems: KnownHostsProblem[];
}

const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses known_hosts text. Never throws: unparsable lines are listed in `problems`. */
export function parseKnownHosts(text: string, file = '<memory>'): ParsedKnownHosts {
  const entries: KnownHostEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const raw = (lines[index] ?? '').replace(/\r$/, '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const line = index + 1;
    const fields = raw.split(/[ \t]+/);
    let marker: KnownHostMarker = 'none';
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else {
        problems.push({ file, line, reason: `unknown marker ${name}` });
        continue;
      }
    }
    const [hosts, keyType, encoded] = fields;
    if (hosts === undefined || keyType === undefined || encoded === undefined) {
      problems.push({ file, line, reason: 'expected: [marker] hosts keytype base64-key' });
      continue;
    }
    if (!BASE64_PATTERN.test(encoded)) {
      problems.push({ file, line, reason: 'the key is not valid base64' });
      continue;
    }
    const key = Buffer.from(encoded, 'base64');
    const blobType = keyTypeOfBlob(key);
    if (blobType === undefined || blobType !== keyType) {
      problems.push({
        file,
        line,
        reason: `the key blob is of type ${blobType ?? 'unknown'}, the line says ${keyType}`,
      });
      continue;
    }
    if (hosts.startsWith('|') && parseHashedHost(hosts) === undefined) {
      problems.push({ file, line, reason: 'malformed hashed host entry' });
      continue;
    }
    entries.push({ file, line, marker, hosts, keyType, key });
  }
  return { entries, problems };
}

/** The key type stored at the start of an SSH public key blob (`string` type name), if any. */
export function keyTypeOfBlob(blob: Uint8Array): string | undefined {
  if (blob.byteLength < 4) return undefined;
  const view = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > view.byteLength) return undefined;
  const name = view.subarray(4, 4 + length).toString('latin1');
  return /^[\x21-\x7e]+$/.test(name) ? name : undefined;
}

/** OpenSSH SHA256 fingerprint of a key blob: `SHA256:` + unpadded base64. */
export function sshFingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name under which known_hosts records a host: `host` for port 22, else `[host]:port`. */
export function knownHostName(host: string, port = 22): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

/** Hashes a host name the way `ssh-keygen -H` does: `|1|base64(salt)|base64(hmac)`. */
export function hashKnownHostName(name: string, salt: Buffer): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

function parseHashedHost(hosts: string): { salt: Buffer; hash: Buffer } | undefined {
  const parts = hosts.split('|');
  // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== '1') return undefined;
  const [, , salt, hash] = parts;
  if (salt === undefined || hash === undefined) return undefined;
  if (!BASE64_PATTERN.test(salt) || !BASE64_PATTERN.test(hash)) return undefined;
  const saltBytes = Buffer.from(salt, 'base64');
  const hashBytes = Buffer.from(hash, 'base64');
  if (saltBytes.byteLength !== 20 || hashBytes.byteLength !== 20) return undefined;
  return { salt: saltBytes, hash: hashBytes };
}

/** OpenSSH match_pattern: `*` any run, `?` any one character; case-insensitive (host names). */
export function matchWildcard(text: string, pattern: string): boolean {
  return matchPattern(text.toLowerCase(), pattern.toLowerCase());
}

/**
 * Whether the host field of a line matches `name` (already in `[host]:port` form when needed).
 * A negated pattern that matches vetoes the line, as in OpenSSH.
 */
export function hostFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) {
    const hashed = parseHashedHost(hosts);
    if (hashed === undefined) return false;
    const actual = createHmac('sha1', hashed.salt).update(name.toLowerCase()).digest();
    return timingSafeEqual(actual, hashed.hash);
  }
  let positive = false;
  for (const raw of hosts.split(',')) {
    if (raw === '') continue;
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (matchWildcard(name, pattern)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** What known_hosts says about a presented host key. */
export type HostKeyCheck =
  | { status: 'trusted'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry }
  | { status: 'mismatch'; recorded: KnownHostEntry[]; sameType: boolean }
  | { status: 'unknown' }
  | { status: 'cert-authority-only'; entries: KnownHostEntry[] };

/**
 * Decides whether `key` is the recorded key of `host:port`.
 *
 * Order: a matching `@revoked` line → revoked; a matching plain line with the same blob →
 * trusted; plain lines for the host but none equal → mismatch; only `@cert-authority` lines →
 * cert-authority-only; nothing → unknown.
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  key: Uint8Array,
): HostKeyCheck {
  const name = knownHostName(host, port);
  const presented = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const presentedType = keyTypeOfBlob(presented);
  const matching = entries.filter((entry) => hostFieldMatches(entry.hosts, name));
  const revoked = matching.find(
    (entry) => entry.marker === 'revoked' && entry.key.equals(presented),
  );
  if (revoked !== undefined) return { status: 'revoked', entry: revoked };
  const plain = matching.filter((entry) => entry.marker === 'none');
  const trusted = plain.find((entry) => entry.key.equals(presented));
  if (trusted !== undefined) return { status: 'trusted', entry: trusted };
  if (plain.length > 0) {
    return {
      status: 'mismatch',
      recorded: plain,
      sameType: plain.some((entry) => entry.keyType === presentedType),
    };
  }
  const authorities = matching.filter((entry) => entry.marker === 'cert-authority');
  if (authorities.length > 0) return { status: 'cert-authority-only', entries: authorities };
  return { status: 'unknown' };
}

const RSA_ALGORITHMS = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  ...RSA_ALGORITHMS,
];

/**
 * The host key algorithms to offer, recorded types for this host first (as OpenSSH does), so a
 * server with several host keys presents one we can check.
 */
export function preferredHostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): string[] {
  const name = knownHostName(host, port);
  const recorded = new Set<string>();
  for (const entry of entries) {
    if (entry.marker === 'none' && hostFieldMatches(entry.hosts, name)) {
      if (entry.keyType === 'ssh-rsa')
        for (const algorithm of RSA_ALGORITHMS) recorded.add(algorithm);
      else recorded.add(entry.keyType);
    }
  }
  const first = DEFAULT_HOST_KEY_ALGORITHMS.filter((algorithm) => recorded.has(algorithm));
  return [...first, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((algorithm) => !recorded.has(algorithm))];
}

/** A known_hosts line for `host:port` and `key`, in plain (unhashed) form, without newline. */
export function formatKnownHostsLine(host: string, port: number, key: Uint8Array): string {
  const blob = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const type = keyTypeOfBlob(blob);
  if (type === undefined) throw new TypeError('not an SSH public key blob');
  return `${knownHostName(host, port)} ${type} ${blob.toString('base64')}`;
}

interface CachedFile {
  mtimeMs: number;
  size: number;
  parsed: ParsedKnownHosts;
}

/**
 * Reads and caches known_hosts files (re-parsed when their mtime or size changes) and appends
 * new entries for `accept-new`.
 */
export class KnownHostsStore {
  private readonly cache = new Map<string, CachedFile>();
  private appendQueue: Promise<unknown> = Promise.resolve();

  /** Entries of every given file, in order; missing files count as empty. */
  async load(files: readonly string[]): Promise<ParsedKnownHosts> {
    const entries: KnownHostEntry[] = [];
    const problems: KnownHostsProblem[] = [];
    for (const file of files) {
      const parsed = await this.loadFile(file);
      entries.push(...parsed.entries);
      problems.push(...parsed.problems);
    }
    return { entries, problems };
  }

  private async loadFile(file: string): Promise<ParsedKnownHosts> {
    let info: { mtimeMs: number; size: number };
    try {
      info = await stat(file);
    } catch {
      this.cache.delete(file);
      return { entries: [], problems: [] };
    }
    const cached = this.cache.get(file);
    if (cached !== undefined && cached.mtimeMs === info.mtimeMs && cached.size === info.size) {
      return cached.parsed;
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return { entries: [], problems: [{ file, line: 0, reason: 'unreadable' }] };
    }
    const parsed = parseKnownHosts(text, file);
    this.cache.set(file, { mtimeMs: info.mtimeMs, size: info.size, parsed });
    return parsed;
  }

  /**
   * Appends a plain line for `host:port` to `file` (created 0600, its directory 0700) unless an
   * equal entry appeared meanwhile. One `write()` on an O_APPEND descriptor, so concurrent
   * appenders (other RUNE processes) never interleave within a line; appends from this process
   * are serialized. Returns false when the key was already recorded.
   */
  append(file: string, host: string, port: number, key: Uint8Array): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      this.cache.delete(file);
      const current = await this.loadFile(file);
      const check = checkHostKey(current.entries, host, port, key);
      if (check.status === 'trusted') return false;
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const handle = await open(file, 'a+', 0o600);
      try {
        const { size } = await handle.stat();
        let prefix = '';
        if (size > 0) {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) prefix = '\n';
        }
        await handle.write(`${prefix}${formatKnownHostsLine(host, port, key)}\n`);
      } finally {
        await handle.close();
      }
      this.cache.delete(file);
      return true;
    };
    const result = this.appendQueue.then(run, run);
    this.appendQueue = result.catch(() => undefined);
    return result;
  }
}
