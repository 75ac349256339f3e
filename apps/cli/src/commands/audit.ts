/**
 * `rune audit` (list and filter records, attempts without an outcome shown as such),
 * `rune audit verify` (chain, signatures, anchored head), `rune audit key` (the public key an
 * auditor verifies with) and `rune audit head` (the last record, to anchor elsewhere).
 */

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type AuditHead,
  type AuditRecord,
  findRunsWithoutOutcome,
  type LoadedConfig,
  loadOrCreateAuditKey,
  NO_OUTCOME_STATUS,
  readAuditLog,
  readAuditPublicKey,
  resolveAuditKeyFile,
  resolveAuditLogPath,
  verifyAuditLog,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { parseSince } from '../parse-options.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded, loadCliConfig } from './command-context.js';

/** Filters of `rune audit`. */
export interface AuditArgs extends CommonArgs {
  action?: string;
  node?: string;
  trace?: string;
  since?: string;
  limit?: number;
  /** A shared `rune serve` store (`postgres://...`) whose audit chain is listed instead. */
  store?: string;
}

/** Flags of `rune audit verify`. */
export interface AuditVerifyArgs extends CommonArgs {
  publicKey?: string;
  expectHead?: string;
  anchor?: string;
  allowUnsigned?: boolean;
  /** A shared `rune serve` store (`postgres://...`) whose audit chain is verified instead. */
  store?: string;
}

/** Lists audit records; returns the exit code. */
export function auditListCommand(args: AuditArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const since = args.since === undefined ? undefined : parseSince(args.since);
    // Several instances on one PostgreSQL keep one chain in the store (docs/ha.md).
    const all =
      args.store === undefined
        ? readAuditLog(resolveAuditLogPath(loadCliConfig(io, args)))
        : await (await import('@rune/server')).readStoreAudit(args.store);
    // Judged over the whole log: an outcome may lie outside the filtered window.
    const incomplete = new Map(findRunsWithoutOutcome(all).map((run) => [run.run_id, run]));
    const matches = (
      record: Pick<AuditRecord, 'action' | 'node' | 'nodes' | 'trace_id' | 'timestamp'>,
    ) =>
      (args.action === undefined || record.action === args.action) &&
      (args.node === undefined ||
        record.node === args.node ||
        (record.nodes ?? []).includes(args.node)) &&
      (args.trace === undefined || record.trace_id === args.trace) &&
      (since === undefined || new Date(record.timestamp) >= since);
    let records: AuditRecord[] = all.filter(matches);
    if (args.limit !== undefined) records = records.slice(-args.limit);
    const shownIncomplete = [...incomplete.values()].filter((run) =>
      records.some((record) => record.event === 'intent' && record.run_id === run.run_id),
    );
    if (args.output === 'json') {
      io.out(`${JSON.stringify({ records, runs_without_outcome: shownIncomplete }, null, 2)}\n`);
      return 0;
    }
    if (args.output === 'jsonl') {
      io.out(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
      for (const run of shownIncomplete) {
        io.out(`${JSON.stringify({ type: 'run-without-outcome', ...run })}\n`);
      }
      return 0;
    }
    for (const record of records) {
      const node = record.node ?? (record.nodes ?? []).join(',') ?? '-';
      const missing =
        record.event === 'intent' && record.run_id !== undefined
          ? incomplete.get(record.run_id)
          : undefined;
      const status = missing === undefined ? record.status : NO_OUTCOME_STATUS;
      const note =
        missing === undefined
          ? (record.error_code ?? '')
          : `attempted, no outcome recorded for ${missing.nodes.join(',') || `${missing.nodes_total - missing.outcomes} node(s)`} (still running, or rune was killed?)`;
      // Audit records hold node names and operators as given: shown, never obeyed.
      const line = `${record.timestamp}  ${record.operator.padEnd(10)} ${record.event.padEnd(8)} ${record.action.padEnd(16)} ${node.padEnd(16)} ${status.padEnd(10)} ${note}  ${record.trace_id}`;
      io.out(`${terminalSafe(line)}\n`);
    }
    if (records.length === 0) io.out('no audit records match\n');
    return 0;
  });
}

function readAnchor(path: string): Pick<AuditHead, 'seq' | 'hash'> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new RuneError('INVALID_ARGUMENT', `--anchor ${path} is not a readable JSON file`, {
      cause: error,
      source: { component: 'rune-cli' },
      details: { path },
    });
  }
  const head = (parsed as { head?: unknown }).head ?? parsed;
  const { seq, hash } = (head ?? {}) as { seq?: unknown; hash?: unknown };
  if (typeof seq !== 'number' || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `--anchor ${path} must hold { "seq": N, "hash": "<64 hex>" } as \`rune audit head -o json\` prints it`,
      { source: { component: 'rune-cli' }, details: { path } },
    );
  }
  return { seq, hash };
}

