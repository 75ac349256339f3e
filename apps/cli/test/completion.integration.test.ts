/**
 * Shell completion for real: an interactive bash and zsh in a pseudo-terminal (`script`), with
 * the script `rune completion bash|zsh` prints loaded, get keystrokes — a partial command line,
 * Tab, then Ctrl-A and `echo LINE: ` so that the completed line is printed — and the test reads
 * what the shell made of it. The BUILT CLI answers through a `rune` on PATH, with a sandbox
 * config whose `[core] inventory` names the nodes and groups. Build first.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, type CliSandbox, createCliSandbox, waitFor } from './cli-harness.js';

let sandbox: CliSandbox;
let env: Record<string, string>;
const PROMPT = 'RUNE-TEST-PROMPT> ';

beforeAll(async () => {
  sandbox = createCliSandbox();
  const bin = join(sandbox.root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'rune'), `#!/bin/sh\nexec '${process.execPath}' '${CLI_BIN}' "$@"\n`);
  chmodSync(join(bin, 'rune'), 0o755);
  const inventory = join(sandbox.root, 'fleet.yaml');
  writeFileSync(
    inventory,
    [
      'nodes:',
      '  web1: { address: 10.0.0.11, tags: [web, eu] }',
      '  web2: { address: 10.0.0.12, tags: [web] }',
      '  db1: { address: 10.0.0.21, tags: [db] }',
      'groups:',
      '  frontends: [web1, web2]',
      '',
    ].join('\n'),
  );
  writeFileSync(join(sandbox.root, 'rune.toml'), `[core]\ninventory = "${inventory}"\n`);
  env = { ...sandbox.env, PATH: `${bin}:${sandbox.env.PATH}`, TERM: 'xterm' };
  const scripts = await Promise.all(
    ['bash', 'zsh'].map((shell) => sandbox.run(['completion', shell])),
  );
  writeFileSync(join(sandbox.root, 'bashrc'), `${scripts[0]?.stdout}\nPS1='${PROMPT}'\n`);
  mkdirSync(join(sandbox.root, 'zdot'));
  writeFileSync(
    join(sandbox.root, 'zdot', '.zshrc'),
    `autoload -Uz compinit && compinit -u -D\n${scripts[1]?.stdout}\nPS1='${PROMPT}'\n`,
  );
});
afterAll(() => sandbox?.cleanup());

/** Types each partial line + Tab into an interactive shell; returns the completed lines. */
async function completeInShell(shell: 'bash' | 'zsh', partials: string[]): Promise<string[]> {
  const command =
    shell === 'bash' ? `bash --noprofile --rcfile ${join(sandbox.root, 'bashrc')} -i` : `zsh -i`;
  const child = spawn('script', ['-qfc', command, '/dev/null'], {
    cwd: sandbox.root,
    env: { ...env, ZDOTDIR: join(sandbox.root, 'zdot') },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const prompts = () => output.split(PROMPT).length - 1;
  const closed = new Promise((resolve) => child.on('close', resolve));
  try {
    for (const [index, partial] of partials.entries()) {
      await waitFor(() => prompts() > index, `${shell} prompt ${index + 1}`, 20_000);
      child.stdin.write(`${partial}\t\x01echo LINE: \r`);
    }
    await waitFor(() => prompts() > partials.length, `${shell} last prompt`, 20_000);
    child.stdin.write('exit\r');
    await closed;
  } finally {
    child.kill();
  }
  return (
    output
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are the point.
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r/g, '')
      .split('\n')
      .filter((line) => line.startsWith('LINE: '))
      .map((line) => line.slice('LINE: '.length).trimEnd())
  );
}

const CASES: [string, string][] = [
  ['rune run noo', 'rune run noop'],
  ['rune run gather-logs -p arc', 'rune run gather-logs -p archive='],
  ['rune run gather-logs -p archive=t', 'rune run gather-logs -p archive=true'],
  ['rune run noop --node=loc', 'rune run noop --node=localhost'],
  ['rune run noop -n @fr', 'rune run noop -n @frontends'],
  ['rune run noop -n tag:e', 'rune run noop -n tag:eu'],
  ['rune run noop -n web1,d', 'rune run noop -n web1,db1'],
  ['rune run noop --max-f', 'rune run noop --max-failures'],
  ['rune comp', 'rune completion'],
];

describe.each(['bash', 'zsh'] as const)('%s completion of rune', (shell) => {
  it('completes commands, actions, --param names and values, nodes, @groups, tags and flags', async () => {
    const lines = await completeInShell(
      shell,
      CASES.map(([partial]) => partial),
    );
    expect(lines).toEqual(CASES.map(([, completed]) => completed));
  }, 60_000);
});
