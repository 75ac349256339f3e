/**
 * `rune config init`: writes the commented starter configuration to the user's config file
 * (`$XDG_CONFIG_HOME/rune/config.toml`, i.e. `~/.config/rune/config.toml`) or `--path`. An
 * existing file is never overwritten without `--force`; with it, the new file is written beside
 * the old one and renamed over it, so a symlink at the path is replaced, not written through.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { expandLocalPath, resolveXdgDirs } from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { type CommonArgs, guarded } from './command-context.js';
import { STARTER_CONFIG_TOML } from './config-template.js';

/** The flags of `rune config init`. */
export interface ConfigInitArgs extends CommonArgs {
  path?: string;
  force?: boolean;
}

function writeError(path: string, error: unknown): RuneError {
  const code = (error as { code?: unknown } | null)?.code;
  return new RuneError(
    'INVALID_ARGUMENT',
    `cannot write ${path}${typeof code === 'string' ? ` (${code})` : ''}`,
    {
      details: { path, ...(typeof code === 'string' ? { reason: code } : {}) },
      cause: error,
      source: { component: 'rune-cli' },
    },
  );
}

/** Writes the starter config; returns the exit code. */
export function configInitCommand(args: ConfigInitArgs, io: CliIo): Promise<number> {
  return guarded(io, args, () => {
    const dirs = resolveXdgDirs({ env: io.env });
    const path =
      args.path === undefined
        ? join(dirs.configHome, 'rune', 'config.toml')
        : expandLocalPath(args.path, dirs.home, resolve('.'));
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw writeError(path, error);
    }
    if (args.force === true) {
      const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        writeFileSync(temporary, STARTER_CONFIG_TOML, { flag: 'wx', mode: 0o644 });
        renameSync(temporary, path);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw writeError(path, error);
      }
    } else {
      try {
        // "wx": fails if anything (a file, a symlink) is already there — no check-then-write race.
        writeFileSync(path, STARTER_CONFIG_TOML, { flag: 'wx', mode: 0o644 });
      } catch (error) {
        if ((error as { code?: unknown } | null)?.code === 'EEXIST') {
          throw new RuneError(
            'INVALID_ARGUMENT',
            `${path} already exists; not overwriting it (use --force to replace it)`,
            { details: { path, reason: 'EEXIST' }, source: { component: 'rune-cli' } },
          );
        }
        throw writeError(path, error);
      }
    }
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(
        `${JSON.stringify({ written: path }, null, args.output === 'json' ? 2 : undefined)}\n`,
      );
    } else {
      io.out(`wrote ${path}\nedit it, then check it with: rune config show\n`);
    }
    return 0;
  });
}
