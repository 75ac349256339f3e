/**
 * Audit records are bounded: what an operator (or a plugin's error message, or a transport's
 * metadata) supplies must not make the audit log grow by megabytes per run.
 *
 * A parameter value whose JSON is longer than {@link AUDIT_PARAM_VALUE_MAX_BYTES} is replaced by
 * a digest `{ truncated: true, bytes, sha256 }` (sha256 of its JSON), which still proves which
 * value ran when compared with a copy. Error messages and metadata strings are cut, with the cut
 * marked. When a record would still exceed {@link AUDIT_RECORD_MAX_BYTES}, the whole metadata,
 * then the whole parameter set, then the node list are replaced by digests; a record never exceeds
 * the maximum.
 */

import { sha256Hex } from '@rune/transport';
import type { AuditEntry } from './audit-log.js';

/** A parameter value longer than this (serialized JSON, bytes) is stored as a digest. */
export const AUDIT_PARAM_VALUE_MAX_BYTES = 1024;
/** Longest stored error message (UTF-8 bytes). */
export const AUDIT_MESSAGE_MAX_BYTES = 2048;
/** Longest string inside `metadata` (UTF-8 bytes). */
export const AUDIT_METADATA_STRING_MAX_BYTES = 1024;
/** Largest `metadata` object (serialized JSON bytes) before it is stored as a digest. */
export const AUDIT_METADATA_MAX_BYTES = 16 * 1024;
/** Most node names listed in one record (the count is kept in `nodes_total`). */
export const AUDIT_MAX_LISTED_NODES = 100;
/** The largest audit record (one JSON line, newline included), in bytes. */
export const AUDIT_RECORD_MAX_BYTES = 64 * 1024;
/**
 * Room kept for the fields the sink adds (version, seq, timestamp, host, run id, hashes, key id,
 * signature); the entry itself must fit in the rest.
 */
const ENVELOPE_BYTES = 2048;

/** What stands in for a value that was too long to keep. */
export interface AuditTruncatedValue {
  truncated: true;
  /** Size of the original value's JSON, in bytes. */
  bytes: number;
  /** sha256 (hex) of the original value's JSON. */
  sha256: string;
}

const byteLength = (text: string): number => Buffer.byteLength(text, 'utf8');

function digest(json: string): AuditTruncatedValue {
  return {
    truncated: true,
    bytes: byteLength(json),
    sha256: sha256Hex(json),
  };
}

/** Cuts `text` to at most `max` UTF-8 bytes (marker included), never inside a character. */
export function truncateAuditString(text: string, max: number): string {
  const size = byteLength(text);
  if (size <= max) return text;
  const marker = `…[truncated, ${size} bytes]`;
  const room = Math.max(0, max - byteLength(marker));
  let cut = Buffer.from(text, 'utf8').subarray(0, room).toString('utf8');
  // A cut multi-byte character decodes to U+FFFD; drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return `${cut}${marker}`;
}

function boundStrings(value: unknown, max: number, depth = 0): unknown {
  if (typeof value === 'string') return truncateAuditString(value, max);
  if (value === null || typeof value !== 'object') return value;
  // Deep structures are not audit facts; keep their digest.
  if (depth > 8) return digest(JSON.stringify(value) ?? 'null');
  if (Array.isArray(value)) return value.map((item) => boundStrings(item, max, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      truncateAuditString(key, 128),
      boundStrings(item, max, depth + 1),
    ]),
  );
}

function boundParams(params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(params).map(([name, value]) => {
      const json = JSON.stringify(value) ?? 'null';
      return [
        truncateAuditString(name, 128),
        byteLength(json) > AUDIT_PARAM_VALUE_MAX_BYTES ? digest(json) : value,
      ];
    }),
  );
}

const entrySize = (entry: AuditEntry): number => byteLength(JSON.stringify(entry));

/**
 * Returns `entry` with every field bounded so that the stored record stays within
 * {@link AUDIT_RECORD_MAX_BYTES}. The input is not changed.
 */
export function boundAuditEntry(entry: AuditEntry): AuditEntry {
  const limit = AUDIT_RECORD_MAX_BYTES - ENVELOPE_BYTES;
  const bounded: AuditEntry = {
    ...entry,
    operator: truncateAuditString(entry.operator, 256),
    action: truncateAuditString(entry.action, 128),
    plugin:
      entry.plugin === null
        ? null
        : {
            version: truncateAuditString(entry.plugin.version, 128),
            sha256: truncateAuditString(entry.plugin.sha256, 128),
            path: truncateAuditString(entry.plugin.path, 1024),
            source: truncateAuditString(entry.plugin.source, 64),
          },
    node: entry.node === null ? null : truncateAuditString(entry.node, 255),
    transport: entry.transport === null ? null : truncateAuditString(entry.transport, 255),
    status: truncateAuditString(entry.status, 32),
    error_code: entry.error_code === null ? null : truncateAuditString(entry.error_code, 128),
    error_message:
      entry.error_message === null
        ? null
        : truncateAuditString(entry.error_message, AUDIT_MESSAGE_MAX_BYTES),
    trace_id: truncateAuditString(entry.trace_id, 64),
    params: entry.params === null ? null : boundParams(entry.params),
    metadata: boundStrings(entry.metadata, AUDIT_METADATA_STRING_MAX_BYTES) as Record<
      string,
      unknown
    >,
  };
  if (entry.run_id !== undefined) bounded.run_id = truncateAuditString(entry.run_id, 64);
  if (entry.nodes !== undefined) {
    bounded.nodes = entry.nodes
      .slice(0, AUDIT_MAX_LISTED_NODES)
      .map((node) => truncateAuditString(node, 255));
    if (entry.nodes.length > AUDIT_MAX_LISTED_NODES) bounded.nodes_total = entry.nodes.length;
  }
  const metadataJson = JSON.stringify(bounded.metadata) ?? '{}';
  if (byteLength(metadataJson) > AUDIT_METADATA_MAX_BYTES) {
    bounded.metadata = { digest: digest(metadataJson) };
  }
  // Still too large (thousands of parameters, very long node names): digests, coarsest last.
  if (entrySize(bounded) > limit) {
    bounded.metadata = { digest: digest(JSON.stringify(bounded.metadata)) };
  }
  if (entrySize(bounded) > limit && bounded.params !== null) {
    bounded.params = { digest: digest(JSON.stringify(bounded.params)) };
  }
  if (entrySize(bounded) > limit && bounded.nodes !== undefined) {
    bounded.nodes_total = entry.nodes?.length ?? bounded.nodes.length;
    bounded.nodes = bounded.nodes.slice(0, 10);
  }
  return bounded;
}
