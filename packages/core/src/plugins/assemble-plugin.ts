/**
 * The one plugin assembler: turns a plugin source that pulls in a shared Bash library with
 * `# @rune-include <file>` lines into the one self-contained file RUNE hashes, audits, tests and
 * ships.
 *
 * Why it exists: ship mode sends one file to the node, so a plugin that `source`s a library
 * which is only on the control node runs locally and fails remotely. The plugin registry
 * therefore assembles every plugin it registers, the build of the built-ins assembles them with
 * the same function, and `rune-plugin-test` runs the same bytes — what was tested is what ships,
 * and the plugin's sha256 is taken over those bytes.
 *
 * The rule: a line ending in `# @rune-include NAME` (the whole line, typically the `source`
 * command that makes the source runnable as is) is replaced by the text of NAME, found in the
 * include directories in order (by default the plugin's `lib/`, its parent's `lib/` and the
 * library shipped with RUNE, see {@link defaultIncludeDirs}). NAME is relative, made of plain
 * path segments (no `..`, no leading `/`, no hidden files) and ends in `.sh`; the file found
 * must be a regular file whose real path (symlinks resolved) is inside the directory it was
 * found in, so an include can never read outside the allowed library directories. Libraries may
 * include libraries; each is inlined once (a second include of the same file is a comment),
 * cycles and nesting deeper than {@link MAX_INCLUDE_DEPTH} are refused, and so is an assembled
 * file over {@link MAX_ASSEMBLED_BYTES}. Every refusal is `PLUGIN_INCLUDE_FAILED` naming the
 * file and line.
 *
 * A file without include lines is returned byte for byte, and assembled output contains no
 * include line (the markers it writes do not match the rule), so assembling is idempotent:
 * built-in plugins, assembled at build time, are registered with the hash of their exact bytes.
 * The output depends only on the bytes read, never on paths or time, so it is deterministic.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';

/** A line that includes a library: `... # @rune-include NAME` at the end of the line. */
export const INCLUDE_MARKER = /#[ \t]*@rune-include[ \t]+(\S+)[ \t]*$/;

/** {@link INCLUDE_MARKER} on any line of a text. */
const INCLUDE_LINE = new RegExp(INCLUDE_MARKER.source, 'm');

/** How deep libraries may include libraries (the plugin itself is depth 0). */
export const MAX_INCLUDE_DEPTH = 8;

/** Largest assembled plugin (bytes); larger ones are refused rather than shipped. */
export const MAX_ASSEMBLED_BYTES = 4 * 1024 * 1024;

const INCLUDE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*\.sh$/;
const SHELLCHECK_SOURCE = /^\s*#\s*shellcheck\s+source=/;
const DEFAULT_SHEBANG = '#!/usr/bin/env bash';
/** Written under the shebang of an assembled plugin (a fixed text: the output must not vary). */
const ASSEMBLED_HEADER = [
  // Library functions a given plugin never calls look unreachable to ShellCheck (SC2317).
  '# shellcheck disable=SC2317 # assembled by RUNE: library functions this plugin does not call',
  '# Assembled by RUNE: every `# @rune-include` line was replaced by the library it names; edit the sources, not this file.',
];

/** One library inlined into a plugin. */
export interface PluginInclude {
  /** The name the include line used (e.g. `bpcs.sh`). */
  name: string;
  /** Where it was found on the control node. */
  path: string;
  /** sha256 of the library text (before functions the plugin never names are left out). */
  sha256: string;
}

/** The result of {@link assemblePluginSource}. */
export interface AssembledPlugin {
  /** The bytes that run, are hashed and ship. */
  content: Buffer;
  /** True when at least one include line was replaced. */
  assembled: boolean;
  /** Libraries inlined, in order of first inclusion. */
  includes: PluginInclude[];
}

/** Options of {@link assemblePluginSource}. */
export interface AssemblePluginOptions {
  /**
   * Directories searched for include names, in order. Default:
   * {@link defaultIncludeDirs}(`file`).
   */
  includeDirs?: readonly string[];
}

/**
 * RUNE's Bash plugin library (`bpcs.sh`, `service.sh`) as shipped inside @rune/core
 * (`dist/bash-lib`, copied from the repository's plugins/lib at build time).
 */
