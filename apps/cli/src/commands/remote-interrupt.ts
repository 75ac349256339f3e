/**
 * Ctrl-C (SIGINT, and SIGTERM alike) of a command that starts something on a `rune serve` and
 * follows it: `rune run --server` and `rune workflow run --server`.
 *
 * The server starts the run (or workflow) when it takes the request, before its answer names the
 * id a cancel needs. A Ctrl-C in that window must not quit: the run would go on while the operator
 * believes it stopped. So a first Ctrl-C is remembered and the cancel is sent as soon as the
 * answer arrives (at once when the id is already known); the command then follows the run to
 * its end as usual, and its record says `cancelled`. A second Ctrl-C quits at once, saying on
 * stderr that the server-side run may still be running, with its id when it is known.
 */
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';

/** What a Ctrl-C stops: its kind (`run`, `workflow run`), the server and how it is cancelled. */
export interface RemoteInterruptOptions {
  /** `run` or `workflow run`, as the messages name it. */
  what: string;
  /** The server's URL. */
  base: string;
  /** The endpoint that cancels the run of `id` (for the second Ctrl-C's message). */
  cancelPath: (id: string) => string;
  /**
   * Called on the first Ctrl-C; `pending` is true when the id is not known yet, so the cancel
   * waits for the server's answer.
   */
  onFirst: (pending: boolean) => void;
}

/** The Ctrl-C handling of one remote command (installed by {@link handleRemoteInterrupts}). */
export interface RemoteInterrupts {
  /** True once Ctrl-C was pressed. */
  readonly requested: boolean;
  /**
   * The server answered with the id: a cancel asked for before is sent now, and a later Ctrl-C
   * sends it at once. `send` posts the cancel; it is called at most once (a failure is a warning
   * on stderr: the run is followed to its end all the same).
   */
  known(id: string, send: () => Promise<unknown>): void;
  /** Resolves once the cancel that was sent (if any) was answered or failed. */
  settled(): Promise<void>;
  /** Removes the signal handlers. */
  dispose(): void;
}

/** Installs the SIGINT and SIGTERM handlers of a remote command. */
export function handleRemoteInterrupts(
  io: CliIo,
  options: RemoteInterruptOptions,
): RemoteInterrupts {
  let interrupts = 0;
  let id: string | undefined;
  let send: (() => Promise<unknown>) | undefined;
  let cancelling: Promise<unknown> | undefined;
  const cancelNow = (): void => {
    if (send === undefined || cancelling !== undefined) return;
    cancelling = send().catch((error: unknown) => {
      io.err(
        `warning: the cancel was not taken: ${RuneError.from(error, 'INTERNAL_ERROR').message}\n`,
      );
    });
  };
  const onSignal = (): void => {
    interrupts++;
    if (interrupts === 1) {
      options.onFirst(id === undefined);
      cancelNow();
      return;
    }
    io.err(
      id === undefined
        ? `warning: quitting before ${options.base} answered: the ${options.what} may have started there and may still be running (its id is not known yet)\n`
        : `warning: quitting: ${options.what} ${id} may still be running on ${options.base} (POST ${options.cancelPath(id)} cancels it)\n`,
    );
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return interrupts > 0;
    },
    known(knownId, sendCancel) {
      id = knownId;
      send = sendCancel;
      if (interrupts > 0) cancelNow();
    },
    async settled() {
      await cancelling;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
