/** `rune config show`: the effective configuration and where every value came from. */
import { describeConfig } from '@rune/core';
import type { CliIo } from '../cli-io.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded, loadCliConfig } from './command-context.js';

/** Prints the effective configuration; returns the exit code. */
export function configShowCommand(args: CommonArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const loaded = loadCliConfig(io, args);
    const rows = describeConfig(loaded);
    if (args.output === 'json' || args.output === 'jsonl') {
      const values = Object.fromEntries(
        rows.map((row) => [row.key, { value: row.value, source: row.source }]),
      );
      io.out(
        `${JSON.stringify({ files: loaded.files, values }, null, args.output === 'json' ? 2 : undefined)}\n`,
      );
      return 0;
    }
    io.out(
      `# files read: ${loaded.files.length === 0 ? '(none)' : terminalSafe(loaded.files.join(', '))}\n`,
    );
    let section = '';
    for (const row of rows) {
      const [name, key] = row.key.split('.') as [string, string];
      if (name !== section) {
        io.out(`${section === '' ? '' : '\n'}[${name}]\n`);
        section = name;
      }
      // Values come from files and the environment: JSON.stringify escapes C0, not C1 or bidi.
      io.out(
        row.value === null
          ? `# ${key} (unset)\n`
          : `${key} = ${terminalSafe(JSON.stringify(row.value))}  # ${terminalSafe(row.source)}\n`,
      );
    }
    return 0;
  });
}
