import { describe, expect, it } from 'vitest';
import { validateEpsError } from '../../eps/v1/parse.js';
import {
  type EvaluationContext,
  endOfJsonContainer,
  evaluatePluginOutput,
  type PluginProcessOutcome,
} from './evaluate.js';
import {
  BPCS_EXIT_CODE_ERRORS,
  BPCS_EXIT_CODE_TABLE,
  BPCS_EXIT_CODES,
  isBpcsExitCode,
} from './exit-codes.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const MESSAGE_ID = '3f2b8c1e-9a4d-4e7b-8c21-5d6f7a8b9c0d';
const context: EvaluationContext = {
  traceId: TRACE,
  action: 'restart-docker',
  node: 'web01',
  requestMessageId: MESSAGE_ID,
};

function result(
  kind: 'success' | 'partial' | 'failure',
  overrides: Record<string, unknown> = {},
): string {
  const error =
    kind === 'failure'
      ? {
          code: 'DOCKER_MISSING',
          category: 'plugin',
          message: 'docker is not installed',
          retryable: false,
          source: { component: 'plugin:restart-docker' },
          trace_id: TRACE,
          timestamp: '2026-11-22T01:50:36Z',
        }
      : null;
  return JSON.stringify({
    message_metadata: {
      trace_id: TRACE,
      timestamp: '2026-11-22T01:50:36Z',
      in_reply_to: MESSAGE_ID,
    },
    payload: { schema_version: 'bpcs_v1', result: kind, output_data: {} },
    error,
    ...overrides,
  });
}
const SUCCESS = result('success');
const FAILURE = result('failure');
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

type Stdout = string | Uint8Array;
interface Case {
  name: string;
  exitCode: number | null;
  stdout: Stdout;
  signal?: string;
  truncated?: boolean;
  expected: string;
  /** Whether the parsed result travels with the verdict. */
  withResponse?: boolean;
}

