/**
 * `rune plugin new NAME [--dir D]`: scaffolds a plugin that works as generated — NAME.sh (the
 * Bash source, including RUNE's library with `# @rune-include bpcs.sh`), NAME.manifest.json and
 * NAME.cases.yaml — which passes `rune-plugin-test` and runs with `rune run NAME` locally and over
 * SSH (the registry assembles the library into the one file that ships). The default directory
 * is the user plugin directory (`$XDG_DATA_HOME/rune/plugins`), where `rune run` finds it at once.
 * Files are created with O_EXCL: nothing existing is ever overwritten.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bundledBashLibraryDir, expandLocalPath, resolveXdgDirs } from '@rune/core';
import { isActionName, RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, createCliRune, guarded, loadCliConfig } from './command-context.js';

/** The flags of `rune plugin new`. */
export interface PluginNewArgs extends CommonArgs {
  name: string;
  dir?: string;
}

/** The plugin source `rune plugin new` writes. */
export function pluginTemplate(name: string): string {
  return `#!/usr/bin/env bash
# ${name} — TODO: say in one line what this plugin does on the node.
# Contract and library: docs/writing-plugins.md. Check it: rune-plugin-test ${name}.sh
set -euo pipefail
# RUNE replaces the next line with its Bash library (bpcs.sh) when it registers the plugin, so
# what ships to a node is one self-contained file. To run this source by hand, set RUNE_BASH_LIB
# to the library's directory (\`rune plugin new\` printed it).
# shellcheck source=/dev/null
source "\${RUNE_BASH_LIB:?run me through rune or rune-plugin-test, or set RUNE_BASH_LIB}/bpcs.sh" # @rune-include bpcs.sh

bpcs_init ${name} 0.1.0
bpcs_params_allow message

# Validate every parameter here too (defence in depth): the same pattern as the manifest.
bpcs_param_string message 'hello' '^[A-Za-z0-9 ,.!?-]{1,200}$'
message=$REPLY

if bpcs_dry_run; then
  bpcs_out str would_say "$message"
  bpcs_success "dry run: would say: $message"
fi

bpcs_out str said "$message"
bpcs_success "said: $message"
`;
}

/** The manifest `rune plugin new` writes. */
export function manifestTemplate(name: string): string {
  const manifest = {
    schema_version: 'mrs_v1',
    name,
    version: '0.1.0',
    description: `TODO: what ${name} does.`,
    parameters: {
      type: 'object',
      properties: {
        message: {
          type: 'string',
          description: 'What to say.',
          pattern: '^[A-Za-z0-9 ,.!?-]{1,200}$',
          default: 'hello',
        },
      },
      additionalProperties: false,
    },
    tags: [],
    requirements: { commands: [], privilege: 'user', os: ['linux'] },
    timeout_ms: 10000,
    idempotent: true,
    supports_dry_run: true,
    dangerous: false,
    accepts: ['rcs_v1'],
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** The cases file `rune plugin new` writes. */
export function casesTemplate(name: string): string {
  return `# Cases for rune-plugin-test (docs/plugin-test-kit.md); generated cases run as well.
cases:
  - name: says the message
    parameters: { message: "hi there" }
    expect:
      exit_code: 0
      result: success
      output_data:
        /said: "hi there"
  - name: a dry run only says what it would do
    dry_run: true
    expect:
      result: success
      output_data:
        /would_say: hello
        /said: { $exists: false }
# ${name}: add a case for every outcome (success, partial, each failure) and shim the tools the
# plugin calls (shims:), so that a test never changes this machine.
`;
}

function writeError(path: string, error: unknown): RuneError {
  const code = (error as { code?: unknown } | null)?.code;
  return new RuneError(
    'INVALID_ARGUMENT',
    code === 'EEXIST'
      ? `${path} already exists; not overwriting it (pick another name or --dir)`
      : `cannot write ${path}${typeof code === 'string' ? ` (${code})` : ''}`,
    {
      details: { path, ...(typeof code === 'string' ? { reason: code } : {}) },
      cause: error,
      source: { component: 'rune-cli' },
    },
  );
}

/** Scaffolds the plugin; returns the exit code. */
export function pluginNewCommand(args: PluginNewArgs, io: CliIo): Promise<number> {
  return guarded(io, args, () => {
    const name: string = String(args.name);
    if (!isActionName(name)) {
      const shown: string = name;
      throw new RuneError(
        'INVALID_ACTION_NAME',
        `"${shown.slice(0, 80)}" is not a valid action name (lowercase letters, digits and dashes; at most 64 characters)`,
        { source: { component: 'rune-cli' }, details: { action: shown.slice(0, 256) } },
      );
    }
    const loaded = loadCliConfig(io, args);
    const builtin = createCliRune(io, loaded, args)
      .registry()
      .candidates(name)
      .find((candidate) => candidate.source === 'builtin');
    if (builtin !== undefined) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `"${name}" is a built-in action; a plugin of that name would never run (built-ins win). Pick another name`,
        { source: { component: 'rune-cli' }, details: { action: name } },
      );
    }
    const dirs = resolveXdgDirs({ env: io.env });
    const dir =
      args.dir === undefined
        ? join(dirs.dataHome, 'rune', 'plugins')
        : expandLocalPath(args.dir, dirs.home, resolve('.'));
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw writeError(dir, error);
    }
    const files: [string, string, number][] = [
      [join(dir, `${name}.sh`), pluginTemplate(name), 0o755],
      [join(dir, `${name}.manifest.json`), manifestTemplate(name), 0o644],
      [join(dir, `${name}.cases.yaml`), casesTemplate(name), 0o644],
    ];
    const written: string[] = [];
    for (const [path, text, mode] of files) {
      try {
        // "wx": fails if anything (a file, a symlink) is already there — no check-then-write race.
        writeFileSync(path, text, { flag: 'wx', mode });
        written.push(path);
      } catch (error) {
        // All three or none: a half-written plugin would only confuse the next attempt.
        for (const done of written) rmSync(done, { force: true });
        throw writeError(path, error);
      }
    }
    const library = bundledBashLibraryDir();
    if (args.output === 'json' || args.output === 'jsonl') {
      const document = { action: name, dir, files: written, bash_library: library };
      io.out(
        args.output === 'json'
          ? `${JSON.stringify(document, null, 2)}\n`
          : `${JSON.stringify(document)}\n`,
      );
      return 0;
    }
    const plugin = terminalSafe(join(dir, `${name}.sh`));
    io.out(
      [
        `wrote ${written.map((path) => terminalSafe(path)).join(', ')}`,
        `the Bash library it includes: ${terminalSafe(library)} (inlined when RUNE registers the plugin)`,
        'next:',
        `  rune-plugin-test ${plugin}`,
        `  rune run ${name} --node localhost${args.dir === undefined ? '' : ` (with [plugins] plugin_dir = "${terminalSafe(dir)}")`}`,
        '',
      ].join('\n'),
    );
    return 0;
  });
}
