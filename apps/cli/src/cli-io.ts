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
  /** True when stderr is a terminal (with or without colour): live progress is drawn there. */
  errIsTty?: boolean;
  /** Width of the stderr terminal in columns, when known. */
  errColumns?: () => number | undefined;
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

/**
 * The I/O of the running process. A reader that goes away (`rune … | head`) closes the pipe:
 * later writes are dropped instead of crashing with EPIPE, so the run still completes and is
 * fully audited.
 */
export function processIo(): CliIo {
  let stdoutOpen = true;
  let stderrOpen = true;
  process.stdout.on('error', () => {
    stdoutOpen = false;
  });
  process.stderr.on('error', () => {
    stderrOpen = false;
  });
  return {
    out: (text) => {
      if (stdoutOpen) process.stdout.write(text);
    },
    err: (text) => {
      if (stderrOpen) process.stderr.write(text);
    },
    env: process.env,
    color: colorAllowed(process.stdout.isTTY, process.env),
    colorErr: colorAllowed(process.stderr.isTTY, process.env),
    errIsTty: process.stderr.isTTY === true && process.env.TERM !== 'dumb',
    errColumns: () => process.stderr.columns,
  };
}
