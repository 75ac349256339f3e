/**
 * Explanations for plugin authors: for each way a run can break the protocol, what RUNE expected
 * and how to fix the plugin. The verdict itself always comes from `evaluatePluginOutput()` in
 * @rune/protocol — the same judge the execution step uses — so the kit never disagrees with production.
 */
import type { ErrorCode } from '@rune/protocol';

/** What was expected and how to fix it, per EPS code from the evaluation. */
export const FIXES: Partial<Record<ErrorCode, { expected: string; fix: string }>> = {
  OUTPUT_TEXT_BEFORE_JSON: {
    expected: 'stdout holds exactly one JSON object and nothing else',
    fix: 'Write logs to stderr (`echo ... >&2`) and capture or redirect the output of every command the plugin runs (`out=$(cmd)` or `cmd >&2`). The bpcs.sh library does this for you by moving stdout to fd 3.',
  },
  OUTPUT_MULTIPLE_DOCUMENTS: {
    expected: 'exactly one JSON document on stdout',
    fix: 'Build the result once and print it once, at the end — also on error paths (an error handler that prints a second result after the first is a common cause).',
  },
  OUTPUT_EMPTY: {
    expected: 'one BPCS result on stdout on every path, including failures',
    fix: 'Make sure every exit path prints a result; with `set -e`, a failing command exits before the result is printed — trap EXIT/ERR or use the bpcs.sh library.',
  },
  OUTPUT_NOT_JSON: {
    expected: 'stdout is one complete JSON object',
    fix: 'Print the result with a JSON builder (bpcs.sh, jq -n) instead of hand-written strings; check quoting and escaping.',
  },
  OUTPUT_TOO_LARGE: {
    expected: 'the result fits in the stdout cap (1 MiB)',
    fix: 'Keep output_data small; put large data in an artifact file and report its path and sha256.',
  },
  INVALID_ENCODING: {
    expected: 'stdout is valid UTF-8',
    fix: 'Escape or replace bytes that are not UTF-8 (log lines from tools often contain them) before putting them into the JSON.',
  },
  SCHEMA_VIOLATION: {
    expected: 'a BPCS v1 result (specs/bpcs-v1.md): message_metadata, payload, error',
    fix: 'Fix the fields listed under details.violations; echo trace_id (and in_reply_to) from the request.',
  },
  UNSUPPORTED_SCHEMA_VERSION: {
    expected: 'payload.schema_version "bpcs_v1"',
    fix: 'Set payload.schema_version to "bpcs_v1".',
  },
  DOCUMENT_TOO_DEEP: {
    expected: 'a result nesting at most 64 levels',
    fix: 'Flatten output_data.',
  },
  DOCUMENT_TOO_LARGE: {
    expected: 'a result of at most 1 MiB',
    fix: 'Keep output_data small; use artifacts for large data.',
  },
  EXIT_CODE_MISMATCH: {
    expected:
      'exit 0 with result success/partial; exit 1-5 (BPCS table) with result failure and an EPS error',
    fix: 'Exit with the code that matches the result you print: 1 failure, 2 invalid input, 3 precondition not met, 4 permission denied, 5 operation timed out.',
  },
  PLUGIN_CRASHED: {
    expected: 'an exit code from the BPCS table (0-5) and no death by signal',
    fix: 'Catch failures and report them as a BPCS failure with exit 1-5; do not let `set -e` or an unhandled error end the script with another code.',
  },
  PLUGIN_NOT_EXECUTABLE: {
    expected: 'a runnable plugin file',
    fix: 'Check the #! line (e.g. `#!/usr/bin/env bash`) and that the interpreter exists on the node.',
  },
};

/** The fix text for a protocol failure, with a generic fallback. */
export function explain(code: string): { expected: string; fix: string } {
  return (
    FIXES[code as ErrorCode] ?? {
      expected: 'a run that follows BPCS v1',
      fix: 'See specs/bpcs-v1.md.',
    }
  );
}

/** Error codes that mean the plugin broke the protocol (as opposed to reporting a failure). */
export function isProtocolBreach(code: string, category: string): boolean {
  return category === 'protocol' || code === 'PLUGIN_CRASHED' || code === 'PLUGIN_NOT_EXECUTABLE';
}
