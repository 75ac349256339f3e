/**
 * Artifacts: after a successful run, each file the plugin declared is fetched through the
 * transport (when the plan asks for it), checked against its declared sha256 and size, and stored
 * 0600 under `<artifact_dir>/<trace id>/<node>/` with a sanitized file name, then the node's copy is
 * removed (`removeNodeCopy`; its outcome is the record's `removal`). Every artifact gets a record
 * (fetched, failed or not-fetched); the first failure is returned, not thrown.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type BpcsResponse, RuneError } from '@rune/protocol';
import { sha256Hex, type Transport } from '@rune/transport';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';
import type { ArtifactRecord } from './node-result.js';
import { removeNodeCopy } from './remove-artifact.js';

function safeFileName(path: string, index: number, used: Set<string>): string {
  let name = basename(path).replace(/[^A-Za-z0-9._-]/g, '_');
  if (name === '' || name === '.' || name === '..') name = 'artifact';
  if (used.has(name)) name = `${index}-${name}`;
  used.add(name);
  return name;
}

/** Fetches and verifies the artifacts `response` declares; never throws. */
export async function fetchArtifacts(
  plan: ExecutionPlan,
  transport: Transport,
  planned: PlannedNode,
  response: BpcsResponse,
  signal: AbortSignal,
): Promise<{ records: ArtifactRecord[]; error: RuneError | null }> {
  const declared = response.payload.artifacts ?? [];
  const records: ArtifactRecord[] = declared.map((artifact) => ({
    path: artifact.path,
    sha256: artifact.sha256,
    size: artifact.size,
    local_path: null,
    status: 'not-fetched',
    error: null,
  }));
  if (!plan.fetch_artifacts || declared.length === 0) return { records, error: null };
  let firstError: RuneError | null = null;
  const fetchOne = transport.fetchArtifact?.bind(transport);
  const dir = join(plan.artifact_dir, plan.trace_id, planned.target.name);
  const used = new Set<string>();
  for (const [index, record] of records.entries()) {
    try {
      if (fetchOne === undefined || !transport.capabilities.artifacts) {
        throw new RuneError(
          'ARTIFACT_FETCH_FAILED',
          `transport ${transport.name} cannot fetch artifacts`,
        );
      }
      const fetched = await fetchOne(planned.target, record.path, signal);
      const actual = sha256Hex(fetched.content);
      if (actual !== record.sha256 || fetched.content.byteLength !== record.size) {
        throw new RuneError(
          'ARTIFACT_FETCH_FAILED',
          `artifact ${record.path} does not match its declared sha256/size`,
          {
            details: {
              path: record.path,
              expected_sha256: record.sha256,
              actual_sha256: actual,
              expected_size: record.size,
              actual_size: fetched.content.byteLength,
            },
          },
        );
      }
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const localPath = join(dir, safeFileName(record.path, index, used));
      await writeFile(localPath, fetched.content, { mode: 0o600 });
      record.local_path = localPath;
      record.status = 'fetched';
      record.removal = await removeNodeCopy(transport, planned.target, record.path, signal, {
        node: planned.target.name,
        action: plan.action,
        traceId: plan.trace_id,
      });
    } catch (error) {
      const runeError = RuneError.from(error, 'ARTIFACT_FETCH_FAILED').withContext({
        node: planned.target.name,
        action: plan.action,
        traceId: plan.trace_id,
      });
      record.status = 'failed';
      record.error = runeError.toJSON();
      firstError ??= runeError;
    }
  }
  return { records, error: firstError };
}
