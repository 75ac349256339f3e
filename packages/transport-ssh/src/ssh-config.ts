/**
 * Where to connect and how: reads the OpenSSH client configuration (~/.ssh/config) with
 * OpenSSH's own semantics and merges it with per-node settings and RUNE's configuration into one
 * resolved endpoint per node and hop.
 *
 * Why not the `ssh-config` npm package: its `compute()` ignores `Include`, expands no `%` tokens,
 * runs `Match exec` commands through a shell unless told not to, never matches `Match canonical`,
 * matches `Host` case-insensitively only on request and keeps no file/line positions for error
 * messages. This module is a port of the parts of OpenSSH 9.2's readconf.c and ssh.c that decide
 * those values, tested against `ssh -G` (see ssh-config.openssh.test.ts).
 *
 * The model is OpenSSH's: per-node settings and explicitly set RUNE settings act like `ssh -o`
 * options (set before the file is read, so they win and are what `Match host`/`Match user` see);
 * then the file is read top to bottom and the first obtained value of each keyword wins
 * (IdentityFile and CertificateFile accumulate); `Host`/`Match` blocks switch lines on and off;
 * `Include` inlines files (globs, relative to ~/.ssh, nested up to 16 deep, allowed inside blocks);
 * `Match final` (or `canonical`) blocks apply in a second pass. Then defaults fill the rest.
 *
 * What RUNE cannot do is refused, not skipped: a keyword that would change how RUNE connects
 * (ProxyCommand, CertificateFile, CanonicalizeHostname, KnownHostsCommand, RevokedHostKeys,
 * RefuseConnection, and any honoured keyword inside a `Match exec` block RUNE cannot evaluate)
 * gives UNSUPPORTED_FEATURE naming the keyword, the file and the line. The full keyword table is
 * {@link SSH_CONFIG_KEYWORDS}, documented in docs/ssh.md.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir, hostname, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { RuneError } from '@rune/protocol';
import {
  argvSplit,
  convtime,
  expandTokens,
  hasGlobMagic,
  isValidEnvName,
  matchGlobComponent,
  matchPattern,
  matchPatternList,
  parseFlag,
  SshConfigSyntaxError,
  strdelim,
} from './ssh-config-syntax.js';

/** Host key checking modes. */
export type HostKeyChecking = 'strict' | 'accept-new' | 'off';

/** Default TCP connect timeout (also the SSH handshake timeout). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Default SSH keepalive interval (OpenSSH's own default is off; RUNE wants dead peers noticed). */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 5_000;
/** Default number of unanswered keepalives before the connection is dropped (OpenSSH: 3). */
export const DEFAULT_SERVER_ALIVE_COUNT_MAX = 3;
/** The default identity files OpenSSH tries when none is configured. */
export const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];
/** The per-user known_hosts files OpenSSH reads when `UserKnownHostsFile` is not set. */
export const DEFAULT_USER_KNOWN_HOSTS_FILES = ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'];
/** The system known_hosts files OpenSSH reads when `GlobalKnownHostsFile` is not set. */
export const DEFAULT_GLOBAL_KNOWN_HOSTS_FILES = [
  '/etc/ssh/ssh_known_hosts',
  '/etc/ssh/ssh_known_hosts2',
];
/** Deepest Include nesting OpenSSH allows (READCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16;

/** What RUNE does with an ssh_config keyword. */
export type SshConfigKeywordHandling = 'honoured' | 'refused' | 'warned' | 'ignored';

const HONOURED = [
  'host',
  'match',
  'include',
  'hostname',
  'user',
  'port',
  'identityfile',
  'proxyjump',
  'userknownhostsfile',
  'globalknownhostsfile',
  'stricthostkeychecking',
  'connecttimeout',
  'serveraliveinterval',
  'serveralivecountmax',
  'identitiesonly',
  'identityagent',
  'hostkeyalias',
  'ignoreunknown',
] as const;
const REFUSED = [
  'proxycommand',
  'certificatefile',
  'canonicalizehostname',
  'knownhostscommand',
  'revokedhostkeys',
  'refuseconnection',
] as const;
const WARNED = [
  'addressfamily',
  'bindaddress',
  'bindinterface',
  'casignaturealgorithms',
  'ciphers',
  'hostkeyalgorithms',
  'kexalgorithms',
  'macs',
  'pkcs11provider',
  'pubkeyacceptedalgorithms',
  'pubkeyacceptedkeytypes',
  'securitykeyprovider',
  'smartcarddevice',
  'verifyhostkeydns',
] as const;
const IGNORED = [
  'addkeystoagent',
  'afstokenpassing',
  'batchmode',
  'canonicaldomains',
  'canonicalizefallbacklocal',
  'canonicalizemaxdots',
  'canonicalizepermittedcnames',
  'challengeresponseauthentication',
  'channeltimeout',
  'checkhostip',
  'cipher',
  'clearallforwardings',
  'compression',
  'compressionlevel',
  'connectionattempts',
  'controlmaster',
  'controlpath',
  'controlpersist',
  'dsaauthentication',
  'dynamicforward',
  'enableescapecommandline',
  'enablesshkeysign',
  'escapechar',
  'exitonforwardfailure',
  'fallbacktorsh',
  'fingerprinthash',
  'forkafterauthentication',
  'forwardagent',
  'forwardx11',
  'forwardx11timeout',
  'forwardx11trusted',
  'gatewayports',
  'globalknownhostsfile2',
  'gssapiauthentication',
  'gssapidelegatecredentials',
  'hashknownhosts',
  'hostbasedacceptedalgorithms',
  'hostbasedauthentication',
  'hostbasedkeytypes',
  'ipqos',
  'kbdinteractiveauthentication',
  'kbdinteractivedevices',
  'keepalive',
  'kerberosauthentication',
  'kerberostgtpassing',
  'localcommand',
  'localforward',
  'loglevel',
  'logverbose',
  'nohostauthenticationforlocalhost',
  'numberofpasswordprompts',
  'obscurekeystroketiming',
  'passwordauthentication',
  'permitlocalcommand',
  'permitremoteopen',
  'preferredauthentications',
  'protocol',
  'proxyusefdpass',
  'pubkeyauthentication',
  'rekeylimit',
  'remotecommand',
  'remoteforward',
  'requesttty',
  'requiredrsasize',
  'rhostsauthentication',
  'rhostsrsaauthentication',
  'rsaauthentication',
  'sendenv',
  'sessiontype',
  'setenv',
  'skeyauthentication',
  'stdinnull',
  'streamlocalbindmask',
  'streamlocalbindunlink',
  'syslogfacility',
  'tag',
  'tcpkeepalive',
  'tisauthentication',
  'tunnel',
  'tunneldevice',
  'updatehostkeys',
  'useprivilegedport',
  'userknownhostsfile2',
  'useroaming',
  'usersh',
  'versionaddendum',
  'visualhostkey',
  'warnweakcrypto',
  'xauthlocation',
] as const;

