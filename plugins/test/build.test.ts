import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateMrsManifest } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, build } from '../build.mjs';
import { which } from './harness.js';

const pluginsRoot = fileURLToPath(new URL('..', import.meta.url));
const PLUGINS = ['check-disk', 'gather-logs', 'noop', 'restart-docker', 'restart-nomad'];
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

let root: string;
let first: string;
let second: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rune-plugins-build-'));
  first = join(root, 'first');
  second = join(root, 'second');
  build(first);
  // The CLI entry point, as `pnpm build` runs it.
  const cli = spawnSync(process.execPath, [join(pluginsRoot, 'build.mjs'), second], {
    encoding: 'utf8',
  });
  expect(cli.status, cli.stderr).toBe(0);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('build.mjs', () => {
  it('assembles every built-in plugin with its manifest and a SHA256SUMS file', () => {
    const files = readdirSync(first).sort();
    expect(files).toEqual(
      [...PLUGINS.flatMap((name) => [`${name}.manifest.json`, `${name}.sh`]), 'SHA256SUMS'].sort(),
    );
    const sums = readFileSync(join(first, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(sums).toHaveLength(PLUGINS.length * 2);
    for (const line of sums) {
      const [hash, file] = line.split('  ');
      expect(sha256(readFileSync(join(first, file!)))).toBe(hash);
    }
  });

  it('is deterministic: two builds give byte-identical files', () => {
    for (const file of readdirSync(first)) {
      expect(sha256(readFileSync(join(second, file))), file).toBe(
        sha256(readFileSync(join(first, file))),
      );
    }
  });

  it('writes self-contained executables (mode 0755, env bash shebang, library inlined)', () => {
    for (const name of PLUGINS) {
      const file = join(first, `${name}.sh`);
      expect(statSync(file).mode & 0o777).toBe(0o755);
      const text = readFileSync(file, 'utf8');
      expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
      expect(text).toContain('# ---- begin @rune-include bpcs.sh');
      expect(text).not.toMatch(/^\s*(source|\.)\s.*@rune-include/m);
      expect(text).not.toContain('../lib/');
      expect(text.endsWith('\n')).toBe(true);
    }
  });

  it('fails loudly on a missing include, a missing manifest and a version mismatch', () => {
    const src = join(root, 'src');
    const lib = join(src, 'lib');
    const builtin = join(src, 'builtin');
    mkdirSync(lib, { recursive: true });
    mkdirSync(builtin, { recursive: true });
    writeFileSync(join(lib, 'bpcs.sh'), '# lib\n');
    const manifest = (version: string) => JSON.stringify({ name: 'demo', version });
    writeFileSync(join(builtin, 'demo.manifest.json'), manifest('1.0.0'));
    writeFileSync(
      join(builtin, 'demo.sh'),
      '#!/bin/sh\n# @rune-include nope.sh\nbpcs_init demo 1.0.0\n',
    );
    const out = join(root, 'out-bad');
    expect(() => build(out, { builtinDir: builtin, libDir: lib })).toThrow(
      /included library not found/,
    );
    expect(() => build(out, { builtinDir: builtin, libDir: lib })).toThrow(BuildError);

    writeFileSync(join(builtin, 'demo.sh'), '# @rune-include bpcs.sh\nbpcs_init demo 2.0.0\n');
    expect(() => build(out, { builtinDir: builtin, libDir: lib })).toThrow(
      /manifest says demo 1.0.0/,
    );

    writeFileSync(join(builtin, 'demo.sh'), '# @rune-include bpcs.sh\nbpcs_init demo 1.0.0\n');
    expect(build(out, { builtinDir: builtin, libDir: lib })).toEqual(['demo']);

    writeFileSync(join(builtin, 'other.sh'), '# @rune-include bpcs.sh\nbpcs_init other 1.0.0\n');
    expect(() => build(out, { builtinDir: builtin, libDir: lib })).toThrow(/has no manifest/);

    const cli = spawnSync(process.execPath, [join(pluginsRoot, 'build.mjs')], { encoding: 'utf8' });
    expect(cli.status).toBe(2);
    expect(cli.stderr).toContain('usage');
  });
});

describe('manifests', () => {
  for (const name of PLUGINS) {
    it(`${name}.manifest.json is valid MRS v1 and matches the plugin`, () => {
      const manifest: unknown = JSON.parse(
        readFileSync(join(pluginsRoot, 'builtin', `${name}.manifest.json`), 'utf8'),
      );
      const validated = validateMrsManifest(manifest);
      expect(validated.ok ? 'valid' : validated.error.details).toBe('valid');
      if (!validated.ok) return;
      expect(validated.value.name).toBe(name);
      expect(validated.value.accepts).toEqual(['rcs_v1']);
      expect(validated.value.supports_dry_run).toBe(true);
      // Every declared default satisfies the declared type.
      for (const [param, spec] of Object.entries(validated.value.parameters.properties)) {
        if (spec.default === undefined) continue;
        const kind = Array.isArray(spec.default) ? 'array' : typeof spec.default;
        const expected = spec.type === 'integer' ? 'number' : spec.type;
        expect(kind, `${name}.${param}`).toBe(expected);
      }
    });
  }

  it('marks the restart plugins dangerous and root, the others not dangerous', () => {
    for (const name of PLUGINS) {
      const manifest = JSON.parse(
        readFileSync(join(pluginsRoot, 'builtin', `${name}.manifest.json`), 'utf8'),
      ) as { dangerous: boolean; requirements: { privilege: string } };
      const restart = name.startsWith('restart-');
      expect(manifest.dangerous, name).toBe(restart);
      if (restart) expect(manifest.requirements.privilege).toBe('root');
    }
  });
});

describe('shellcheck', () => {
  it('finds nothing in the built plugins and the library', { timeout: 180_000 }, () => {
    const shellcheck = which('shellcheck');
    if (shellcheck === undefined) {
      throw new Error(
        'shellcheck is not installed: the built plugins must pass ShellCheck. Install it (apt-get install shellcheck) — this test never skips.',
      );
    }
    const files = [
      ...PLUGINS.map((name) => join(first, `${name}.sh`)),
      join(pluginsRoot, 'lib', 'bpcs.sh'),
      join(pluginsRoot, 'lib', 'service.sh'),
    ];
    const result = spawnSync(shellcheck, ['--shell=bash', '--severity=style', ...files], {
      encoding: 'utf8',
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
