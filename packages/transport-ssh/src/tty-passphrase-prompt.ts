/**
 * Asking for a private key's passphrase on the terminal, without echo — the value for
 * {@link SshTransportOptions.passphrasePrompt} in an interactive CLI. Never prompts when stdin is
 * not a TTY (CI, pipes, cron): the key is then skipped and AUTH_FAILED says why.
 */
/** Options of {@link createTtyPassphrasePrompt}. */
export interface TtyPassphrasePromptOptions {
  /** Terminal to read from (default `process.stdin`). */
  input?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  /** Where the prompt is written (default `process.stderr`, so stdout stays machine-readable). */
  output?: NodeJS.WritableStream;
}

/** Creates a prompt `(keyFile) => passphrase | undefined` reading one hidden line from the TTY. */
export function createTtyPassphrasePrompt(
  options: TtyPassphrasePromptOptions = {},
): (keyFile: string) => Promise<string | undefined> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stderr;
  return (keyFile) =>
    new Promise<string | undefined>((resolve) => {
      if (input.isTTY !== true || input.setRawMode === undefined) {
        resolve(undefined);
        return;
      }
      output.write(`Enter passphrase for key '${keyFile}': `);
      input.setRawMode(true);
      input.resume();
      let value = '';
      const done = (result: string | undefined): void => {
        input.removeListener('data', onData);
        input.setRawMode?.(false);
        input.pause();
        output.write('\n');
        resolve(result);
      };
      const onData = (chunk: Buffer | string): void => {
        for (const char of chunk.toString()) {
          if (char === '\r' || char === '\n') {
            done(value);
            return;
          }
          if (char === '\u0003' || char === '\u0004') {
            done(undefined); // Ctrl-C, Ctrl-D
            return;
          }
          if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
          else value += char;
        }
      };
      input.on('data', onData);
    });
}
