/**
 * `rune --version`: the CLI's version, then the RUNE packages it was built with (from
 * dist/versions.json, written at build time) and the Node.js runtime — what a bug report needs.
 * It imports nothing from @rune/*, so it costs no more than start-up.
 */
import { readFileSync } from 'node:fs';
import type { CliIo } from '../cli-io.js';
import { CLI_VERSION } from '../version.js';

/** Versions of the RUNE packages, by package name. */
export type PackageVersions = Record<string, string>;

/** The versions recorded at build time; just the CLI's own when run from sources. */
export function builtVersions(): PackageVersions {
  try {
    const recorded = JSON.parse(
      readFileSync(new URL('./versions.json', import.meta.url), 'utf8'),
    ) as PackageVersions;
    return { ...recorded, '@rune/cli': CLI_VERSION };
  } catch {
    return { '@rune/cli': CLI_VERSION };
  }
}

/** The output format asked for after `--version` (`-o json`, `--output=jsonl`), or null if unrecognised. */
function outputOf(rest: readonly string[]): string | null {
  if (rest.length === 0) return 'pretty';
  const [flag, value] = rest;
  if (rest.length === 2 && (flag === '-o' || flag === '--output')) return value ?? null;
  if (rest.length === 1 && flag !== undefined) {
    const match = /^(?:-o|--output)=(.+)$/.exec(flag);
    if (match !== null) return match[1] ?? null;
  }
  return null;
}

/**
 * Prints the versions for `rune --version [-o json|jsonl]`; returns the exit code, or null when
 * `rest` is not one of those forms (the caller then lets the argument parser report it).
 */
export function versionCommand(rest: readonly string[], io: CliIo): number | null {
  const output = outputOf(rest);
  if (output !== 'pretty' && output !== 'json' && output !== 'jsonl') return null;
  const packages = builtVersions();
  const runtime = { node: process.version, platform: `${process.platform}-${process.arch}` };
  if (output !== 'pretty') {
    const document = { rune: CLI_VERSION, packages, ...runtime };
    io.out(`${JSON.stringify(document, null, output === 'json' ? 2 : undefined)}\n`);
    return 0;
  }
  const rows: [string, string][] = Object.entries(packages).filter(
    ([name]) => name !== '@rune/cli',
  );
  rows.push(['node', `${runtime.node} (${runtime.platform})`]);
  const width = Math.max(...rows.map(([name]) => name.length));
  io.out(
    `rune ${CLI_VERSION}\n${rows.map(([name, version]) => `  ${name.padEnd(width)}  ${version}`).join('\n')}\n`,
  );
  return 0;
}
