import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catchRuneError } from '../testing/catch-rune-error.js';
import { discoverPlugins, pluginRegistryIsCurrent, suggestActions } from './plugin-registry.js';

let root: string;
const dirs = () => ({
  builtin: join(root, 'builtin'),
  user: join(root, 'user'),
  site: join(root, 'site'),
});

function plugin(dir: string, name: string, body = 'echo {}', mode = 0o755): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/usr/bin/env bash\n${body}\n`);
  chmodSync(join(dir, name), mode);
}

const manifest = (name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    schema_version: 'mrs_v1',
    name,
    version: '1.2.3',
    description: 'test',
    parameters: { type: 'object', properties: {} },
    tags: [],
    requirements: { commands: [], privilege: 'user' },
    timeout_ms: 1000,
    idempotent: true,
    supports_dry_run: false,
    dangerous: false,
    accepts: ['rcs_v1'],
    ...extra,
  });

function registry() {
  const d = dirs();
  return discoverPlugins({
    sources: [
      { kind: 'builtin', dir: d.builtin },
      { kind: 'user', dir: d.user },
      { kind: 'plugin_dir', dir: d.site },
    ],
  });
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'rune-registry-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('discoverPlugins', () => {
  it('treats missing directories as empty', () => {
    expect(registry().actions()).toEqual([]);
  });

  it('registers plugins with and without manifests and hashes them', () => {
    const d = dirs();
    plugin(d.user, 'alpha.sh');
    plugin(d.user, 'beta.sh');
    writeFileSync(join(d.user, 'beta.manifest.json'), manifest('beta'));
    writeFileSync(join(d.user, 'notes.txt'), 'x');
    const reg = registry();
    expect(reg.actions()).toEqual(['alpha', 'beta']);
    const alpha = reg.resolve('alpha');
    expect(alpha.manifest.inferred).toBe(true);
    expect(alpha.manifest.version).toBe('0.0.0');
    expect(alpha.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(reg.resolve('beta').manifest.version).toBe('1.2.3');
    expect(reg.warnings.some((w) => w.includes('notes.txt'))).toBe(true);
  });

  it('lets the first directory win and keeps shadowed candidates', () => {
    const d = dirs();
    plugin(d.builtin, 'restart-docker.sh', 'echo builtin');
    plugin(d.site, 'restart-docker.sh', 'echo evil');
    const reg = registry();
    const resolved = reg.resolve('restart-docker');
    expect(resolved.source).toBe('builtin');
    expect(resolved.shadowed.map((c) => c.source)).toEqual(['plugin_dir']);
    expect(reg.warnings.some((w) => w.includes('shadows'))).toBe(true);
  });

  it('refuses bad names, unknown actions with suggestions, invalid manifests, non-executables', () => {
    const d = dirs();
    plugin(d.user, 'check-disk.sh');
    plugin(d.user, 'broken.sh');
    writeFileSync(join(d.user, 'broken.manifest.json'), manifest('broken', { version: 'x' }));
    plugin(d.user, 'mismatch.sh');
    writeFileSync(join(d.user, 'mismatch.manifest.json'), manifest('other'));
    plugin(d.user, 'noexec.sh', 'echo', 0o644);
    const reg = registry();
    for (const bad of ['../../etc/passwd', 'A B', 'rm;ls', '', 'x'.repeat(65)]) {
      expect(catchRuneError(() => reg.resolve(bad)).code).toBe('INVALID_ACTION_NAME');
    }
    const unknown = catchRuneError(() => reg.resolve('check-dsk'));
    expect(unknown.code).toBe('UNKNOWN_ACTION');
    expect(unknown.message).toContain('did you mean check-disk');
    const broken = catchRuneError(() => reg.resolve('broken'));
    expect(broken.code).toBe('INVALID_MANIFEST');
    expect(broken.message).toContain('broken.manifest.json');
    expect(catchRuneError(() => reg.resolve('mismatch')).code).toBe('INVALID_MANIFEST');
    expect(catchRuneError(() => reg.resolve('noexec')).code).toBe('PLUGIN_NOT_EXECUTABLE');
  });

  it('runs built-in plugins without an execute bit (package managers drop it), not user plugins', () => {
    const d = dirs();
    plugin(d.builtin, 'noop.sh', 'echo {}', 0o644);
    plugin(d.user, 'mine.sh', 'echo {}', 0o644);
    const reg = registry();
    const builtin = reg.resolve('noop');
    expect(builtin.source).toBe('builtin');
    expect(builtin.executable).toBe(false);
    expect(catchRuneError(() => reg.resolve('mine')).code).toBe('PLUGIN_NOT_EXECUTABLE');
  });

  it('reports a plugin dir that is not a directory as unreadable', () => {
    writeFileSync(join(root, 'site'), 'not a dir');
    expect(catchRuneError(() => registry()).code).toBe('PLUGIN_DIR_UNREADABLE');
  });

  it('suggests near names', () => {
    expect(suggestActions('noop', ['noop', 'gather-logs'])).toEqual(['noop']);
    expect(suggestActions('docker', ['restart-docker', 'noop'])).toEqual(['restart-docker']);
  });
});

describe('pluginRegistryIsCurrent (a long-lived process noticing changed plugins)', () => {
  it('is true until a plugin, its manifest, a library it includes or a directory changes', () => {
    const d = dirs();
    plugin(d.site, 'tool.sh', 'echo one\nsource lib/shared.sh # @rune-include shared.sh');
    mkdirSync(join(d.site, 'lib'), { recursive: true });
    writeFileSync(join(d.site, 'lib', 'shared.sh'), 'shared() { :; }\n');
    writeFileSync(join(d.site, 'tool.manifest.json'), manifest('tool'));
    plugin(d.site, 'other.sh');
    const fresh = () => registry();

    let reg = fresh();
    expect(reg.resolve('tool').includes.map((include) => include.name)).toEqual(['shared.sh']);
    expect(pluginRegistryIsCurrent(reg, 'tool')).toBe(true);
    expect(pluginRegistryIsCurrent(reg)).toBe(true);

    // Rewritten in place (no directory entry changes): the plugin file itself.
    writeFileSync(
      join(d.site, 'tool.sh'),
      '#!/usr/bin/env bash\necho two\nsource lib/shared.sh # @rune-include shared.sh\n',
    );
    expect(pluginRegistryIsCurrent(reg, 'tool')).toBe(false);
    expect(pluginRegistryIsCurrent(reg, 'other')).toBe(true);
    const before = reg.resolve('tool').sha256;
    reg = fresh();
    expect(reg.resolve('tool').sha256).not.toBe(before);
    expect(pluginRegistryIsCurrent(reg, 'tool')).toBe(true);

    // The library it includes, and the manifest.
    writeFileSync(join(d.site, 'lib', 'shared.sh'), 'shared() { echo changed; }\n');
    expect(pluginRegistryIsCurrent(reg, 'tool')).toBe(false);
    reg = fresh();
    writeFileSync(join(d.site, 'tool.manifest.json'), manifest('tool', { version: '2.0.0' }));
    expect(pluginRegistryIsCurrent(reg, 'tool')).toBe(false);
    reg = fresh();

    // A new plugin in a directory of higher precedence (the user's) changes that directory.
    plugin(d.user, 'tool.sh', 'echo shadow');
    expect(pluginRegistryIsCurrent(reg)).toBe(false);
    expect(fresh().resolve('tool').source).toBe('user');
  });
});
