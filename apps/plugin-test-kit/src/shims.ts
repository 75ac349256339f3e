/**
 * PATH shims: stand-ins for the commands a plugin drives (systemctl, docker, journalctl, ...).
 *
 * Tools absent from a test machine are simulated, never skipped; tools present on it must never
 * really run from a test (a test must not restart the developer's Docker). So every run gets a
 * shim directory first on PATH holding a shim for each scripted command, each command the
 * manifest requires, and a fixed set of commands that change a system. Every call is recorded,
 * which is how dry-run honesty is checked.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MutatingCommand, ShimRule, Shims } from './cases-file.js';

/** The shim program (plain JavaScript, shipped next to src/ and dist/). */
export const SHIM_RUNNER_PATH = fileURLToPath(new URL('../shim/shim-runner.mjs', import.meta.url));

const verbs = (words: string): string => `(^|\\s)(${words})(\\s|$)`;

/** Commands that change a system, shimmed in every run so a test never runs the real ones. */
export const DEFAULT_MUTATING_COMMANDS: readonly MutatingCommand[] = [
  {
    command: 'systemctl',
    args: verbs(
      'start|stop|restart|reload|try-restart|reload-or-restart|try-reload-or-restart|enable|disable|reenable|mask|unmask|kill|reset-failed|daemon-reload|isolate|set-property|preset|revert|set-default|reboot|poweroff|halt|suspend|hibernate',
    ),
  },
  { command: 'service', args: verbs('start|stop|restart|reload|force-reload') },
  {
    command: 'docker',
    args: verbs(
      'start|stop|restart|kill|rm|rmi|run|create|pause|unpause|update|prune|exec|build|pull|push|rename|commit|load|import|tag',
    ),
  },
  {
    command: 'podman',
    args: verbs('start|stop|restart|kill|rm|rmi|run|create|pause|unpause|update|prune|exec'),
  },
  {
    command: 'nomad',
    args: verbs('stop|run|restart|drain|eligibility|gc|purge|revert|scale|dispatch|signal'),
  },
  { command: 'journalctl', args: '--vacuum|--rotate|--flush|--relinquish-var|--setup-keys' },
  { command: 'reboot' },
  { command: 'shutdown' },
  { command: 'halt' },
  { command: 'poweroff' },
  { command: 'apt-get', args: verbs('install|remove|purge|upgrade|dist-upgrade|autoremove') },
  { command: 'yum', args: verbs('install|remove|erase|update|upgrade') },
  { command: 'dnf', args: verbs('install|remove|erase|update|upgrade') },
];

/**
 * Commands a manifest may require that are safe to run for real in a test (they read, or write
 * only where the plugin points them). Other required commands get a default shim, so a test never
 * depends on — or changes — what is installed on the test machine.
 */
export const REAL_COMMANDS: ReadonlySet<string> = new Set(
  (
    'awk base64 basename bash cat chmod cp cut date dd df dirname dmesg du echo env find free ' +
    'getconf grep gzip head hostname id jq ln ls md5sum mkdir mktemp mv nproc od printf ps ' +
    'readlink realpath rm sed seq sh sha256sum sleep sort stat tail tar tee test timeout touch tr ' +
    'true false uname uniq wc xargs zcat'
  ).split(' '),
);

/** One recorded shim call. */
export interface ShimCall {
  command: string;
  args: string[];
  mutating: boolean;
  /** Index of the rule that answered, or -1 for the default answer. */
  rule: number;
}

/** Options of {@link createShimDirectory}. */
export interface ShimDirectoryOptions {
  /** Directory to create the shims in (created if missing). */
  directory: string;
  /** Scripted shims, by command. */
  shims: Shims;
  /** Commands to shim with the default answer even without a rule (manifest requirements); those in {@link REAL_COMMANDS} are left real. */
  extraCommands?: readonly string[];
  /** Mutating patterns in addition to {@link DEFAULT_MUTATING_COMMANDS}. */
  mutating?: readonly MutatingCommand[];
}

/** A populated shim directory. */
export interface ShimDirectory {
  directory: string;
  /** The JSON-lines call log. */
  logFile: string;
  /** Reads the calls recorded so far. */
  calls(): Promise<ShimCall[]>;
}

const quote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/** Writes one shim per command into `options.directory`. */
export async function createShimDirectory(options: ShimDirectoryOptions): Promise<ShimDirectory> {
  const { directory } = options;
  const specDir = join(directory, '.spec');
  const stateDir = join(directory, '.state');
  await mkdir(specDir, { recursive: true });
  await mkdir(stateDir, { recursive: true });
  const logFile = join(directory, '.calls.jsonl');
  await writeFile(logFile, '');
  const mutating = [...DEFAULT_MUTATING_COMMANDS, ...(options.mutating ?? [])];
  const commands = new Set<string>([
    ...DEFAULT_MUTATING_COMMANDS.map((entry) => entry.command),
    ...Object.keys(options.shims),
    ...(options.extraCommands ?? []).filter((command) => !REAL_COMMANDS.has(command)),
  ]);
  for (const command of commands) {
    const scripted = options.shims[command];
    const rules: ShimRule[] =
      scripted === undefined ? [] : Array.isArray(scripted) ? scripted : [scripted];
    const specFile = join(specDir, `${command}.json`);
    await writeFile(
      specFile,
      JSON.stringify({
        command,
        rules,
        mutating: mutating.filter((entry) => entry.command === command),
        logFile,
        stateDir,
      }),
    );
    const shimPath = join(directory, command);
    await writeFile(
      shimPath,
      `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(SHIM_RUNNER_PATH)} ${quote(specFile)} "$@"\n`,
    );
    await chmod(shimPath, 0o755);
  }
  return {
    directory,
    logFile,
    async calls() {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as ShimCall);
    },
  };
}

/** Merges file-level and case-level shims; a case's rules for a command come first. */
export function mergeShims(base: Shims | undefined, override: Shims | undefined): Shims {
  const merged: Shims = { ...base };
  for (const [command, rules] of Object.entries(override ?? {})) {
    const baseRules = merged[command];
    const list = (value: Shims[string] | undefined): ShimRule[] =>
      value === undefined ? [] : Array.isArray(value) ? value : [value];
    merged[command] = [...list(rules), ...list(baseRules)];
  }
  return merged;
}

/** "command arg1 arg2", as calls are matched and shown. */
export function formatCall(call: ShimCall): string {
  return [call.command, ...call.args].join(' ');
}
