/**
 * Every shell example of docs/server.md runs here, in document order, as one bash script
 * (`set -euo pipefail`) against a real `rune serve` of the built CLI on a free loopback port:
 * the curl examples of every endpoint, the SSE examples, the token commands. The `rune serve`
 * line itself is the server this test starts (doc-commands.integration.test.ts lists it as
 * uncheckable for that reason); the documented address 127.0.0.1:8421 is replaced by the
 * test's. Examples assert their own answers with `jq -e`, so a wrong answer fails the script.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { CLI_BIN } from './cli-harness.js';

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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'rune-server-doc-'));
let child: ChildProcess | undefined;
afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exit = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGTERM');
    await exit;
  }
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
  const env = {
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_DATA_HOME: join(dir, 'data'),
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  };
  const port = await freePort();
  const started = spawn(process.execPath, [CLI_BIN, 'serve', '--listen', `127.0.0.1:${port}`], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child = started;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    started.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('listening on')) resolve();
    });
    started.once('exit', (code) => reject(new Error(`rune serve exited ${code}: ${log}`)));
  });
  const lines = shellExamples(readFileSync(DOC, 'utf8'));
  expect(lines.some((line) => line.includes('/v1/runs/$RUN/events'))).toBe(true);
  const script = lines
    .filter((line) => !/^rune serve(\s|$)/.test(line.trim()))
    .join('\n')
    .replaceAll('127.0.0.1:8421', `127.0.0.1:${port}`);
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
  expect(result.code, `${result.out}\n--- server log ---\n${log}`).toBe(0);
  // The SSE example printed whole events; the resumed one counted only the later ones.
  expect(result.out).toMatch(/^event: run-start$/m);
  expect(result.out).toMatch(/^rune_runs_total\{/m);
}, 60_000);
