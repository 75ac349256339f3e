import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createTtyPassphrasePrompt } from './tty-passphrase-prompt.js';

function fakeTty(
  isTTY: boolean,
): PassThrough & { isTTY: boolean; setRawMode: (mode: boolean) => void; raw: boolean[] } {
  const stream = new PassThrough() as PassThrough & {
    isTTY: boolean;
    setRawMode: (mode: boolean) => void;
    raw: boolean[];
  };
  stream.isTTY = isTTY;
  stream.raw = [];
  stream.setRawMode = (mode) => {
    stream.raw.push(mode);
  };
  return stream;
}

describe('createTtyPassphrasePrompt', () => {
  it('reads one hidden line (with backspace) in raw mode and restores the terminal', async () => {
    const input = fakeTty(true);
    const output = new PassThrough();
    let written = '';
    output.on('data', (chunk: Buffer) => {
      written += chunk.toString();
    });
    const pending = createTtyPassphrasePrompt({ input, output })('/keys/id');
    input.write('secrx\u007ft\r');
    expect(await pending).toBe('secrt');
    expect(input.raw).toEqual([true, false]);
    expect(written).toContain("Enter passphrase for key '/keys/id'");
    expect(written).not.toContain('secr');
  });

  it('gives up on Ctrl-C and never prompts without a TTY', async () => {
    const input = fakeTty(true);
    const pending = createTtyPassphrasePrompt({ input, output: new PassThrough() })('k');
    input.write('\u0003');
    expect(await pending).toBeUndefined();
    expect(
      await createTtyPassphrasePrompt({ input: fakeTty(false), output: new PassThrough() })('k'),
    ).toBeUndefined();
  });
});
