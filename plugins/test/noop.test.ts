/** noop: the end-to-end smoke plugin. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorkspace,
  errorCode,
  makeRequest,
  type PluginWorkspace,
  runAndEvaluate,
  runPlugin,
} from './harness.js';

let ws: PluginWorkspace;
beforeAll(() => {
  ws = createWorkspace();
});
afterAll(() => ws.dispose());

describe.each([
  { parser: 'jq', withoutJq: false },
  { parser: 'bash', withoutJq: true },
])('noop ($parser parser)', ({ parser, withoutJq }) => {
  it('echoes parameters, options and routing', () => {
    const message = 'hello "world"\n\\ $(touch /tmp/rune-noop-pwned) é 😀';
    const request = makeRequest('noop', { message }, { node: 'web-01', timeoutMs: 5000 });
    const { run, evaluation, response } = runAndEvaluate(ws, 'noop', request, { withoutJq });
    expect(evaluation.ok, run.stderr).toBe(true);
    expect(run.exitCode).toBe(0);
    expect(response.payload.summary).toBe(`noop: ${message.replace('\n', ' ')}`);
    expect(response.payload.output_data).toMatchObject({
      received: {
        input_parameters: { message },
        options: { dry_run: false, timeout_ms: 5000 },
        routing: request.routing,
      },
      message,
      slept_ms: 0,
      dry_run: false,
      runtime: { json_parser: parser, uid: expect.any(Number) },
    });
  });

  it('sleeps sleep_ms, but not in a dry run', () => {
    const slept = runAndEvaluate(ws, 'noop', makeRequest('noop', { sleep_ms: 300 }), { withoutJq });
    expect(slept.response.payload.output_data).toMatchObject({ slept_ms: 300 });
    expect(slept.run.durationMs).toBeGreaterThanOrEqual(300);
    const dry = runAndEvaluate(
      ws,
      'noop',
      makeRequest('noop', { sleep_ms: 600_000 }, { dryRun: true }),
      {
        withoutJq,
      },
    );
    expect(dry.response.payload.output_data).toMatchObject({ slept_ms: 0, dry_run: true });
  });

  it.each([[{ sleep_ms: -1 }], [{ sleep_ms: 600_001 }], [{ message: 42 }], [{ other: 'x' }]])(
    'rejects %j with exit 2',
    (parameters) => {
      const { run, evaluation } = runAndEvaluate(ws, 'noop', makeRequest('noop', parameters), {
        withoutJq,
      });
      expect(run.exitCode).toBe(2);
      expect(errorCode(evaluation)).toBe('PLUGIN_INVALID_INPUT');
    },
  );

  it('answers malformed stdin with exit 2 and a failure document', () => {
    const run = runPlugin(ws, ws.plugin('noop'), '{"not": "rcs"', { withoutJq });
    expect(run.exitCode).toBe(2);
    expect(run.json?.error?.code).toBe('MALFORMED_JSON');
    expect(run.json?.message_metadata.trace_id).toBe('f'.repeat(32));
  });
});

describe('JSON parser choice', () => {
  it('parses a small request in Bash even with jq on PATH (starting jq costs more than it saves)', () => {
    const request = makeRequest('noop', {});
    const { run, response } = runAndEvaluate(ws, 'noop', request, {
      env: { BPCS_JSON_PARSER: '' },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(response.payload.output_data).toMatchObject({ runtime: { json_parser: 'bash' } });
  });
});

describe("the library's deferred functions on the success path", () => {
  it('a successful noop never reads them; a failing one does (and refuses a damaged section)', () => {
    // The deferred section sits after the plugin's end; with its first marker damaged, any run
    // that loads it exits 70. The success path must not notice; a failure must.
    const text = readFileSync(ws.plugin('noop'), 'utf8');
    const at = text.indexOf('\n# ---- @rune-deferred ') + 1;
    expect(at).toBeGreaterThan(0);
    const damaged = join(ws.root, 'noop-damaged.sh');
    const marker = at + '# ---- '.length; // the '@' of '@rune-deferred'
    writeFileSync(damaged, `${text.slice(0, marker)}X${text.slice(marker + 1)}`, { mode: 0o755 });
    const ok = runPlugin(ws, damaged, makeRequest('noop', { sleep_ms: 0, message: 'hi' }), {
      withoutJq: true,
    });
    expect(ok.exitCode, ok.stderr).toBe(0);
    const failing = runPlugin(ws, damaged, makeRequest('noop', { sleep_ms: -1 }), {
      withoutJq: true,
    });
    expect(failing.exitCode).toBe(70);
    expect(failing.stderr).toContain('cannot read the deferred library functions back');
  });

  it('where mapfile has no -d (bash < 4.4) the loader reads them with read -N, to the same document', () => {
    // An exported function named mapfile shadows the builtin in the plugin's Bash and refuses
    // every call as Bash < 4.4 refuses `mapfile -d` (status 2, nothing read), noting the call.
    const calls = join(ws.root, 'mapfile-calls');
    const oldBash = { 'BASH_FUNC_mapfile%%': `() { printf '%s|' "$@" >> '${calls}'; return 2; }` };
    const request = makeRequest('noop', { sleep_ms: -1 });
    const now = runPlugin(ws, ws.plugin('noop'), request, { withoutJq: true });
    const old = runPlugin(ws, ws.plugin('noop'), request, { withoutJq: true, env: oldBash });
    expect(old.exitCode, old.stderr).toBe(2);
    expect(readFileSync(calls, 'utf8')).toBe('-d||-n|1|__rune_all|');
    expect({ ...old.json?.error, timestamp: 0 }).toEqual({ ...now.json?.error, timestamp: 0 });
    expect(old.json?.error?.code).toBe('INVALID_PARAMETERS');
    // The success path loads nothing, so it never asks.
    writeFileSync(calls, '');
    const ok = runPlugin(ws, ws.plugin('noop'), makeRequest('noop', { sleep_ms: 0 }), {
      withoutJq: true,
      env: oldBash,
    });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(existsSync(calls) && readFileSync(calls, 'utf8')).toBe('');
  });
});
