/**
 * Artifact removal over SFTP against a real sshd: once core has fetched an artifact and verified
 * it, `removeArtifact` deletes exactly that regular file on the node, over the node's pooled
 * connection. A symlink (its target stays) or a directory is refused; a file already gone is fine.
 */
import { existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '@rune/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SshdInstance, startSshd } from '../src/testing/index.js';
import { plugin, rejection, request, transportFor } from './helpers.js';

let sshd: SshdInstance;
let transport: Transport;
let remove: NonNullable<Transport['removeArtifact']>;

beforeAll(async () => {
  sshd = await startSshd({ logLevel: 'VERBOSE' });
  transport = transportFor(sshd);
  const method = transport.removeArtifact?.bind(transport);
  if (method === undefined) throw new Error('the SSH transport has no removeArtifact');
  remove = method;
});
afterAll(async () => {
  await transport?.close();
  await sshd?.stop();
});

const signal = (): AbortSignal => new AbortController().signal;

describe('removeArtifact over SSH', () => {
  it('removes the fetched file over the pooled connection, and again is a no-op', async () => {
    const file = join(sshd.dir, 'archive.tar.gz');
    await transport.exec(request(sshd.node(), plugin(`printf data > ${file}`, 'make-artifact')));
    expect(existsSync(file)).toBe(true);
    const fetched = await transport.fetchArtifact?.(sshd.node(), file, signal());
    expect(Buffer.from(fetched?.content ?? []).toString()).toBe('data');
    await remove(sshd.node(), file, signal());
    expect(existsSync(file)).toBe(false);
    await remove(sshd.node(), file, signal()); // idempotent
    // One connection for the run, the fetch and both removals.
    expect(sshd.logs().match(/Accepted publickey/g)).toHaveLength(1);
  });

  it('a file that never existed: resolves', async () => {
    await remove(sshd.node(), join(sshd.dir, 'never-there'), signal());
  });

  it('a symlink in the last component is refused; neither it nor its target is removed', async () => {
    const target = join(sshd.dir, 'precious');
    const link = join(sshd.dir, 'artifact-link');
    writeFileSync(target, 'keep me');
    symlinkSync(target, link);
    const error = await rejection(remove(sshd.node(), link, signal()));
    expect(error.code).toBe('ARTIFACT_REMOVE_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('symlink');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(existsSync(target)).toBe(true);
  });

  it('a directory is refused and stays', async () => {
    const dir = join(sshd.dir, 'artifact-dir');
    mkdirSync(dir);
    writeFileSync(join(dir, 'inside'), 'x');
    const error = await rejection(remove(sshd.node(), dir, signal()));
    expect(error.code).toBe('ARTIFACT_REMOVE_FAILED');
    expect(error.message).toContain('directory');
    expect(existsSync(join(dir, 'inside'))).toBe(true);
  });

  it('a relative path is refused before anything is contacted', async () => {
    const error = await rejection(remove(sshd.node(), 'relative/file', signal()));
    expect(error.code).toBe('ARTIFACT_REMOVE_FAILED');
    expect(error.retryable).toBe(false);
  });
});