/**
 * Every keyword of the OpenSSH client (9.2 to 10.x), lowercase, and what RUNE does with it:
 * `honoured` (applied as OpenSSH does), `refused` (UNSUPPORTED_FEATURE when it applies to the
 * host), `warned` (not applied; a warning names it when it applies), `ignored` (does not matter
 * for how RUNE connects). Unknown keywords are warned about unless `IgnoreUnknown` lists them.
 */
export const SSH_CONFIG_KEYWORDS: Readonly<Record<string, SshConfigKeywordHandling>> =
  Object.freeze(
    Object.fromEntries([
      ...HONOURED.map((keyword) => [keyword, 'honoured'] as const),
      ...REFUSED.map((keyword) => [keyword, 'refused'] as const),
      ...WARNED.map((keyword) => [keyword, 'warned'] as const),
      ...IGNORED.map((keyword) => [keyword, 'ignored'] as const),
    ]),
  );

/** Keyword aliases OpenSSH accepts. */
const ALIASES: Readonly<Record<string, string>> = { identityfile2: 'identityfile' };
/** Keywords whose every occurrence adds a value instead of the first one winning. */
const ACCUMULATING = new Set(['identityfile', 'certificatefile']);
/** Match attributes RUNE cannot evaluate (they would run commands or need runtime state). */
const UNDECIDABLE_MATCH = new Set([
  'exec',
  'localnetwork',
  'tagged',
  'command',
  'version',
  'sessiontype',
]);

/** The local facts ssh_config tokens and `Match` criteria refer to. Injectable for tests. */
export interface SshConfigContext {
  /** Local user name (`%u`, `Match localuser`, the default remote user). */
  localUser: string;
  /** Home directory for `~`, `%d` and relative `Include` paths. RUNE uses `$HOME`. */
  homeDir: string;
  /** Local uid (`%i`; included files must be owned by it or root). */
  uid: number;
  /** Local host name with domain (`%l`; `%L` is its first label). */
  localHostName: string;
  /** Environment for `${VAR}` and `SSH_AUTH_SOCK`. */
  env: Readonly<Record<string, string | undefined>>;
}

/** The local user name (the OpenSSH default login name). */
export function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

/** The context of this process (`$HOME`, the current user, `gethostname()`). */
export function defaultSshConfigContext(
  env: Readonly<Record<string, string | undefined>> = process.env,
): SshConfigContext {
  return {
    localUser: localUserName(),
    homeDir: homedir(),
    uid: process.getuid?.() ?? 0,
    localHostName: hostname(),
    env,
  };
}

/** Expands a leading `~` to the local home directory. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

/** OpenSSH `tilde_expand_filename`: `~`, `~/x`, and `~user/x` for users in /etc/passwd. */
function tildeExpand(path: string, context: SshConfigContext): string {
  if (!path.startsWith('~')) return path;
  const slash = path.indexOf('/');
  const name = slash === -1 ? path.slice(1) : path.slice(1, slash);
  const rest = slash === -1 ? '' : path.slice(slash + 1);
  let home = context.homeDir;
  if (name !== '' && name !== context.localUser) {
    const found = passwdHome(name);
    if (found === undefined) throw new SshConfigSyntaxError(`no such user ${name} in ${path}`);
    home = found;
  }
  return rest === '' ? home : join(home, rest);
}

function passwdHome(user: string): string | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[0] === user && fields[5] !== undefined) return fields[5];
    }
  } catch {
    // No readable /etc/passwd: the user is unknown.
  }
  return undefined;
}

// --- parsing -------------------------------------------------------------------------------

interface Position {
  file: string;
  line: number;
}

interface OptionLine extends Position {
  kind: 'option';
  /** Lowercase canonical keyword. */
  keyword: string;
  /** The keyword as written (for messages). */
  written: string;
  args: string[];
  /** The text after the keyword (ProxyCommand and ProxyJump take it verbatim). */
  rest: string;
}

interface HostLine extends Position {
  kind: 'host';
  patterns: string[];
}

interface MatchCriterion {
  attribute: string;
  negated: boolean;
  argument?: string;
}

interface MatchLine extends Position {
  kind: 'match';
  criteria: MatchCriterion[];
}

interface IncludeLine extends Position {
  kind: 'include';
  files: ParsedFile[];
}

type ConfigLine = OptionLine | HostLine | MatchLine | IncludeLine;

interface ParsedFile {
  path: string;
  lines: ConfigLine[];
}

function configError(position: Position, message: string, cause?: unknown): RuneError {
  return new RuneError('INVALID_CONFIG', `${position.file} line ${position.line}: ${message}`, {
    details: { file: position.file, line: position.line },
    ...(cause === undefined ? {} : { cause }),
  });
}

interface Loader {
  context: SshConfigContext;
  checkPermissions: boolean;
}

function checkFilePermissions(file: string, loader: Loader): void {
  if (!loader.checkPermissions) return;
  const info = statSync(file);
  // OpenSSH read_config_file: owned by the user or root, not writable by group or others.
  if ((info.uid !== 0 && info.uid !== loader.context.uid) || (info.mode & 0o022) !== 0) {
    throw new RuneError(
      'INVALID_CONFIG',
      `bad owner or permissions on ${file}: an OpenSSH client config must be owned by you or root and not writable by group or others (ssh refuses it too)`,
      { details: { file, uid: info.uid, mode: `0${(info.mode & 0o777).toString(8)}` } },
    );
  }
}

function readConfigText(file: string): string | undefined {
  try {
    if (statSync(file).isDirectory()) return '';
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RuneError('INVALID_CONFIG', `cannot read the OpenSSH client config ${file}`, {
      details: { file },
      cause: error,
    });
  }
}

function parseText(text: string, file: string, loader: Loader, depth: number): ParsedFile {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new RuneError(
      'INVALID_CONFIG',
      `${file}: too many nested Include levels (OpenSSH allows ${MAX_INCLUDE_DEPTH})`,
      {
        details: { file },
      },
    );
  }
  const lines: ConfigLine[] = [];
  const rawLines = text.split('\n');
  for (let index = 0; index < rawLines.length; index++) {
    const parsed = parseLine(rawLines[index] as string, { file, line: index + 1 }, loader, depth);
    if (parsed !== undefined) lines.push(parsed);
  }
  return { path: file, lines };
}

function parseLine(
  raw: string,
  position: Position,
  loader: Loader,
  depth: number,
): ConfigLine | undefined {
  const line = raw.replace(/[ \t\r\n\f]+$/, '');
  if (line === '') return undefined;
  let first = strdelim(line);
  if (first === undefined) return undefined;
  if (first.token === '' && first.rest !== undefined) first = strdelim(first.rest);
  if (first === undefined || first.token === '' || first.token.startsWith('#')) return undefined;
  const written = first.token;
  const lower = written.toLowerCase();
  const keyword = ALIASES[lower] ?? lower;
  const rest = (first.rest ?? '').replace(/^[ \t\r\n]+/, '');
  if (rest === '') throw configError(position, `no argument after keyword "${written}"`);
  let args: string[];
  try {
    args = argvSplit(rest);
  } catch (error) {
    throw configError(position, 'invalid quotes', error);
  }
  switch (keyword) {
    case 'host':
      if (args.some((arg) => arg === '')) throw configError(position, 'Host has an empty pattern');
      return { kind: 'host', patterns: args, ...position };
    case 'match':
      return { kind: 'match', criteria: parseMatch(rest, position), ...position };
    case 'include':
      return { kind: 'include', files: loadIncludes(args, position, loader, depth), ...position };
    default: {
      const option: OptionLine = { kind: 'option', keyword, written, args, rest, ...position };
      validateOption(option);
      return option;
    }
  }
}

