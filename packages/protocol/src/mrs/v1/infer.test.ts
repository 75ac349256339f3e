import { describe, expect, it } from 'vitest';
import { inferMrsManifest } from './infer.js';
import { validateMrsManifest } from './parse.js';

describe('inferMrsManifest', () => {
  it('infers a cautious, valid manifest from the file name', () => {
    const result = inferMrsManifest('gather-logs.sh');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value).toMatchObject({
      name: 'gather-logs',
      version: '0.0.0',
      entrypoint: 'gather-logs.sh',
      inferred: true,
      dangerous: true,
      idempotent: false,
      supports_dry_run: false,
      accepts: ['rcs_v1'],
      parameters: { type: 'object', properties: {}, additionalProperties: true },
      requirements: { commands: [], privilege: 'user' },
    });
    expect(validateMrsManifest(result.value).ok).toBe(true);
  });

  it('keeps only the base name and drops one extension', () => {
    expect(
      inferMrsManifest('/opt/rune/plugins/check-disk.py').ok &&
        inferMrsManifest('/opt/rune/plugins/check-disk.py'),
    ).toMatchObject({ value: { name: 'check-disk', entrypoint: 'check-disk.py' } });
    expect(inferMrsManifest('noop')).toMatchObject({ ok: true, value: { name: 'noop' } });
  });

  it.each([
    'Gather Logs.sh',
    '..',
    'plugins/',
    '.sh',
    'check.disk.sh',
    `${'a'.repeat(65)}.sh`,
    'UPPER.sh',
    '',
  ])('refuses %j with INVALID_ACTION_NAME', (file) => {
    const result = inferMrsManifest(file);
    expect(result.ok ? 'ok' : result.error.code).toBe('INVALID_ACTION_NAME');
  });
});
