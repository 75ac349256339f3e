/**
 * The one place where text RUNE did not write itself (a node's summary, error messages, stderr,
 * node names, output_data, artifact names, manifest descriptions, config values) is made safe
 * for a terminal. Every human renderer passes such text through {@link terminalSafe} before it
 * adds its own colours; machine output (json/jsonl) never does, so it stays byte-exact.
 *
 * A terminal obeys control characters wherever they appear: ESC sequences clear the screen, set
 * the window title or repaint "failure" in green, `\r` overwrites a line, C1 CSI (0x9b) is ESC [
 * on many terminals, and the Unicode bidi controls reorder what the operator reads. All of them
 * are shown as visible escapes (`\x1b`, `\r`, `\u202e`) instead of being obeyed.
 */

/** Options of {@link terminalSafe}. */
export interface TerminalSafeOptions {
  /** Keep `\n` (stderr tails and other multi-line text); else it is shown as `\n`. Default false. */
  multiline?: boolean;
}

// C0 controls except \t (and \n, handled by the replacer), DEL, C1 controls, the bidi
// embeddings/overrides/isolates and the implicit direction marks.
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r' };

function visible(character: string): string {
  const named = NAMED[character];
  if (named !== undefined) return named;
  const code = character.codePointAt(0) ?? 0;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control character a terminal would obey replaced by a visible escape.
 * Tabs are kept; newlines only with `multiline`. Lone UTF-16 surrogates are shown as `\udXXX`
 * too (a terminal would print a replacement character, hiding that the text was malformed).
 */
export function terminalSafe(text: string, options: TerminalSafeOptions = {}): string {
  const multiline = options.multiline === true;
  return text
    .replace(UNSAFE, (character) => (multiline && character === '\n' ? '\n' : visible(character)))
    .replace(/[\ud800-\udfff]/gu, visible);
}
