/**
 * The CLI's view of its process: output streams, environment and whether colour is allowed.
 * Commands write through it so that rendering can be tested without a real terminal.
 */

/** Where the CLI writes and what it knows about its terminal. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** True when stdout is a terminal and NO_COLOR is not set. */
  color: boolean;
  /** True when stderr is a terminal and NO_COLOR is not set. */
  colorErr: boolean;
}

/** Colour only on a TTY, never with NO_COLOR (any value) or TERM=dumb. */
export function colorAllowed(
  isTty: boolean | undefined,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (env.NO_COLOR !== undefined) return false;
  if (env.TERM === 'dumb') return false;
  return isTty === true;
}

/** The I/O of the running process. */
export function processIo(): CliIo {
  return {
    out: (text) => {
      process.stdout.write(text);
    },
    err: (text) => {
      process.stderr.write(text);
    },
    env: process.env,
    color: colorAllowed(process.stdout.isTTY, process.env),
    colorErr: colorAllowed(process.stderr.isTTY, process.env),
  };
}
