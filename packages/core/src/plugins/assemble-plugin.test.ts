import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import {
  assemblePluginSource,
  bundledBashLibraryDir,
  MAX_INCLUDE_DEPTH,
  readAssembledPlugin,
} from './assemble-plugin.js';
import { discoverPlugins } from './plugin-registry.js';

const libSources = fileURLToPath(new URL('../../../../plugins/lib/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'rune-assemble-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
/** A fresh plugin directory with a lib/ beside the plugin. */
function tree(files: Record<string, string>): string {
  const dir = join(scratch, `t${counter++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text, { mode: 0o755 });
  }
  return dir;
}

/** Assembles `p.sh` (`plugin`) with the library it includes, `lib/lib.sh`: its tree and text. */
function assembleWithLibrary(plugin: string, library: string): { dir: string; text: string } {
  const dir = tree({ 'p.sh': plugin, 'lib/lib.sh': library });
  return { dir, text: readAssembledPlugin(join(dir, 'p.sh')).content.toString('utf8') };
}

/** Runs assembled `text` as the file `dir`/assembled.sh (as ship mode runs it). */
function runAssembled(dir: string, text: string, ...args: string[]) {
  const file = join(dir, 'assembled.sh');
  writeFileSync(file, text, { mode: 0o755 });
  return spawnSync('bash', [file, ...args], { encoding: 'utf8' });
}

const HELLO = [
  '#!/usr/bin/env bash',
  'set -euo pipefail',
  '# shellcheck source=/dev/null',
  'source "$RUNE_LIB/bpcs.sh" # @rune-include bpcs.sh',
  'bpcs_init hello 1.0.0',
  'bpcs_success "hi"',
  '',
].join('\n');

describe('the Bash plugin library shipped with @rune/core', () => {
  it('is a byte-exact copy of plugins/lib (dist/bash-lib)', () => {
    const shipped = readdirSync(bundledBashLibraryDir()).sort();
    expect(shipped).toEqual(
      readdirSync(libSources)
        .filter((name) => name.endsWith('.sh'))
        .sort(),
    );
    for (const name of shipped) {
      expect(readFileSync(join(bundledBashLibraryDir(), name), 'utf8')).toBe(
        readFileSync(join(libSources, name), 'utf8'),
      );
    }
  });
});

describe('assemblePluginSource', () => {
  it('leaves out the functions of an opted-in library that nothing names, and only those', () => {
    const library = [
      '# shellcheck shell=bash',
      '# @rune-library drop-unused-functions',
      'trap _lib_on_exit EXIT',
      '# lib_used — named by the plugin.',
      'lib_used() {',
      '  _lib_helper "$@"',
      '}',
      '# _lib_helper — reached through lib_used.',
      '_lib_helper() {',
      '  echo helper',
      '}',
      '_lib_on_exit() { # reached through the trap at the top level',
      '  :',
      '}',
      '# lib_in_comment — only a comment of the plugin names it: kept.',
      'lib_in_comment() {',
      '  :',
      '}',
      '# lib_unused — nobody names it (its doc comment mentions lib_used, which does not count).',
      'lib_unused() {',
      '  lib_used',
      '}',
    ].join('\n');
    const plain = library.replace('# @rune-library drop-unused-functions\n', '');
    const plugin = [
      '#!/usr/bin/env bash',
      'source lib/lib.sh # @rune-include lib.sh',
      '# see lib_in_comment',
      'lib_used x',
      '',
    ].join('\n');
    const { text } = assembleWithLibrary(plugin, library);
    for (const kept of [
      'lib_used() {',
      '_lib_helper() {',
      '_lib_on_exit() {',
      'lib_in_comment() {',
    ]) {
      expect(text).toContain(kept);
    }
    expect(text).not.toContain('lib_unused');
    // Without the opt-in line the library is inlined whole.
    const whole = tree({ 'p.sh': plugin, 'lib/lib.sh': plain });
    expect(readAssembledPlugin(join(whole, 'p.sh')).content.toString('utf8')).toContain(
      'lib_unused() {',
    );
  });

  it('defers the @rune-cold functions of an opted-in library: stubs, one loader, same behaviour', () => {
    const library = [
      '# @rune-library drop-unused-functions',
      'lib_hot() {',
      '  local word=hot',
      '  _lib_cold_helper',
      '  echo "$word"',
      '}',
      "# _lib_cold_helper — sets the caller's local (dynamic scope must survive the stub).",
      '_lib_cold_helper() { # @rune-cold: rarely needed',
      '  word="cold:$(lib_cold_twice ab)"',
      '}',
      'lib_cold_twice() { # @rune-cold',
      '  echo "$1$1"',
      '}',
      'lib_cold_unused() { # @rune-cold',
      '  :',
      '}',
    ].join('\n');
    const plugin = [
      '#!/usr/bin/env bash',
      'set -euo pipefail',
      'source lib/lib.sh # @rune-include lib.sh',
      'lib_hot',
      'lib_hot',
      '',
    ].join('\n');
    const { dir, text } = assembleWithLibrary(plugin, library);
    expect(text).toContain('_lib_cold_helper() { __rune_load_cold; _lib_cold_helper "$@"; }');
    // Only a deferred function names lib_cold_twice: defined by the loader, it needs no stub.
    expect(text).not.toContain('lib_cold_twice() { __rune_load_cold');
    expect(text).toContain('lib_cold_twice() { # @rune-cold');
    expect(text).not.toContain('lib_cold_unused');
    // The real definitions sit once each after the plugin's end (where Bash never reads), in a
    // section whose byte offset and length the loader carries.
    expect(text.split('_lib_cold_helper() { # @rune-cold').length).toBe(2);
    const end = text.indexOf('\n__rune_status=$?; return "$__rune_status" 2>/dev/null || exit');
    expect(end).toBeGreaterThan(text.indexOf('\nlib_hot\nlib_hot\n'));
    expect(text.indexOf('__rune_load_cold() {')).toBeLessThan(text.indexOf('_lib_cold_helper() {'));
    const at = text.indexOf('\n# ---- @rune-deferred ') + 1;
    const section = text.slice(at);
    expect(at).toBeGreaterThan(end);
    expect(section).toContain('_lib_cold_helper() { # @rune-cold');
    expect(section).toMatch(
      /^# ---- @rune-deferred ([0-9a-f]{16})\n[\s\S]*\n# ---- end @rune-deferred \1\n$/,
    );
    const offset = Buffer.byteLength(text.slice(0, at));
    expect(text).toContain(`read -r -d '' -N ${offset} __rune_text`);
    expect(text).toContain(`read -r -d '' -N ${Buffer.byteLength(section) - 1} __rune_text`);
    const run = runAssembled(dir, text);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('cold:abab\ncold:abab\n');
    // The same from another directory through a relative path, and after a cd in the plugin.
    const relative = spawnSync('bash', ['-c', 'cd "$1" && bash ./assembled.sh', 'sh', dir], {
      encoding: 'utf8',
      cwd: dir,
    });
    expect(relative.stdout).toBe('cold:abab\ncold:abab\n');
    expect(
      assemblePluginSource(Buffer.from(text), join(dir, 'assembled.sh')).content.toString('utf8'),
    ).toBe(text);
    // Without the opt-in line the markers are comments: everything stays where it was.
    const plain = tree({
      'p.sh': plugin,
      'lib/lib.sh': library.replace('# @rune-library drop-unused-functions\n', ''),
    });
    expect(readAssembledPlugin(join(plain, 'p.sh')).content.toString('utf8')).not.toContain(
      '__rune_load_cold',
    );
  });

  it('defers a function that only deferred functions call, and keeps one that code read on every run calls', () => {
    const library = [
      '# @rune-library drop-unused-functions',
      'lib_hot() {',
      '  _lib_shared',
      '  [[ $# == 0 ]] || _lib_rare',
      '}',
      '_lib_shared() {',
      '  echo shared',
      '}',
      '_lib_rare() { # @rune-cold: rarely needed',
      '  _lib_only_cold',
      '  _lib_shared',
      '}',
      '_lib_only_cold() {',
      '  echo only-cold',
      '}',
    ].join('\n');
    const plugin = [
      '#!/usr/bin/env bash',
      'set -euo pipefail',
      'source lib/lib.sh # @rune-include lib.sh',
      'lib_hot',
      'lib_hot rare',
      '',
    ].join('\n');
    const { dir, text } = assembleWithLibrary(plugin, library);
    const end = text.indexOf('\n__rune_status=$?; return "$__rune_status" 2>/dev/null || exit');
    const read = text.slice(0, end);
    const section = text.slice(end);
    expect(read).toContain('\n_lib_shared() {\n');
    expect(read).not.toContain('_lib_only_cold');
    expect(section).toContain(
      '\n_lib_only_cold() { # @rune-cold: only deferred functions call it\n',
    );
    const run = runAssembled(dir, text);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('shared\nshared\nonly-cold\nshared\n');
  });

  it('leaves out the comment lines of a library that asks, keeping directives and code', () => {
    const library = [
      '# shellcheck shell=bash',
      '# @rune-library strip-comment-lines',
      '# The documentation of the library.',
      'lib_f() {',
      '  # why this line does what it does',
      '  # shellcheck disable=SC2086 # a directive stays',
      '  echo "# not a comment" $1 # a trailing comment stays',
      '}',
    ].join('\n');
    const plugin = [
      '#!/usr/bin/env bash',
      'source lib/lib.sh # @rune-include lib.sh',
      '# mine',
      'lib_f ok',
      '',
    ].join('\n');
    const { text } = assembleWithLibrary(plugin, library);
    expect(text).not.toContain('The documentation of the library.');
    expect(text).not.toContain('why this line');
    expect(text).toContain('# shellcheck shell=bash');
    expect(text).toContain('# @rune-library strip-comment-lines');
    expect(text).toContain('  # shellcheck disable=SC2086 # a directive stays');
    expect(text).toContain('  echo "# not a comment" $1 # a trailing comment stays');
    // The plugin's own comments are its own: they stay.
    expect(text).toContain('\n# mine\n');
    const run = spawnSync('bash', ['-c', text], { encoding: 'utf8' });
    expect(run.stdout).toBe('# not a comment ok\n');
    // Without the marker, every comment stays.
    const plain = tree({
      'p.sh': plugin,
      'lib/lib.sh': library.replace('# @rune-library strip-comment-lines\n', ''),
    });
    expect(readAssembledPlugin(join(plain, 'p.sh')).content.toString('utf8')).toContain(
      'why this line',
    );
  });

  it("routes the library's own calls of deferred functions through the loader: no stub for them", () => {
    const library = [
      '# @rune-library drop-unused-functions',
      'lib_hot() {',
      '  [[ $1 == ok ]] || _lib_fail "bad $1"',
      '  echo "hot $1"',
      '}',
      'lib_named() {',
      '  local f=_lib_fail_named',
      '  "$f" x',
      '}',
      '_lib_fail() { # @rune-cold',
      '  echo "cold: $1"',
      '}',
      '_lib_fail_named() { # @rune-cold',
      '  echo "named: $1"',
      '}',
    ].join('\n');
    const plugin = [
      '#!/usr/bin/env bash',
      'source lib/lib.sh # @rune-include lib.sh',
      'lib_hot ok',
      'lib_hot no',
      'lib_named',
      '',
    ].join('\n');
    const { dir, text } = assembleWithLibrary(plugin, library);
    // A call in command position goes through the loader; a name used as a value keeps its stub.
    expect(text).toContain('  [[ $1 == ok ]] || __rune_cold _lib_fail "bad $1"');
    expect(text).not.toContain('_lib_fail() { __rune_load_cold');
    expect(text).toContain('_lib_fail_named() { __rune_load_cold; _lib_fail_named "$@"; }');
    const run = runAssembled(dir, text);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('hot ok\ncold: bad no\nhot no\nnamed: x\n');
  });

  it('loads the deferred functions only from the exact bytes it was assembled with', () => {
    const library = [
      '# @rune-library drop-unused-functions',
      'lib_cold() { # @rune-cold',
      '  echo "cold $1"',
      '}',
    ].join('\n');
    const plugin =
      '#!/usr/bin/env bash\nsource lib/lib.sh # @rune-include lib.sh\nlib_cold "$1"\nfalse\n';
    const { dir, text } = assembleWithLibrary(plugin, library);
    const run = (content: string, ...args: string[]) => runAssembled(dir, content, ...args);
    // The plugin's status is that of its last command (the end line keeps it).
    const ok = run(text, 'x');
    expect(ok.stdout).toBe('cold x\n');
    expect(ok.status).toBe(1);
    // A file whose deferred section moved (one byte more before it), was cut short, or was
    // replaced by another assembly's (another library version: other markers) is refused: the
    // loader defines nothing it cannot match against the section's offset, length and markers.
    // (What guards the bytes themselves is the sha256 the transports check before the exec.)
    const other = assembleWithLibrary(plugin, library.replace('cold $1', 'evil $1')).text;
    const sectionOf = (t: string) => t.slice(t.indexOf('\n# ---- @rune-deferred ') + 1);
    for (const altered of [
      text.replace('#!/usr/bin/env bash\n', '#!/usr/bin/env bash\n#\n'),
      text.slice(0, -2),
      text.slice(0, -sectionOf(text).length) + sectionOf(other),
    ]) {
      const refused = run(altered, 'x');
      expect(refused.stdout).toBe('');
      expect(refused.status).toBe(70);
      expect(refused.stderr).toContain('cannot read the deferred library functions back');
    }
    // Fed to Bash on stdin, the plugin has no file to read back: the same clear refusal.
    const piped = spawnSync('bash', ['-s', 'x'], { input: text, encoding: 'utf8' });
    expect(piped.status).toBe(70);
    expect(piped.stderr).toContain('cannot read the deferred library functions back');
  });

  it('inlines the shipped library into a plugin that has no copy of its own, and it runs', () => {
    const dir = tree({ 'hello.sh': HELLO });
    const assembled = readAssembledPlugin(join(dir, 'hello.sh'));
    const text = assembled.content.toString('utf8');
    expect(assembled.assembled).toBe(true);
    expect(assembled.includes.map((include) => include.path)).toEqual([
      join(bundledBashLibraryDir(), 'bpcs.sh'),
    ]);
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).not.toContain('$RUNE_LIB');
    expect(text).not.toContain('# shellcheck source=/dev/null');
    // The library's code up to its first function (bpcs.sh opts in to losing its comment
    // lines; directives stay), and the functions this plugin reaches.
    const library = readFileSync(join(libSources, 'bpcs.sh'), 'utf8');
    const top = library
      .slice(library.indexOf('\n') + 1, library.indexOf('# --- logging'))
      .split('\n')
      .filter(
        (line) => !/^[ \t]*#/.test(line) || /^[ \t]*#[ \t]*(shellcheck|@rune-library) /.test(line),
      )
      .join('\n');
    expect(text).toContain(top);
    expect(text).not.toContain('# bpcs.sh — a small library');
    expect(text).toContain('\nbpcs_init() {\n');
    expect(text).toContain('\n_bpcs_parse_flat() {\n');
    // The general parser is deferred: its definition is in the loader's here-document.
    expect(text).toContain('\n_bpcs_parse_bash() { # @rune-cold');
    // bpcs.sh opts in to leaving out what the plugin never names.
    expect(text).not.toContain('\nbpcs_param_array() {\n');
    expect(text).not.toContain('\nbpcs_artifact() {\n');
    // The assembled file runs alone: no library on disk next to it.
    const alone = join(scratch, 'alone.sh');
    writeFileSync(alone, assembled.content, { mode: 0o755 });
    const request = JSON.stringify({
      message_metadata: {
        message_id: '5b0c0f9e-7d4a-4a47-9a55-0e0f6c2d7b11',
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
        timestamp: '2026-01-01T00:00:00.000Z',
        sender: { host: 'test', user: 'test', tool: 'rune', version: '0.1.0' },
      },
      routing: { action: 'hello', node: 'localhost', transport: 'local', deploy_mode: 'ship' },
      payload: {
        schema_version: 'rcs_v1',
        data: { input_parameters: {}, options: { dry_run: false, timeout_ms: 5000 } },
      },
    });
    const run = spawnSync(alone, [], { input: request, encoding: 'utf8', env: {} });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).payload.result).toBe('success');
  });

  it('is deterministic and idempotent; a file without includes is returned byte for byte', () => {
    const dir = tree({ 'hello.sh': HELLO });
    const first = readAssembledPlugin(join(dir, 'hello.sh'));
    const second = readAssembledPlugin(join(dir, 'hello.sh'));
    expect(second.content.equals(first.content)).toBe(true);
    const again = assemblePluginSource(first.content, join(dir, 'hello.sh'));
    expect(again.assembled).toBe(false);
    expect(again.content.equals(first.content)).toBe(true);
    const plain = Buffer.from('#!/bin/sh\necho hi # not an include\n');
    expect(assemblePluginSource(plain, join(dir, 'x.sh')).content.equals(plain)).toBe(true);
  });

  it("prefers the plugin's own lib/, inlines each library once and follows nested includes", () => {
    const dir = tree({
      'p.sh': '#!/bin/bash\n. x # @rune-include a.sh\n. y # @rune-include b.sh\n',
      'lib/a.sh': '#!/bin/bash\necho a\n. z # @rune-include b.sh\n',
      'lib/b.sh': 'echo b\n',
    });
    const assembled = readAssembledPlugin(join(dir, 'p.sh'));
    const text = assembled.content.toString('utf8');
    expect(assembled.includes.map((include) => include.name)).toEqual(['a.sh', 'b.sh']);
    expect(text.match(/^echo b$/gm)).toHaveLength(1);
    expect(text).toContain('# @rune-include b.sh: already included above');
  });

  it('refuses names that leave the library directories, naming the file and line', () => {
    for (const name of ['../secret.sh', '/etc/passwd.sh', '.hidden.sh', 'a/../../b.sh', 'x.txt']) {
      const dir = tree({ 'p.sh': `#!/bin/bash\necho\n. q # @rune-include ${name}\n` });
      const error = catchRuneError(() => readAssembledPlugin(join(dir, 'p.sh')));
      expect(error.code, name).toBe('PLUGIN_INCLUDE_FAILED');
      expect(error.message).toContain(`${join(dir, 'p.sh')}:3`);
    }
  });

  it('refuses a symlink in a library directory that points outside it', () => {
    const outside = tree({ 'secret.sh': 'echo secret\n' });
    const dir = tree({ 'p.sh': '#!/bin/bash\n. q # @rune-include evil.sh\n' });
    mkdirSync(join(dir, 'lib'));
    symlinkSync(join(outside, 'secret.sh'), join(dir, 'lib', 'evil.sh'));
    const error = catchRuneError(() => readAssembledPlugin(join(dir, 'p.sh')));
    expect(error.code).toBe('PLUGIN_INCLUDE_FAILED');
    expect(error.message).toMatch(/outside the library directory/);
  });

  it('refuses a missing library, a cycle and nesting deeper than the bound', () => {
    const missing = tree({ 'p.sh': '#!/bin/bash\n. q # @rune-include nope.sh\n' });
    expect(catchRuneError(() => readAssembledPlugin(join(missing, 'p.sh'))).message).toMatch(
      /included library not found: nope\.sh/,
    );
    const cycle = tree({
      'p.sh': '#!/bin/bash\n. q # @rune-include a.sh\n',
      'lib/a.sh': '. q # @rune-include b.sh\n',
      'lib/b.sh': '. q # @rune-include a.sh\n',
    });
    const cycleError = catchRuneError(() => readAssembledPlugin(join(cycle, 'p.sh')));
    expect(cycleError.code).toBe('PLUGIN_INCLUDE_FAILED');
    expect(cycleError.message).toMatch(/include cycle/);
    const files: Record<string, string> = { 'p.sh': '#!/bin/bash\n. q # @rune-include l0.sh\n' };
    for (let depth = 0; depth <= MAX_INCLUDE_DEPTH; depth++) {
      files[`lib/l${depth}.sh`] = `. q # @rune-include l${depth + 1}.sh\n`;
    }
    files[`lib/l${MAX_INCLUDE_DEPTH + 1}.sh`] = 'echo deep\n';
    const deep = tree(files);
    expect(catchRuneError(() => readAssembledPlugin(join(deep, 'p.sh'))).message).toMatch(
      /nest deeper than/,
    );
  });
});

describe('the registry registers the assembled bytes', () => {
  it('hashes what ships, and refuses a plugin whose include fails with PLUGIN_INCLUDE_FAILED', () => {
    const dir = tree({
      'hello.sh': HELLO,
      'broken.sh': '#!/bin/bash\n. q # @rune-include nope.sh\n',
    });
    const registry = discoverPlugins({ sources: [{ kind: 'user', dir }] });
    const hello = registry.resolve('hello');
    const assembled = readAssembledPlugin(join(dir, 'hello.sh'));
    expect(hello.sha256).toBe(
      (
        spawnSync('sha256sum', [], { input: assembled.content, encoding: 'utf8' }).stdout as string
      ).slice(0, 64),
    );
    expect(hello.size).toBe(assembled.content.byteLength);
    expect(hello.includes.map((include) => include.name)).toEqual(['bpcs.sh']);
    expect(catchRuneError(() => registry.resolve('broken')).code).toBe('PLUGIN_INCLUDE_FAILED');
  });
});
