import { describe, expect, it } from 'vitest';
import {
  isMrsManifest,
  listManifestRuleViolations,
  parseMrsManifest,
  validateMrsManifest,
} from './parse.js';
import type { MrsManifest } from './schema.js';

const manifest: MrsManifest = {
  schema_version: 'mrs_v1',
  name: 'check-disk',
  version: '1.0.0',
  description: 'Reports file system usage.',
  parameters: {
    type: 'object',
    properties: {
      warning: { type: 'integer', minimum: 0, maximum: 100, default: 80 },
      mounts: { type: 'array', items: { type: 'string' }, default: ['/'] },
    },
    required: ['warning'],
  },
  tags: ['diagnostics'],
  requirements: { commands: ['df'], privilege: 'user' },
  timeout_ms: 10_000,
  idempotent: true,
  supports_dry_run: true,
  dangerous: false,
  accepts: ['rcs_v1'],
};

describe('MRS manifests', () => {
  it('accepts a valid manifest as object, text and bytes', () => {
    expect(isMrsManifest(manifest)).toBe(true);
    expect(parseMrsManifest(JSON.stringify(manifest)).ok).toBe(true);
    expect(parseMrsManifest(new TextEncoder().encode(JSON.stringify(manifest))).ok).toBe(true);
  });

  it('lists every rule beyond JSON Schema', () => {
    const broken: MrsManifest = {
      ...manifest,
      parameters: {
        type: 'object',
        properties: {
          warning: { type: 'integer', minimum: 90, maximum: 10, default: 'high' },
          mounts: { type: 'array' },
          name: {
            type: 'string',
            items: { type: 'string' },
            minLength: 5,
            maxLength: 1,
            pattern: '(',
          },
          list: {
            type: 'array',
            items: { type: 'integer', minimum: 3, maximum: 1 },
            minItems: 2,
            maxItems: 1,
          },
        },
        required: ['warning', 'missing'],
      },
    };
    expect(listManifestRuleViolations(broken).map((violation) => violation.pointer)).toEqual([
      '/parameters/required/1',
      '/parameters/properties/warning',
      '/parameters/properties/warning/default',
      '/parameters/properties/mounts',
      '/parameters/properties/name/items',
      '/parameters/properties/name',
      '/parameters/properties/name/pattern',
      '/parameters/properties/list',
      '/parameters/properties/list/items',
    ]);
    const result = validateMrsManifest(broken);
    expect(result.ok ? 'ok' : result.error.code).toBe('SCHEMA_VIOLATION');
  });

  it('accepts future RCS versions in accepts but not malformed ones', () => {
    expect(isMrsManifest({ ...manifest, accepts: ['rcs_v2', 'rcs_v1'] })).toBe(true);
    expect(isMrsManifest({ ...manifest, accepts: ['RCS 1'] })).toBe(false);
    expect(isMrsManifest({ ...manifest, accepts: ['rcs_v1', 'rcs_v1'] })).toBe(false);
  });

  it('escapes parameter names in pointers', () => {
    const withTilde = validateMrsManifest({
      ...manifest,
      parameters: { type: 'object', properties: { 'a/b': { type: 'string' } } },
    });
    expect(withTilde.ok).toBe(false);
  });
});
