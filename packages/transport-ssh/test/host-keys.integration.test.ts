import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKnownHostName, sshFingerprint } from '../src/known-hosts.js';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import { plugin, rejection, request, transportFor } from './helpers.js';

const noop = plugin('echo ok', 'noop-hostkey');
let sshd: SshdInstance;
let impostor: SshdInstance;

const fingerprintOf = (publicKeyLine: string): string =>
  sshFingerprint(Buffer.from(publicKeyLine.split(' ')[1] ?? '', 'base64'));

beforeAll(async () => {
  sshd = await startSshd();
  // A second server with its own host key, reachable under the first one's name (see node()).
  impostor = await startSshd({ clientKey: sshd.clientKey });
});
afterAll(async () => {
  await impostor?.stop();
  await sshd?.stop();
});

/** A known_hosts file recording `lines`. */
function knownHosts(name: string, lines: string[]): string {
  const file = join(sshd.dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('host key verification', () => {
  it('strict: an unknown host is refused with HOST_KEY_UNKNOWN and nothing runs', async () => {
    const transport = transportFor(sshd, { knownHostsFiles: [knownHosts('empty', [])] });
    try {
      const error = await rejection(transport.exec(request(sshd.node(), noop)));
      expect(error.code).toBe('HOST_KEY_UNKNOWN');
      expect(error.message).toContain(fingerprintOf(sshd.hostPublicKeys[0] ?? ''));
      expect(existsSync(sshd.remoteCacheDir)).toBe(false);
    } finally {
      await transport.close();
    }
  });

  it('a changed host key is HOST_KEY_MISMATCH naming the host and both fingerprints', async () => {
    // Record the impostor's address with the genuine host's key.
    const file = knownHosts('changed', [
      `[${impostor.address}]:${impostor.port} ${sshd.hostPublicKeys[0]}`,
    ]);
    const transport = transportFor(impostor, { knownHostsFiles: [file] });
    try {
      const error = await rejection(transport.exec(request(impostor.node(), noop)));
      expect(error.code).toBe('HOST_KEY_MISMATCH');
      expect(error.message).toContain(impostor.address);
      expect(error.message).toContain(fingerprintOf(impostor.hostPublicKeys[0] ?? ''));
      expect(error.message).toContain(fingerprintOf(sshd.hostPublicKeys[0] ?? ''));
      expect(error.details).toMatchObject({
        fingerprint: fingerprintOf(impostor.hostPublicKeys[0] ?? ''),
        expected: [{ fingerprint: fingerprintOf(sshd.hostPublicKeys[0] ?? '') }],
      });
      expect(existsSync(impostor.remoteCacheDir)).toBe(false);
    } finally {
      await transport.close();
    }
  });

  it('a key marked @revoked is refused even when also trusted', async () => {
    const file = knownHosts('revoked', [
      ...sshd.knownHostsLines,
      `@revoked * ${sshd.hostPublicKeys[0]}`,
    ]);
    const transport = transportFor(sshd, { knownHostsFiles: [file] });
    try {
      expect((await rejection(transport.exec(request(sshd.node(), noop)))).code).toBe(
        'HOST_KEY_REVOKED',
      );
    } finally {
      await transport.close();
    }
  });

  it('hashed entries (ssh-keygen -H) and several key types per host work', async () => {
    const multi = await startSshd({
      hostKeyTypes: ['ed25519', 'ecdsa'],
      clientKey: sshd.clientKey,
    });
    try {
      const file = join(multi.dir, 'hashed');
      writeFileSync(file, `${multi.knownHostsLines.join('\n')}\n`);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
      expect(readFileSync(file, 'utf8')).not.toContain(multi.address);
      const transport = transportFor(multi, { knownHostsFiles: [file] });
      try {
        const result = await transport.exec(request(multi.node(), noop));
        expect(result.exitCode).toBe(0);
      } finally {
        await transport.close();
      }
      // Only the ECDSA key recorded (hashed by us): the transport asks for ECDSA and succeeds.
      const ecdsaOnly = join(multi.dir, 'ecdsa-only');
      const ecdsa = multi.hostPublicKeys.find((line) => line.startsWith('ecdsa')) ?? '';
      writeFileSync(
        ecdsaOnly,
        `${hashKnownHostName(`[${multi.address}]:${multi.port}`, randomBytes(20))} ${ecdsa}\n`,
      );
      const second = transportFor(multi, { knownHostsFiles: [ecdsaOnly] });
      try {
        expect((await second.exec(request(multi.node(), noop))).exitCode).toBe(0);
      } finally {
        await second.close();
      }
    } finally {
      await multi.stop();
    }
  });

  it('accept-new records an unknown key, then refuses a changed one', async () => {
    const runeFile = join(sshd.dir, 'accept-new', 'known_hosts');
    const warnings: string[] = [];
    const options = {
      knownHostsFiles: [knownHosts('empty2', [])],
      runeKnownHostsFile: runeFile,
      hostKeyChecking: 'accept-new' as const,
      onWarning: (message: string) => warnings.push(message),
    };
    const first = transportFor(sshd, options);
    try {
      expect((await first.exec(request(sshd.node(), noop))).exitCode).toBe(0);
    } finally {
      await first.close();
    }
    expect(readFileSync(runeFile, 'utf8')).toBe(`${sshd.knownHostsLines[0]}\n`);
    expect(warnings.join('\n')).toContain('accept-new');
    // A host recorded by accept-new now answers with another key: refused, nothing appended.
    writeFileSync(runeFile, `[${impostor.address}]:${impostor.port} ${sshd.hostPublicKeys[0]}\n`);
    const second = transportFor(impostor, {
      ...options,
      knownHostsFiles: [knownHosts('empty5', [])],
    });
    try {
      const error = await rejection(second.exec(request(impostor.node(), noop)));
      expect(error.code).toBe('HOST_KEY_MISMATCH');
    } finally {
      await second.close();
    }
    expect(readFileSync(runeFile, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('off: connects to anything, warns loudly and records it in metadata', async () => {
    const warnings: string[] = [];
    const transport = transportFor(sshd, {
      knownHostsFiles: [knownHosts('empty3', [])],
      hostKeyChecking: 'off',
      onWarning: (message) => warnings.push(message),
    });
    try {
      const result = await transport.exec(request(sshd.node(), noop));
      expect(result.metadata).toMatchObject({ host_key_checking: 'off' });
      expect(warnings.some((message) => /host key checking is OFF/.test(message))).toBe(true);
    } finally {
      await transport.close();
    }
  });

  it('per-node settings override the mode and add a known_hosts file', async () => {
    const transport = transportFor(sshd, { knownHostsFiles: [knownHosts('empty4', [])] });
    try {
      const result = await transport.exec(
        request(sshd.node({ settings: { known_hosts_file: sshd.knownHostsFile } }), noop),
      );
      expect(result.exitCode).toBe(0);
      const error = await rejection(
        transport.exec(request(sshd.node({ settings: { host_key_checking: 'sometimes' } }), noop)),
      );
      expect(error.code).toBe('INVALID_CONFIG');
    } finally {
      await transport.close();
    }
  });

  it('@cert-authority as the only match is UNSUPPORTED_FEATURE', async () => {
    const file = knownHosts('ca', [`@cert-authority [127.*]:* ${sshd.hostPublicKeys[0]}`]);
    const transport = transportFor(sshd, { knownHostsFiles: [file] });
    try {
      const error = await rejection(transport.exec(request(sshd.node(), noop)));
      expect(error.code).toBe('UNSUPPORTED_FEATURE');
      expect(error.message).toMatch(/certificate/);
    } finally {
      await transport.close();
    }
  });
});
