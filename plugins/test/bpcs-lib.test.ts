/**
 * The BPCS Bash library, through a probe plugin that sources it: both JSON parser paths (jq on
 * PATH / jq hidden), escaping of hostile strings, the stdout guard, traps and failure documents.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleBpcsLibrary,
  createWorkspace,
  errorCode,
  evaluate,
  makeRequest,
  type PluginWorkspace,
  type RunOptions,
  runPlugin,
} from './harness.js';

const probe = fileURLToPath(new URL('./fixtures/probe.sh', import.meta.url));
const sourceLib = fileURLToPath(new URL('../lib/bpcs.sh', import.meta.url));
/**
 * BPCS_PROBE_ASSEMBLED=1 (set by bpcs-lib.assembled.test.ts): the probe sources the library as
 * the assembler ships it (its `@rune-cold` functions deferred behind stubs), so every test below
 * also runs the deferred loading.
 */
const assembled = process.env.BPCS_PROBE_ASSEMBLED === '1';
let lib = sourceLib;

let ws: PluginWorkspace;

beforeAll(() => {
  ws = createWorkspace();
  if (assembled) lib = assembleBpcsLibrary(sourceLib, ws.root);
});
afterAll(() => ws.dispose());

const PARSERS = [
  { name: 'jq', withoutJq: false },
  { name: 'bash', withoutJq: true },
] as const;

function runProbe(
  mode: string,
  input: Parameters<typeof runPlugin>[2],
  options: RunOptions = {},
  env: Record<string, string> = {},
) {
  return runPlugin(ws, probe, input, {
    ...options,
    env: { BPCS_LIB: lib, PROBE_MODE: mode, ...env, ...options.env },
  });
}

// Documents that stress the parser: escapes, unicode, surrogate pairs, nesting, numbers.
const TRICKY_PARAMETERS: Record<string, unknown> = {
  quotes: 'she said "hi" \\ and left',
  control: 'tab\tnewline\ncr\rbell\u0007 unit\u001f del\u007f',
  unicode: 'é 日本 😀 \u2028 \u00e9',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion, on purpose
  injection: '$(touch /tmp/rune-probe-pwned) `id` ${HOME} ; rm -rf /',
  empty: '',
  slash: 'a/b\\/c',
  numbers: [0, -1, 3.25, 1e3, 12345678901234],
  booleans: [true, false],
  nothing: null,
  nested: { deep: { deeper: [1, { x: 'y' }, []] }, empty: {} },
  'weird key "quoted"\n': 'value',
  'dot.key': 1,
  'dollar $(key)': 2,
};

