/**
 * Artifacts over SFTP on the node's pooled connection: fetching a file the plugin reported (size
 * checked before and while it is read) and removing it once core verified the copy.
 */
import { RuneError } from '@rune/protocol';
import type { FetchedArtifact, TargetNode } from '@rune/transport';
import type { RouteConnector } from './connect-route.js';
import type { SshConnection } from './connection-pool.js';

/** What the artifact operations need from the transport. */
export interface ArtifactContext {
  connector: RouteConnector;
  /** Largest artifact fetched. */
  maxArtifactBytes: number;
}

/** The node's connection, with errors in the transport's context. */
async function connectionFor(
  context: ArtifactContext,
  node: TargetNode,
  signal: AbortSignal,
): Promise<SshConnection> {
  try {
    return (await context.connector.connectNode(node, signal)).connection;
  } catch (error) {
    throw RuneError.from(error).withContext({ component: 'transport-ssh', node: node.name });
  }
}

/** Builds an artifact error of `code` naming the node and the path. */
type ArtifactFailure = (message: string, cause?: unknown, retryable?: boolean) => RuneError;

function artifactFailure(
  code: 'ARTIFACT_FETCH_FAILED' | 'ARTIFACT_REMOVE_FAILED',
  node: TargetNode,
  remotePath: string,
): ArtifactFailure {
  return (message, cause, retryable) =>
    new RuneError(code, message, {
      source: { component: 'transport-ssh', node: node.name },
      details: { path: remotePath },
      cause,
      ...(retryable === undefined ? {} : { retryable }),
    });
}

/**
 * The steps fetch and removal share: an absolute path without NUL (else a non-retryable
 * `fail`), the node's pooled connection, and an SFTP session on it.
 */
async function openArtifactSftp(
  context: ArtifactContext,
  node: TargetNode,
  remotePath: string,
  signal: AbortSignal,
  fail: ArtifactFailure,
  operation: 'fetch' | 'removal',
) {
  if (!remotePath.startsWith('/') || remotePath.includes('\0')) {
    throw fail(`artifact path must be absolute: ${JSON.stringify(remotePath)}`, undefined, false);
  }
  const connection = await connectionFor(context, node, signal);
  if (signal.aborted) throw new RuneError('RUN_CANCELLED', `artifact ${operation} cancelled`);
  return connection.sftp(signal).catch((error: unknown) => {
    throw fail(`cannot open SFTP on ${node.name}: ${String(error)}`, error);
  });
}

/** Downloads `remotePath` (absolute, a regular file within the size limit) from `node`. */
export async function fetchArtifact(
  context: ArtifactContext,
  node: TargetNode,
  remotePath: string,
  signal: AbortSignal,
): Promise<FetchedArtifact> {
  const fail = artifactFailure('ARTIFACT_FETCH_FAILED', node, remotePath);
  const limit = context.maxArtifactBytes;
  const sftp = await openArtifactSftp(context, node, remotePath, signal, fail, 'fetch');
  try {
    const size = await new Promise<number>((resolve, reject) => {
      sftp.stat(remotePath, (error, stats) => {
        if (error) return reject(error);
        if (!stats.isFile()) return reject(new Error('not a regular file'));
        resolve(stats.size);
      });
    }).catch((error: unknown) => {
      throw fail(`cannot stat ${remotePath} on ${node.name}: ${String(error)}`, error, false);
    });
    if (size > limit) {
      throw fail(
        `${remotePath} on ${node.name} is ${size} bytes, above the ${limit}-byte artifact limit`,
        undefined,
        false,
      );
    }
    return await new Promise<FetchedArtifact>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const stream = sftp.createReadStream(remotePath);
      const onAbort = (): void => {
        stream.destroy();
        reject(new RuneError('RUN_CANCELLED', 'artifact fetch cancelled'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (chunk: Buffer) => {
        total += chunk.byteLength;
        if (total > limit) {
          stream.destroy();
          reject(
            fail(`${remotePath} grew above the ${limit}-byte artifact limit`, undefined, false),
          );
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (error: Error) =>
        reject(fail(`cannot read ${remotePath}: ${error.message}`, error)),
      );
      stream.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        resolve({ content: new Uint8Array(Buffer.concat(chunks, total)) });
      });
    });
  } finally {
    sftp.end();
  }
}

/** SFTP status code "no such file" (SSH_FX_NO_SUCH_FILE). */
const SFTP_NO_SUCH_FILE = 2;

const isNoSuchFile = (error: unknown): boolean =>
  (error as { code?: unknown } | null)?.code === SFTP_NO_SUCH_FILE;

/**
 * Removes the regular file at exactly `remotePath` on `node`; resolves when it is gone or was
 * already gone. A symlink or a directory there is refused (nothing is removed).
 *
 * The refusal comes from an `lstat` (which never follows the last component); the removal is
 * SFTP `remove`, i.e. unlink(2), which never follows the last component either and cannot remove
 * a directory. So even if the path is swapped for a symlink between the two, the most that can go
 * is that symlink itself, never the file it points to.
 */
export async function removeArtifact(
  context: ArtifactContext,
  node: TargetNode,
  remotePath: string,
  signal: AbortSignal,
): Promise<void> {
  const fail = artifactFailure('ARTIFACT_REMOVE_FAILED', node, remotePath);
  const sftp = await openArtifactSftp(context, node, remotePath, signal, fail, 'removal');
  try {
    const kind = await new Promise<'file' | 'gone' | 'symlink' | 'directory' | 'other'>(
      (resolve, reject) => {
        sftp.lstat(remotePath, (error, stats) => {
          if (error) return isNoSuchFile(error) ? resolve('gone') : reject(error);
          if (stats.isSymbolicLink()) return resolve('symlink');
          if (stats.isDirectory()) return resolve('directory');
          resolve(stats.isFile() ? 'file' : 'other');
        });
      },
    ).catch((error: unknown) => {
      throw fail(`cannot stat ${remotePath} on ${node.name}: ${String(error)}`, error);
    });
    if (kind === 'gone') return;
    if (kind !== 'file') {
      const what = kind === 'other' ? 'not a regular file' : `a ${kind}`;
      throw fail(
        `${remotePath} on ${node.name} is ${what}, not a regular file: nothing was removed`,
        undefined,
        false,
      );
    }
    if (signal.aborted) throw new RuneError('RUN_CANCELLED', 'artifact removal cancelled');
    await new Promise<void>((resolve, reject) => {
      sftp.unlink(remotePath, (error) => {
        if (error && !isNoSuchFile(error)) return reject(error);
        resolve();
      });
    }).catch((error: unknown) => {
      throw fail(`cannot remove ${remotePath} on ${node.name}: ${String(error)}`, error);
    });
  } finally {
    sftp.end();
  }
}
