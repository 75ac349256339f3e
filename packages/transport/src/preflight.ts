/**
 * The preflight rule shared by every transport: the manifest's required commands are looked up on
 * the node, with the node's PATH, in the same round trip that starts the plugin. A missing
 * command means the plugin is not started and the run is `PLUGIN_PRECONDITION_FAILED` naming it.
 */
import { RuneError } from '@rune/protocol';

/** Largest number of commands a manifest may require (MRS `requires.commands` maxItems). */
export const MAX_PREFLIGHT_COMMANDS = 64;

/** The grammar of a required command name (MRS `requires.commands`); nothing else is ever sent. */
export const PREFLIGHT_COMMAND_PATTERN = /^[A-Za-z0-9._+-]{1,64}$/;

/**
 * POSIX sh function `rune_preflight CMD...`: prints each argument that `command -v` cannot find,
 * one per line, and returns 1 when any is missing (0 otherwise). The names are passed as separate
 * arguments, never interpolated into the script, so a hostile name cannot become shell code.
 * The text holds no single quote, so a transport can embed it in a single-quoted `sh -c` script
 * (the SSH bootstrap does).
 */
export const PREFLIGHT_FUNCTION_SH = `rune_preflight() {
  rune_preflight_status=0
  for rune_preflight_command in "$@"; do
    if ! command -v -- "$rune_preflight_command" >/dev/null 2>&1; then
      printf "%s\\n" "$rune_preflight_command"
      rune_preflight_status=1
    fi
  done
  return "$rune_preflight_status"
}
`;

/**
 * Checks the required command names before they are sent anywhere: each must match
 * {@link PREFLIGHT_COMMAND_PATTERN}, at most {@link MAX_PREFLIGHT_COMMANDS}. Throws
 * `INVALID_ARGUMENT` otherwise. Returns the names (deduplicated, in order).
 */
export function validatePreflightCommands(commands: readonly string[]): string[] {
  if (commands.length > MAX_PREFLIGHT_COMMANDS) {
    throw new RuneError(
      'INVALID_ARGUMENT',
      `preflight lists ${commands.length} commands; at most ${MAX_PREFLIGHT_COMMANDS} are allowed`,
    );
  }
  for (const command of commands) {
    if (!PREFLIGHT_COMMAND_PATTERN.test(command)) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `preflight command ${JSON.stringify(command)} does not match ${PREFLIGHT_COMMAND_PATTERN.source}`,
      );
    }
  }
  return [...new Set(commands)];
}

/**
 * The error a transport rejects with when the preflight found missing commands (nothing ran).
 * `missing` are the names `rune_preflight` printed.
 */
export function preflightFailure(
  missing: readonly string[],
  context: { node: string; transport: string },
): RuneError {
  const names = missing.join(', ');
  return new RuneError(
    'PLUGIN_PRECONDITION_FAILED',
    `${context.node} lacks the command${missing.length === 1 ? '' : 's'} the plugin requires: ${names} (nothing ran)`,
    {
      source: { component: `transport-${context.transport}`, node: context.node },
      details: { missing_commands: [...missing] },
    },
  );
}
