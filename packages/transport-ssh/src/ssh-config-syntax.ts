/**
 * The lexical rules of OpenSSH's client configuration, ported from OpenSSH 9.2 (readconf.c,
 * misc.c, match.c) so that RUNE splits, matches and expands exactly as `ssh` does:
 * `strdelim` (keyword and Match tokens, one `=` allowed), `argv_split` (arguments with quotes,
 * backslash escapes and `#` comments), `match_pattern` / `match_pattern_list` (`*`, `?`, `!`
 * negation, case-sensitive unless told), `convtime` (`1m30s`), `%` tokens and `${VAR}`.
 *
 * Everything here is pure (no I/O) and returns `undefined` or throws {@link SshConfigSyntaxError}
 * where OpenSSH reports an error; the caller adds the file and line.
 */

/** A malformed value; the message is OpenSSH-like, the caller adds file and line. */
export class SshConfigSyntaxError extends Error {}

const WHITESPACE = ' \t\r\n';

/**
 * OpenSSH `strdelim`: the next token of `text` split on whitespace or one `=`, a token that
 * starts with `"` runs to the next `"`. Returns the token and the rest (undefined when the text
 * is used up), or undefined for an unmatched quote.
 */
export function strdelim(text: string): { token: string; rest: string | undefined } | undefined {
  let index = 0;
  while (index < text.length && !`${WHITESPACE}"=`.includes(text[index] as string)) index++;
  if (index >= text.length) return { token: text, rest: undefined };
  const skipSpace = (from: number): number => {
    let at = from;
    while (at < text.length && WHITESPACE.includes(text[at] as string)) at++;
    return at;
  };
  if (text[index] === '"') {
    // `foo"bar baz"` gives `foobar baz`: the quote is removed and the token runs to the next one.
    const close = text.indexOf('"', index + 1);
    if (close === -1) return undefined;
    const token = text.slice(0, index) + text.slice(index + 1, close);
    return { token, rest: text.slice(skipSpace(close + 1)) };
  }
  const token = text.slice(0, index);
  const sawEquals = text[index] === '=';
  let at = skipSpace(index + 1);
  if (!sawEquals && text[at] === '=') at = skipSpace(at + 1);
  return { token, rest: text.slice(at) };
}

/**
 * OpenSSH `argv_split(s, terminate_on_comment=1)`: whitespace-separated arguments, `"` and `'`
 * quoting within an argument, `\` escaping a quote, a backslash or (outside quotes) a space, and
 * a `#` at the start of an argument ending the line. Throws on an unterminated quote.
 */
export function argvSplit(text: string): string[] {
  const args: string[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    if (char === ' ' || char === '\t') {
      index++;
      continue;
    }
    if (char === '#') break;
    let quote = '';
    let arg = '';
    for (; index < text.length; index++) {
      const current = text[index] as string;
      const next = text[index + 1];
      if (current === '\\') {
        if (next === "'" || next === '"' || next === '\\' || (quote === '' && next === ' ')) {
          index++;
          arg += next;
        } else {
          arg += current;
        }
      } else if (quote === '' && (current === ' ' || current === '\t')) {
        break;
      } else if (quote === '' && (current === '"' || current === "'")) {
        quote = current;
      } else if (quote !== '' && current === quote) {
        quote = '';
      } else {
        arg += current;
      }
    }
    if (quote !== '') throw new SshConfigSyntaxError('invalid quotes');
    args.push(arg);
  }
  return args;
}

