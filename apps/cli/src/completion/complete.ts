/**
 * Shell completion: `rune __complete LINE` prints the candidates for the last word of LINE (the
 * command line up to the cursor), one per line, each a whole word. The scripts of
 * `rune completion bash|zsh` ({@link completionScript}) call it and fit the candidates to what the
 * shell calls the current word (bash splits `--node=web` and `tag:web` at `=` and `:`).
 *
 * Commands and flags come from {@link COMMAND_FLAGS} (a test keeps it equal to the yargs
 * program's help: yargs' own completion runs command builders, which RUNE's do not expect); values come from what
 * `rune run` would use: action names from the plugin registry, parameter names (and the values of
 * enum and boolean parameters) from the action's manifest, node names, `@group`s and `tag:`s from
 * the inventory (`--inventory` on the line, else `[core] inventory`). Completion never fails
 * loudly: whatever cannot be loaded simply offers nothing, and the shell falls back to file names.
 */
// Static, not `await import('@rune/core')`: a dynamic import of the package keeps every export
// of it in the bundle's shared chunk (esbuild cannot tree-shake a namespace), at every start-up.
import { createRune, type Inventory, loadConfig, loadInventory } from '@rune/core';
import type { MrsParameter } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';

/** Flags whose value is a file: the shell completes file names (no candidates from RUNE). */
const FILE_FLAGS = new Set([
  '--inventory',
  '--config',
  '--nodes-file',
  '--output-dir',
  '--params',
  '--path',
  '--rules',
  '--policy',
  '--store',
  '--public-key',
  '--anchor',
]);

/** Flags with a fixed set of values. */
const CHOICES: Readonly<Record<string, readonly string[]>> = {
  '--output': ['pretty', 'json', 'jsonl'],
  '-o': ['pretty', 'json', 'jsonl'],
  '--transport': ['local', 'ssh', 'ssm'],
  '-t': ['local', 'ssh', 'ssm'],
  '--rerun': ['all', 'failed'],
  '--role': ['viewer', 'operator', 'admin'],
  '--color': ['auto', 'always', 'never'],
  '--log-format': ['human', 'json'],
  '--verb': ['view', 'dry-run', 'run', 'cancel', 'approve', 'admin'],
};

const NODE_FLAGS = new Set(['--node', '-n']);
const PARAM_FLAGS = new Set(['--param', '-p']);

