/**
 * The two lexical rules of Ansible's INI inventory dialect, reproduced exactly because they decide
 * what a value *is*:
 *
 * - a host line is split like Python's `shlex.split(line, comments=True)` (POSIX quoting, `#`
 *   starts a comment even inside an unquoted word);
 * - every value goes through Python's `ast.literal_eval`, and stays the raw string when that
 *   fails. So `port=2222` is the integer 2222, `x="5"` on a host line is also 5 (shlex removed the
 *   quotes), `v=1.10` is the float 1.1, `e=010` stays the string "010" and `f=True` is a boolean.
 *
 * Only the literals `literal_eval` accepts are parsed: numbers, strings (with implicit
 * concatenation), True/False/None, lists, tuples and dicts. Anything else is "not a literal" and
 * the caller keeps the string, as Ansible does.
 */

/** Thrown by {@link shlexSplit} for an unterminated quote or a trailing backslash. */
export class ShlexError extends Error {}

const SHLEX_WHITESPACE = new Set([' ', '\t', '\r', '\n']);

/**
 * Splits one line like Python's `shlex.split(line, comments=True)` (POSIX mode). Throws
 * {@link ShlexError} on "No closing quotation" / "No escaped character".
 */
export function shlexSplit(line: string): string[] {
  const tokens: string[] = [];
  let token = '';
  let quoted = false;
  let state: ' ' | 'a' | "'" | '"' | '\\' = ' ';
  let escapedState: 'a' | '"' = 'a';
  const flush = (): void => {
    if (token !== '' || quoted) tokens.push(token);
    token = '';
    quoted = false;
  };
  for (let index = 0; index < line.length; index += 1) {
    const char = line.charAt(index);
    if (state === ' ' || state === 'a') {
      if (SHLEX_WHITESPACE.has(char)) {
        flush();
        state = ' ';
      } else if (char === '#') {
        // A comment runs to the end of the line, also right after a word.
        break;
      } else if (char === '\\') {
        escapedState = 'a';
        state = '\\';
      } else if (char === "'" || char === '"') {
        quoted = true;
        state = char;
      } else {
        token += char;
        state = 'a';
      }
    } else if (state === "'") {
      if (char === "'") state = 'a';
      else token += char;
    } else if (state === '"') {
      if (char === '"') state = 'a';
      else if (char === '\\') {
        escapedState = '"';
        state = '\\';
      } else token += char;
    } else {
      // After a backslash: inside double quotes it escapes only `"` and `\`.
      if (escapedState === '"' && char !== '"' && char !== '\\') token += '\\';
      token += char;
      state = escapedState;
    }
  }
  if (state === "'" || state === '"') throw new ShlexError('No closing quotation');
  if (state === '\\') throw new ShlexError('No escaped character');
  flush();
  return tokens;
}

class NotALiteral extends Error {}

type Token =
  | { kind: 'number'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'name'; value: string }
  | { kind: 'punct'; value: string };

const DIGITS = (set: string) => `[${set}](?:_?[${set}])*`;
const DECIMAL = DIGITS('0-9');
const NUMBER_PATTERNS: [RegExp, (text: string) => number][] = [
  [/^0[xX](?:_?[0-9a-fA-F])+/, (text) => Number.parseInt(text.slice(2), 16)],
  [/^0[oO](?:_?[0-7])+/, (text) => Number.parseInt(text.slice(2), 8)],
  [/^0[bB](?:_?[01])+/, (text) => Number.parseInt(text.slice(2), 2)],
  // Floats: 1.5, 1., .5, 1e3, 1.5e-3.
  [
    new RegExp(
      `^(?:(?:${DECIMAL})?\\.${DECIMAL}|${DECIMAL}\\.)(?:[eE][+-]?${DECIMAL})?|^${DECIMAL}[eE][+-]?${DECIMAL}`,
    ),
    Number.parseFloat,
  ],
  // Integers: no leading zeros except for zero itself (`010` is a SyntaxError in Python 3).
  [/^(?:[1-9](?:_?[0-9])*|0(?:_?0)*)(?![0-9_])/, (text) => Number.parseInt(text, 10)],
];

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\n': '',
};