/** Parses `Match` criteria with OpenSSH's rules (`match_cfg_line`), without evaluating them. */
function parseMatch(text: string, position: Position): MatchCriterion[] {
  const criteria: MatchCriterion[] = [];
  let rest: string | undefined = text;
  for (;;) {
    if (rest === undefined || rest === '') break;
    const next = strdelim(rest);
    if (next === undefined) throw configError(position, 'Match has an unmatched quote');
    rest = next.rest;
    const token = next.token;
    if (token === '') break;
    if (token.startsWith('#')) break;
    const negated = token.startsWith('!');
    const attribute = (negated ? token.slice(1) : token).toLowerCase();
    if (attribute === 'all') {
      const after = rest === undefined || rest === '' ? undefined : strdelim(rest);
      if (
        criteria.length > 1 ||
        (after !== undefined && after.token !== '' && !after.token.startsWith('#'))
      ) {
        throw configError(
          position,
          `Match "${token}" cannot be combined with other Match attributes`,
        );
      }
      criteria.push({ attribute, negated });
      break;
    }
    if (attribute === 'canonical' || attribute === 'final') {
      criteria.push({ attribute, negated });
      continue;
    }
    const value = rest === undefined || rest === '' ? undefined : strdelim(rest);
    if (value === undefined || value.token === '' || value.token.startsWith('#')) {
      throw configError(position, `missing Match criteria for ${attribute}`);
    }
    rest = value.rest;
    if (
      !['host', 'originalhost', 'user', 'localuser'].includes(attribute) &&
      !UNDECIDABLE_MATCH.has(attribute)
    ) {
      throw configError(position, `unsupported Match attribute ${attribute}`);
    }
    criteria.push({ attribute, negated, argument: value.token });
  }
  if (criteria.length === 0)
    throw configError(position, 'one or more attributes required for Match');
  return criteria;
}

/** Expands one Include argument to the files it names (OpenSSH: glob(3) with GLOB_TILDE). */
function loadIncludes(
  args: string[],
  position: Position,
  loader: Loader,
  depth: number,
): ParsedFile[] {
  const files: ParsedFile[] = [];
  for (const arg of args) {
    // Relative Include paths live in ~/.ssh (ssh_config(5)), not next to the including file.
    const anchored = isAbsolute(arg) || arg.startsWith('~') ? arg : `~/.ssh/${arg}`;
    let pattern: string;
    try {
      pattern = tildeExpand(anchored, loader.context);
    } catch (error) {
      throw configError(position, `bad Include path ${arg}`, error);
    }
    for (const path of globPaths(pattern)) {
      const text = readConfigText(path);
      if (text === undefined) continue;
      checkFilePermissions(path, loader);
      files.push(parseText(text, path, loader, depth + 1));
    }
  }
  return files;
}

/** glob(3) for absolute patterns: `*`, `?`, `[...]` per component, results sorted. */
function globPaths(pattern: string): string[] {
  const components = pattern.split('/').filter((part, index) => part !== '' || index === 0);
  let candidates = [''];
  for (const component of components.slice(1)) {
    const next: string[] = [];
    for (const base of candidates) {
      if (!hasGlobMagic(component)) {
        next.push(`${base}/${component.replace(/\\(.)/g, '$1')}`);
        continue;
      }
      let entries: string[];
      try {
        entries = readdirSync(base === '' ? '/' : base);
      } catch {
        continue;
      }
      for (const entry of entries) {
        if (matchGlobComponent(entry, component)) next.push(`${base}/${entry}`);
      }
    }
    candidates = next;
  }
  return candidates
    .filter((path) => {
      try {
        lstatSync(path);
        return true;
      } catch {
        return false;
      }
    })
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const STRICT_VALUES: Readonly<Record<string, HostKeyChecking>> = {
  yes: 'strict',
  true: 'strict',
  ask: 'strict',
  'accept-new': 'accept-new',
  no: 'off',
  off: 'off',
  false: 'off',
};

function singleArgument(option: OptionLine): string {
  if (option.args.length !== 1) {
    throw configError(option, `${option.written} takes one argument, not ${option.args.length}`);
  }
  return option.args[0] as string;
}

/** Syntax checks OpenSSH makes on every line, active or not, for the keywords RUNE applies. */
function validateOption(option: OptionLine): void {
  switch (option.keyword) {
    case 'hostname':
    case 'user':
    case 'identityfile':
    case 'certificatefile':
    case 'hostkeyalias':
    case 'ignoreunknown':
      singleArgument(option);
      return;
    case 'port': {
      const value = singleArgument(option);
      if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
        throw configError(option, `bad port '${value}' (RUNE accepts numeric ports only)`);
      }
      return;
    }
    case 'stricthostkeychecking': {
      const value = singleArgument(option);
      if (STRICT_VALUES[value.toLowerCase()] === undefined) {
        throw configError(option, `unsupported option "${value}" for StrictHostKeyChecking`);
      }
      return;
    }
    case 'connecttimeout':
    case 'serveraliveinterval': {
      const value = singleArgument(option);
      if (value !== 'none' && convtime(value) === undefined) {
        throw configError(option, `invalid time value "${value}" for ${option.written}`);
      }
      return;
    }
    case 'serveralivecountmax': {
      const value = singleArgument(option);
      if (!/^-?\d+$/.test(value))
        throw configError(option, `integer value expected, not "${value}"`);
      return;
    }
    case 'identitiesonly':
      if (parseFlag(singleArgument(option)) === undefined) {
        throw configError(option, `${option.written} must be yes or no`);
      }
      return;
    case 'identityagent': {
      const value = singleArgument(option);
      if (value.startsWith('$') && !value.startsWith('${') && !isValidEnvName(value.slice(1))) {
        throw configError(option, `invalid environment name ${value}`);
      }
      return;
    }
    case 'userknownhostsfile':
    case 'globalknownhostsfile':
      if (option.args.some((arg) => arg.toLowerCase() === 'none') && option.args.length > 1) {
        throw configError(option, `${option.written} "none" must appear alone`);
      }
      return;
    case 'proxyjump':
      if (parseProxyJump(stripComment(option.rest)) === undefined) {
        throw configError(option, `invalid ProxyJump "${option.rest}"`);
      }
      return;
    default:
      return;
  }
}

function stripComment(value: string): string {
  const hash = value.indexOf('#');
  return (hash === -1 ? value : value.slice(0, hash)).trim();
}

// --- evaluation ----------------------------------------------------------------------------

