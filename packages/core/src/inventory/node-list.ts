/**
 * Node lists from other tools (`--nodes-file FILE`, `--nodes-file -` for stdin): one selection
 * per line, `#` starts a comment, blank lines are ignored. Each line uses the selector grammar,
 * so a plain list of host names works as well as `@web` or `!web03`.
 */
import { readFile } from 'node:fs/promises';
import { RuneError } from '@rune/protocol';

/** Largest node list read, in bytes. */
export const MAX_NODE_LIST_BYTES = 16 * 1024 * 1024;

/** Splits a node list into selections (comments and blank lines dropped). */
export function parseNodeList(text: string): string[] {
  const selections: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const hash = line.indexOf('#');
    const content = (hash === -1 ? line : line.slice(0, hash)).trim();
    if (content !== '') selections.push(content);
  }
  return selections;
}

/** Options of {@link readNodeList}. */
export interface ReadNodeListOptions {
  /** Stream read for `-` (defaults to `process.stdin`). */
  stdin?: AsyncIterable<Uint8Array | string>;
  /** File reader, injectable for tests. */
  readFile?: (path: string) => Promise<string>;
}

async function readStream(stream: AsyncIterable<Uint8Array | string>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    size += buffer.byteLength;
    if (size > MAX_NODE_LIST_BYTES)
      throw new RuneError(
        'INVALID_ARGUMENT',
        `node list on stdin exceeds ${MAX_NODE_LIST_BYTES} bytes`,
      );
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a node list from a file, or from stdin when `path` is `-`. Throws INVALID_ARGUMENT when unreadable. */
export async function readNodeList(
  path: string,
  options: ReadNodeListOptions = {},
): Promise<string[]> {
  try {
    const text =
      path === '-'
        ? await readStream(options.stdin ?? process.stdin)
        : await (options.readFile ?? ((file: string) => readFile(file, 'utf8')))(path);
    return parseNodeList(text);
  } catch (error) {
    if (RuneError.is(error)) throw error;
    const code = (error as { code?: unknown } | null)?.code;
    throw new RuneError(
      'INVALID_ARGUMENT',
      `cannot read the node list ${path === '-' ? 'from stdin' : `"${path}"`}${typeof code === 'string' ? ` (${code})` : ''}`,
      { cause: error, details: { path }, source: { component: 'rune-core' } },
    );
  }
}
