/**
 * The normative BPCS v1 evaluation: how the control node turns what a plugin process did
 * (exit code, signal, stdout) into a result or an EPS error. Pure and shared, so the mediator in
 * @rune/core and `rune-plugin-test` judge plugins identically. specs/bpcs-v1.md states the same
 * rules in prose; the order of the checks below is the order of that table.
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
  traceId: string;
  action: string;
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

/** Evaluates a plugin run per BPCS v1. */
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
  // 2. Killed by a signal (the mediator reports its own timeouts and cancellations before this).
  if (outcome.signal !== null || outcome.exitCode === null) {
    return failWith(
      'PLUGIN_CRASHED',
      `plugin was killed by ${outcome.signal ?? 'an unknown signal'}`,
    );
  }
  const exitCode = outcome.exitCode;
  const parseOptions: ParseOptions = {
    source,
    traceId: context.traceId,
    maxBytes: context.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES,
  };
  // 3. Decoding.
  const decoded = decodeUtf8(outcome.stdout, parseOptions);
  if (!decoded.ok) return failWith('INVALID_ENCODING', 'plugin stdout is not valid UTF-8');
  const text = decoded.value;
  let start = 0;
  while (start < text.length && isWhitespace(text.charCodeAt(start))) start++;
  // 4. Nothing at all.
  if (start === text.length) {
    if (SHELL_NOT_EXECUTABLE_EXIT_CODES.includes(exitCode)) {
      return failWith('PLUGIN_NOT_EXECUTABLE', `plugin could not be executed (exit ${exitCode})`);
    }
    return failWith('OUTPUT_EMPTY', `plugin wrote nothing on stdout (exit ${exitCode})`);
  }
  // 5. Framing: exactly one JSON object, nothing before or after it.
  if (text.charCodeAt(start) !== 0x7b) {
    const brace = text.indexOf('{', start);
    if (brace > 0 && endOfJsonContainer(text, brace) > 0) {
      return failWith(
        'OUTPUT_TEXT_BEFORE_JSON',
        'plugin printed text before its JSON result; logs belong on stderr',
        {
          leading_text: text.slice(start, Math.min(brace, start + 200)),
        },
      );
    }
    return failWith('OUTPUT_NOT_JSON', 'plugin stdout is not a JSON object', {
      excerpt: text.slice(start, start + 200),
    });
  }
  const end = endOfJsonContainer(text, start);
  if (end < 0) return failWith('OUTPUT_NOT_JSON', 'plugin stdout is not a complete JSON object');
  let rest = end;
  while (rest < text.length && isWhitespace(text.charCodeAt(rest))) rest++;
  if (rest < text.length) {
    const trailing = text.slice(rest);
    if (looksLikeJson(trailing) || trailing.charCodeAt(0) === 0x7b) {
      return failWith(
        'OUTPUT_MULTIPLE_DOCUMENTS',
        'plugin printed more than one JSON document on stdout',
      );
    }
    return failWith(
      'OUTPUT_TEXT_BEFORE_JSON',
      'plugin printed text after its JSON result; logs belong on stderr',
      {
        trailing_text: trailing.slice(0, 200),
      },
    );
  }
  // 6. Syntax, size, depth, version and schema.
  const parsed = parseBpcsResponse(text.slice(start, end), parseOptions);
  if (!parsed.ok) {
    if (parsed.error.code === 'MALFORMED_JSON') {
      return failWith('OUTPUT_NOT_JSON', parsed.error.message, parsed.error.details);
    }
    return { ok: false, response: null, error: parsed.error.withContext({ details: exitDetails }) };
  }
  const response = parsed.value;
  // 7. Correlation with the request.
  if (response.message_metadata.trace_id !== context.traceId) {
    return failWith(
      'SCHEMA_VIOLATION',
      'plugin result carries a trace_id different from the request',
      {
        violations: [
          { pointer: '/message_metadata/trace_id', message: `expected ${context.traceId}` },
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
    return failWith('SCHEMA_VIOLATION', 'plugin result answers a different message (in_reply_to)', {
      violations: [
        {
          pointer: '/message_metadata/in_reply_to',
          message: `expected ${context.requestMessageId}`,
        },
      ],
    });
  }
  // 8. Exit code and result must agree.
  const result = response.payload.result;
  if (!isBpcsExitCode(exitCode)) {
    return failWith(
      'PLUGIN_CRASHED',
      `plugin exited with undocumented exit code ${exitCode}`,
      {},
      response,
    );
  }
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