/** A keyword RUNE refuses for this host, with where it was written. */
export interface SshConfigRefusal {
  keyword: string;
  file: string;
  line: number;
  reason: string;
}

/** Values ~/.ssh/config gives one host, as written (tokens not yet expanded, except HostName). */
export interface SshConfigHost {
  /** HostName with `%h` expanded (not lowercased). */
  hostName?: string;
  user?: string;
  port?: number;
  /** Every IdentityFile, in order (may contain `none`). */
  identityFiles?: string[];
  /** ProxyJump as written (`none` possible). */
  proxyJump?: string;
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  strictHostKeyChecking?: HostKeyChecking;
  connectTimeoutSeconds?: number;
  serverAliveIntervalSeconds?: number;
  serverAliveCountMax?: number;
  identitiesOnly?: boolean;
  identityAgent?: string;
  hostKeyAlias?: string;
  /** What RUNE refuses for this host (the caller raises UNSUPPORTED_FEATURE). */
  refusals?: SshConfigRefusal[];
  /** Things worth telling the operator (keywords not applied, unknown keywords). */
  warnings?: string[];
  /** Where each value came from (`file:line`), by lowercase keyword. */
  sources?: Record<string, string>;
}

/** What is known before the file is read: `ssh -o` style values (they win, Match sees them). */
export interface SshConfigPresets {
  hostName?: string;
  user?: string;
  /** Lowercase keywords already decided (their config values are never used). */
  keywords?: readonly string[];
}

/** A parsed OpenSSH client configuration. */
export interface SshConfigFile {
  /** Settings for `host` (a node or jump host name as the operator wrote it). */
  lookup(host: string, presets?: SshConfigPresets): SshConfigHost;
}

type Undecidable = { undecidable: MatchCriterion; at: Position };
type Activity = boolean | Undecidable;

class Evaluation {
  private readonly obtained = new Map<string, OptionLine>();
  private readonly accumulated = new Map<string, OptionLine[]>();
  private readonly preset: Set<string>;
  private readonly refusals: SshConfigRefusal[] = [];
  private readonly warnings: string[] = [];
  private host: string;
  private finalPass = false;
  private wantFinal = false;

  constructor(
    private readonly hostArg: string,
    private readonly presets: SshConfigPresets,
    private readonly context: SshConfigContext,
  ) {
    this.host = hostArg;
    this.preset = new Set(presets.keywords ?? []);
    if (presets.hostName !== undefined) this.preset.add('hostname');
    if (presets.user !== undefined) this.preset.add('user');
  }

  run(root: ParsedFile): SshConfigHost {
    this.evaluateFile(root, true, false);
    if (this.wantFinal || this.canonicalizes()) {
      // ssh.c: the final pass matches `Host` against the expanded, lowercased HostName.
      this.host = this.effectiveHost();
      this.finalPass = true;
      this.evaluateFile(root, true, false);
    }
    return this.result();
  }

  private canonicalizes(): boolean {
    const value = this.obtained.get('canonicalizehostname')?.args[0]?.toLowerCase();
    return value !== undefined && value !== 'no' && value !== 'false';
  }

  /** The host name as ssh.c computes it after the first pass. */
  private effectiveHost(): string {
    let host = this.presets.hostName ?? this.hostArg;
    const configured = this.obtained.get('hostname');
    if (this.presets.hostName === undefined && configured !== undefined) {
      host = this.expandHostName(configured);
    }
    return isIP(host) === 0 ? host.toLowerCase() : host;
  }

  private expandHostName(option: OptionLine): string {
    try {
      return expandTokens(option.args[0] as string, { h: this.hostArg });
    } catch (error) {
      throw configError(
        option,
        `HostName accepts only %h and %%: ${(error as Error).message}`,
        error,
      );
    }
  }

  private evaluateFile(file: ParsedFile, start: Activity, neverMatch: Activity): void {
    let active: Activity = start;
    for (const line of file.lines) {
      switch (line.kind) {
        case 'host':
          active = combine(neverMatch, this.hostMatches(line.patterns));
          break;
        case 'match':
          active = combine(neverMatch, this.matchResult(line));
          break;
        case 'include':
          for (const included of line.files) {
            // OpenSSH: an Include in an inactive block is parsed only (nothing in it matches),
            // and Match lines in the included file do not change the including file's state.
            const nested = active === false ? true : isUndecidable(active) ? active : neverMatch;
            this.evaluateFile(included, active, nested);
          }
          break;
        case 'option':
          this.apply(line, active);
          break;
      }
    }
  }

  private hostMatches(patterns: readonly string[]): boolean {
    let matched = false;
    for (const raw of patterns) {
      const negated = raw.startsWith('!');
      const pattern = negated ? raw.slice(1) : raw;
      if (matchPattern(this.host, pattern)) {
        if (negated) return false;
        matched = true;
      }
    }
    return matched;
  }

  private matchResult(line: MatchLine): Activity {
    const host = this.finalPass
      ? this.host
      : (this.presets.hostName ??
        (this.obtained.has('hostname')
          ? this.expandHostName(this.obtained.get('hostname') as OptionLine)
          : this.host));
    const remoteUser =
      this.presets.user ?? this.obtained.get('user')?.args[0] ?? this.context.localUser;
    let result = true;
    let undecidable: Undecidable | undefined;
    for (const criterion of line.criteria) {
      const { attribute, negated, argument = '' } = criterion;
      let matched: boolean;
      switch (attribute) {
        case 'all':
          // `all` ends the line: it keeps an earlier result, or negated turns it off.
          if (!result || negated) return false;
          return undecidable ?? true;
        case 'canonical':
        case 'final':
          // OpenSSH 9.2 asks for the final pass even for `!final`, and both match only in it.
          if (attribute === 'final') this.wantFinal = true;
          matched = this.finalPass;
          break;
        case 'host':
          matched = matchPatternList(host.toLowerCase(), argument, true) === 1;
          break;
        case 'originalhost':
          matched = matchPatternList(this.hostArg.toLowerCase(), argument, true) === 1;
          break;
        case 'user':
          matched = matchPatternList(remoteUser, argument, false) === 1;
          break;
        case 'localuser':
          matched = matchPatternList(this.context.localUser, argument, false) === 1;
          break;
        default:
          // exec and friends: OpenSSH skips them once an earlier criterion failed.
          if (result && undecidable === undefined)
            undecidable = { undecidable: criterion, at: line };
          continue;
      }
      if (matched === negated) result = false;
    }
    if (!result) return false;
    return undecidable ?? true;
  }

