/**
 * What the operator's terminal sees, with the BUILT CLI under a real pseudo-terminal (`script`
 * from util-linux): colour by TTY, NO_COLOR, FORCE_COLOR and --color; and the passphrase prompt
 * of an encrypted key during a fleet run with a live progress bar — the bar pauses, so nothing is
 * drawn into the prompt line. The fleet is real sshd on loopback.
 */
import { spawn } from 'node:child_process';
import { type SshdFleet, startSshdFleet } from '@rune/transport-ssh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, type CliSandbox, createCliSandbox, writeFleetFiles } from './cli-harness.js';

const PASSPHRASE = 'correct horse battery';
/** An SGR colour sequence (the progress bar's line erase `ESC [2K` is not colour). */
const ESC = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`);

let sandbox: CliSandbox;
let fleet: SshdFleet;
let inventory: string;

/** The sandbox environment without NO_COLOR (the harness sets it), plus `extra`. */
function environment(extra: Record<string, string> = {}): Record<string, string> {
  const { NO_COLOR: _dropped, ...rest } = sandbox.env;
  return { ...rest, TERM: 'xterm-256color', ...extra };
}

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `rune args` under a pseudo-terminal (stdout and stderr both on it); `onOutput` may write
 * keystrokes. Resolves with everything the terminal received.
 */
function runInPty(
  args: readonly string[],
  env: Record<string, string>,
  onOutput: (output: string, type: (text: string) => void) => void = () => {},
): Promise<string> {
  const command = [process.execPath, CLI_BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: sandbox.root, env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    onOutput(output, (text) => child.stdin.write(text));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; the terminal showed:\n${JSON.stringify(output)}`));
    }, 60_000);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(output);
    });
  });
}

/** Runs `rune args` with stdout and stderr on pipes. */
function runPiped(args: readonly string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd: sandbox.root, env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  return new Promise((resolve) => child.on('close', () => resolve(output)));
}

beforeAll(async () => {
  sandbox = createCliSandbox();
  fleet = await startSshdFleet(3, { clientKeyPassphrase: PASSPHRASE });
  const user = fleet.hosts[0]?.user ?? 'root';
  inventory = writeFleetFiles(sandbox, {
    user,
    nodes: fleet.hosts.map((host, index) => ({
      name: `web${index + 1}`,
      address: host.address,
      port: host.port,
    })),
    clientKeyFile: fleet.clientKey.privateKeyFile,
    knownHostsFile: fleet.knownHostsFile,
  });
});

afterAll(async () => {
  await fleet?.stop();
  sandbox?.cleanup();
});

describe('colour', () => {
  const noop = ['run', 'noop', '--node', 'localhost'];

  it('on a terminal by default; never with NO_COLOR or --color=never', async () => {
    expect(await runInPty(noop, environment())).toMatch(ESC);
    expect(await runInPty(noop, environment({ NO_COLOR: '1' }))).not.toMatch(ESC);
    expect(await runInPty([...noop, '--color=never'], environment())).not.toMatch(ESC);
  });

  it('on a pipe only with FORCE_COLOR or --color=always; FORCE_COLOR=0 turns it off', async () => {
    expect(await runPiped(noop, environment())).not.toMatch(ESC);
    expect(await runPiped(noop, environment({ FORCE_COLOR: '1' }))).toMatch(ESC);
    expect(await runPiped([...noop, '--color', 'always'], environment())).toMatch(ESC);
    expect(await runInPty(noop, environment({ FORCE_COLOR: '0' }))).not.toMatch(ESC);
  });
});

describe('the passphrase prompt during a fleet run', () => {
  it('pauses the progress bar: nothing is drawn into the prompt line, and the run goes on', async () => {
    const prompt = 'Enter passphrase for key';
    let answered = 0;
    let promptSeenAt: number | undefined;
    const output = await runInPty(
      ['run', 'noop', '--node', 'web1,web2,web3', '--inventory', inventory, '-p', 'sleep_ms=300'],
      environment(),
      (text, type) => {
        const prompts = text.split(prompt).length - 1;
        if (prompts > answered && promptSeenAt === undefined) {
          promptSeenAt = Date.now();
          // An observation window, not a readiness wait: a progress bar that did not pause
          // would redraw (every 250 ms) into the prompt line during it.
          setTimeout(() => {
            answered = prompts;
            promptSeenAt = undefined;
            type(`${PASSPHRASE}\r`);
          }, 1000);
        }
      },
    );
    expect(output.split(prompt).length - 1).toBeGreaterThanOrEqual(1);
    // From each prompt to the end of its line: only the prompt text, then the newline it
    // writes once the answer was read (the answer itself is never echoed).
    for (const segment of output.split(prompt).slice(1)) {
      const line = segment.slice(0, segment.indexOf('\n'));
      expect(line).toMatch(/^ '[^']+': \r?$/);
    }
    for (const name of ['web1', 'web2', 'web3'])
      expect(output).toMatch(new RegExp(`success\\S* +\\S*${name}`));
    // The bar was drawn at some point (with the nodes still running).
    expect(output).toContain('running');
    expect(output).not.toContain(PASSPHRASE);
  }, 90_000);
});