/** A command's long flags, subcommands and the words its first positional takes. */
export interface CommandFlags {
  flags: readonly string[];
  subcommands?: Readonly<Record<string, CommandFlags>>;
  /** Fixed values of the first positional (e.g. the shell of `completion`). */
  positional?: readonly string[];
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: readonly string[] = [
  '--config',
  '--output',
  '--verbose',
  '--color',
  '--help',
];

/**
 * The commands and flags of the yargs program in main.ts, for completion. Kept in step with it
 * by complete.test.ts, which compares every entry with the command's `--help`.
 */
export const COMMAND_FLAGS: Readonly<Record<string, CommandFlags>> = {
  run: {
    flags: [
      '--node',
      '--nodes-file',
      '--inventory',
      '--param',
      '--params',
      '--dry-run',
      '--transport',
      '--use-ssm',
      '--timeout',
      '--concurrency',
      '--canary',
      '--max-failures',
      '--deadline',
      '--fetch-artifacts',
      '--yes',
      '--output-dir',
      '--rerun',
      '--trace',
      '--server',
    ],
  },
  'list-actions': { flags: [] },
  'plugin-info': { flags: [] },
  plugin: { flags: [], subcommands: { new: { flags: ['--dir'] } } },
  config: {
    flags: [],
    subcommands: { init: { flags: ['--path', '--force'] }, show: { flags: [] } },
  },
  audit: {
    flags: ['--action', '--node', '--trace', '--since', '--limit', '--store'],
    subcommands: {
      verify: {
        flags: ['--public-key', '--expect-head', '--anchor', '--allow-unsigned'],
      },
      key: { flags: [] },
      head: { flags: [] },
    },
  },
  serve: { flags: ['--listen', '--log-format'] },
  policy: {
    flags: [],
    subcommands: {
      check: {
        flags: ['--as', '--group', '--role', '--verb', '--action', '--node', '--param', '--policy'],
      },
      test: { flags: ['--policy'] },
    },
  },
  approve: { flags: ['--server', '--reject', '--comment', '--binding'] },
  db: { flags: [], subcommands: { migrate: { flags: ['--store'] } } },
  workflow: {
    flags: [],
    subcommands: {
      run: { flags: ['--input', '--dry-run', '--inventory', '--server', '--yes'] },
      validate: { flags: [] },
    },
  },
  rules: {
    flags: ['--rules'],
    subcommands: { test: { flags: ['--receiver'] }, list: { flags: [] } },
  },
  token: {
    flags: [],
    subcommands: {
      create: { flags: ['--name', '--role', '--expires'] },
      list: { flags: [] },
      revoke: { flags: [] },
    },
  },
  completion: { flags: [], positional: ['bash', 'zsh'] },
};

/** The commands and flags that fit after `before` (the words so far, program name excluded). */
export function commandWords(before: readonly string[]): { flags: string[]; words: string[] } {
  const [command, ...rest] = positionals(before);
  if (command === undefined) {
    return { flags: [...GLOBAL_FLAGS, '--version'], words: Object.keys(COMMAND_FLAGS) };
  }
  const entry = COMMAND_FLAGS[command];
  if (entry === undefined) return { flags: [], words: [] };
  const sub = rest[0] === undefined ? undefined : entry.subcommands?.[rest[0]];
  if (sub !== undefined)
    return { flags: [...GLOBAL_FLAGS, ...entry.flags, ...sub.flags], words: [] };
  return {
    flags: [...GLOBAL_FLAGS, ...entry.flags],
    words:
      rest.length === 0
        ? [...Object.keys(entry.subcommands ?? {}), ...(entry.positional ?? [])]
        : [],
  };
}

/** Commands whose positional is an action name. */
const ACTION_COMMANDS = new Set(['run', 'plugin-info']);

/**
 * Splits a command line into words as a shell would for completion: whitespace separates,
 * quotes group and are removed, a backslash escapes. The last word is the one being completed
 * (empty when the line ends in whitespace).
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: '"' | "'" | null = null;
  let inWord = false;
  for (let index = 0; index < line.length; index++) {
    const character = line[index] as string;
    if (quote !== null) {
      if (character === quote) quote = null;
      else if (character === '\\' && quote === '"' && index + 1 < line.length)
        word += line[++index];
      else word += character;
    } else if (character === "'" || character === '"') {
      quote = character;
      inWord = true;
    } else if (character === '\\' && index + 1 < line.length) {
      word += line[++index];
      inWord = true;
    } else if (/\s/.test(character)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += character;
      inWord = true;
    }
  }
  words.push(inWord ? word : '');
  return words;
}

/** The value of `flag` on the line (`--flag value` or `--flag=value`), if given. */
function flagValue(words: readonly string[], flag: string): string | undefined {
  for (let index = 0; index < words.length - 1; index++) {
    const word = words[index] as string;
    if (word === flag) return words[index + 1];
    if (word.startsWith(`${flag}=`)) return word.slice(flag.length + 1);
  }
  return undefined;
}

/** What the completer needs to look up; injectable so tests can count what was loaded. */
export interface CompletionSources {
  actions(): Promise<string[]>;
  parameters(action: string): Promise<Record<string, MrsParameter>>;
  inventory(path: string | undefined): Promise<Inventory | undefined>;
}

/** The words of a node selection: the last comma item, a leading `!`, and what came before. */
function nodeCandidates(current: string, inventory: Inventory | undefined): string[] {
  const comma = current.lastIndexOf(',');
  const head = current.slice(0, comma + 1);
  let item = current.slice(comma + 1);
  const bang = item.startsWith('!') ? '!' : '';
  item = item.slice(bang.length);
  const names = new Set<string>(['localhost']);
  const tags = new Set<string>();
  for (const node of inventory?.nodes ?? []) {
    names.add(node.name);
    for (const tag of node.tags) tags.add(tag);
  }
  const all = [
    ...names,
    ...[...(inventory?.groups.keys() ?? [])].map((group) => `@${group}`),
    ...[...tags].map((tag) => `tag:${tag}`),
  ];
  return all.filter((word) => word.startsWith(item)).map((word) => `${head}${bang}${word}`);
}

function parameterCandidates(current: string, parameters: Record<string, MrsParameter>): string[] {
  const equals = current.indexOf('=');
  if (equals < 0) {
    return Object.keys(parameters)
      .filter((name) => name.startsWith(current))
      .map((name) => `${name}=`);
  }
  const name = current.slice(0, equals);
  const schema = parameters[name];
  const values =
    schema?.enum !== undefined
      ? schema.enum.map(String)
      : schema?.type === 'boolean'
        ? ['true', 'false']
        : [];
  return values.map((value) => `${name}=${value}`).filter((word) => word.startsWith(current));
}

/** The command (first word that is not a flag or a flag's value) and the positionals after it. */
function positionals(words: readonly string[]): string[] {
  const found: string[] = [];
  for (let index = 0; index < words.length; index++) {
    const word = words[index] as string;
    if (word.startsWith('-')) {
      // A flag that takes a value consumes the next word (flags without one are booleans).
      if (!word.includes('=') && TAKES_VALUE.has(word)) index++;
      continue;
    }
    found.push(word);
  }
  return found;
}

const TAKES_VALUE = new Set([
  ...FILE_FLAGS,
  ...Object.keys(CHOICES),
  ...NODE_FLAGS,
  ...PARAM_FLAGS,
  '--timeout',
  '--concurrency',
  '--canary',
  '--max-failures',
  '--deadline',
  '--trace',
  '--action',
  '--node',
  '--since',
  '--limit',
  '--expect-head',
]);

/**
 * The candidates for the last word of `words` (the words after the program name).
 */
export async function completeWords(
  words: readonly string[],
  sources: CompletionSources,
): Promise<string[]> {
  const current = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const previous = before.at(-1);
  let flag = previous;
  let value = current;
  let prefix = '';
  if (current.startsWith('-') && current.includes('=')) {
    flag = current.slice(0, current.indexOf('='));
    prefix = `${flag}=`;
    value = current.slice(prefix.length);
  } else if (previous !== undefined && (previous.includes('=') || !previous.startsWith('-'))) {
    flag = undefined;
  }
  const withPrefix = (list: string[]): string[] => list.map((word) => `${prefix}${word}`);
  if (flag !== undefined) {
    if (FILE_FLAGS.has(flag)) return [];
    const choices = CHOICES[flag];
    if (choices !== undefined)
      return withPrefix(choices.filter((choice) => choice.startsWith(value)));
    if (NODE_FLAGS.has(flag)) {
      const inventory = await sources.inventory(flagValue(before, '--inventory'));
      return withPrefix(nodeCandidates(value, inventory));
    }
    if (PARAM_FLAGS.has(flag)) {
      const action = positionals(before)[1];
      if (action === undefined) return [];
      return withPrefix(parameterCandidates(value, await sources.parameters(action)));
    }
    if (TAKES_VALUE.has(flag) && prefix === '' && !current.startsWith('-')) return [];
  }
  const known = commandWords(before);
  if (current.startsWith('-')) return known.flags.filter((word) => word.startsWith(current));
  const [command, ...rest] = positionals(before);
  if (command !== undefined && ACTION_COMMANDS.has(command) && rest.length === 0) {
    return (await sources.actions()).filter((action) => action.startsWith(current));
  }
  return known.words.filter((word) => word.startsWith(current));
}

/** The real sources: the configuration, plugin registry and inventory `rune run` would use. */
export async function cliCompletionSources(
  io: CliIo,
  words: readonly string[],
): Promise<CompletionSources> {
  const configFile = flagValue(words, '--config');
  let loaded: ReturnType<typeof loadConfig> | undefined;
  try {
    loaded = loadConfig({
      env: io.env,
      ...(configFile === undefined ? {} : { configFile }),
      transportModules: CLI_TRANSPORT_MODULES,
      configModules: CLI_CONFIG_MODULES,
    });
  } catch {
    loaded = undefined;
  }
  const rune = () =>
    createRune({
      ...(loaded === undefined ? {} : { config: loaded }),
      env: io.env,
      sender: { component: 'rune-cli', version: '0' },
      onWarning: () => {},
    });
  const quietly = async <T>(fallback: T, body: () => Promise<T> | T): Promise<T> => {
    try {
      return await body();
    } catch {
      return fallback;
    }
  };
  return {
    actions: () =>
      quietly([], () =>
        rune()
          .listActions()
          .map((action) => action.action),
      ),
    parameters: (action) =>
      quietly({}, () => {
        const manifest = rune().pluginInfo(action).candidates[0]?.manifest;
        return (manifest?.parameters.properties ?? {}) as Record<string, MrsParameter>;
      }),
    inventory: (path) =>
      quietly(undefined, async () => {
        const file = path ?? loaded?.config.core.inventory;
        return file === undefined ? undefined : await loadInventory(file);
      }),
  };
}