/** The verification key: --public-key, else the configured key file when it exists. */
function verificationKey(args: AuditVerifyArgs, loaded: LoadedConfig): KeyObject | undefined {
  if (args.publicKey !== undefined) return readAuditPublicKey(args.publicKey);
  try {
    return readAuditPublicKey(resolveAuditKeyFile(loaded));
  } catch {
    return undefined; // no local key: only unsigned logs can verify
  }
}

/** Verifies the chain; exit 0 when intact, the error's exit code (70, or 2) otherwise. */
export function auditVerifyCommand(args: AuditVerifyArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const loaded = loadCliConfig(io, args);
    if (args.expectHead !== undefined && !/^[0-9a-f]{64}$/.test(args.expectHead)) {
      throw new RuneError('INVALID_ARGUMENT', '--expect-head must be a record hash (64 hex)', {
        source: { component: 'rune-cli' },
      });
    }
    const publicKey = verificationKey(args, loaded);
    const verifyOptions = {
      ...(publicKey === undefined ? {} : { publicKey }),
      ...(args.allowUnsigned === true ? { allowUnsigned: true } : {}),
      ...(args.expectHead === undefined ? {} : { expectHead: args.expectHead }),
      ...(args.anchor === undefined ? {} : { anchor: readAnchor(args.anchor) }),
    };
    let path = resolveAuditLogPath(loaded);
    let verdict: ReturnType<typeof verifyAuditLog>;
    if (args.store === undefined) {
      verdict = verifyAuditLog(path, verifyOptions);
    } else {
      // Several instances on one PostgreSQL keep one chain in the store (docs/ha.md).
      const server = await import('@rune/server');
      path = server.redactDatabaseUrl(args.store);
      verdict = await server.verifyStoreAudit(args.store, verifyOptions);
    }
    if (!verdict.ok && verdict.error !== undefined) throw verdict.error;
    const anchored = args.expectHead !== undefined || args.anchor !== undefined;
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(
        `${JSON.stringify({
          ok: true,
          path,
          records: verdict.verified,
          signed: verdict.signed,
          unsigned: verdict.unsigned,
          key_id: verdict.keyId,
          anchored,
          head: verdict.head,
        })}\n`,
      );
    } else {
      const unsigned =
        verdict.unsigned === 0
          ? ''
          : `; lines 1-${verdict.unsigned} unsigned (${verdict.signed > 0 ? 'sealed by the signed records after them' : 'accepted with --allow-unsigned'})`;
      io.out(
        `audit log ${terminalSafe(path)}: ${verdict.verified} record(s), hash chain intact, ${verdict.signed} signed${verdict.keyId === null ? '' : ` by key ${verdict.keyId}`}${unsigned}${anchored ? '; anchored head present' : ''}\n`,
      );
    }
    return 0;
  });
}

/** Prints the public key (creating the key pair on first use); exit 0. */
export function auditKeyCommand(args: CommonArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const loaded = loadCliConfig(io, args);
    const file = resolveAuditKeyFile(loaded);
    const signer = await loadOrCreateAuditKey(file);
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(
        `${JSON.stringify({ key_id: signer.keyId, key_file: file, public_key: signer.publicKeyPem })}\n`,
      );
    } else {
      io.out(signer.publicKeyPem);
    }
    return 0;
  });
}

/** Prints the last record's seq, hash and signature (the head to anchor elsewhere); exit 0. */
export function auditHeadCommand(args: CommonArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const loaded = loadCliConfig(io, args);
    const path = resolveAuditLogPath(loaded);
    const records = readAuditLog(path);
    const last = records.at(-1);
    const head: AuditHead | null =
      last === undefined
        ? null
        : {
            seq: last.seq ?? records.length,
            hash: last.hash,
            sig: last.sig ?? null,
            key_id: last.key_id ?? null,
            timestamp: last.timestamp,
          };
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(`${JSON.stringify(head === null ? { path, head: null } : { path, ...head })}\n`);
    } else if (head === null) {
      io.out(`audit log ${path} is empty\n`);
    } else {
      io.out(
        `seq ${head.seq}\nhash ${head.hash}\nsig ${head.sig ?? '-'}\nkey_id ${head.key_id ?? '-'}\ntimestamp ${head.timestamp}\n`,
      );
    }
    return 0;
  });
}