/** OpenSSH `match_pattern`: `*` any run, `?` any one character; case-sensitive. */
export function matchPattern(text: string, pattern: string): boolean {
  // Iterative with backtracking to the last `*`: the same language as the recursive original.
  let ti = 0;
  let pi = 0;
  let starPi = -1;
  let starTi = 0;
  while (ti < text.length) {
    const pc = pattern[pi];
    if (pc === '*') {
      starPi = pi++;
      starTi = ti;
    } else if (pc !== undefined && (pc === '?' || pc === text[ti])) {
      pi++;
      ti++;
    } else if (starPi !== -1) {
      pi = starPi + 1;
      ti = ++starTi;
    } else {
      return false;
    }
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

/**
 * OpenSSH `match_pattern_list`: a comma list of patterns, each optionally negated with `!`.
 * Returns -1 when a negated pattern matches, 1 for a positive match, 0 otherwise. `lowercase`
 * lowercases the patterns (the text must already be lowercase), as `match_hostname` does.
 */
export function matchPatternList(text: string, patterns: string, lowercase: boolean): -1 | 0 | 1 {
  let positive = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    let pattern = negated ? raw.slice(1) : raw;
    if (lowercase) pattern = pattern.toLowerCase();
    if (matchPattern(text, pattern)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

const TIME_MULTIPLIERS: Record<string, number> = {
  '': 1,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
  w: 604800,
};

/**
 * OpenSSH `convtime`: seconds from `90`, `1m30s`, `2h`, ... (units s m h d w, either case).
 * Returns undefined for anything else.
 */
export function convtime(value: string): number | undefined {
  if (value === '') return undefined;
  let total = 0;
  const pattern = /(\d+)([smhdwSMHDW]?)/y;
  let at = 0;
  while (at < value.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(value);
    if (match === null) return undefined;
    const multiplier = TIME_MULTIPLIERS[(match[2] as string).toLowerCase()] as number;
    total += Number(match[1]) * multiplier;
    if (!Number.isSafeInteger(total) || total > 2_147_483_647) return undefined;
    at = pattern.lastIndex;
  }
  return total;
}

/** Yes/no flags as OpenSSH's `multistate_flag` reads them. */
export function parseFlag(value: string | undefined): boolean | undefined {
  switch (value?.toLowerCase()) {
    case 'yes':
    case 'true':
      return true;
    case 'no':
    case 'false':
      return false;
    default:
      return undefined;
  }
}

/**
 * Expands `%` tokens (and `${VAR}` when `env` is given) the way OpenSSH's
 * `percent_dollar_expand` does: `%%` is a literal `%`, any other token must be in `tokens`, an
 * unset variable or an unknown token is an error.
 */
export function expandTokens(
  value: string,
  tokens: Readonly<Record<string, string>>,
  env?: Readonly<Record<string, string | undefined>>,
): string {
  let result = '';
  for (let index = 0; index < value.length; index++) {
    const char = value[index] as string;
    if (env !== undefined && char === '$' && value[index + 1] === '{') {
      const end = value.indexOf('}', index + 2);
      if (end === -1)
        throw new SshConfigSyntaxError(`environment variable in "${value}" has no closing "}"`);
      const name = value.slice(index + 2, end);
      if (name === '')
        throw new SshConfigSyntaxError(`zero-length environment variable in "${value}"`);
      const variable = env[name];
      if (variable === undefined) {
        throw new SshConfigSyntaxError(`environment variable \${${name}} in "${value}" is not set`);
      }
      result += variable;
      index = end;
      continue;
    }
    if (char !== '%') {
      result += char;
      continue;
    }
    const token = value[++index];
    if (token === '%') {
      result += '%';
      continue;
    }
    if (token === undefined) throw new SshConfigSyntaxError(`"${value}" ends with a lone %`);
    const replacement = tokens[token];
    if (replacement === undefined) {
      throw new SshConfigSyntaxError(`unknown token %${token} in "${value}"`);
    }
    result += replacement;
  }
  return result;
}

/** Whether `name` is a valid environment variable name (OpenSSH `valid_env_name`). */
export function isValidEnvName(name: string): boolean {
  return /^[A-Za-z0-9_]+$/.test(name);
}

/**
 * POSIX `fnmatch` for one path component as glob(3) uses it (no FNM_PERIOD override: a leading
 * `.` must be matched literally): `*`, `?`, `[...]` classes with `!`/`^` negation and ranges,
 * `\` escapes.
 */
export function matchGlobComponent(name: string, pattern: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.') && !pattern.startsWith('\\.')) return false;
  const match = (ni: number, pi: number): boolean => {
    while (pi < pattern.length) {
      const pc = pattern[pi] as string;
      if (pc === '*') {
        while (pattern[pi] === '*') pi++;
        if (pi === pattern.length) return true;
        for (let at = ni; at <= name.length; at++) if (match(at, pi)) return true;
        return false;
      }
      if (ni >= name.length) return false;
      const nc = name[ni] as string;
      if (pc === '?') {
        ni++;
        pi++;
        continue;
      }
      if (pc === '[') {
        const parsed = matchClass(pattern, pi, nc);
        if (parsed !== undefined) {
          if (!parsed.matched) return false;
          ni++;
          pi = parsed.next;
          continue;
        }
        // An unterminated `[` is an ordinary character.
      }
      if (pc === '\\' && pi + 1 < pattern.length) {
        if (pattern[pi + 1] !== nc) return false;
        ni++;
        pi += 2;
        continue;
      }
      if (pc !== nc) return false;
      ni++;
      pi++;
    }
    return ni === name.length;
  };
  return match(0, 0);
}

function matchClass(
  pattern: string,
  start: number,
  char: string,
): { matched: boolean; next: number } | undefined {
  let at = start + 1;
  const negated = pattern[at] === '!' || pattern[at] === '^';
  if (negated) at++;
  let matched = false;
  let first = true;
  while (at < pattern.length && (pattern[at] !== ']' || first)) {
    first = false;
    let low = pattern[at] as string;
    if (low === '\\' && at + 1 < pattern.length) low = pattern[++at] as string;
    at++;
    if (pattern[at] === '-' && at + 1 < pattern.length && pattern[at + 1] !== ']') {
      let high = pattern[at + 1] as string;
      at += 2;
      if (high === '\\' && at < pattern.length) high = pattern[at++] as string;
      if (char >= low && char <= high) matched = true;
    } else if (char === low) {
      matched = true;
    }
  }
  if (at >= pattern.length) return undefined;
  return { matched: matched !== negated, next: at + 1 };
}

/** Whether a path component contains glob metacharacters. */
export function hasGlobMagic(component: string): boolean {
  return /[*?[]/.test(component);
}