export function bundledBashLibraryDir(): string {
  // dist/plugins/assemble-plugin.js and src/plugins/assemble-plugin.ts both reach dist/bash-lib.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bash-lib');
}

/**
 * Where the includes of the plugin at `pluginPath` are looked up: `<dir>/lib`, `<dir>/../lib`
 * (a plugins/ + lib/ tree, as in RUNE's repository), then {@link bundledBashLibraryDir}.
 */
export function defaultIncludeDirs(pluginPath: string): string[] {
  const dir = dirname(pluginPath);
  return [join(dir, 'lib'), join(dir, '..', 'lib'), bundledBashLibraryDir()];
}

interface AssemblyState {
  readonly includeDirs: readonly string[];
  /** Library real paths already inlined. */
  readonly seen: Set<string>;
  readonly includes: PluginInclude[];
  bytes: number;
}

function includeError(message: string, details: Record<string, unknown>): RuneError {
  return new RuneError('PLUGIN_INCLUDE_FAILED', message, {
    source: { component: 'rune-core' },
    details,
  });
}

/** Finds `name` in the include directories; its real path stays inside the directory. */
function findInclude(
  name: string,
  state: AssemblyState,
  where: { file: string; line: number },
): { path: string; text: string } {
  const at = `${where.file}:${where.line}`;
  const details = { file: where.file, line: where.line, include: name };
  if (name.length > 255 || !INCLUDE_NAME.test(name)) {
    throw includeError(
      `${at}: invalid include name "${name.slice(0, 80)}" (a relative path of plain names ending in .sh; no "..", no leading "/" or ".")`,
      details,
    );
  }
  for (const dir of state.includeDirs) {
    let realDir: string;
    let real: string;
    try {
      realDir = realpathSync(dir);
      real = realpathSync(join(dir, name));
    } catch {
      continue;
    }
    if (!real.startsWith(realDir + sep)) {
      throw includeError(
        `${at}: include ${name} resolves to ${real}, outside the library directory ${realDir}; nothing is read from there`,
        { ...details, path: real, dir: realDir },
      );
    }
    const stats = statSync(real);
    if (!stats.isFile()) {
      throw includeError(`${at}: include ${name} (${real}) is not a regular file`, {
        ...details,
        path: real,
      });
    }
    if (state.bytes + stats.size > MAX_ASSEMBLED_BYTES) {
      throw includeError(
        `${at}: including ${name} makes the plugin larger than ${MAX_ASSEMBLED_BYTES} bytes`,
        { ...details, path: real, limit: MAX_ASSEMBLED_BYTES },
      );
    }
    return { path: real, text: readFileSync(real, 'utf8') };
  }
  throw includeError(
    `${at}: included library not found: ${name} (searched ${state.includeDirs.join(', ')})`,
    { ...details, searched: [...state.includeDirs] },
  );
}

/** Expands the include lines of `text`; `firstLine` is the line number of its first line. */
function expand(
  text: string,
  file: string,
  firstLine: number,
  stack: readonly string[],
  state: AssemblyState,
): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const match = INCLUDE_MARKER.exec(line);
    if (match === null) {
      out.push(line);
      continue;
    }
    const name = match[1]!;
    const lineNumber = index + firstLine;
    const where = { file, line: lineNumber };
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      throw includeError(
        `${file}:${lineNumber}: includes nest deeper than ${MAX_INCLUDE_DEPTH} (${[...stack, name].join(' -> ')})`,
        { file, line: lineNumber, include: name, chain: [...stack, name] },
      );
    }
    const found = findInclude(name, state, where);
    // A `# shellcheck source=...` directive belongs to the source line being replaced.
    if (out.length > 0 && SHELLCHECK_SOURCE.test(out[out.length - 1]!)) out.pop();
    if (stack.includes(found.path)) {
      throw includeError(
        `${file}:${lineNumber}: include cycle: ${name} (${found.path}) includes itself through ${stack.join(' -> ')}`,
        { file, line: lineNumber, include: name, chain: [...stack, found.path] },
      );
    }
    if (state.seen.has(found.path)) {
      out.push(`# @rune-include ${name}: already included above`);
      continue;
    }
    state.seen.add(found.path);
    let body = found.text.replace(/\r\n/g, '\n');
    const bodyLine = body.startsWith('#!') ? 2 : 1;
    if (bodyLine === 2) body = body.slice(body.indexOf('\n') + 1);
    body = body.replace(/\n+$/, '');
    const digest = sha256Hex(body);
    state.bytes += Buffer.byteLength(body);
    state.includes.push({ name, path: found.path, sha256: digest });
    out.push(`# ---- begin @rune-include ${name} (sha256 ${digest}) ----`);
    out.push(...expand(body, found.path, bodyLine, [...stack, found.path], state));
    out.push(`# ---- end @rune-include ${name} ----`);
  }
  return out;
}