  private apply(option: OptionLine, active: Activity): void {
    const handling = SSH_CONFIG_KEYWORDS[option.keyword];
    if (handling === undefined) {
      if (!this.ignoredUnknown(option.keyword)) {
        this.warnings.push(
          `${option.file} line ${option.line}: unknown ssh_config keyword "${option.written}" ignored (list it in IgnoreUnknown to silence this)`,
        );
      }
      return;
    }
    if (active === false) return;
    if (isUndecidable(active)) {
      if ((handling === 'honoured' || handling === 'refused') && this.wouldSet(option)) {
        const { undecidable, at } = active;
        this.refusals.push({
          keyword: `Match ${undecidable.attribute}`,
          file: at.file,
          line: at.line,
          reason: `RUNE does not evaluate "Match ${undecidable.attribute}" (it never runs commands from config files), and the block sets ${option.written} (${option.file} line ${option.line}), which would change how RUNE connects`,
        });
      }
      return;
    }
    if (!this.wouldSet(option)) return;
    if (option.keyword === 'connecttimeout' || option.keyword === 'serveraliveinterval') {
      // `none` leaves the value unset, so a later line may still set it (OpenSSH parse_time).
      if (option.args[0] === 'none') return;
    }
    if (ACCUMULATING.has(option.keyword)) {
      const list = this.accumulated.get(option.keyword) ?? [];
      // add_identity_file: an exact duplicate is registered once.
      if (!list.some((existing) => existing.args[0] === option.args[0])) list.push(option);
      this.accumulated.set(option.keyword, list);
      return;
    }
    this.obtained.set(option.keyword, option);
  }

  private wouldSet(option: OptionLine): boolean {
    if (ACCUMULATING.has(option.keyword)) return true;
    if (option.keyword === 'proxyjump' || option.keyword === 'proxycommand') {
      // Whichever of ProxyJump and ProxyCommand comes first wins; the other is ignored.
      return !['proxyjump', 'proxycommand'].some(
        (keyword) => this.preset.has(keyword) || this.obtained.has(keyword),
      );
    }
    return !this.preset.has(option.keyword) && !this.obtained.has(option.keyword);
  }

  private ignoredUnknown(keyword: string): boolean {
    const patterns = this.obtained.get('ignoreunknown')?.args[0];
    return patterns !== undefined && matchPatternList(keyword, patterns, true) === 1;
  }

  private result(): SshConfigHost {
    const result: SshConfigHost = {};
    const sources: Record<string, string> = {};
    const value = (keyword: string): string | undefined => {
      const option = this.obtained.get(keyword);
      if (option === undefined) return undefined;
      sources[keyword] = `${option.file}:${option.line}`;
      return option.args[0];
    };
    const hostName = this.obtained.get('hostname');
    if (hostName !== undefined) {
      result.hostName = this.expandHostName(hostName);
      sources.hostname = `${hostName.file}:${hostName.line}`;
    }
    const user = value('user');
    if (user !== undefined) result.user = user;
    const port = value('port');
    if (port !== undefined) result.port = Number(port);
    const identities = this.accumulated.get('identityfile');
    if (identities !== undefined) {
      result.identityFiles = identities.map((option) => option.args[0] as string);
      sources.identityfile = identities.map((option) => `${option.file}:${option.line}`).join(', ');
    }
    const jump = this.obtained.get('proxyjump');
    if (jump !== undefined) {
      result.proxyJump = stripComment(jump.rest);
      sources.proxyjump = `${jump.file}:${jump.line}`;
    }
    for (const [keyword, field] of [
      ['userknownhostsfile', 'userKnownHostsFiles'],
      ['globalknownhostsfile', 'globalKnownHostsFiles'],
    ] as const) {
      const option = this.obtained.get(keyword);
      if (option === undefined) continue;
      sources[keyword] = `${option.file}:${option.line}`;
      result[field] = option.args[0]?.toLowerCase() === 'none' ? [] : [...option.args];
    }
    const strict = value('stricthostkeychecking');
    if (strict !== undefined) result.strictHostKeyChecking = STRICT_VALUES[strict.toLowerCase()];
    const connect = value('connecttimeout');
    if (connect !== undefined) result.connectTimeoutSeconds = convtime(connect) as number;
    const alive = value('serveraliveinterval');
    if (alive !== undefined) result.serverAliveIntervalSeconds = convtime(alive) as number;
    const count = value('serveralivecountmax');
    if (count !== undefined) result.serverAliveCountMax = Number(count);
    const only = value('identitiesonly');
    if (only !== undefined) result.identitiesOnly = parseFlag(only) as boolean;
    const agent = value('identityagent');
    if (agent !== undefined) result.identityAgent = agent;
    const alias = value('hostkeyalias');
    if (alias !== undefined) result.hostKeyAlias = alias;
    this.collectRefusals();
    this.collectWarnings();
    if (this.refusals.length > 0) result.refusals = [...this.refusals];
    if (this.warnings.length > 0) result.warnings = [...this.warnings];
    if (Object.keys(sources).length > 0) result.sources = sources;
    return result;
  }

  private collectRefusals(): void {
    const refuse = (option: OptionLine, reason: string): void => {
      this.refusals.push({ keyword: option.written, file: option.file, line: option.line, reason });
    };
    const proxy = this.obtained.get('proxycommand');
    if (proxy !== undefined && stripComment(proxy.rest).toLowerCase() !== 'none') {
      refuse(proxy, 'RUNE does not run ProxyCommand; use ProxyJump (or [ssh] proxy_jump) instead');
    }
    for (const certificate of this.accumulated.get('certificatefile') ?? []) {
      if (certificate.args[0]?.toLowerCase() === 'none') continue;
      refuse(
        certificate,
        'OpenSSH certificates are not supported (ssh2 cannot use them), so RUNE would authenticate differently from ssh',
      );
      break;
    }
    const canonicalize = this.obtained.get('canonicalizehostname');
    if (canonicalize !== undefined && this.canonicalizes()) {
      refuse(
        canonicalize,
        'RUNE does not canonicalize host names; set HostName to the full name instead',
      );
    }
    for (const [keyword, reason] of [
      [
        'knownhostscommand',
        'RUNE does not run KnownHostsCommand; put the keys in a known_hosts file',
      ],
      [
        'revokedhostkeys',
        'RUNE does not read RevokedHostKeys files; mark revoked keys @revoked in known_hosts',
      ],
    ] as const) {
      const option = this.obtained.get(keyword);
      if (option !== undefined && option.args[0]?.toLowerCase() !== 'none') refuse(option, reason);
    }
    const refuseConnection = this.obtained.get('refuseconnection');
    if (refuseConnection !== undefined && parseFlag(refuseConnection.args[0]) !== false) {
      refuse(refuseConnection, 'the config refuses connections to this host (RefuseConnection)');
    }
  }

  private collectWarnings(): void {
    for (const keyword of WARNED) {
      const option = this.obtained.get(keyword);
      if (option === undefined) continue;
      const argument = option.args[0]?.toLowerCase();
      if (argument === 'none' || (keyword === 'addressfamily' && argument === 'any')) continue;
      if (keyword === 'verifyhostkeydns' && argument === 'no') continue;
      this.warnings.push(
        `${option.file} line ${option.line}: ${option.written} is not applied by RUNE (ssh2 uses its own settings for it)`,
      );
    }
  }
}

function isUndecidable(activity: Activity): activity is Undecidable {
  return typeof activity === 'object';
}

/** Combines an Include's "parse only" state with a block's own match result. */
function combine(neverMatch: Activity, matched: Activity): Activity {
  if (neverMatch === true || matched === false) return false;
  if (isUndecidable(neverMatch)) return neverMatch;
  return matched;
}