describe.each(PARSERS)('JSON parser: $name', ({ name, withoutJq }) => {
  it('answers bpcs_get, bpcs_type, bpcs_keys and bpcs_json_at on the envelope (canonical requests make its entries on demand)', () => {
    const request = makeRequest('probe', { a: 1 }, { node: 'web-07', timeoutMs: 4321 });
    const run = runProbe('envelope', request, { withoutJq });
    expect(evaluate(run, request).ok, run.stderr).toBe(true);
    expect(run.json?.payload.output_data).toEqual({
      node: 'web-07',
      sender_type: 'object',
      routing_keys: ['action', 'node', 'transport', 'deploy_mode'],
      sender: request.message_metadata.sender,
      timeout_ms: 4321,
    });
  });

  it('reads the request and re-serializes it exactly', () => {
    const request = makeRequest('probe', TRICKY_PARAMETERS);
    const run = runProbe('echo', request, { withoutJq });
    const evaluation = evaluate(run, request);
    expect(evaluation.ok, run.stderr).toBe(true);
    const data = run.json?.payload.output_data as { document: unknown; parser: string };
    expect(data.parser).toBe(name);
    expect(data.document).toEqual(JSON.parse(JSON.stringify(request)));
  });

  it('parses a pretty-printed request with escaped unicode the same way', () => {
    const request = makeRequest('probe', { text: 'é😀', keys: ['a', 'b'] });
    const pretty = JSON.stringify(request, null, 2).replace('é😀', '\\u00e9\\ud83d\\ude00');
    const run = runProbe('echo', pretty, { withoutJq });
    expect(evaluate(run, request).ok, run.stderr).toBe(true);
    const data = run.json?.payload.output_data as { document: typeof request };
    expect(data.document.payload.data.input_parameters).toEqual({ text: 'é😀', keys: ['a', 'b'] });
  });

  it('gives typed parameter values and defaults', () => {
    const request = makeRequest(
      'probe',
      { text: 'a "b"\n', count: 12, ratio: -2.5e-3, flag: true, numbers: [1, 2, 3] },
      { dryRun: true, timeoutMs: 4321, node: 'web-01' },
    );
    const run = runProbe('getters', request, { withoutJq });
    expect(evaluate(run, request).ok, run.stderr).toBe(true);
    expect(run.json?.payload.output_data).toEqual({
      text: 'a "b"\n',
      count: 12,
      ratio: -2.5e-3,
      flag: true,
      names: ['a', 'b'],
      numbers: [1, 2, 3],
      keys: ['text', 'count', 'ratio', 'flag', 'numbers'],
      trace: request.message_metadata.trace_id,
      action: 'probe',
      node: 'web-01',
      dry_run: true,
      timeout_ms: 4321,
      has_missing: false,
    });
  });

  it.each([
    ['count', 'seven', 'an integer'],
    ['count', 1.5, 'an integer'],
    ['count', 101, 'an integer in the range 0..100'],
    ['count', -1, 'an integer in the range 0..100'],
    ['ratio', 1.5, 'a number in the range -1..1'],
    ['ratio', -1.25, 'a number in the range -1..1'],
    ['ratio', 2e3, 'a number in the range -1..1'],
    ['ratio', -1.5, 'a number in the range -1..1'],
    ['ratio', 'x', 'a number'],
    ['text', 5, 'a string'],
    ['flag', 'true', 'a boolean'],
    ['names', 'a', 'an array of strings'],
    ['names', ['a', 1], 'an array of strings'],
    ['numbers', [1, 'x'], 'an array of integers'],
  ])('rejects %s=%j with exit 2 INVALID_PARAMETERS', (param, value, expected) => {
    const request = makeRequest('probe', { [param]: value });
    const run = runProbe('getters', request, { withoutJq });
    expect(run.exitCode).toBe(2);
    const evaluation = evaluate(run, request);
    expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
    expect(run.json?.error?.code).toBe('INVALID_PARAMETERS');
    expect(run.json?.error?.category).toBe('validation');
    expect(run.json?.error?.message).toContain(`'${param}' must be ${expected}`);
  });

  it('rejects unknown parameters by name', () => {
    const request = makeRequest('probe', { text: 'x', extra: 1, 'other $(x)': 2 });
    const run = runProbe('allow', request, { withoutJq });
    expect(run.exitCode).toBe(2);
    expect(errorCode(evaluate(run, request))).toBe('PLUGIN_INVALID_INPUT');
    expect(run.json?.error?.details).toEqual({ unknown: ['extra', 'other $(x)'] });
  });

  it.each([
    ['empty input', ''],
    ['not JSON', 'hello'],
    ['truncated', '{"message_metadata": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"'],
    ['two documents', '{} {}'],
    ['trailing garbage', '{"a":1} x'],
    ['bad escape', '{"a":"\\x"}'],
    ['raw control char', '{"a":"line\nbreak"}'],
    ['single quotes', "{'a':1}"],
    ['unclosed array', '{"a":[1,2}'],
  ])('refuses malformed JSON (%s) with exit 2 MALFORMED_JSON', (_label, text) => {
    const run = runProbe('echo', text, { withoutJq });
    expect(run.exitCode).toBe(2);
    expect(run.json?.payload.result).toBe('failure');
    expect(run.json?.error?.code).toBe('MALFORMED_JSON');
    expect(run.json?.error?.category).toBe('protocol');
  });

  it('refuses an invalid number (leading zero) in a request', () => {
    const request = makeRequest('probe', { n: 1 });
    const text = JSON.stringify(request).replace('"n":1', '"n":01');
    const run = runProbe('echo', text, { withoutJq });
    // jq 1.6 reads 01 as 1; the Bash parser is strict.
    if (name === 'bash') {
      expect(run.exitCode).toBe(2);
      expect(run.json?.error?.code).toBe('MALFORMED_JSON');
    } else {
      expect(evaluate(run, request).ok).toBe(true);
    }
  });

  it('refuses documents nested deeper than 64 levels', () => {
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
    const request = makeRequest('probe', {});
    const text = JSON.stringify(request).replace(
      '"input_parameters":{}',
      `"input_parameters":{"d":${deep}}`,
    );
    const run = runProbe('echo', text, { withoutJq });
    expect(run.exitCode).toBe(2);
    expect(run.json?.error?.code).toBe('DOCUMENT_TOO_DEEP');
    expect(run.json?.message_metadata.trace_id).toBe(request.message_metadata.trace_id);
  });

  it('refuses an unknown schema_version with exit 2 UNSUPPORTED_SCHEMA_VERSION, echoing the ids', () => {
    const request = makeRequest('probe', {});
    const text = JSON.stringify({
      ...request,
      payload: { ...request.payload, schema_version: 'rcs_v9' },
    });
    const run = runProbe('echo', text, { withoutJq });
    expect(run.exitCode).toBe(2);
    const evaluation = evaluate(run, request);
    expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
    expect(run.json?.error?.code).toBe('UNSUPPORTED_SCHEMA_VERSION');
    expect(run.json?.error?.details).toEqual({ schema_version: 'rcs_v9', supported: ['rcs_v1'] });
    expect(run.json?.message_metadata.in_reply_to).toBe(request.message_metadata.message_id);
    // Only what the envelope checks passed before this one: no routing values yet.
    expect(run.json?.error?.source).toEqual({ component: 'plugin:probe' });
  });

  it('refuses a request without trace id or options as a schema violation', () => {
    const request = makeRequest('probe', {});
    const noOptions = JSON.parse(JSON.stringify(request)) as {
      payload: { data: { options?: unknown } };
    };
    delete noOptions.payload.data.options;
    const run = runProbe('echo', JSON.stringify(noOptions), { withoutJq });
    expect(run.exitCode).toBe(2);
    expect(run.json?.error?.code).toBe('SCHEMA_VIOLATION');
    expect(evaluate(run, request).ok).toBe(false);

    const badTrace = JSON.stringify(request).replace(request.message_metadata.trace_id, 'nope');
    const run2 = runProbe('echo', badTrace, { withoutJq });
    expect(run2.exitCode).toBe(2);
    expect(run2.json?.error?.code).toBe('SCHEMA_VIOLATION');
    expect(run2.json?.message_metadata.trace_id).toBe('f'.repeat(32));
  });
});