/**
 * A library line that lets the assembler leave out the library's functions the plugin never
 * names (see {@link dropUnusedLibraryFunctions}).
 */
export const DROP_UNUSED_MARKER = /^#[ \t]*@rune-library[ \t]+drop-unused-functions[ \t]*$/;

const BEGIN_INCLUDE = /^# ---- begin @rune-include (\S+) \(sha256 [0-9a-f]{64}\) ----$/;
const FUNCTION_START = /^([A-Za-z_][A-Za-z0-9_]*)\(\) \{(?:[ \t]+#.*)?$/;
const WORD = /[A-Za-z_][A-Za-z0-9_]*/g;
const COMMENT_LINE = /^[ \t]*#.*\n/gm;

/**
 * Leaves out the functions of opted-in libraries that nothing in the plugin can call.
 *
 * Why: Bash parses every function definition it reads, and parsing the whole plugin library
 * cost more CPU on the node than a minimal plugin's whole run; a plugin uses a fraction of it.
 * A library opts in with a {@link DROP_UNUSED_MARKER} line; its top-level functions are the
 * blocks from `name() {` at the start of a line to the next `}` line. A function is kept when
 * its name appears as a word anywhere in the kept text — the plugin (comments and strings
 * included), libraries that did not opt in, the libraries' top-level code (traps) and the
 * bodies of kept functions — so the rule over-approximates and never drops a function that is
 * named; only a name assembled at run time (`"bpcs_$kind"`) is not seen. The comment lines
 * right above a dropped function go with it.
 *
 * A kept function that only deferred (`# @rune-cold`) functions name is marked deferred too:
 * nothing Bash reads on every run can call it, so it is defined when they are (for `noop`, the
 * temp-dir helper that only the jq parser and the subshell hand-over use). The same word rule
 * decides, over the plugin, the top-level code and the bodies of the functions that stay.
 * Deterministic: depends only on the text.
 */
function dropUnusedLibraryFunctions(lines: string[]): string[] {
  interface Definition {
    readonly name: string;
    /** First line (its leading comments included) and the line after the closing `}`. */
    readonly from: number;
    readonly to: number;
    /** The `name() {` line; marked `# @rune-cold` there. */
    readonly start: number;
    readonly cold: boolean;
  }
  const definitions: Definition[] = [];
  /** Lines inside opted-in libraries. */
  const optedIn = new Array<boolean | undefined>(lines.length);
  let inOptedIn = false;
  let optedInFound = false;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (BEGIN_INCLUDE.test(line)) {
      // A library opts in on one of its first lines (its header comment).
      inOptedIn = lines.slice(index + 1, index + 40).some((l) => DROP_UNUSED_MARKER.test(l));
      optedInFound ||= inOptedIn;
      continue;
    }
    if (line.startsWith('# ---- end @rune-include ')) {
      inOptedIn = false;
      continue;
    }
    if (!inOptedIn) continue;
    optedIn[index] = true;
    const start = FUNCTION_START.exec(line);
    if (start === null) continue;
    let end = index + 1;
    while (end < lines.length && lines[end] !== '}') end++;
    if (end >= lines.length) break; // not a block we understand: keep the rest as it is
    let from = index;
    while (
      from > 0 &&
      /^#(?! ----)/.test(lines[from - 1]!) &&
      !DROP_UNUSED_MARKER.test(lines[from - 1]!)
    ) {
      from--;
    }
    definitions.push({
      name: start[1]!,
      from,
      to: end + 1,
      start: index,
      cold: COLD_FUNCTION_START.test(line),
    });
    index = end;
  }
  if (!optedInFound || definitions.length === 0) return lines;
  const byName = new Map<string, Definition[]>();
  const owner = new Array<Definition | undefined>(lines.length);
  for (const definition of definitions) {
    byName.set(definition.name, [...(byName.get(definition.name) ?? []), definition]);
    for (let i = definition.from; i < definition.to; i++) owner[i] = definition;
  }
  const kept = new Set<Definition>();
  const pending: string[] = [];
  const mention = (text: string): void => {
    for (const word of text.replace(COMMENT_LINE, '').match(WORD) ?? []) {
      for (const definition of byName.get(word) ?? []) {
        if (!kept.has(definition)) {
          kept.add(definition);
          pending.push(lines.slice(definition.from, definition.to).join('\n'));
        }
      }
    }
  };
  // The plugin's own text counts whole (a name in a comment or a string keeps its function);
  // in opted-in libraries only code does, or the doc comments would keep everything.
  lines.forEach((line, i) => {
    if (owner[i] !== undefined) return;
    if (optedIn[i] === true && /^[ \t]*#/.test(line)) return;
    for (const word of line.match(WORD) ?? []) mention(word);
  });
  for (let body = pending.pop(); body !== undefined; body = pending.pop()) mention(body);
  // What Bash reads on every run can reach: the same roots, through the bodies of the kept
  // functions that are not deferred.
  const hot = new Set<Definition>();
  const reach = (text: string): void => {
    for (const word of text.replace(COMMENT_LINE, '').match(WORD) ?? []) {
      for (const definition of byName.get(word) ?? []) {
        if (kept.has(definition) && !hot.has(definition)) {
          hot.add(definition);
          if (!definition.cold)
            pending.push(lines.slice(definition.from, definition.to).join('\n'));
        }
      }
    }
  };
  lines.forEach((line, i) => {
    if (owner[i] !== undefined) return;
    if (optedIn[i] === true && /^[ \t]*#/.test(line)) return;
    for (const word of line.match(WORD) ?? []) reach(word);
  });
  for (let body = pending.pop(); body !== undefined; body = pending.pop()) reach(body);
  const out: string[] = [];
  lines.forEach((line, i) => {
    const definition = owner[i];
    if (definition !== undefined && !kept.has(definition)) return;
    if (
      definition !== undefined &&
      i === definition.start &&
      !definition.cold &&
      !hot.has(definition)
    ) {
      out.push(`${definition.name}() { # @rune-cold: only deferred functions call it`);
      return;
    }
    out.push(line);
  });
  return out;
}

/**
 * A library line that lets the assembler leave out the library's comment lines (see
 * {@link stripLibraryCommentLines}).
 */
export const STRIP_COMMENTS_MARKER = /^#[ \t]*@rune-library[ \t]+strip-comment-lines[ \t]*$/;
/** Comment lines that stay: ShellCheck directives and the library markers. */
const KEPT_COMMENT = /^[ \t]*#[ \t]*(?:shellcheck[ \t]|@rune-library[ \t])/;

/**
 * Leaves out the whole-line comments of the libraries that opt in with a
 * {@link STRIP_COMMENTS_MARKER} line (ShellCheck directives and `@rune-library` lines stay).
 *
 * Why: Bash reads every line of a plugin it runs, comments included, and the library's
 * documentation is a third of its text; it stays in the library's source (its sha256 is in the
 * begin marker). Only for a library that asks: the library promises that no line of a string or
 * here-document of its own starts with `#`, which the assembler cannot see. Deterministic.
 */
function stripLibraryCommentLines(lines: string[]): string[] {
  let strip = false;
  return lines.filter((line, index) => {
    if (BEGIN_INCLUDE.test(line)) {
      strip = lines.slice(index + 1, index + 40).some((l) => STRIP_COMMENTS_MARKER.test(l));
      return true;
    }
    if (line.startsWith('# ---- end @rune-include ')) {
      strip = false;
      return true;
    }
    return !strip || !/^[ \t]*#/.test(line) || KEPT_COMMENT.test(line);
  });
}

/** A library function marked `name() { # @rune-cold ...`: its definition is read on first call. */
const COLD_FUNCTION_START = /^([A-Za-z_][A-Za-z0-9_]*)\(\) \{[ \t]+#[ \t]*@rune-cold\b.*$/;
/** The assembled loader of the deferred functions (one per plugin, at the first deferred one). */
export const COLD_LOADER = '__rune_load_cold';
/** Runs a deferred function, loading them first: `__rune_cold NAME ARGS...` (no stub needed). */
export const COLD_CALL = '__rune_cold';
/**
 * A word in command position: after the start of the line, `;`, `&`, `|`, `(`, `)` (a `case`
 * branch), `{`, `!`, a quote that opens a trap's command, or a keyword that starts a command;
 * followed by a blank, `;`, `)`, a quote or the end. Only such words are routed through
 * {@link COLD_CALL}. (Not aware of quoting: a library that opts in keeps such text out of its
 * strings, and the assembler tests check bpcs.sh's routed lines.)
 */
const COMMAND_WORD =
  /(?<=(?:^|[;&|(){!'])[ \t]*|\b(?:then|do|else|if|elif|while|until)[ \t]+)([A-Za-z_][A-Za-z0-9_]*)(?=[ \t;)']|$)/g;
/** The variable holding the plugin file's absolute path (set on the assembled file's first lines). */
export const COLD_SELF = '__RUNE_SELF';
/** First and last line of the deferred section (each followed by 16 hex digits of the functions' sha256). */
const COLD_BEGIN = '# ---- @rune-deferred';
const COLD_END = '# ---- end @rune-deferred';

/** What {@link deferColdLibraryFunctions} leaves: the text Bash reads, and what moves away. */
interface DeferredSplit {
  /** The lines Bash reads: stubs instead of the deferred functions, the loader's place marked. */
  readonly lines: string[];
  /** The deferred functions' lines (empty: nothing deferred, `lines` is the input). */
  readonly cold: string[];
  /** Index in `lines` where the loader goes (the first deferred function's place). */
  readonly loaderAt: number;
}

/**
 * Takes the functions an opted-in library marks `# @rune-cold` (failure paths, rare encodings,
 * the general and jq parsers) out of the text Bash reads on every run: each becomes a one-line
 * stub that loads all of them, then calls the real one (see {@link placeDeferredFunctions} for
 * where they go). A deferred function that only deferred functions name gets no stub. Functions
 * defined inside a function are global in Bash, and a stub runs its function in the caller's
 * scope (the library's dynamic-scope helpers keep working). Deterministic.
 */
function deferColdLibraryFunctions(lines: string[]): DeferredSplit {
  const cold: string[] = [];
  const out: string[] = [];
  /** Where each stub went in `out`, and its function. */
  const stubs: { readonly at: number; readonly name: string }[] = [];
  /** Indexes in `out` of the opted-in libraries' own lines (their call sites may be routed). */
  const libraryLines = new Set<number>();
  let loaderAt = -1;
  let inOptedIn = false;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (BEGIN_INCLUDE.test(line)) {
      inOptedIn = lines.slice(index + 1, index + 40).some((l) => DROP_UNUSED_MARKER.test(l));
    } else if (line.startsWith('# ---- end @rune-include ')) {
      inOptedIn = false;
    }
    const start = inOptedIn ? COLD_FUNCTION_START.exec(line) : null;
    if (start === null) {
      if (inOptedIn) libraryLines.add(out.length);
      out.push(line);
      continue;
    }
    let end = index + 1;
    while (end < lines.length && lines[end] !== '}') end++;
    if (end >= lines.length) {
      out.push(line);
      continue;
    }
    const name = start[1]!;
    if (loaderAt === -1) loaderAt = out.length;
    cold.push(...lines.slice(index, end + 1));
    stubs.push({ at: out.length, name });
    out.push(`${name}() { ${COLD_LOADER}; ${name} "$@"; }`);
    index = end;
  }
  if (loaderAt === -1) return { lines, cold: [], loaderAt };
  // In the libraries' own code, a call of a deferred function in command position goes through
  // the loader (`__rune_cold NAME ARGS...`), which needs no stub for NAME. A deferred function
  // that nothing else names (the plugin, other libraries, an argument) needs no stub either: it
  // is defined by the time one of them runs. (Bash parses each stub: about 40 k instructions.)
  const coldNames = new Set(stubs.map((stub) => stub.name));
  const stubLines = new Set(stubs.map((stub) => stub.at));
  for (const i of libraryLines) {
    const line = out[i]!;
    if (/^[ \t]*#/.test(line) || (i > 0 && out[i - 1]!.endsWith('\\'))) continue;
    out[i] = line.replace(COMMAND_WORD, (name: string) =>
      coldNames.has(name) ? `${COLD_CALL} ${name}` : name,
    );
  }
  const named = new Set<string>();
  const routed = new RegExp(`\\b${COLD_CALL} [A-Za-z_][A-Za-z0-9_]*`, 'g');
  out.forEach((line, i) => {
    if (stubLines.has(i)) return;
    for (const word of line.replace(routed, '').match(WORD) ?? []) named.add(word);
  });
  const unneeded = new Set(stubs.filter((stub) => !named.has(stub.name)).map((stub) => stub.at));
  // No stub precedes loaderAt, so the loader still goes where the first deferred function was.
  return { lines: out.filter((_line, i) => !unneeded.has(i)), cold, loaderAt };
}

/**
 * Lays out an assembled plugin with deferred functions: `head` (shebang and header), the line
 * that records the file's own path, the text Bash reads with the loader at its place, an `exit`
 * that ends the plugin, and after it the deferred section, which Bash never reads unless a stub
 * runs.
 *
 * Why: Bash parses every function definition it reads (about 0.45 million instructions per KB
 * here, plus a copy of the body when it is defined), and most of a library is only reached when
 * something goes wrong. Text after the point where a script exits costs nothing. The loader
 * opens the plugin file by the path it started from, skips exactly the byte offset written into
 * it here and reads exactly the section's length, checks that the text it got begins and ends
 * with the section's markers (which carry the sha256 of the deferred functions, so a file
 * replaced by another version is refused instead of half-read), and only then defines the
 * functions (`eval` of that text). Nothing is built at run time: the loaded text is a constant
 * of the assembled file, covered by its sha256 like every other byte; nothing read from the
 * request or the environment is evaluated. The loader exits 70 with a message when the file
 * cannot be read back (for example a plugin fed to Bash on stdin). Deterministic.
 */
function placeDeferredFunctions(head: string, split: DeferredSplit): string {
  // 64 bits of the functions' sha256 tell one assembly's section from another's.
  const digest = sha256Hex(split.cold.join('\n')).slice(0, 16);
  const begin = `${COLD_BEGIN} ${digest}`;
  const endLine = `${COLD_END} ${digest}`;
  const section = `${begin}\n${split.cold.join('\n')}\n${endLine}`;
  const length = Buffer.byteLength(section);
  const self = [
    '# The plugin file, read again by the loader of the deferred library functions (an absolute',
    '# path: the plugin may change directory).',
    `${COLD_SELF}=\${BASH_SOURCE[0]-}`,
    `[[ $${COLD_SELF} == /* ]] || ${COLD_SELF}=$PWD/$${COLD_SELF}`,
  ].join('\n');
  // Bash parses the loader on every run: it is kept short.
  const loader = (offset: number): string[] => [
    "# Deferred library functions (marked @rune-cold) sit after the plugin's end, where Bash never",
    '# reads them; the first call of one of their stubs below reads them back from this file.',
    `${COLD_LOADER}() {`,
    `  [[ -z \${__RUNE_COLD_LOADED-} ]] || return 0`,
    "  local LC_ALL=C IFS='' __rune_fd __rune_text='' __rune_all=()",
    `  if { exec {__rune_fd}<"$${COLD_SELF}"; } 2>/dev/null; then`,
    // The whole file as one element (it holds no NUL byte), then the section's bytes: cheaper
    // than `read -N`, which Bash runs byte by byte. Bash < 4.4 has no `mapfile -d`: it refuses
    // the option before reading anything (status 2), and `read -N` reads the bytes instead.
    `    if mapfile -d '' -n 1 __rune_all <&"$__rune_fd" 2>/dev/null; then`,
    `      ((\${#__rune_all[@]} == 0)) || __rune_text=\${__rune_all[0]:${offset}:${length}}`,
    '    else',
    `      read -r -d '' -N ${offset} __rune_text <&"$__rune_fd" || :`,
    `      read -r -d '' -N ${length} __rune_text <&"$__rune_fd" || :`,
    '    fi',
    '    exec {__rune_fd}<&-',
    '  fi',
    `  [[ \${#__rune_text} == ${length} && \${__rune_text:0:${begin.length}} == '${begin}' && \${__rune_text:${length - endLine.length}} == '${endLine}' ]] ||`,
    `    { echo "rune: cannot read the deferred library functions back from $${COLD_SELF}" >&2; exit 70; }`,
    '  __RUNE_COLD_LOADED=1',
    '  eval "$__rune_text"',
    '}',
    `${COLD_CALL}() { [[ -n \${__RUNE_COLD_LOADED-} ]] || ${COLD_LOADER}; "$@"; }`,
  ];
  // The plugin ends here, with the status of its last command; a file that is sourced (an
  // assembled library a test sources) returns instead. Nothing below is read by Bash.
  const guard = [
    '# The end: the deferred library functions below are read only by their loader.',
    '__rune_status=$?; return "$__rune_status" 2>/dev/null || exit "$__rune_status"',
  ].join('\n');
  const layout = (offset: number): string => {
    const lines = [...split.lines];
    lines.splice(split.loaderAt, 0, ...loader(offset));
    const body = lines.join('\n').replace(/\n+$/, '');
    return `${head}\n${self}\n${body}\n${guard}\n`;
  };
  // The offset is written into the text it measures: repeat until its digits stop changing.
  let offset = 0;
  for (let text = layout(offset); Buffer.byteLength(text) !== offset; text = layout(offset)) {
    offset = Buffer.byteLength(text);
  }
  return `${layout(offset)}${section}\n`;
}

/**
 * Assembles a plugin from its source bytes (`file` is where they came from: it names the
 * plugin in errors and sets the default include directories). Throws `PLUGIN_INCLUDE_FAILED`.
 */
export function assemblePluginSource(
  source: Uint8Array,
  file: string,
  options: AssemblePluginOptions = {},
): AssembledPlugin {
  const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  // Fast path (every built-in, most plugins): no include line, the bytes are what runs.
  if (!bytes.includes('@rune-include')) return { content: bytes, assembled: false, includes: [] };
  const text = bytes.toString('utf8').replace(/\r\n/g, '\n');
  // One scan of the whole text: an assembled built-in (about 50 KB, its markers contain
  // "@rune-include" but are no include lines) is checked at every CLI start.
  if (!INCLUDE_LINE.test(text)) return { content: bytes, assembled: false, includes: [] };
  const state: AssemblyState = {
    includeDirs: options.includeDirs ?? defaultIncludeDirs(file),
    seen: new Set(),
    includes: [],
    bytes: bytes.byteLength,
  };
  const newline = text.indexOf('\n');
  const firstLine = newline === -1 ? text : text.slice(0, newline);
  const hasShebang = firstLine.startsWith('#!');
  const body = hasShebang ? (newline === -1 ? '' : text.slice(newline + 1)) : text;
  const split = deferColdLibraryFunctions(
    stripLibraryCommentLines(
      dropUnusedLibraryFunctions(expand(body, file, hasShebang ? 2 : 1, [], state)),
    ),
  );
  const head = `${hasShebang ? firstLine : DEFAULT_SHEBANG}\n${ASSEMBLED_HEADER.join('\n')}`;
  const assembled =
    split.cold.length === 0
      ? `${head}\n${split.lines.join('\n').replace(/\n+$/, '')}\n`
      : placeDeferredFunctions(head, split);
  return { content: Buffer.from(assembled, 'utf8'), assembled: true, includes: state.includes };
}

/** Reads the plugin at `path` and assembles it ({@link assemblePluginSource}). */
export function readAssembledPlugin(
  path: string,
  options: AssemblePluginOptions = {},
): AssembledPlugin {
  return assemblePluginSource(readFileSync(path), path, options);
}