/** Options of {@link parseSshConfig} and {@link readSshConfig}. */
export interface SshConfigReadOptions {
  context?: SshConfigContext;
  /** Refuse included files writable by others, as OpenSSH does (default true). */
  checkPermissions?: boolean;
}

function configFile(root: ParsedFile, context: SshConfigContext): SshConfigFile {
  return {
    lookup(host: string, presets: SshConfigPresets = {}): SshConfigHost {
      return new Evaluation(host, presets, context).run(root);
    },
  };
}

/**
 * Parses OpenSSH client configuration text (Include lines read their files from disk). Throws
 * INVALID_CONFIG for what OpenSSH would reject in the keywords RUNE applies.
 */
export function parseSshConfig(
  text: string,
  options: SshConfigReadOptions & { file?: string } = {},
): SshConfigFile {
  const context = options.context ?? defaultSshConfigContext();
  const loader: Loader = { context, checkPermissions: options.checkPermissions !== false };
  return configFile(parseText(text, options.file ?? '<memory>', loader, 0), context);
}

/**
 * Reads and parses an ssh config file and everything it includes; a missing file gives an empty
 * config. The file and every included file must pass OpenSSH's ownership/permission check.
 */
export async function readSshConfig(
  file: string,
  options: SshConfigReadOptions = {},
): Promise<SshConfigFile> {
  const context = options.context ?? defaultSshConfigContext();
  const path = expandHome(file, context.homeDir);
  const loader: Loader = { context, checkPermissions: options.checkPermissions !== false };
  const text = readConfigText(path);
  if (text === undefined) return configFile({ path, lines: [] }, context);
  checkFilePermissions(path, loader);
  return configFile(parseText(text, path, loader, 0), context);
}

// --- tokens --------------------------------------------------------------------------------

/** Values the `%` tokens of one connection expand to. */
export interface ConnectionTokens {
  /** %h: the remote host name (after HostName). */
  host: string;
  /** %n: the name as given (node name or hop). */
  originalHost: string;
  /** %p */
  port: number;
  /** %r */
  remoteUser: string;
  /** %k: HostKeyAlias, else the original name. */
  keyAlias: string;
}

/** The OpenSSH default token table (%C %L %i %k %l %n %p %d %h %r %u). */
export function connectionTokenTable(
  tokens: ConnectionTokens,
  context: SshConfigContext,
): Record<string, string> {
  const local = context.localHostName;
  const port = String(tokens.port);
  return {
    C: createHash('sha1').update(`${local}${tokens.host}${port}${tokens.remoteUser}`).digest('hex'),
    L: local.split('.')[0] ?? local,
    i: String(context.uid),
    k: tokens.keyAlias,
    l: local,
    n: tokens.originalHost,
    p: port,
    d: context.homeDir,
    h: tokens.host,
    r: tokens.remoteUser,
    u: context.localUser,
  };
}

/** `~`, then tokens and `${VAR}`, as ssh.c does for IdentityFile, UserKnownHostsFile, ... */
export function expandConfigPath(
  path: string,
  tokens: ConnectionTokens,
  context: SshConfigContext,
): string {
  return expandTokens(
    tildeExpand(path, context),
    connectionTokenTable(tokens, context),
    context.env,
  );
}

/** Expands `~` and the OpenSSH tokens %d %u %h %r %% in an IdentityFile value. */
export function expandIdentityPath(path: string, host: string, remoteUser: string): string {
  const context = defaultSshConfigContext();
  return expandConfigPath(
    path,
    { host, originalHost: host, port: 22, remoteUser, keyAlias: host },
    context,
  );
}

// --- ProxyJump -----------------------------------------------------------------------------

/** One hop of a ProxyJump chain as written: `[user@]host[:port]`. */
export interface JumpSpec {
  host: string;
  user?: string;
  port?: number;
}

/**
 * Parses a ProxyJump value: a comma list of `[user@]host[:port]`, `[user@][ipv6]:port` or
 * `ssh://[user@]host[:port]`; `none` or empty means no jump. Returns undefined for a malformed
 * value.
 */
export function parseProxyJump(value: string | undefined): JumpSpec[] | undefined {
  if (value === undefined) return [];
  const trimmed = value.trim();
  if (trimmed === '' || trimmed.toLowerCase() === 'none') return [];
  const hops: JumpSpec[] = [];
  for (const raw of trimmed.split(',')) {
    let part = raw.trim();
    if (part.toLowerCase().startsWith('ssh://'))
      part = part.slice('ssh://'.length).replace(/\/$/, '');
    const match =
      /^(?:([A-Za-z0-9._%][A-Za-z0-9._%-]*)@)?(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._%-]+))(?::(\d{1,5}))?$/.exec(
        part,
      );
    if (match === null) return undefined;
    const hop: JumpSpec = { host: (match[2] ?? match[3]) as string };
    if (match[1] !== undefined) hop.user = match[1];
    if (match[4] !== undefined) {
      const port = Number(match[4]);
      if (port < 1 || port > 65535) return undefined;
      hop.port = port;
    }
    hops.push(hop);
  }
  return hops;
}

// --- resolution ----------------------------------------------------------------------------

/** Where and how to connect to one host (a node or a jump host). */
export interface ResolvedEndpoint {
  /** The name the operator used (node name or hop as written). */
  name: string;
  /** Address to connect to (lowercased unless it is an IP address). */
  host: string;
  port: number;
  user: string;
  /** Private key files to try, in order (already expanded). */
  identityFiles: string[];
  /** Whether `identityFiles` came from configuration (else they are the ~/.ssh/id_* defaults). */
  identityFilesConfigured: boolean;
  /** Per-user known_hosts files (expanded): RUNE's list, else UserKnownHostsFile, else defaults. */
  userKnownHostsFiles: string[];
  /** System known_hosts files (expanded): GlobalKnownHostsFile, else /etc/ssh/ssh_known_hosts{,2}. */
  globalKnownHostsFiles: string[];
  /** yes/ask -> strict, accept-new -> accept-new, no/off -> off. */
  strictHostKeyChecking: HostKeyChecking;
  /** Where {@link strictHostKeyChecking} came from (for the loud `off` warning and metadata). */
  strictHostKeyCheckingSource: 'node' | 'rune' | 'ssh-config' | 'default';
  /** TCP connect timeout, also the SSH banner/handshake timeout. */
  connectTimeoutMs: number;
  /** Keepalive interval in seconds; 0 = no keepalives. */
  serverAliveIntervalSeconds: number;
  /** Unanswered keepalives before the connection is dropped. */
  serverAliveCountMax: number;
  /** Use only the identity files (agent keys only when they are one of those files). */
  identitiesOnly: boolean;
  /** ssh-agent socket to use; absent = no agent. */
  identityAgent?: string;
  /** Name known_hosts lookups use instead of `host`/`[host]:port` (lowercase). */
  hostKeyAlias?: string;
}

