/**
 * RUNE's Bash plugin library ships with the test kit (dist/bash-lib, copied from plugins/lib at
 * build time), and a plugin outside RUNE's repository that includes it with
 * `# @rune-include bpcs.sh` is assembled from that copy. Needs the kit's build.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bundledBashLibraryDir, inlineIncludes } from '../src/index.js';

const libSources = fileURLToPath(new URL('../../../plugins/lib/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'rune-plugin-test-lib-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the Bash plugin library shipped with the kit', () => {
  it('is a byte-exact copy of plugins/lib', () => {
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

  it('is inlined into a plugin that has no copy of its own', async () => {
    const plugin = join(scratch, 'hello.sh');
    writeFileSync(
      plugin,
      [
        '#!/usr/bin/env bash',
        'source ../lib/bpcs.sh # @rune-include bpcs.sh',
        'bpcs_init hello 1.0.0',
        'bpcs_success "hi"',
        '',
      ].join('\n'),
    );
    const assembled = await inlineIncludes(plugin);
    expect(assembled).toContain(readFileSync(join(libSources, 'bpcs.sh'), 'utf8').trimEnd());
    expect(assembled).not.toContain('@rune-include bpcs.sh');
  });
});
