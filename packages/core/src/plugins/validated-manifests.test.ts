import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discoverPlugins, type PluginSourceKind } from './plugin-registry.js';
import {
  readValidatedManifests,
  VALIDATED_MANIFESTS_FILE,
  writeValidatedManifests,
} from './validated-manifests.js';

let dir: string;

const manifest = (name: string, description = 'from the file') =>
  JSON.stringify({
    schema_version: 'mrs_v1',
    name,
    version: '1.0.0',
    description,
    parameters: { type: 'object', properties: {} },
    tags: [],
    requirements: { commands: [], privilege: 'user' },
    timeout_ms: 1000,
    idempotent: true,
    supports_dry_run: false,
    dangerous: false,
    accepts: ['rcs_v1'],
  });

function plugin(name: string, manifestText: string): void {
  writeFileSync(join(dir, `${name}.sh`), '#!/bin/sh\n');
  chmodSync(join(dir, `${name}.sh`), 0o755);
  writeFileSync(join(dir, `${name}.manifest.json`), manifestText);
}

/** Rewrites the recorded description of `file`, to see whether discovery used the record. */
function markRecord(file: string): void {
  const path = join(dir, VALIDATED_MANIFESTS_FILE);
  const record = JSON.parse(readFileSync(path, 'utf8'));
  record.manifests[file].manifest.description = 'from the record';
  writeFileSync(path, JSON.stringify(record));
}

const describeAction = (kind: PluginSourceKind, action: string) =>
  discoverPlugins({ sources: [{ kind, dir }] }).resolve(action).manifest.description;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rune-validated-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('validated built-in manifests', () => {
  it('records valid manifests with their sha256 and leaves invalid ones out', () => {
    plugin('good', manifest('good'));
    plugin('bad', '{"schema_version":"mrs_v1","name":"bad"}');
    const report = writeValidatedManifests(dir);
    expect(report.recorded).toEqual(['good.manifest.json']);
    expect(report.invalid.map((entry) => entry.file)).toEqual(['bad.manifest.json']);
    const record = readValidatedManifests(dir);
    expect([...record.keys()]).toEqual(['good.manifest.json']);
    expect(record.get('good.manifest.json')?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The record is a dot file: discovery neither lists it nor warns about it.
    const registry = discoverPlugins({ sources: [{ kind: 'builtin', dir }] });
    expect(registry.actions()).toEqual(['bad', 'good']);
    expect(registry.warnings).toEqual([]);
    expect(() => registry.resolve('bad')).toThrow(/bad\.manifest\.json/);
  });

  it('discovery uses the record for the built-in directory while the file is unchanged', () => {
    plugin('tool', manifest('tool'));
    writeValidatedManifests(dir);
    markRecord('tool.manifest.json');
    expect(describeAction('builtin', 'tool')).toBe('from the record');
    // Never for other directories.
    expect(describeAction('user', 'tool')).toBe('from the file');
  });

  it('validates again when the manifest changed after the build', () => {
    plugin('tool', manifest('tool'));
    writeValidatedManifests(dir);
    markRecord('tool.manifest.json');
    writeFileSync(join(dir, 'tool.manifest.json'), manifest('tool', 'edited later'));
    expect(describeAction('builtin', 'tool')).toBe('edited later');
    writeFileSync(join(dir, 'tool.manifest.json'), '{"schema_version":"mrs_v1"}');
    expect(() => discoverPlugins({ sources: [{ kind: 'builtin', dir }] }).resolve('tool')).toThrow(
      expect.objectContaining({ code: 'INVALID_MANIFEST' }),
    );
  });

  it('ignores a missing or malformed record', () => {
    plugin('tool', manifest('tool'));
    expect(readValidatedManifests(dir).size).toBe(0);
    writeFileSync(join(dir, VALIDATED_MANIFESTS_FILE), 'not json');
    expect(readValidatedManifests(dir).size).toBe(0);
    writeFileSync(join(dir, VALIDATED_MANIFESTS_FILE), '{"schema":"other","manifests":{}}');
    expect(readValidatedManifests(dir).size).toBe(0);
    expect(describeAction('builtin', 'tool')).toBe('from the file');
  });
});
