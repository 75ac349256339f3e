/**
 * The Python plugin printed in specs/bpcs-v1.md is run for real, with real RCS requests on stdin,
 * and judged by evaluatePluginOutput: the spec's own example must honour the spec. Needs python3
 * (standard library only).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluatePluginOutput, type RcsRequest, UNTRACED_TRACE_ID } from '../src/index.js';

const specsDir = new URL('../../../specs/', import.meta.url);
const request = JSON.parse(
  readFileSync(new URL('examples/rcs/valid/gather-logs-over-ssh.json', specsDir), 'utf8'),
) as RcsRequest;

let dir = '';
let plugin = '';

beforeAll(() => {
  const probe = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error('python3 is required by this test: apt-get install -y python3-minimal');
  }
  const markdown = readFileSync(new URL('bpcs-v1.md', specsDir), 'utf8');
  const match =
    /<!-- example:python-plugin:start -->\n```python\n([\s\S]*?)```\n<!-- example:python-plugin:end -->/.exec(
      markdown,
    );
  if (match?.[1] === undefined) throw new Error('specs/bpcs-v1.md has no python-plugin example');
  dir = mkdtempSync(join(tmpdir(), 'rune-python-plugin-'));
  plugin = join(dir, 'greet.py');
  writeFileSync(plugin, match[1], { mode: 0o755 });
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function run(stdin: string | Uint8Array, traceId = request.message_metadata.trace_id) {
  const child = spawnSync('python3', [plugin], { input: stdin, timeout: 20_000 });
  expect(child.error).toBeUndefined();
  return evaluatePluginOutput(
    {
      exitCode: child.status,
      signal: child.signal,
      stdout: new Uint8Array(child.stdout),
      stdoutTruncated: false,
    },
    {
      traceId,
      action: 'greet',
      node: 'localhost',
      requestMessageId: request.message_metadata.message_id,
    },
  );
}

const withData = (data: Partial<RcsRequest['payload']['data']>, version = 'rcs_v1'): string =>
  JSON.stringify({
    ...request,
    payload: { schema_version: version, data: { ...request.payload.data, ...data } },
  });

describe('the Python plugin of specs/bpcs-v1.md', () => {
  it('succeeds on a valid request', () => {
    const verdict = run(JSON.stringify(request));
    expect(verdict.ok ? verdict.response.payload.output_data : verdict.error.toJSON()).toEqual({
      greeting: 'hello, world',
    });
  });

  it('uses its parameter and honours dry_run', () => {
    const real = run(withData({ input_parameters: { name: 'Ada' } }));
    expect(real.ok && real.response.payload.summary).toBe('greeted Ada');
    const dry = run(
      withData({ input_parameters: { name: 'Ada' }, options: { dry_run: true, timeout_ms: 1000 } }),
    );
    expect(dry.ok && dry.response.payload.output_data).toEqual({
      dry_run: true,
      would_greet: 'Ada',
    });
  });

  it.each([
    [
      'a parameter of the wrong type',
      withData({ input_parameters: { name: 5 } }),
      'INVALID_PARAMETERS',
      undefined,
    ],
    ['an unknown schema_version', withData({}, 'rcs_v2'), 'UNSUPPORTED_SCHEMA_VERSION', undefined],
    ['a request that is not JSON', 'not json', 'MALFORMED_JSON', UNTRACED_TRACE_ID],
    [
      'a request that is not UTF-8',
      new Uint8Array([0x7b, 0xff, 0x7d]),
      'INVALID_ENCODING',
      UNTRACED_TRACE_ID,
    ],
  ])('refuses %s with exit 2', (_name, stdin, pluginCode, traceId) => {
    const verdict = run(stdin, traceId);
    expect(verdict.ok ? 'ok' : verdict.error.code).toBe('PLUGIN_INVALID_INPUT');
    expect(verdict.ok ? undefined : verdict.response?.error?.code).toBe(pluginCode);
  });
});