/** A node endpoint plus the jump hosts in front of it (first hop first). */
export interface ResolvedRoute {
  target: ResolvedEndpoint;
  jumps: ResolvedEndpoint[];
  /** Warnings from ~/.ssh/config for the hosts on this route. */
  warnings: string[];
}

/** RUNE configuration values for {@link resolveRoute}: only what the operator set explicitly. */
export interface RuneEndpointSettings {
  user?: string;
  port?: number;
  identityFiles?: string[];
  proxyJump?: string;
  /** A non-empty list replaces UserKnownHostsFile (like `ssh -o UserKnownHostsFile=`). */
  knownHostsFiles?: string[];
  hostKeyChecking?: HostKeyChecking;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** false: never use an agent, whatever IdentityAgent says. */
  useAgent?: boolean;
}

/** Inputs of {@link resolveRoute}, highest precedence first. */
export interface RouteInputs {
  /** Node name (matched against `Host` patterns). */
  name: string;
  node: {
    address?: string;
    port?: number;
    user?: string;
    identityFiles?: string[];
    proxyJump?: string;
    /** Per-node host key checking: applies to the node only, not to its jump hosts. */
    hostKeyChecking?: HostKeyChecking;
  };
  rune: RuneEndpointSettings;
  sshConfig?: SshConfigFile;
  /** Local facts for tokens (default: this process). */
  context?: SshConfigContext;
}

/** Thrown by {@link resolveRoute} for a malformed ProxyJump value (the caller maps it). */
export class ProxyJumpSyntaxError extends Error {
  constructor(readonly value: string) {
    super(`malformed ProxyJump value: ${value}`);
  }
}

interface EndpointExplicit {
  host?: string;
  port?: number;
  user?: string;
  identityFiles?: string[];
  hostKeyChecking?: HostKeyChecking;
}

function refuse(name: string, refusal: SshConfigRefusal): RuneError {
  return new RuneError(
    'UNSUPPORTED_FEATURE',
    `~/.ssh/config: ${refusal.keyword} (${refusal.file} line ${refusal.line}) applies to ${name}: ${refusal.reason}; nothing was executed`,
    {
      details: {
        feature: `ssh_config ${refusal.keyword}`,
        keyword: refusal.keyword,
        file: refusal.file,
        line: refusal.line,
        host: name,
      },
    },
  );
}

function pathError(
  name: string,
  keyword: string,
  source: string | undefined,
  error: unknown,
): RuneError {
  return new RuneError(
    'INVALID_CONFIG',
    `~/.ssh/config: cannot expand ${keyword}${source === undefined ? '' : ` (${source})`} for ${name}: ${(error as Error).message}`,
    { details: { keyword, host: name, ...(source === undefined ? {} : { source }) }, cause: error },
  );
}

function endpoint(
  name: string,
  explicit: EndpointExplicit,
  rune: RuneEndpointSettings,
  fromConfig: SshConfigHost,
  context: SshConfigContext,
): ResolvedEndpoint {
  const rawHost = explicit.host ?? fromConfig.hostName ?? name;
  const host = isIP(rawHost) === 0 ? rawHost.toLowerCase() : rawHost;
  const port = explicit.port ?? rune.port ?? fromConfig.port ?? 22;
  const user = explicit.user ?? rune.user ?? fromConfig.user ?? context.localUser;
  const hostKeyAlias = fromConfig.hostKeyAlias?.toLowerCase();
  const tokens: ConnectionTokens = {
    host,
    originalHost: name,
    port,
    remoteUser: user,
    keyAlias: hostKeyAlias ?? name,
  };
  const expand = (keyword: string, path: string): string => {
    try {
      return expandConfigPath(path, tokens, context);
    } catch (error) {
      throw pathError(name, keyword, fromConfig.sources?.[keyword.toLowerCase()], error);
    }
  };

  const configured = [
    ...(explicit.identityFiles ?? []),
    ...(rune.identityFiles ?? []),
    ...(fromConfig.identityFiles ?? []),
  ];
  const identityFilesConfigured = configured.length > 0;
  const files = (identityFilesConfigured ? configured : DEFAULT_IDENTITY_FILES)
    // `IdentityFile none` counts as configured (no default keys) but names no file.
    .filter((file) => file.toLowerCase() !== 'none')
    .map((file) => expand('IdentityFile', file));

  const userKnownHostsFiles = (
    rune.knownHostsFiles !== undefined && rune.knownHostsFiles.length > 0
      ? rune.knownHostsFiles
      : (fromConfig.userKnownHostsFiles ?? DEFAULT_USER_KNOWN_HOSTS_FILES)
  ).map((file) => expand('UserKnownHostsFile', file));
  // ssh.c expands only `~` in GlobalKnownHostsFile.
  const globalKnownHostsFiles = (
    fromConfig.globalKnownHostsFiles ?? DEFAULT_GLOBAL_KNOWN_HOSTS_FILES
  ).map((file) => {
    try {
      return tildeExpand(file, context);
    } catch (error) {
      throw pathError(
        name,
        'GlobalKnownHostsFile',
        fromConfig.sources?.globalknownhostsfile,
        error,
      );
    }
  });

  let strictHostKeyChecking: HostKeyChecking = 'strict';
  let strictHostKeyCheckingSource: ResolvedEndpoint['strictHostKeyCheckingSource'] = 'default';
  if (explicit.hostKeyChecking !== undefined) {
    strictHostKeyChecking = explicit.hostKeyChecking;
    strictHostKeyCheckingSource = 'node';
  } else if (rune.hostKeyChecking !== undefined) {
    strictHostKeyChecking = rune.hostKeyChecking;
    strictHostKeyCheckingSource = 'rune';
  } else if (fromConfig.strictHostKeyChecking !== undefined) {
    strictHostKeyChecking = fromConfig.strictHostKeyChecking;
    strictHostKeyCheckingSource = 'ssh-config';
  }

  const configTimeout = fromConfig.connectTimeoutSeconds;
  const connectTimeoutMs =
    rune.connectTimeoutMs ??
    // ConnectTimeout 0 would mean "the system's TCP timeout": RUNE keeps its bounded default.
    (configTimeout !== undefined && configTimeout > 0
      ? configTimeout * 1000
      : DEFAULT_CONNECT_TIMEOUT_MS);
  const serverAliveIntervalSeconds =
    rune.keepaliveIntervalMs !== undefined
      ? rune.keepaliveIntervalMs / 1000
      : (fromConfig.serverAliveIntervalSeconds ?? DEFAULT_KEEPALIVE_INTERVAL_MS / 1000);
  const serverAliveCountMax = Math.max(
    1,
    rune.keepaliveCountMax ?? fromConfig.serverAliveCountMax ?? DEFAULT_SERVER_ALIVE_COUNT_MAX,
  );

  const resolved: ResolvedEndpoint = {
    name,
    host,
    port,
    user,
    identityFiles: [...new Set(files)],
    identityFilesConfigured,
    userKnownHostsFiles: [...new Set(userKnownHostsFiles)],
    globalKnownHostsFiles: [...new Set(globalKnownHostsFiles)],
    strictHostKeyChecking,
    strictHostKeyCheckingSource,
    connectTimeoutMs,
    serverAliveIntervalSeconds,
    serverAliveCountMax,
    identitiesOnly: fromConfig.identitiesOnly ?? false,
  };
  const agent = resolveAgent(fromConfig.identityAgent, rune.useAgent, context, expand);
  if (agent !== undefined) resolved.identityAgent = agent;
  if (hostKeyAlias !== undefined) resolved.hostKeyAlias = hostKeyAlias;
  return resolved;
}

