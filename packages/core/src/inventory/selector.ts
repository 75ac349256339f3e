/**
 * The target-selector grammar of `--node`, `--nodes-file` and inventory groups.
 *
 * ```
 * selection := term { "," term }
 * term      := [ "!" ] atom { "+" atom }        "!" excludes, "+" intersects
 * atom      := "@" group | "tag:" tag | glob | name
 * glob      := a name containing * ? or [...]
 * ```
 *
 * Parsing is pure and strict: a malformed selector is an INVALID_TARGET error naming the
 * offending term, before anything is looked up. What the atoms refer to is decided later
 * (see `select-targets.ts`), so the same parser serves inventory groups and the command line.
 */
import { RuneError } from '@rune/protocol';

/** Inventory node, group and tag names: letters, digits, `_`, `.`, `-`; starts with a letter, digit or `_`. */
export const INVENTORY_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;

/** Longest selection text accepted (one `--node` value or one line of a nodes file). */
export const MAX_SELECTION_LENGTH = 65_536;

/** One atom of a selector term. */
export type SelectorAtom =
  | { kind: 'name'; value: string }
  | { kind: 'group'; value: string }
  | { kind: 'tag'; value: string }
  | { kind: 'glob'; value: string };

/** One comma-separated term: an intersection of atoms, possibly negated. */
export interface SelectorTerm {
  /** The term as written (trimmed), for error messages. */
  text: string;
  exclude: boolean;
  /** Every node matched by all atoms (intersection). */
  atoms: SelectorAtom[];
}

const GLOB_CHARS = /[*?[]/;
const GLOB_PATTERN = /^[A-Za-z0-9_.*?[\]!-]+$/;
/** Ad-hoc names may carry `user@` and `:port` and be IPv6 literals; validated in detail later. */
const NAME_PATTERN = /^[A-Za-z0-9_.:[\]%@-]+$/;

function invalid(term: string, reason: string): RuneError {
  return new RuneError('INVALID_TARGET', `invalid node selector "${term}": ${reason}`, {
    details: { selector: term, reason },
    source: { component: 'rune-core' },
  });
}

function parseAtom(text: string, term: string): SelectorAtom {
  if (text === '') throw invalid(term, 'empty selector between "+"');
  if (text.startsWith('@')) {
    const value = text.slice(1);
    if (!INVENTORY_NAME_PATTERN.test(value))
      throw invalid(term, `"${text}" is not a valid group reference (expected @name)`);
    return { kind: 'group', value };
  }
  if (text.startsWith('tag:')) {
    const value = text.slice(4);
    if (!INVENTORY_NAME_PATTERN.test(value))
      throw invalid(term, `"${text}" is not a valid tag selector (expected tag:name)`);
    return { kind: 'tag', value };
  }
  // `[::1]:22` is an IPv6 literal, not a character class: inventory names never contain ":".
  if (GLOB_CHARS.test(text) && !text.includes(':')) {
    if (!GLOB_PATTERN.test(text) || !isBalancedGlob(text))
      throw invalid(term, `"${text}" is not a valid glob (use * ? and [...] on node names)`);
    return { kind: 'glob', value: text };
  }
  if (!NAME_PATTERN.test(text) || text.length > 512)
    throw invalid(term, `"${text}" is not a valid node name or address`);
  return { kind: 'name', value: text };
}

function isBalancedGlob(glob: string): boolean {
  let open = false;
  for (const char of glob) {
    if (char === '[') {
      if (open) return false;
      open = true;
    } else if (char === ']') {
      if (!open) return false;
      open = false;
    }
  }
  return !open;
}

/**
 * Parses one selection (`web*,@db+tag:eu,!web03`) into terms. Throws INVALID_TARGET for a
 * malformed selection: empty terms, a bare `!`, invalid characters or names.
 */
export function parseSelection(selection: string): SelectorTerm[] {
  if (selection.length > MAX_SELECTION_LENGTH)
    throw invalid(`${selection.slice(0, 32)}...`, `longer than ${MAX_SELECTION_LENGTH} characters`);
  const terms: SelectorTerm[] = [];
  for (const raw of selection.split(',')) {
    const text = raw.trim();
    if (text === '') throw invalid(selection, 'empty term (two commas in a row, or a stray comma)');
    if (/\s/.test(text)) throw invalid(text, 'whitespace inside a term');
    const exclude = text.startsWith('!');
    const body = exclude ? text.slice(1) : text;
    if (body === '') throw invalid(text, '"!" must be followed by a selector');
    if (body.startsWith('!')) throw invalid(text, 'double negation');
    const atoms = body.split('+').map((part) => parseAtom(part, text));
    terms.push({ text, exclude, atoms });
  }
  return terms;
}

/** A parsed ad-hoc node reference: `[user@]host[:port]`, `[v6-address]:port` or a bare IPv6 address. */
export interface AdHocAddress {
  address: string;
  user?: string;
  port?: number;
}

const HOST_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;
const IPV6_PATTERN = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;
const USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;

function parsePort(text: string, name: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65_535)) throw invalid(name, `port "${text}" is not in 1..65535`);
  return port;
}

/**
 * Parses a name given on the command line without an inventory entry. Throws INVALID_TARGET
 * when it is neither a host name nor an IP address (with optional user and port).
 */
export function parseAdHocAddress(name: string): AdHocAddress {
  let rest = name;
  let user: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER_PATTERN.test(user)) throw invalid(name, `"${user}" is not a valid user name`);
  }
  let address: string;
  let port: number | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) throw invalid(name, 'unclosed "[" in address');
    address = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw invalid(name, 'expected ":port" after "]"');
      port = parsePort(after.slice(1), name);
    }
    if (!address.includes(':') || !IPV6_PATTERN.test(address))
      throw invalid(name, `"${address}" is not an IPv6 address`);
  } else if ((rest.match(/:/g) ?? []).length > 1) {
    address = rest;
    if (!IPV6_PATTERN.test(address)) throw invalid(name, `"${address}" is not an IPv6 address`);
  } else {
    const colon = rest.indexOf(':');
    address = colon === -1 ? rest : rest.slice(0, colon);
    if (colon !== -1) port = parsePort(rest.slice(colon + 1), name);
    if (!HOST_PATTERN.test(address))
      throw invalid(name, `"${address}" is not a valid host name or address`);
  }
  const parsed: AdHocAddress = { address };
  if (user !== undefined) parsed.user = user;
  if (port !== undefined) parsed.port = port;
  return parsed;
}