const cases: Case[] = [
  // Exit code × result: the table and the mismatch rule.
  { name: 'exit 0, success', exitCode: 0, stdout: SUCCESS, expected: 'ok', withResponse: true },
  {
    name: 'exit 0, partial',
    exitCode: 0,
    stdout: result('partial'),
    expected: 'ok',
    withResponse: true,
  },
  {
    name: 'exit 0, failure',
    exitCode: 0,
    stdout: FAILURE,
    expected: 'EXIT_CODE_MISMATCH',
    withResponse: true,
  },
  {
    name: 'exit 1, success',
    exitCode: 1,
    stdout: SUCCESS,
    expected: 'EXIT_CODE_MISMATCH',
    withResponse: true,
  },
  {
    name: 'exit 3, partial',
    exitCode: 3,
    stdout: result('partial'),
    expected: 'EXIT_CODE_MISMATCH',
    withResponse: true,
  },
  {
    name: 'exit 1, failure',
    exitCode: 1,
    stdout: FAILURE,
    expected: 'PLUGIN_FAILED',
    withResponse: true,
  },
  {
    name: 'exit 2, failure',
    exitCode: 2,
    stdout: FAILURE,
    expected: 'PLUGIN_INVALID_INPUT',
    withResponse: true,
  },
  {
    name: 'exit 3, failure',
    exitCode: 3,
    stdout: FAILURE,
    expected: 'PLUGIN_PRECONDITION_FAILED',
    withResponse: true,
  },
  {
    name: 'exit 4, failure',
    exitCode: 4,
    stdout: FAILURE,
    expected: 'PLUGIN_PERMISSION_DENIED',
    withResponse: true,
  },
  {
    name: 'exit 5, failure',
    exitCode: 5,
    stdout: FAILURE,
    expected: 'PLUGIN_OPERATION_TIMEOUT',
    withResponse: true,
  },
  // Framing of stdout.
  { name: 'empty stdout', exitCode: 0, stdout: '', expected: 'OUTPUT_EMPTY' },
  { name: 'whitespace only', exitCode: 0, stdout: ' \n\t\r\n', expected: 'OUTPUT_EMPTY' },
  { name: 'empty stdout, exit 1', exitCode: 1, stdout: '', expected: 'OUTPUT_EMPTY' },
  {
    name: 'text before JSON',
    exitCode: 0,
    stdout: `Restarting docker...\n${SUCCESS}`,
    expected: 'OUTPUT_TEXT_BEFORE_JSON',
  },
  {
    name: 'text after JSON',
    exitCode: 0,
    stdout: `${SUCCESS}\ndone.\n`,
    expected: 'OUTPUT_TEXT_BEFORE_JSON',
  },
  {
    name: 'two documents',
    exitCode: 0,
    stdout: `${SUCCESS}\n${SUCCESS}\n`,
    expected: 'OUTPUT_MULTIPLE_DOCUMENTS',
  },
  {
    name: 'two documents, no separator',
    exitCode: 0,
    stdout: `${SUCCESS}${SUCCESS}`,
    expected: 'OUTPUT_MULTIPLE_DOCUMENTS',
  },
  {
    name: 'object then array',
    exitCode: 0,
    stdout: `${SUCCESS}\n[1]`,
    expected: 'OUTPUT_MULTIPLE_DOCUMENTS',
  },
  {
    name: 'object then number',
    exitCode: 0,
    stdout: `${SUCCESS} 42`,
    expected: 'OUTPUT_MULTIPLE_DOCUMENTS',
  },
  { name: 'plain text', exitCode: 0, stdout: 'all good\n', expected: 'OUTPUT_NOT_JSON' },
  { name: 'a JSON array', exitCode: 0, stdout: '[1,2]', expected: 'OUTPUT_NOT_JSON' },
  { name: 'unclosed object', exitCode: 0, stdout: '{"payload":', expected: 'OUTPUT_NOT_JSON' },
  { name: 'malformed object', exitCode: 0, stdout: '{"a":}', expected: 'OUTPUT_NOT_JSON' },
  {
    name: 'non-UTF-8 stdout',
    exitCode: 0,
    stdout: new Uint8Array([0x7b, 0xff, 0x7d]),
    expected: 'INVALID_ENCODING',
  },
  {
    name: 'BOM then JSON (bytes)',
    exitCode: 0,
    stdout: new Uint8Array([0xef, 0xbb, 0xbf, ...encode(SUCCESS)]),
    expected: 'ok',
    withResponse: true,
  },
  {
    name: 'JSON as bytes with trailing newline',
    exitCode: 0,
    stdout: encode(`${SUCCESS}\n`),
    expected: 'ok',
    withResponse: true,
  },
  // The document itself.
  { name: 'empty object', exitCode: 0, stdout: '{}', expected: 'SCHEMA_VIOLATION' },
  {
    name: 'unknown schema_version',
    exitCode: 0,
    stdout: SUCCESS.replace('bpcs_v1', 'bpcs_v9'),
    expected: 'UNSUPPORTED_SCHEMA_VERSION',
  },
  {
    name: 'deep output_data',
    exitCode: 0,
    stdout: SUCCESS.replace(
      '"output_data":{}',
      `"output_data":{"x":${'['.repeat(100)}${']'.repeat(100)}}`,
    ),
    expected: 'DOCUMENT_TOO_DEEP',
  },
  {
    name: 'failure without error',
    exitCode: 1,
    stdout: FAILURE.replace(/"error":\{.*\}\}$/, '"error":null}'),
    expected: 'SCHEMA_VIOLATION',
  },
  {
    name: 'trace id of another run',
    exitCode: 0,
    stdout: SUCCESS.replace(TRACE, 'a'.repeat(32)),
    expected: 'SCHEMA_VIOLATION',
  },
  {
    name: 'in_reply_to another message',
    exitCode: 0,
    stdout: SUCCESS.replace(MESSAGE_ID, '00000000-0000-4000-8000-000000000000'),
    expected: 'SCHEMA_VIOLATION',
  },
  // The process outcome comes first.
  {
    name: 'killed by SIGKILL',
    exitCode: null,
    signal: 'SIGKILL',
    stdout: SUCCESS,
    expected: 'PLUGIN_CRASHED',
  },
  {
    name: 'killed by SIGSEGV, no output',
    exitCode: null,
    signal: 'SIGSEGV',
    stdout: '',
    expected: 'PLUGIN_CRASHED',
  },
  {
    name: 'truncated stdout',
    exitCode: 0,
    stdout: SUCCESS.slice(0, 50),
    truncated: true,
    expected: 'OUTPUT_TOO_LARGE',
  },
  {
    name: 'truncated and killed',
    exitCode: null,
    signal: 'SIGTERM',
    stdout: 'x',
    truncated: true,
    expected: 'OUTPUT_TOO_LARGE',
  },
  { name: 'exit 126, no output', exitCode: 126, stdout: '', expected: 'PLUGIN_NOT_EXECUTABLE' },
  { name: 'exit 127, no output', exitCode: 127, stdout: '\n', expected: 'PLUGIN_NOT_EXECUTABLE' },
  {
    name: 'exit 127 after output',
    exitCode: 127,
    stdout: 'line 3: jq: command not found',
    expected: 'PLUGIN_CRASHED',
  },
  {
    name: 'exit 42 with a valid result',
    exitCode: 42,
    stdout: SUCCESS,
    expected: 'PLUGIN_CRASHED',
    withResponse: true,
  },
  { name: 'exit 42, no output', exitCode: 42, stdout: '', expected: 'PLUGIN_CRASHED' },
  {
    name: 'exit 42, non-UTF-8',
    exitCode: 42,
    stdout: new Uint8Array([0xff]),
    expected: 'PLUGIN_CRASHED',
  },
  {
    name: 'exit 137 (SIGKILL through a shell)',
    exitCode: 137,
    stdout: '',
    expected: 'PLUGIN_CRASHED',
  },
  {
    name: 'exit 255',
    exitCode: 255,
    stdout: FAILURE,
    expected: 'PLUGIN_CRASHED',
    withResponse: true,
  },
];