describe('output', () => {
  const hostile = [
    'quotes " and \\ backslashes \\" \\\\',
    'newlines\nand\r\ncarriage\ttabs \u0001\u0002\u001b[31m escape codes',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion, on purpose
    '$(touch /tmp/rune-probe-pwned) `touch /tmp/rune-probe-pwned` ${PATH}',
    'unicode é 日本語 😀 \u2028\u2029 \ufeff',
    '%s %d %n \\x41 \\u0041',
  ];
  it.each(hostile)('round-trips hostile string %j as valid JSON', (value) => {
    const file = join(ws.root, 'hostile.txt');
    writeFileSync(file, value);
    const request = makeRequest('probe');
    const run = runProbe('escape', request, {}, { PROBE_FILE: file });
    const evaluation = evaluate(run, request);
    expect(evaluation.ok, run.stderr).toBe(true);
    const data = run.json?.payload.output_data as Record<string, unknown>;
    expect(data.value).toBe(value);
    expect(data.object).toEqual({ [`key ${value}`]: value });
    expect(data.warnings).toEqual([value]);
    expect(run.json?.payload.result).toBe('partial');
    expect(run.json?.payload.summary).toBe(value.replace(/[\r\n]/g, ' '));
  });

  it('never executes what it escapes', async () => {
    const { existsSync } = await import('node:fs');
    expect(existsSync('/tmp/rune-probe-pwned')).toBe(false);
  });

  it('replaces invalid UTF-8 with U+FFFD and keeps valid multibyte text', () => {
    const file = join(ws.root, 'invalid.bin');
    const bytes = Buffer.concat([
      Buffer.from('ok é '),
      Buffer.from([0xff, 0xfe, 0x20, 0xc3, 0x28, 0x20, 0xe2, 0x82, 0x20, 0xed, 0xa0, 0x80, 0x20]),
      Buffer.from('😀 end\n'),
      Buffer.from([0xf0, 0x9f, 0x98]),
      Buffer.from('\nsecond line é'),
    ]);
    writeFileSync(file, bytes);
    const request = makeRequest('probe');
    const run = runProbe('escape', request, {}, { PROBE_FILE: file });
    const evaluation = evaluate(run, request);
    expect(evaluation.ok, run.stderr).toBe(true);
    const value = (run.json?.payload.output_data as { value: string } | undefined)?.value ?? '';
    expect(value.startsWith('ok é ')).toBe(true);
    expect(value).toContain('😀 end\n');
    expect(value).toContain('\nsecond line é');
    expect(value).toContain('\ufffd');
    expect(value).toContain('ok é \ufffd\ufffd \ufffd(');
    expect(value).not.toMatch(/[\ud800-\udfff]/u);
  });

  it('keeps stray output of the plugin off stdout', () => {
    const request = makeRequest('probe');
    const run = runProbe('stray-echo', request);
    expect(evaluate(run, request).ok).toBe(true);
    expect(run.stderr).toContain('this line must not reach stdout');
    expect(run.stdout.toString()).not.toContain('reach stdout');
  });

  it('prints exactly one document with message_metadata for success', () => {
    const request = makeRequest('probe');
    const run = runProbe('echo', request);
    const text = run.stdout.toString();
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(run.json?.message_metadata).toMatchObject({
      trace_id: request.message_metadata.trace_id,
      in_reply_to: request.message_metadata.message_id,
      plugin: { name: 'probe', version: '1.2.3' },
    });
    expect(run.json?.message_metadata.timestamp).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/,
    );
    expect(run.json?.error).toBeNull();
  });

  it.each([
    [1, 'PLUGIN_FAILED', 'PLUGIN_FAILED'],
    [3, 'PLUGIN_PRECONDITION_FAILED', 'PLUGIN_PRECONDITION_FAILED'],
    [4, 'PLUGIN_PERMISSION_DENIED', 'PLUGIN_PERMISSION_DENIED'],
    [5, 'PLUGIN_OPERATION_TIMEOUT', 'PLUGIN_OPERATION_TIMEOUT'],
  ])('bpcs_fail %i %s gives a failure document the evaluator maps to %s', (exit, code, judged) => {
    const request = makeRequest('probe', {}, { node: 'db-7' });
    const run = runProbe('fail', request, {}, { PROBE_EXIT: String(exit), PROBE_CODE: code });
    expect(run.exitCode).toBe(exit);
    const evaluation = evaluate(run, request);
    expect(errorCode(evaluation)).toBe(judged);
    expect(run.json?.payload.output_data).toEqual({ partial_data: 42 });
    expect(run.json?.error).toMatchObject({
      code,
      category: 'plugin',
      message: 'it failed',
      retryable: code === 'PLUGIN_OPERATION_TIMEOUT',
      source: { component: 'plugin:probe', node: 'db-7', action: 'probe' },
      trace_id: request.message_metadata.trace_id,
      details: { reason: 'test' },
    });
  });

  it('turns an unexpected error (set -e) into one failure document, exit 1', () => {
    const request = makeRequest('probe');
    const run = runProbe('unexpected', request);
    expect(run.exitCode).toBe(1);
    expect(errorCode(evaluate(run, request))).toBe('PLUGIN_FAILED');
    expect(run.json?.error?.message).toMatch(/exited unexpectedly.*line \d+/);
    expect(run.json?.error?.details).toMatchObject({ failed_command: 'false' });
    expect(run.json?.payload.output_data).toEqual({ before: 'crash' });
  });

  it('turns an unbound variable (set -u) into a failure document', () => {
    const request = makeRequest('probe');
    const run = runProbe('unbound', request);
    expect(run.exitCode).toBe(1);
    expect(errorCode(evaluate(run, request))).toBe('PLUGIN_FAILED');
  });

  it('reports a plugin that exits without a result as a failure', () => {
    const request = makeRequest('probe');
    const run = runProbe('exit-without-result', request);
    expect(run.exitCode).toBe(1);
    expect(errorCode(evaluate(run, request))).toBe('PLUGIN_FAILED');
  });

  it('carries a failure raised inside a command substitution to the main shell', () => {
    const request = makeRequest('probe');
    const run = runProbe('subshell-fail', request);
    expect(run.exitCode).toBe(3);
    expect(errorCode(evaluate(run, request))).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(run.json?.error?.message).toBe('failed inside a subshell');
  });

  it('bpcs_require_cmd names the missing command (exit 3)', () => {
    const request = makeRequest('probe');
    const run = runProbe('require', request);
    expect(run.exitCode).toBe(3);
    expect(errorCode(evaluate(run, request))).toBe('PLUGIN_PRECONDITION_FAILED');
    expect(run.json?.error?.message).toContain('definitely-not-a-command-rune');
    expect(run.json?.error?.details).toEqual({
      missing_commands: ['definitely-not-a-command-rune'],
    });
  });

  it('never prints a document larger than the limit', () => {
    const request = makeRequest('probe');
    const run = runProbe('big', request, { extraPath: [ws.toolDir('tr')] });
    expect(run.exitCode).toBe(1);
    expect(run.stdout.length).toBeLessThan(10_000);
    expect(run.json?.error?.message).toContain('exceeded');
  });

  it('declares an artifact with size and sha256', () => {
    const file = join(ws.root, 'artifact.txt');
    const request = makeRequest('probe');
    const run = runProbe(
      'artifact',
      request,
      { extraPath: [ws.toolDir('cp')] },
      { PROBE_FILE: file },
    );
    expect(evaluate(run, request).ok, run.stderr).toBe(true);
    expect(run.json?.payload.artifacts).toEqual([
      {
        path: file,
        size: 6,
        sha256: '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
        description: 'a file',
      },
    ]);
    expect(readFileSync(file, 'utf8')).toBe('hello\n');
  });

  it('removes scratch dirs that SIGKILLed runs left behind, and only those', async () => {
    const { mkdirSync, existsSync, rmSync } = await import('node:fs');
    // A pid that cannot be running: above the kernel's pid_max ceiling (4194304).
    const dead = join(ws.root, 'rune-plugin.4194999.deadbeef');
    // This test process is alive: its directory must survive.
    const live = join(ws.root, `rune-plugin.${process.pid}.cafebabe`);
    // Not ours by name: never touched.
    const other = join(ws.root, 'rune-plugin-other.123.x');
    for (const dir of [dead, live, other]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dead, 'jq.err'), 'stale');
    try {
      const request = makeRequest('probe');
      const run = runProbe('echo', request, {}, { TMPDIR: ws.root });
      expect(evaluate(run, request).ok, run.stderr).toBe(true);
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(existsSync(other)).toBe(true);
    } finally {
      for (const dir of [dead, live, other]) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers SIGTERM with a failure document and removes its temp dir', async () => {
    const request = makeRequest('probe');
    const child = spawn('/bin/bash', [probe], {
      detached: true,
      env: {
        PATH: ws.baseWithJq,
        TMPDIR: ws.root,
        BPCS_LIB: lib,
        PROBE_MODE: 'sleep',
      },
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdin.end(JSON.stringify(request));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // As the control node does on a timeout: signal the whole process group.
    process.kill(-(child.pid ?? 0), 'SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    const doc = JSON.parse(Buffer.concat(chunks).toString()) as { error: { message: string } };
    expect(doc.error.message).toContain('SIGTERM');
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(ws.root).filter((name) => name.startsWith('rune-plugin.'))).toEqual([]);
  });
});
