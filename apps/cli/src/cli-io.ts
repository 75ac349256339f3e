/**
 * The CLI's view of its process: output streams, environment and whether colour is allowed.
 * Commands write through it so that rendering can be tested without a real terminal.
 *
 * Colour is decided by Node's own terminal detection (`tty.WriteStream#getColorDepth`: FORCE_COLOR,
 * NO_COLOR, NODE_DISABLE_COLORS, TERM, COLORTERM, CI variables) rather than a package such as
 * supports-color: it is the same rule `node` itself applies, maintained with Node, and costs no
 * dependency. `--color=always|never` overrides it.
 */
import { WriteStream } from 'node:tty';

/** `--color`: `auto` (the terminal and the environment decide), `always`, `never`. */
export type ColorChoice = 'auto' | 'always' | 'never';
/** The values `--color` accepts. */
export const COLOR_CHOICES: readonly ColorChoice[] = ['auto', 'always', 'never'];

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
  /** True when stdout is a terminal. */
  outIsTty?: boolean;
  /** Width of the stderr terminal in columns, when known. */
  errColumns?: () => number | undefined;
}

/**
 * Whether to colour a stream: `always` / `never` as asked; `auto`: when FORCE_COLOR is set, as it
 * says (`0` or `false`: no, else yes, terminal or not — FORCE_COLOR wins over NO_COLOR, as in
 * Node); otherwise only on a terminal whose environment allows colours (no NO_COLOR, TERM not
 * `dumb`, ...).
 */
export function colorAllowed(
  isTty: boolean | undefined,
  env: Readonly<Record<string, string | undefined>>,
  choice: ColorChoice = 'auto',
): boolean {
  if (choice === 'always') return true;
  if (choice === 'never') return false;
  const depth = (vars: Readonly<Record<string, string | undefined>>): number =>
    WriteStream.prototype.getColorDepth.call({} as WriteStream, vars as NodeJS.ProcessEnv);
  if (env.FORCE_COLOR !== undefined) {
    // Only FORCE_COLOR: Node warns on stderr when NO_COLOR is set as well.
    return depth({ FORCE_COLOR: env.FORCE_COLOR }) > 1;
  }
  return isTty === true && depth(env) > 1;
}

/**
 * The last `--color` value on the command line (`--color X` or `--color=X`), when it is one of
 * {@link COLOR_CHOICES}; read before yargs parses, since the streams' colour is set up first.
 */
export function colorChoiceOf(argv: readonly string[]): ColorChoice | undefined {
  let choice: string | undefined;
  argv.forEach((arg, index) => {
    if (arg === '--color') choice = argv[index + 1];
    else if (arg.startsWith('--color=')) choice = arg.slice('--color='.length);
  });
  return COLOR_CHOICES.find((known) => known === choice);
}

/** `io` with colour decided by `choice` (see {@link colorAllowed}). */
export function withColorChoice(io: CliIo, choice: ColorChoice): CliIo {
  return {
    ...io,
    color: colorAllowed(io.outIsTty, io.env, choice),
    colorErr: colorAllowed(io.errIsTty, io.env, choice),
  };
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
    outIsTty: process.stdout.isTTY === true,
    errColumns: () => process.stderr.columns,
  };
}