describe('evaluatePluginOutput', () => {
  it.each(cases)('$name → $expected', (testCase) => {
    const outcome: PluginProcessOutcome = {
      exitCode: testCase.exitCode,
      signal: testCase.signal ?? null,
      stdout: testCase.stdout,
      stdoutTruncated: testCase.truncated ?? false,
    };
    const verdict = evaluatePluginOutput(outcome, context);
    if (verdict.ok) {
      expect('ok').toBe(testCase.expected);
      return;
    }
    expect(verdict.error.code).toBe(testCase.expected);
    expect(verdict.response !== null).toBe(testCase.withResponse ?? false);
    const eps = verdict.error.toJSON();
    expect(validateEpsError(eps).ok).toBe(true);
    expect(eps.trace_id).toBe(TRACE);
    expect(eps.source).toEqual({
      component: 'plugin:restart-docker',
      node: 'web01',
      action: 'restart-docker',
    });
    expect(eps.details).toMatchObject({
      exit_code: testCase.exitCode,
      signal: testCase.signal ?? null,
    });
  });

  it('reports the plugin error message and details for a documented failure', () => {
    const verdict = evaluatePluginOutput(
      { exitCode: 3, signal: null, stdout: FAILURE, stdoutTruncated: false },
      context,
    );
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.error.message).toBe('docker is not installed');
    expect(verdict.error.details?.plugin_error).toMatchObject({ code: 'DOCKER_MISSING' });
    expect(verdict.response?.payload.result).toBe('failure');
  });

  it('hints at a signal for exit codes above 128', () => {
    const verdict = evaluatePluginOutput(
      { exitCode: 137, signal: null, stdout: '', stdoutTruncated: false },
      context,
    );
    expect(verdict.ok ? '' : verdict.error.message).toContain('128 + 9');
  });

  it('says what was wrong with stdout when the exit code is undocumented', () => {
    const verdict = evaluatePluginOutput(
      { exitCode: 42, signal: null, stdout: 'oops', stdoutTruncated: false },
      context,
    );
    expect(verdict.ok ? undefined : verdict.error.details?.stdout_error).toBe('OUTPUT_NOT_JSON');
  });

  it('lists schema violations of the result by JSON pointer', () => {
    const verdict = evaluatePluginOutput(
      {
        exitCode: 0,
        signal: null,
        stdout: SUCCESS.replace('"success"', '"done"'),
        stdoutTruncated: false,
      },
      context,
    );
    expect(verdict.ok ? [] : verdict.error.details?.violations).toEqual([
      { pointer: '/payload/result', message: 'Expected one of: "success", "partial", "failure"' },
    ]);
  });

  it('honours the maxBytes of the context', () => {
    const verdict = evaluatePluginOutput(
      { exitCode: 0, signal: null, stdout: SUCCESS, stdoutTruncated: false },
      { ...context, maxBytes: 100 },
    );
    expect(verdict.ok ? 'ok' : verdict.error.code).toBe('DOCUMENT_TOO_LARGE');
  });

  it('accepts a result without in_reply_to, and any in_reply_to when the request id is unknown', () => {
    const without = SUCCESS.replace(`,"in_reply_to":"${MESSAGE_ID}"`, '');
    expect(
      evaluatePluginOutput(
        { exitCode: 0, signal: null, stdout: without, stdoutTruncated: false },
        context,
      ).ok,
    ).toBe(true);
    const { requestMessageId: _, ...noRequestId } = context;
    const other = SUCCESS.replace(MESSAGE_ID, '00000000-0000-4000-8000-000000000000');
    expect(
      evaluatePluginOutput(
        { exitCode: 0, signal: null, stdout: other, stdoutTruncated: false },
        noRequestId,
      ).ok,
    ).toBe(true);
  });
});

describe('endOfJsonContainer', () => {
  it('finds the end of the first container, ignoring brackets in strings', () => {
    expect(endOfJsonContainer('{"a":"}"} x', 0)).toBe(9);
    expect(endOfJsonContainer('xx[1,[2]]', 2)).toBe(9);
    expect(endOfJsonContainer('{"a":"\\"}"}', 0)).toBe(11);
    expect(endOfJsonContainer('{"a":', 0)).toBe(-1);
  });
});

describe('BPCS exit-code table', () => {
  it('is consistent with the constants and the error mapping', () => {
    expect(BPCS_EXIT_CODE_TABLE.map((row) => row.code)).toEqual(Object.values(BPCS_EXIT_CODES));
    for (const row of BPCS_EXIT_CODE_TABLE) {
      expect(BPCS_EXIT_CODES[row.name]).toBe(row.code);
      expect(isBpcsExitCode(row.code)).toBe(true);
      if (row.code === 0) {
        expect(row.error).toBeNull();
        expect(row.results).toEqual(['success', 'partial']);
      } else {
        expect(row.error).toBe(BPCS_EXIT_CODE_ERRORS[row.code]);
        expect(row.results).toEqual(['failure']);
      }
    }
    for (const code of [-1, 6, 1.5, 126, 127, 255]) expect(isBpcsExitCode(code)).toBe(false);
  });
});
