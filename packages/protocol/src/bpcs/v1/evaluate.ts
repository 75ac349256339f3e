/**
 * The normative BPCS v1 evaluation: how the control node turns what a plugin process did
 * (exit code, signal, stdout) into a result or an EPS error. Pure and shared, so the execution step in
 * @rune/core and `rune-plugin-test` judge plugins identically. specs/bpcs-v1.md ("Mediator
 * rules") states the same rules in prose, numbered in the order they are applied here: the first
 * rule that matches decides. The process outcome is judged before the output, because when a
 * plugin was killed or exited with a code outside the table, its stdout explains nothing reliable.
 */
import type { ErrorCode } from '../../eps/v1/catalog.js';
import { RuneError, type RuneErrorSource } from '../../errors/rune-error.js';
import {
  DEFAULT_MAX_DOCUMENT_BYTES,
  decodeUtf8,
  type ParseOptions,
} from '../../validation/parse.js';
import {
  BPCS_EXIT_CODE_ERRORS,
  isBpcsExitCode,
  SHELL_NOT_EXECUTABLE_EXIT_CODES,
} from './exit-codes.js';
import { parseBpcsResponse } from './parse.js';
import type { BpcsResponse } from './schema.js';

/** What the plugin process did, as a transport reports it. */
export interface PluginProcessOutcome {
  /** Exit code, or null when the process was killed by a signal. */
  exitCode: number | null;
  /** Signal name (e.g. SIGKILL) when killed by a signal, else null. */
  signal: string | null;
  /** Captured stdout (possibly truncated). */
  stdout: Uint8Array | string;
  /** True when stdout exceeded the capture limit. */
  stdoutTruncated: boolean;
}

/** Who and what is being evaluated, for error context. */
export interface EvaluationContext {
  /** The trace id of the request; the result must carry the same one. */
  traceId: string;
  /** The action name (becomes `plugin:<action>` as error source). */
  action: string;
  /** The node the plugin ran on. */
  node: string;
  /** The request's message_id; when given, a result whose in_reply_to differs is a violation. */
  requestMessageId?: string;
  /** Maximum accepted stdout document size; defaults to 1 MiB. */
  maxBytes?: number;
}

/** The verdict on one plugin run. */
export type PluginEvaluation =
  | { ok: true; response: BpcsResponse }
  | { ok: false; error: RuneError; response: BpcsResponse | null };

const isWhitespace = (code: number): boolean =>
  code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;

/**
 * Index just past the first complete JSON object or array starting at `start`, scanning brackets
 * outside strings; -1 when it never closes.
 */