/** IdentityAgent as ssh.c applies it: `none`, `SSH_AUTH_SOCK`, `$VAR`, or a path. */
function resolveAgent(
  configured: string | undefined,
  useAgent: boolean | undefined,
  context: SshConfigContext,
  expand: (keyword: string, path: string) => string,
): string | undefined {
  if (useAgent === false) return undefined;
  const fromEnv = (name: string): string | undefined => {
    const value = context.env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  if (configured === undefined || configured === 'SSH_AUTH_SOCK') return fromEnv('SSH_AUTH_SOCK');
  if (configured === 'none') return undefined;
  if (configured.startsWith('$') && !configured.startsWith('${'))
    return fromEnv(configured.slice(1));
  return expand('IdentityAgent', configured);
}

/** The ssh_config keywords RUNE's explicit settings decide before the file is read. */
function presetKeywords(
  explicit: EndpointExplicit,
  rune: RuneEndpointSettings,
  proxyJump: boolean,
): string[] {
  const keywords: string[] = [];
  if (explicit.port !== undefined || rune.port !== undefined) keywords.push('port');
  if (explicit.hostKeyChecking !== undefined || rune.hostKeyChecking !== undefined) {
    keywords.push('stricthostkeychecking');
  }
  if (rune.knownHostsFiles !== undefined && rune.knownHostsFiles.length > 0) {
    keywords.push('userknownhostsfile');
  }
  if (rune.connectTimeoutMs !== undefined) keywords.push('connecttimeout');
  if (rune.keepaliveIntervalMs !== undefined) keywords.push('serveraliveinterval');
  if (rune.keepaliveCountMax !== undefined) keywords.push('serveralivecountmax');
  if (rune.useAgent === false) keywords.push('identityagent');
  if (proxyJump) keywords.push('proxyjump');
  return keywords;
}

function lookupHost(
  sshConfig: SshConfigFile | undefined,
  name: string,
  explicit: EndpointExplicit,
  rune: RuneEndpointSettings,
  proxyJump: boolean,
  warnings: string[],
): SshConfigHost {
  if (sshConfig === undefined) return {};
  const presets: SshConfigPresets = { keywords: presetKeywords(explicit, rune, proxyJump) };
  if (explicit.host !== undefined) presets.hostName = explicit.host;
  const user = explicit.user ?? rune.user;
  if (user !== undefined) presets.user = user;
  const found = sshConfig.lookup(name, presets);
  const refusal = found.refusals?.[0];
  if (refusal !== undefined) throw refuse(name, refusal);
  warnings.push(...(found.warnings ?? []));
  return found;
}

/**
 * Resolves a node to its endpoint and jump chain. Jump hosts are resolved through ~/.ssh/config
 * under their own names; a hop's `user@` and `:port` win over its config; RUNE's `user` applies to
 * hops only when neither gives one; RUNE's `port` never applies to hops; per-node settings apply
 * to the node only. Throws UNSUPPORTED_FEATURE when ~/.ssh/config asks for something RUNE does not
 * do for one of the hosts, INVALID_CONFIG for a value that cannot be expanded.
 */
export function resolveRoute(inputs: RouteInputs): ResolvedRoute {
  const context = inputs.context ?? defaultSshConfigContext();
  const warnings: string[] = [];
  const explicit: EndpointExplicit = {};
  if (inputs.node.address !== undefined) explicit.host = inputs.node.address;
  if (inputs.node.port !== undefined) explicit.port = inputs.node.port;
  if (inputs.node.user !== undefined) explicit.user = inputs.node.user;
  if (inputs.node.identityFiles !== undefined) explicit.identityFiles = inputs.node.identityFiles;
  if (inputs.node.hostKeyChecking !== undefined)
    explicit.hostKeyChecking = inputs.node.hostKeyChecking;
  const presetJump = inputs.node.proxyJump ?? inputs.rune.proxyJump;
  const fromConfig = lookupHost(
    inputs.sshConfig,
    inputs.name,
    explicit,
    inputs.rune,
    presetJump !== undefined,
    warnings,
  );
  const target = endpoint(inputs.name, explicit, inputs.rune, fromConfig, context);
  let jumpValue = presetJump;
  if (jumpValue === undefined && fromConfig.proxyJump !== undefined) {
    // ssh_config(5): ProxyJump accepts %h %n %p %r %% (of the host behind it).
    try {
      jumpValue = expandTokens(fromConfig.proxyJump, {
        h: target.host,
        n: inputs.name,
        p: String(target.port),
        r: target.user,
      });
    } catch (error) {
      throw pathError(inputs.name, 'ProxyJump', fromConfig.sources?.proxyjump, error);
    }
  }
  const specs = parseProxyJump(jumpValue);
  if (specs === undefined) throw new ProxyJumpSyntaxError(jumpValue ?? '');
  const hopRune: RuneEndpointSettings = { ...inputs.rune };
  delete hopRune.port;
  delete hopRune.user;
  delete hopRune.proxyJump;
  const jumps = specs.map((spec, index) => {
    const hopExplicit: EndpointExplicit = {};
    if (spec.port !== undefined) hopExplicit.port = spec.port;
    if (spec.user !== undefined) hopExplicit.user = spec.user;
    // Later hops are reached through the chain before them (`ssh -J`), so their own ProxyJump
    // and ProxyCommand do not apply; the first hop's would, and RUNE does not chain them.
    const first = index === 0;
    const hopConfig = lookupHost(
      inputs.sshConfig,
      spec.host,
      hopExplicit,
      hopRune,
      !first,
      warnings,
    );
    const nested = parseProxyJump(hopConfig.proxyJump);
    if (first && nested?.some((hop) => hop.host !== spec.host)) {
      throw new RuneError(
        'UNSUPPORTED_FEATURE',
        `~/.ssh/config: the jump host ${spec.host} has its own ProxyJump ${hopConfig.proxyJump} (${hopConfig.sources?.proxyjump ?? ''}); RUNE does not follow nested jump chains: list every hop in one ProxyJump instead`,
        {
          details: {
            feature: 'ssh_config nested ProxyJump',
            keyword: 'ProxyJump',
            host: spec.host,
            source: hopConfig.sources?.proxyjump,
          },
        },
      );
    }
    // RUNE's user is a fallback for hops: the hop's `user@` and its config win.
    if (spec.user === undefined && hopConfig.user === undefined && inputs.rune.user !== undefined) {
      hopExplicit.user = inputs.rune.user;
    }
    return endpoint(spec.host, hopExplicit, hopRune, hopConfig, context);
  });
  return { target, jumps, warnings: [...new Set(warnings)] };
}
