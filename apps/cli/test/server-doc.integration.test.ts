/**
 * Every shell example of docs/server.md runs here, in document order, as one bash script
 * (`set -euo pipefail`) against a real `rune serve` of the built CLI on a free loopback port:
 * the curl examples of every endpoint, the SSE examples, the token commands. The `rune serve`
 * line itself is the server this test starts (doc-commands.integration.test.ts lists it as
 * uncheckable for that reason); the documented address 127.0.0.1:8421 is replaced by the
 * test's. Examples assert their own answers with `jq -e`, so a wrong answer fails the script.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { CLI_BIN, type ServeProcess, serveHome, startServeProcess } from './cli-harness.js';

const DOC = fileURLToPath(new URL('../../../docs/server.md', import.meta.url));

/** The lines of every ```sh block, in order, with continuations kept. */
function shellExamples(markdown: string): string[] {
  const lines: string[] = [];
  let inSh = false;
  for (const line of markdown.split('\n')) {
    if (/^```/.test(line)) {
      inSh = !inSh && /^```(sh|bash)\s*$/.test(line);
      continue;
    }
    if (inSh) lines.push(line);
  }
  return lines;
}

const { dir, env: homeEnv } = serveHome('rune-server-doc-');
let serve: ServeProcess | undefined;
afterAll(async () => {
  await serve?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('docs/server.md: every shell example runs against a real rune serve', async () => {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'rune'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_BIN)} "$@"\n`,
  );
  chmodSync(join(bin, 'rune'), 0o755);
  const env = { ...homeEnv, PATH: `${bin}:${homeEnv.PATH}` };
  serve = await startServeProcess(undefined, env, ['--listen', '127.0.0.1:0']);
  const address = serve.url.replace(/^http:\/\//, '');
  const log = serve.log;
  const lines = shellExamples(readFileSync(DOC, 'utf8'));
  expect(lines.some((line) => line.includes('/v1/runs/$RUN/events'))).toBe(true);
  const script = lines
    .filter((line) => !/^rune serve(\s|$)/.test(line.trim()))
    .join('\n')
    .replaceAll('127.0.0.1:8421', address);
  const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const bash = spawn('bash', ['-euo', 'pipefail', '-c', script], { env, cwd: dir });
    let out = '';
    bash.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    bash.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    bash.once('exit', (code) => resolve({ code, out }));
  });
  expect(result.code, `${result.out}\n--- server log ---\n${log()}`).toBe(0);
  // The SSE example printed whole events; the resumed one counted only the later ones.
  expect(result.out).toMatch(/^event: run-start$/m);
  expect(result.out).toMatch(/^rune_runs_total\{/m);
}, 180_000); // a dozen `rune` processes and a server; minutes on a loaded machine
