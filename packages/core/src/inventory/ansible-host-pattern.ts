/**
 * Ansible host patterns as they appear in inventories: an optional `:port` suffix and ranges
 * such as `web[01:03].example.com` (zero-padded), `db[a:c]` (letters) and `node[0:10:5]` (a
 * step), several per name. The rules and error texts follow Ansible's
 * `expand_hostname_range` and `parse_address`.
 */

/** Thrown for a malformed range; the caller adds file and line. */
export class HostPatternError extends Error {}

/** Largest number of hosts one pattern may expand to (a typo such as `[1:99999999]` is a bug). */
export const MAX_EXPANDED_HOSTS = 100_000;

const ASCII_LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A host pattern split into the host names it stands for and the port it names, if any. */
export interface ExpandedHostPattern {
  hosts: string[];
  port?: number;
}

function expandRanges(pattern: string, out: string[]): void {
  const open = pattern.indexOf('[');
  if (open === -1) {
    out.push(pattern);
    return;
  }
  const close = pattern.indexOf(']', open);
  if (close === -1) throw new HostPatternError(`unterminated host range in "${pattern}"`);
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const bounds = pattern.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3)
    throw new HostPatternError('host range must be begin:end or begin:end:step');
  const begin = bounds[0] === '' ? '0' : (bounds[0] as string);
  const end = bounds[1] as string;
  const stepText = bounds[2] ?? '1';
  if (end === '') throw new HostPatternError('host range must specify end value');
  const step = /^[0-9]+$/.test(stepText) ? Number.parseInt(stepText, 10) : Number.NaN;
  if (!(step >= 1)) throw new HostPatternError(`invalid host range step "${stepText}"`);
  const width = begin.startsWith('0') && begin.length > 1 ? begin.length : 0;
  if (width > 0 && width !== end.length)
    throw new HostPatternError('host range must specify equal-length begin and end formats');
  const fill = (value: string): string => (width > 0 ? value.padStart(width, '0') : value);

  const letterBegin = ASCII_LETTERS.indexOf(begin);
  const letterEnd = ASCII_LETTERS.indexOf(end);
  const items: string[] = [];
  if (begin.length === 1 && end.length === 1 && letterBegin !== -1 && letterEnd !== -1) {
    if (letterBegin > letterEnd) throw new HostPatternError('host range must have begin <= end');
    for (let index = letterBegin; index <= letterEnd; index += step)
      items.push(ASCII_LETTERS.charAt(index));
  } else {
    if (!/^[0-9]+$/.test(begin) || !/^[0-9]+$/.test(end))
      throw new HostPatternError(`invalid host range "[${bounds.join(':')}]"`);
    const first = Number.parseInt(begin, 10);
    const last = Number.parseInt(end, 10);
    if ((last - first) / step + out.length > MAX_EXPANDED_HOSTS)
      throw new HostPatternError(`host range expands to more than ${MAX_EXPANDED_HOSTS} hosts`);
    for (let value = first; value <= last; value += step) items.push(String(value));
  }
  for (const item of items) {
    expandRanges(`${head}${fill(item)}${tail}`, out);
    if (out.length > MAX_EXPANDED_HOSTS)
      throw new HostPatternError(`host range expands to more than ${MAX_EXPANDED_HOSTS} hosts`);
  }
}

/**
 * Splits `pattern` into its port (`host:22`, `[host]:22`) and the host names its ranges expand
 * to. Throws {@link HostPatternError} for a malformed range.
 */
export function expandHostPattern(pattern: string): ExpandedHostPattern {
  let host = pattern;
  let port: number | undefined;
  // host:port, where the host part has colons only inside ranges (`web[01:03]:2222`). Bracketed
  // IPv6 literals are not valid node names, so they need no special case.
  const withPort = /^((?:[^:[\]]|\[[^\]]*\])+):([0-9]+)$/.exec(pattern);
  if (withPort !== null) {
    host = withPort[1] as string;
    port = Number.parseInt(withPort[2] as string, 10);
  }
  const hosts: string[] = [];
  expandRanges(host, hosts);
  return port === undefined ? { hosts } : { hosts, port };
}