function readString(text: string, start: number): { value: string; end: number } {
  let index = start;
  let raw = false;
  // String prefixes literal_eval accepts for str: r, u (b gives bytes: not a str literal here).
  const prefix = /^(?:[rR]|[uU])(?=['"])/.exec(text.slice(index));
  if (prefix !== null) {
    raw = prefix[0].toLowerCase() === 'r';
    index += 1;
  }
  const quote = text.startsWith(`${text.charAt(index).repeat(3)}`, index)
    ? text.charAt(index).repeat(3)
    : text.charAt(index);
  index += quote.length;
  let value = '';
  while (index < text.length) {
    if (text.startsWith(quote, index)) return { value, end: index + quote.length };
    const char = text.charAt(index);
    if (quote.length === 1 && char === '\n') break;
    if (char === '\\' && index + 1 < text.length) {
      const next = text.charAt(index + 1);
      if (raw) {
        value += char + next;
        index += 2;
        continue;
      }
      const simple = SIMPLE_ESCAPES[next];
      if (simple !== undefined) {
        value += simple;
        index += 2;
        continue;
      }
      const hex =
        next === 'x'
          ? /^[0-9a-fA-F]{2}/.exec(text.slice(index + 2))
          : next === 'u'
            ? /^[0-9a-fA-F]{4}/.exec(text.slice(index + 2))
            : next === 'U'
              ? /^[0-9a-fA-F]{8}/.exec(text.slice(index + 2))
              : null;
      if (hex !== null) {
        value += String.fromCodePoint(Number.parseInt(hex[0], 16));
        index += 2 + hex[0].length;
        continue;
      }
      if (next === 'x' || next === 'u' || next === 'U' || next === 'N') throw new NotALiteral();
      const octal = /^[0-7]{1,3}/.exec(text.slice(index + 1));
      if (octal !== null) {
        value += String.fromCodePoint(Number.parseInt(octal[0], 8));
        index += 1 + octal[0].length;
        continue;
      }
      // Unknown escapes keep their backslash, as in Python.
      value += char + next;
      index += 2;
      continue;
    }
    value += char;
    index += 1;
  }
  throw new NotALiteral();
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text.charAt(index);
    if (/\s/.test(char)) {
      index += 1;
      continue;
    }
    if (char === '#') {
      const newline = text.indexOf('\n', index);
      if (newline === -1) break;
      index = newline;
      continue;
    }
    const rest = text.slice(index);
    if (/^(?:[rRuU])?['"]/.test(rest)) {
      const string = readString(text, index);
      tokens.push({ kind: 'string', value: string.value });
      index = string.end;
      continue;
    }
    if (/^[0-9.]/.test(char) && /^\.?[0-9]/.test(rest)) {
      const match = NUMBER_PATTERNS.map(([pattern, convert]) => {
        const found = pattern.exec(rest);
        return found === null ? undefined : { text: found[0], convert };
      }).find((candidate) => candidate !== undefined);
      if (match === undefined) throw new NotALiteral();
      const after = rest.charAt(match.text.length);
      // 1j (complex), 1abc, 010: not a literal literal_eval turns into a JSON value.
      if (/[A-Za-z0-9_]/.test(after)) throw new NotALiteral();
      tokens.push({ kind: 'number', value: match.convert(match.text.replaceAll('_', '')) });
      index += match.text.length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (name !== null) {
      tokens.push({ kind: 'name', value: name[0] });
      index += name[0].length;
      continue;
    }
    if ('[](){},:+-'.includes(char)) {
      tokens.push({ kind: 'punct', value: char });
      index += 1;
      continue;
    }
    throw new NotALiteral();
  }
  return tokens;
}

function parseTokens(tokens: Token[]): unknown {
  let position = 0;
  const peek = (): Token | undefined => tokens[position];
  const isPunct = (value: string): boolean => {
    const token = peek();
    return token?.kind === 'punct' && token.value === value;
  };
  const expectPunct = (value: string): void => {
    if (!isPunct(value)) throw new NotALiteral();
    position += 1;
  };
  const sequence = (close: string): unknown[] => {
    const items: unknown[] = [];
    while (!isPunct(close)) {
      items.push(value());
      if (isPunct(',')) position += 1;
      else if (!isPunct(close)) throw new NotALiteral();
    }
    position += 1;
    return items;
  };
  const value = (): unknown => {
    const token = peek();
    if (token === undefined) throw new NotALiteral();
    position += 1;
    if (token.kind === 'number') return token.value;
    if (token.kind === 'string') {
      let text = token.value;
      // Adjacent string literals concatenate ('a' 'b' is 'ab').
      while (peek()?.kind === 'string') {
        text += (peek() as { value: string }).value;
        position += 1;
      }
      return text;
    }
    if (token.kind === 'name') {
      if (token.value === 'True') return true;
      if (token.value === 'False') return false;
      if (token.value === 'None') return null;
      throw new NotALiteral();
    }
    switch (token.value) {
      case '+':
      case '-': {
        const operand = peek();
        if (operand?.kind !== 'number') throw new NotALiteral();
        position += 1;
        return token.value === '-' ? -operand.value : operand.value;
      }
      case '[':
        return sequence(']');
      case '(': {
        // (x) is x; (x,) and (x, y) are tuples (lists in JSON).
        if (isPunct(')')) {
          position += 1;
          return [];
        }
        const first = value();
        if (isPunct(')')) {
          position += 1;
          return first;
        }
        expectPunct(',');
        return [first, ...sequence(')')];
      }
      case '{': {
        const result: Record<string, unknown> = {};
        while (!isPunct('}')) {
          const key = value();
          // A set literal ({1, 2}) has no JSON form: treat it as "not a literal".
          expectPunct(':');
          result[String(key)] = value();
          if (isPunct(',')) position += 1;
          else if (!isPunct('}')) throw new NotALiteral();
        }
        position += 1;
        return result;
      }
      default:
        throw new NotALiteral();
    }
  };
  const result = value();
  if (position !== tokens.length) throw new NotALiteral();
  return result;
}

/**
 * Ansible's INI `_parse_value`: `ast.literal_eval(text)` when `text` is a Python literal, else the
 * string itself.
 */
export function parseIniValue(text: string): unknown {
  try {
    return parseTokens(tokenize(text));
  } catch (error) {
    if (error instanceof NotALiteral) return text;
    throw error;
  }
}
