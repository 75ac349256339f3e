/**
 * `rune completion [bash|zsh]` prints a completion script; `rune __complete LINE` (called by
 * that script, hidden from the help) prints the candidates for the last word of LINE.
 */
import type { CliIo } from '../cli-io.js';
import { cliCompletionSources, completeWords, splitCommandLine } from '../completion/complete.js';
import { completionScript, completionShell } from '../completion/scripts.js';
import { type CommonArgs, guarded } from './command-context.js';

/** Flags of `rune completion`. */
export interface CompletionArgs extends CommonArgs {
  shell?: string;
}

/** Prints the completion script; returns the exit code. */
export function completionCommand(args: CompletionArgs, io: CliIo): Promise<number> {
  return guarded(io, args, () => {
    io.out(completionScript(completionShell(args.shell, io.env)));
    return 0;
  });
}

/**
 * Prints one candidate per line for the last word of `line` (the command line up to the
 * cursor, program name first). Always exits 0: a completion that fails offers nothing.
 */
export async function completeCommand(line: string, io: CliIo): Promise<number> {
  try {
    const words = splitCommandLine(line).slice(1);
    const candidates = await completeWords(words, await cliCompletionSources(io, words));
    if (candidates.length > 0) io.out(`${[...new Set(candidates)].join('\n')}\n`);
  } catch {
    // Nothing to offer; the shell falls back to file names.
  }
  return 0;
}
