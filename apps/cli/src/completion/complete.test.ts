import type { Inventory } from '@rune/core';
import type { MrsParameter } from '@rune/protocol';
import { describe, expect, it, vi } from 'vitest';
import type { CliIo } from '../cli-io.js';
import { main } from '../main.js';
import {
  COMMAND_FLAGS,
  type CompletionSources,
  completeWords,
  GLOBAL_FLAGS,
  splitCommandLine,
} from './complete.js';
import { completionShell } from './scripts.js';

const inventory = {
  nodes: [
    { name: 'web1', tags: ['web', 'eu'] },
    { name: 'web2', tags: ['web'] },
    { name: 'db1', tags: ['db'] },
  ],
  groups: new Map([
    ['all', ['web1', 'web2', 'db1']],
    ['web', ['web1', 'web2']],
  ]),
} as unknown as Inventory;

const sources: CompletionSources = {
  actions: async () => ['check-disk', 'gather-logs', 'noop'],
  parameters: async (action): Promise<Record<string, MrsParameter>> =>
    action === 'gather-logs'
      ? {
          since: { type: 'string' },
          archive: { type: 'boolean' },
          mode: { type: 'string', enum: ['a', 'b'] },
        }
      : {},
  inventory: async () => inventory,
};

const complete = (line: string) => completeWords(splitCommandLine(line).slice(1), sources);

describe('completeWords', () => {
  it('commands, actions, flags', async () => {
    expect(await complete('rune ')).toEqual(Object.keys(COMMAND_FLAGS));
    expect(await complete('rune run ')).toEqual(['check-disk', 'gather-logs', 'noop']);
    expect(await complete('rune plugin-info g')).toEqual(['gather-logs']);
    expect(await complete('rune run noop --no')).toEqual(['--node', '--nodes-file']);
    expect(await complete('rune config ')).toEqual(['init', 'show']);
    expect(await complete('rune config init --')).toContain('--force');
    expect(await complete('rune completion ')).toEqual(['bash', 'zsh']);
  });

  it('parameter names with "=", and enum and boolean values', async () => {
    expect(await complete('rune run gather-logs -p ')).toEqual(['since=', 'archive=', 'mode=']);
    expect(await complete('rune run gather-logs --param a')).toEqual(['archive=']);
    expect(await complete('rune run gather-logs -p archive=')).toEqual([
      'archive=true',
      'archive=false',
    ]);
    expect(await complete('rune run gather-logs --param=m')).toEqual(['--param=mode=']);
    expect(await complete('rune run gather-logs -p mode=b')).toEqual(['mode=b']);
    expect(await complete('rune run gather-logs -p since=')).toEqual([]);
  });

  it('nodes, @groups and tag:s from the inventory, inside comma lists and after !', async () => {
    expect(await complete('rune run noop --node w')).toEqual(['web1', 'web2']);
    expect(await complete('rune run noop -n @')).toEqual(['@all', '@web']);
    expect(await complete('rune run noop -n tag:e')).toEqual(['tag:eu']);
    expect(await complete('rune run noop -n @web,!w')).toEqual(['@web,!web1', '@web,!web2']);
    expect(await complete('rune run noop --node=d')).toEqual(['--node=db1']);
    expect(await complete('rune run noop -n loc')).toEqual(['localhost']);
  });

  it('file flags offer nothing (the shell completes file names), choices their values', async () => {
    expect(await complete('rune run noop --inventory ')).toEqual([]);
    expect(await complete('rune run noop --output-dir ')).toEqual([]);
    expect(await complete('rune run noop -o j')).toEqual(['json', 'jsonl']);
    expect(await complete('rune run --rerun ')).toEqual(['all', 'failed']);
    expect(await complete('rune run noop --timeout ')).toEqual([]);
  });

  it('splits quoted words like a shell', () => {
    expect(splitCommandLine(`rune run noop -n 'tag:web,!web2' -p "a=b c" x\\ y `)).toEqual([
      'rune',
      'run',
      'noop',
      '-n',
      'tag:web,!web2',
      '-p',
      'a=b c',
      'x y',
      '',
    ]);
  });

  it('picks the shell from the argument or $SHELL, and refuses others', () => {
    expect(completionShell(undefined, { SHELL: '/usr/bin/zsh' })).toBe('zsh');
    expect(completionShell(undefined, {})).toBe('bash');
    expect(() => completionShell('fish', {})).toThrow(/bash or zsh/);
  });
});

describe('COMMAND_FLAGS matches the yargs program', () => {
  const io: CliIo = {
    out: () => {},
    err: () => {},
    env: { RUNE_NO_STATIC_HELP: '1', HOME: '/nonexistent/rune-complete-test' },
    color: false,
    colorErr: false,
  };
  const helpFlags = async (path: string[]): Promise<string[]> => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await main([...path, '--help'], io);
      const text = log.mock.calls.map((call) => call.join(' ')).join('\n');
      const options = text.slice(
        text.indexOf('Options:'),
        text.indexOf('Examples:') >= 0 ? text.indexOf('Examples:') : undefined,
      );
      return [...new Set(options.match(/^\s+(?:-\w, )?(--[a-z-]+)/gm) ?? [])]
        .map((line) => line.trim().replace(/^-\w, /, ''))
        .filter((flag) => flag !== '--version');
    } finally {
      log.mockRestore();
    }
  };
  const cases: [string[], readonly string[]][] = [];
  for (const [command, entry] of Object.entries(COMMAND_FLAGS)) {
    cases.push([[command], entry.flags]);
    for (const [sub, subEntry] of Object.entries(entry.subcommands ?? {}))
      cases.push([
        [command, sub],
        [...entry.flags, ...subEntry.flags],
      ]);
  }
  it.each(cases)('rune %j --help', async (path, flags) => {
    expect((await helpFlags(path)).sort()).toEqual([...GLOBAL_FLAGS, ...flags].sort());
  });
  it('completes every command of the program (a new command needs its entry)', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await main(['--help'], io);
      const text = log.mock.calls.map((call) => call.join(' ')).join('\n');
      const commands = text.slice(text.indexOf('Commands:'), text.indexOf('Options:'));
      const names = [...commands.matchAll(/^\s+rune ([a-z-]+)/gm)].map((match) => match[1]);
      expect(names.sort()).toEqual(Object.keys(COMMAND_FLAGS).sort());
    } finally {
      log.mockRestore();
    }
  });
});
