/**
 * How an error reaches a person: one line with the EPS code and message, then a hint saying what
 * to do about it. Machines get the EPS object itself (see json.ts).
 */
import type { EpsError } from '@rune/protocol';
import pc from 'picocolors';
import { terminalSafe } from './terminal-text.js';

const HINTS: Record<string, string> = {
  INVALID_ARGUMENT: 'see `rune <command> --help`',
  INVALID_ACTION_NAME:
    'action names are lowercase letters, digits and dashes; see `rune list-actions`',
  UNKNOWN_ACTION: 'see `rune list-actions` for the available actions',
  INVALID_PARAMETERS: 'see `rune plugin-info <action>` for the parameters and their types',
  INVALID_TARGET: 'node names have no whitespace or slashes and do not start with "-"',
  NO_TARGETS: 'name at least one node: --node <host> (repeatable, or comma-separated)',
  UNKNOWN_NODE: 'check the node name against your inventory',
  INVALID_CONFIG:
    'fix the file and key named above; `rune config show` prints the effective configuration',
  INVALID_MANIFEST:
    'fix the manifest named above (MRS v1); `rune plugin-info <action>` shows the plugin',
  PLUGIN_DIR_UNREADABLE:
    'check the directory exists, is a directory and is readable ([plugins] plugin_dir)',
  PLUGIN_NOT_EXECUTABLE: 'RUNE runs plugin files directly: chmod +x the file and give it a #! line',
  DANGEROUS_ACTION_REFUSED: 'add --yes to confirm, or --dry-run to see what would run',
  TRANSPORT_UNAVAILABLE:
    'check --transport / [core] default_transport and that the transport package is installed',
  PLUGIN_TIMEOUT: 'raise --timeout if the action legitimately needs longer',
  OUTPUT_TEXT_BEFORE_JSON:
    'the plugin must print logs on stderr and only its JSON result on stdout',
  OUTPUT_MULTIPLE_DOCUMENTS: 'the plugin must print exactly one JSON document on stdout',
  OUTPUT_EMPTY: 'the plugin printed nothing on stdout; see its stderr with --verbose',
  OUTPUT_TOO_LARGE: 'the plugin printed more than [execution] max_stdout_bytes on stdout',
  EXIT_CODE_MISMATCH: 'the plugin exit code and its result disagree (BPCS exit-code table)',
  AUDIT_WRITE_FAILED:
    'check that [core] audit_log is writable, its .lock file is not held, and [audit] key_file is private (0600); a run whose intent cannot be recorded does not start',
  AUDIT_CHAIN_BROKEN:
    'the audit log was altered, cut short or re-signed after it was written; keep the file for investigation',
  INTERNAL_ERROR: 'this is a bug in RUNE: please report it with the trace id',
  RUN_CANCELLED: 'the run was interrupted',
};

/** The hint for an error code, if there is one. */
export function hintFor(code: string): string | undefined {
  return HINTS[code];
}

/** One clear line for a person, plus a hint line. */
export function formatErrorPretty(error: EpsError, color: boolean): string {
  const c = pc.createColors(color);
  const lines = [
    `${c.red(c.bold('error'))} ${c.bold(terminalSafe(error.code))}: ${terminalSafe(error.message)}`,
  ];
  const hint = hintFor(error.code);
  if (hint !== undefined) lines.push(c.dim(`hint: ${hint}`));
  if (error.code === 'INTERNAL_ERROR')
    lines.push(c.dim(`trace id: ${terminalSafe(error.trace_id)}`));
  return `${lines.join('\n')}\n`;
}
