/** `rune list-actions` (alias `show-available-actions`): every action RUNE can run. */
import type { CliIo } from '../cli-io.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, createCliRune, guarded, loadCliConfig } from './command-context.js';

/** Prints the registered actions; returns the exit code. */
export function listActionsCommand(args: CommonArgs, io: CliIo): Promise<number> {
  return guarded(io, args, async () => {
    const rune = createCliRune(io, loadCliConfig(io, args), args);
    const actions = rune.listActions();
    if (args.output === 'json' || args.output === 'jsonl') {
      io.out(
        args.output === 'json'
          ? `${JSON.stringify({ actions }, null, 2)}\n`
          : actions.map((action) => `${JSON.stringify(action)}\n`).join(''),
      );
      return 0;
    }
    if (actions.length === 0) {
      io.out(
        'no actions found (built-in plugins missing and no plugin directories with plugins)\n',
      );
      return 0;
    }
    const width = Math.max(...actions.map((action) => terminalSafe(action.action).length));
    for (const action of actions) {
      const flags = [
        action.inferred ? 'inferred' : '',
        action.problem ?? '',
        action.shadowed > 0 ? `shadows ${action.shadowed}` : '',
      ].filter((flag) => flag !== '');
      const description =
        action.description.length > 80 ? `${action.description.slice(0, 79)}…` : action.description;
      const line = `${terminalSafe(action.action).padEnd(width)}  ${terminalSafe(action.version).padEnd(8)} ${terminalSafe(action.source).padEnd(10)} ${terminalSafe(description)}${flags.length > 0 ? ` [${terminalSafe(flags.join(', '))}]` : ''}`;
      io.out(`${line}\n`);
    }
    return 0;
  });
}
