/**
 * Where a key path is written in a TOML text, for config errors that name `file:line:column`.
 * smol-toml parses without positions, so this scans the lines the way TOML lays them out: table
 * headers (`[a.b]`, `[[a.b]]`) set the current table, `key = value` lines (bare, quoted or dotted
 * keys) add to it. The deepest written prefix of the path wins, so a wrong entry inside an inline
 * table or array points at the line of its key. Multi-line strings are skipped.
 */

/** A 1-based position in a text. */
export interface TextPosition {
  line: number;
  column: number;
}

const BARE = /^[A-Za-z0-9_-]+/;

/** Splits a dotted TOML key (`a."b.c".d`) into its parts; undefined when it is not one. */
function keyParts(text: string): { parts: string[]; length: number } | undefined {
  const parts: string[] = [];
  let index = 0;
  for (;;) {
    while (text[index] === ' ' || text[index] === '\t') index++;
    const quote = text[index];
    if (quote === '"' || quote === "'") {
      const end = text.indexOf(quote, index + 1);
      if (end < 0) return undefined;
      parts.push(text.slice(index + 1, end));
      index = end + 1;
    } else {
      const bare = BARE.exec(text.slice(index));
      if (bare === null) return undefined;
      parts.push(bare[0]);
      index += bare[0].length;
    }
    while (text[index] === ' ' || text[index] === '\t') index++;
    if (text[index] !== '.') return { parts, length: index };
    index++;
  }
}

const commonPrefix = (a: readonly string[], b: readonly string[]): number => {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
};

/**
 * The position of the deepest written prefix of `path` (e.g. `['server', 'bogus']`) in `text`,
 * or undefined when not even its first part is written.
 */
export function locateTomlKey(text: string, path: readonly string[]): TextPosition | undefined {
  let table: string[] = [];
  let best: { depth: number; position: TextPosition } | undefined;
  let inMultiline: string | undefined;
  const consider = (full: readonly string[], position: TextPosition): void => {
    // Only a path that is all prefix of the target counts (a sibling key does not).
    const depth = commonPrefix(full, path);
    if (depth < full.length || depth === 0) return;
    if (best === undefined || depth > best.depth) best = { depth, position };
  };
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (inMultiline !== undefined) {
      if (line.includes(inMultiline)) inMultiline = undefined;
      continue;
    }
    const indent = line.length - line.trimStart().length;
    const body = line.slice(indent);
    if (body === '' || body.startsWith('#')) continue;
    if (body.startsWith('[')) {
      const double = body.startsWith('[[');
      const parsed = keyParts(body.slice(double ? 2 : 1));
      if (parsed === undefined) continue;
      table = parsed.parts;
      consider(table, { line: index + 1, column: indent + (double ? 3 : 2) });
      continue;
    }
    const parsed = keyParts(body);
    if (parsed === undefined || body[parsed.length] !== '=') continue;
    consider([...table, ...parsed.parts], { line: index + 1, column: indent + 1 });
    const value = body.slice(parsed.length + 1);
    for (const delimiter of ['"""', "'''"]) {
      const count = value.split(delimiter).length - 1;
      if (count % 2 === 1) inMultiline = delimiter;
    }
  }
  return best?.position;
}