export function endOfJsonContainer(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

type ReadResult = { ok: true; response: BpcsResponse } | { ok: false; error: RuneError };

/** Rules 4-8: decode, frame, parse and correlate stdout; independent of the exit code. */
function readResult(
  stdout: Uint8Array | string,
  context: EvaluationContext,
  source: RuneErrorSource,
): ReadResult {
  const error = (
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
  ): ReadResult => ({
    ok: false,
    error: new RuneError(code, message, { source, traceId: context.traceId, details }),
  });
  const parseOptions: ParseOptions = {
    source,
    traceId: context.traceId,
    maxBytes: context.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES,
  };
  // 4. Encoding.
  const decoded = decodeUtf8(stdout, parseOptions);
  if (!decoded.ok) return error('INVALID_ENCODING', 'plugin stdout is not valid UTF-8');
  const text = decoded.value;
  let start = 0;
  while (start < text.length && isWhitespace(text.charCodeAt(start))) start++;
  // 5. Nothing at all.
  if (start === text.length) return error('OUTPUT_EMPTY', 'plugin wrote nothing on stdout');
  // 6. Framing: exactly one JSON object, nothing before or after it.
  if (text.charCodeAt(start) !== 0x7b) {
    const brace = text.indexOf('{', start);
    if (brace > 0 && endOfJsonContainer(text, brace) > 0) {
      return error(
        'OUTPUT_TEXT_BEFORE_JSON',
        'plugin printed text before its JSON result; logs belong on stderr',
        { leading_text: text.slice(start, Math.min(brace, start + 200)) },
      );
    }
    return error('OUTPUT_NOT_JSON', 'plugin stdout is not a JSON object', {
      excerpt: text.slice(start, start + 200),
    });
  }
  const end = endOfJsonContainer(text, start);
  if (end < 0) return error('OUTPUT_NOT_JSON', 'plugin stdout is not a complete JSON object');
  let rest = end;
  while (rest < text.length && isWhitespace(text.charCodeAt(rest))) rest++;
  if (rest < text.length) {
    const trailing = text.slice(rest);
    if (
      trailing.charCodeAt(0) === 0x7b ||
      trailing.charCodeAt(0) === 0x5b ||
      looksLikeJson(trailing)
    ) {
      return error(
        'OUTPUT_MULTIPLE_DOCUMENTS',
        'plugin printed more than one JSON document on stdout',
      );
    }
    return error(
      'OUTPUT_TEXT_BEFORE_JSON',
      'plugin printed text after its JSON result; logs belong on stderr',
      { trailing_text: trailing.slice(0, 200) },
    );
  }
  // 7. Size, depth, syntax, schema_version, schema and the result/error pairing.
  const parsed = parseBpcsResponse(text.slice(start, end), parseOptions);
  if (!parsed.ok) {
    if (parsed.error.code === 'MALFORMED_JSON') {
      return error('OUTPUT_NOT_JSON', parsed.error.message, parsed.error.details);
    }
    return parsed;
  }
  const response = parsed.value;
  // 8. Correlation with the request.
  if (response.message_metadata.trace_id !== context.traceId) {
    return error(
      'SCHEMA_VIOLATION',
      'plugin result carries a trace_id different from the request',
      {
        violations: [
          { pointer: '/message_metadata/trace_id', message: `Expected ${context.traceId}` },
        ],
      },
    );
  }
  const inReplyTo = response.message_metadata.in_reply_to;
  if (
    context.requestMessageId !== undefined &&
    inReplyTo !== undefined &&
    inReplyTo !== context.requestMessageId
  ) {
    return error('SCHEMA_VIOLATION', 'plugin result answers a different message (in_reply_to)', {
      violations: [
        {
          pointer: '/message_metadata/in_reply_to',
          message: `Expected ${context.requestMessageId}`,
        },
      ],
    });
  }
  return { ok: true, response };
}

function isBlank(stdout: Uint8Array | string): boolean {
  if (typeof stdout === 'string') return stdout.trim() === '';
  return stdout.every((byte) => isWhitespace(byte));
}

/**
 * Evaluates a plugin run per BPCS v1. Rules, first match wins (specs/bpcs-v1.md):
 * 1 stdout truncated → OUTPUT_TOO_LARGE; 2 killed by a signal → PLUGIN_CRASHED; 3 exit code outside
 * the table → PLUGIN_NOT_EXECUTABLE (126/127 with empty stdout) or PLUGIN_CRASHED; 4 stdout not
 * UTF-8 → INVALID_ENCODING; 5 stdout empty → OUTPUT_EMPTY; 6 text before/after the object →
 * OUTPUT_TEXT_BEFORE_JSON, a second document → OUTPUT_MULTIPLE_DOCUMENTS, no object →
 * OUTPUT_NOT_JSON; 7 the object is not a valid BPCS result → its parse error; 8 trace_id or
 * in_reply_to of another request → SCHEMA_VIOLATION; 9 exit code and result disagree →
 * EXIT_CODE_MISMATCH; 10 exit 1-5 with result failure → the code's EPS error; else success.
 */
export function evaluatePluginOutput(
  outcome: PluginProcessOutcome,
  context: EvaluationContext,
): PluginEvaluation {
  const source: RuneErrorSource = {
    component: `plugin:${context.action}`,
    node: context.node,
    action: context.action,
  };
  const exitDetails = { exit_code: outcome.exitCode, signal: outcome.signal };
  const failWith = (
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    response: BpcsResponse | null = null,
  ): PluginEvaluation => ({
    ok: false,
    response,
    error: new RuneError(code, message, {
      source,
      traceId: context.traceId,
      details: { ...exitDetails, ...details },
    }),
  });

  // 1. Truncated output can never be trusted as a complete document.
  if (outcome.stdoutTruncated) {
    return failWith(
      'OUTPUT_TOO_LARGE',
      'plugin stdout exceeded the capture limit and was truncated',
    );
  }
  // 2. Killed by a signal (the execution step reports its own timeouts and cancellations before this).
  if (outcome.signal !== null || outcome.exitCode === null) {
    return failWith(
      'PLUGIN_CRASHED',
      `plugin was killed by ${outcome.signal ?? 'an unknown signal'}`,
    );
  }
  const exitCode = outcome.exitCode;
  // 3. An exit code outside the table: the plugin did not finish the way BPCS describes.
  if (!isBpcsExitCode(exitCode)) {
    if (SHELL_NOT_EXECUTABLE_EXIT_CODES.includes(exitCode) && isBlank(outcome.stdout)) {
      return failWith(
        'PLUGIN_NOT_EXECUTABLE',
        `plugin could not be executed (exit ${exitCode}: ${exitCode === 126 ? 'not executable' : 'not found'})`,
      );
    }
    const read = readResult(outcome.stdout, context, source);
    const hint = exitCode > 128 && exitCode < 160 ? ` (128 + ${exitCode - 128}: a signal?)` : '';
    return failWith(
      'PLUGIN_CRASHED',
      `plugin exited with undocumented exit code ${exitCode}${hint}`,
      read.ok ? {} : { stdout_error: read.error.code },
      read.ok ? read.response : null,
    );
  }
  // 4-8. The output itself.
  const read = readResult(outcome.stdout, context, source);
  if (!read.ok) {
    return { ok: false, response: null, error: read.error.withContext({ details: exitDetails }) };
  }
  const response = read.response;
  // 9. Exit code and result must agree.
  const result = response.payload.result;
  if (exitCode === 0) {
    if (result === 'failure') {
      return failWith(
        'EXIT_CODE_MISMATCH',
        'plugin exited 0 but reported result "failure"',
        { result, plugin_error: response.error },
        response,
      );
    }
    return { ok: true, response };
  }
  if (result !== 'failure') {
    return failWith(
      'EXIT_CODE_MISMATCH',
      `plugin exited ${exitCode} but reported result "${result}"`,
      { result },
      response,
    );
  }
  // 10. A documented failure.
  const pluginError = response.error;
  const message = pluginError?.message ?? `plugin failed (exit ${exitCode})`;
  return failWith(
    BPCS_EXIT_CODE_ERRORS[exitCode],
    message,
    {
      plugin_error: pluginError,
      ...(pluginError?.details === undefined ? {} : { plugin_details: pluginError.details }),
    },
    response,
  );
}
