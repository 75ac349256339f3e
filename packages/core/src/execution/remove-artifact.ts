/**
 * After core fetched an artifact and verified its sha256 and size, the node-side copy (often an
 * archive in /tmp holding logs) has served its purpose: the transport's optional
 * `removeArtifact()` deletes it. Removal is housekeeping, not the action: its failure is recorded
 * on the artifact and never fails the node, and a transport without the method leaves the file.
 */
import type { RunArtifactRemoval } from '@rune/protocol';
import { RuneError } from '@rune/protocol';
import type { TargetNode, Transport } from '@rune/transport';

/** Context added to a removal error. */
export interface RemovalContext {
  node: string;
  action: string;
  traceId: string;
}

/** Removes the node's copy of a verified artifact; resolves with what became of it. */
export async function removeNodeCopy(
  transport: Transport,
  node: TargetNode,
  remotePath: string,
  signal: AbortSignal,
  context: RemovalContext,
): Promise<RunArtifactRemoval> {
  const remove = transport.removeArtifact?.bind(transport);
  if (remove === undefined) return { status: 'unsupported', error: null };
  try {
    await remove(node, remotePath, signal);
    return { status: 'removed', error: null };
  } catch (error) {
    const runeError = RuneError.from(error, 'ARTIFACT_FETCH_FAILED').withContext({
      node: context.node,
      action: context.action,
      traceId: context.traceId,
      details: { path: remotePath, phase: 'remove' },
    });
    return { status: 'failed', error: runeError.toJSON() };
  }
}
