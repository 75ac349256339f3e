/** `rune audit` (list and filter records) and `rune audit verify` (check the hash chain). */
import { type AuditRecord, readAuditLog, verifyAuditLog } from '@rune/core';
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
}

function auditPath(io: CliIo, args: CommonArgs): string {
  const loaded = loadCliConfig(io, args);
  return loaded.config.core.audit_log ?? `${loaded.dirs.stateHome}/rune/audit.jsonl`;
}

/** Lists audit records; returns the exit code. */
export function auditListCommand(args: AuditArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const since = args.since === undefined ? undefined : parseSince(args.since);
    let records: AuditRecord[] = readAuditLog(auditPath(io, args)).filter(
      (record) =>
        (args.action === undefined || record.action === args.action) &&
        (args.node === undefined ||
          record.node === args.node ||
          (record.nodes ?? []).includes(args.node)) &&
        (args.trace === undefined || record.trace_id === args.trace) &&
        (since === undefined || new Date(record.timestamp) >= since),
    );
    if (args.limit !== undefined) records = records.slice(-args.limit);
    if (args.output === 'json') {
      io.out(`${JSON.stringify({ records }, null, 2)}\n`);
      return 0;
    }
    if (args.output === 'jsonl') {
      io.out(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
      return 0;
    }
    for (const record of records) {
      const node = record.node ?? (record.nodes ?? []).join(',') ?? '-';
      // Audit records hold node names and operators as given: shown, never obeyed.
      const line = `${record.timestamp}  ${record.operator.padEnd(10)} ${record.event.padEnd(8)} ${record.action.padEnd(16)} ${node.padEnd(16)} ${record.status.padEnd(8)} ${record.error_code ?? ''}  ${record.trace_id}`;
      io.out(`${terminalSafe(line)}\n`);
    }
    if (records.length === 0) io.out('no audit records match\n');
    return 0;
  });
}

/** Verifies the hash chain; exit 0 when intact, AUDIT_CHAIN_BROKEN's exit code otherwise. */
export function auditVerifyCommand(args: CommonArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const path = auditPath(io, args);
    const verdict = verifyAuditLog(path);
    if (!verdict.ok && verdict.error !== undefined) throw verdict.error;
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(`${JSON.stringify({ ok: true, path, records: verdict.verified })}\n`);
    } else {
      io.out(`audit log ${terminalSafe(path)}: ${verdict.verified} record(s), hash chain intact\n`);
    }
    return 0;
  });
}
