/**
 * Issue 10, terminal injection, end to end: a REAL plugin (local transport) whose summary, error
 * message, output_data and stderr carry escape sequences (clear screen, window title, CR
 * overwrite, C1 CSI, a bidi override). The built CLI's pretty output must contain none of those
 * bytes; json output must carry them unchanged (escaped by JSON, nothing lost or rewritten).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliSandbox, createCliSandbox } from './cli-harness.js';

let sandbox: CliSandbox;

/** The text every hostile field carries, as the CLI receives it after JSON decoding. */
const HOSTILE = 'ok\x1b[2J\x1b]0;pwned\x07\r✔ success\x9b32m\u202egnp.exe';
/** Bytes a terminal obeys (C0 but \n and \t, DEL, C1, bidi controls). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const OBEYED = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/u;

function writePlugin(name: string, result: 'success' | 'failure'): void {
  const trace = '__TRACE__';
  const at = '__TS__';
  const document = {
    message_metadata: { trace_id: trace, timestamp: at },
    payload: {
      schema_version: 'bpcs_v1',
      result,
      summary: `sum ${HOSTILE}`,
      output_data: { note: `data ${HOSTILE}` },
    },
    error:
      result === 'failure'
        ? {
            code: 'PLUGIN_FAILED',
            category: 'plugin',
            message: `msg ${HOSTILE}`,
            retryable: false,
            source: { component: 'plugin:hostile' },
            trace_id: trace,
            timestamp: at,
          }
        : null,
  };
  // JSON.stringify escapes ESC, BEL and CR as \u001b, \u0007, \r; C1 and bidi stay raw UTF-8.
  const text = JSON.stringify(document);
  if (text.includes("'")) throw new Error('the template must not contain single quotes');
  const script = [
    '#!/usr/bin/env bash',
    'input=$(cat)',
    'trace=$(printf "%s" "$input" | grep -o "\\"trace_id\\":\\"[0-9a-f]*\\"" | head -n1 | cut -d"\\"" -f4)',
    'ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)',
    // Raw bytes on stderr: ESC [2J, an OSC title ended by BEL, CR, C1 CSI (UTF-8 c2 9b), RLO.
    "printf 'err \\033[2J\\033]0;pwned\\007\\roverwritten \\302\\23331m \\342\\200\\256gnp.exe\\n' >&2",
    `doc='${text}'`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    'doc=${doc//__TRACE__/$trace}',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    'doc=${doc//__TS__/$ts}',
    `printf '%s\\n' "$doc"`,
    `exit ${result === 'failure' ? 1 : 0}`,
    '',
  ].join('\n');
  const path = join(sandbox.pluginDir, `${name}.sh`);
  writeFileSync(path, script);
  chmodSync(path, 0o755);
}

beforeAll(() => {
  sandbox = createCliSandbox();
  writePlugin('hostile-ok', 'success');
  writePlugin('hostile-fail', 'failure');
});
afterAll(() => sandbox?.cleanup());

describe('text from a node never drives the operator terminal', () => {
  it.concurrent.each(['hostile-ok', 'hostile-fail'])(
    '%s: pretty output (also --verbose) shows the escapes, obeys none',
    async (action) => {
      for (const verbose of [[], ['--verbose']]) {
        const result = await sandbox.run(['run', action, '-n', 'localhost', '--yes', ...verbose]);
        expect(result.code, result.stderr).toBe(action === 'hostile-ok' ? 0 : 1);
        expect(result.stdout).not.toMatch(OBEYED);
        expect(result.stderr).not.toMatch(OBEYED);
        expect(result.stdout).toContain('\\x1b[2J');
        expect(result.stdout).toContain('\\x1b]0;pwned\\x07\\r');
        expect(result.stdout).toContain('\\x9b');
        expect(result.stdout).toContain('\\u202e');
        if (action === 'hostile-fail' || verbose.length > 0) {
          expect(result.stdout).toContain('err \\x1b[2J'); // the stderr tail, neutralized
        }
        if (verbose.length > 0) expect(result.stdout).toContain('data ok\\u001b'); // output_data
      }
    },
  );

  it.concurrent('json output keeps every byte (escaped by JSON)', async () => {
    const result = await sandbox.run([
      'run',
      'hostile-fail',
      '-n',
      'localhost',
      '--yes',
      '-o',
      'json',
    ]);
    expect(result.code).toBe(1);
    const document = JSON.parse(result.stdout);
    const node = document.nodes[0];
    expect(node.response.payload.summary).toBe(`sum ${HOSTILE}`);
    expect(node.response.payload.output_data.note).toBe(`data ${HOSTILE}`);
    expect(node.error.message).toBe(`msg ${HOSTILE}`);
    expect(node.stderr_tail).toBe(
      'err \x1b[2J\x1b]0;pwned\x07\roverwritten \x9b31m \u202egnp.exe\n',
    );
  });
});
