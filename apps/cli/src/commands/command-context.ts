/**
 * Shared plumbing of the read-only commands (list-actions, plugin-info, config, audit): load the
 * configuration, build the facade, and report any failure as an EPS error in the requested
 * output format with the catalog's exit code.
 */
import { createRune, type LoadedConfig, loadConfig, type Rune } from '@rune/core';
import { RuneError, UNTRACED_TRACE_ID } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { formatErrorPretty } from '../render/errors.js';
import { formatJson } from '../render/json.js';
import { terminalSafe } from '../render/terminal-text.js';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';
import { CLI_VERSION } from '../version.js';

/** Flags every read-only command understands. */
export interface CommonArgs {
  config?: string;
  output?: 'pretty' | 'json' | 'jsonl';
  verbose?: boolean;
}

/** Loads the configuration as `rune run` would. */
export function loadCliConfig(io: CliIo, args: CommonArgs): LoadedConfig {
  return loadConfig({
    env: io.env,
    ...(args.config === undefined ? {} : { configFile: args.config }),
    transportModules: CLI_TRANSPORT_MODULES,
    configModules: CLI_CONFIG_MODULES,
  });
}

/** Creates the facade for a read-only command. */
export function createCliRune(io: CliIo, loaded: LoadedConfig, args: CommonArgs): Rune {
  return createRune({
    config: loaded,
    env: io.env,
    sender: { component: 'rune-cli', version: CLI_VERSION },
    onWarning: (message) => {
      if (args.verbose === true) io.err(`warning: ${terminalSafe(message)}\n`);
    },
  });
}

/** Prints an error as EPS (json/jsonl) or one line + hint (pretty); returns its exit code. */
export function reportError(io: CliIo, args: CommonArgs, error: unknown): number {
  const runeError = RuneError.from(error, 'INTERNAL_ERROR', { source: { component: 'rune-cli' } });
  const eps = runeError.toJSON();
  if (args.output === 'json' || args.output === 'jsonl') {
    io.out(
      args.output === 'json' ? formatJson({ error: eps }) : `${JSON.stringify({ error: eps })}\n`,
    );
  } else {
    io.err(formatErrorPretty(eps, io.colorErr));
  }
  return runeError.exitCode;
}

/** Runs a command body, turning any throw into an EPS report. */
export async function guarded(
  io: CliIo,
  args: CommonArgs,
  body: () => Promise<number> | number,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    return reportError(io, args, error);
  }
}

export { UNTRACED_TRACE_ID };
