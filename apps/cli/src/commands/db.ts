/**
 * `rune db migrate`: migrates the run store of `rune serve` (`[server] store`, or `--store`: an
 * SQLite file or a `postgres://` URL) to this build's schema. A store written by a newer RUNE is
 * refused and left alone (INVALID_CONFIG, exit 2).
 */
import type { CliIo } from '../cli-io.js';
import { formatJson } from '../render/json.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded, loadCliConfig } from './command-context.js';

/** The flags of `rune db migrate`. */
export interface DbArgs extends CommonArgs {
  /** The store to migrate instead of `[server] store`. */
  store?: string;
}

/** Runs `rune db migrate`; returns the exit code. */
export function dbMigrateCommand(args: DbArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const server = await import('@rune/server');
    const location = args.store ?? server.resolveServerSettings(loadCliConfig(io, args)).storePath;
    const report = await server.migrateRunStore(location);
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(args.output === 'json' ? formatJson(report) : `${JSON.stringify(report)}\n`);
      return 0;
    }
    const now =
      report.applied.length === 0 ? 'already up to date' : `applied ${report.applied.join(', ')}`;
    io.out(
      `${terminalSafe(report.store)} (${report.engine}): ${now}; schema ${report.schema.at(-1) ?? 'empty'} (${report.schema.length} migrations)\n`,
    );
    return 0;
  });
}
