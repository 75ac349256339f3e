import type { MrsManifest } from '@rune/protocol';
import { describe, expect, it } from 'vitest';
import { baseParameters, generateCases, unsampledParameters } from './generated-cases.js';

const manifest: MrsManifest = {
  schema_version: 'mrs_v1',
  name: 'sample',
  version: '1.0.0',
  description: 'sample',
  parameters: {
    type: 'object',
    properties: {
      lines: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
      unit: { type: 'string', maxLength: 8 },
      mode: { type: 'string', enum: ['fast', 'safe'] },
    },
    required: ['unit'],
  },
  tags: [],
  requirements: { commands: [], privilege: 'user' },
  timeout_ms: 1000,
  idempotent: true,
  supports_dry_run: true,
  dangerous: false,
  accepts: ['rcs_v1'],
};

describe('generateCases', () => {
  it('fills defaults and samples required parameters', () => {
    expect(baseParameters(manifest)).toEqual({ lines: 100, unit: 'x' });
  });
  it('generates defaults, dry-run, missing, wrong-type, boundary and broken-request cases', () => {
    const cases = generateCases(manifest);
    const byName = new Map(cases.map((entry) => [entry.name, entry]));
    expect(byName.get('generated: defaults')?.kind).toBe('valid');
    expect(byName.get('generated: defaults, dry-run')?.dryRun).toBe(true);
    expect(byName.get('generated: required parameter "unit" missing')?.parameters).toEqual({
      lines: 100,
    });
    expect(byName.get('generated: parameter "lines" of the wrong type')?.parameters.lines).toBe(
      'not-a-number',
    );
    expect(byName.get('generated: "lines" at its minimum (1)')?.kind).toBe('valid');
    expect(byName.get('generated: "lines" above its maximum')?.parameters.lines).toBe(1001);
    expect(byName.get('generated: "unit" longer than maxLength (8)')?.kind).toBe('invalid-input');
    expect(byName.get('generated: "mode" outside its enum')?.kind).toBe('invalid-input');
    expect(byName.get('generated: malformed JSON on stdin')?.request).toBe('malformed-json');
    expect(byName.get('generated: unknown schema_version')?.expect).toEqual({
      exit_code: 2,
      result: 'failure',
    });
  });
});

describe('required parameters with a pattern', () => {
  const withPattern = (pattern: string): MrsManifest => ({
    ...manifest,
    parameters: {
      type: 'object',
      properties: { unit: { type: 'string', pattern } },
      required: ['unit'],
    },
  });

  it('derives a sample that matches the pattern, so the valid cases run', () => {
    expect(baseParameters(withPattern('^[a-z][a-z0-9-]*\\.service$'))).toEqual({
      unit: 'test.service',
    });
    expect(baseParameters(withPattern('^-?[0-9]+[smh]$'))).toEqual({ unit: '-1h' });
    expect(unsampledParameters(withPattern('^[a-z]+$'))).toEqual([]);
    expect(generateCases(withPattern('^[a-z]+$')).map((entry) => entry.name)).toContain(
      'generated: defaults',
    );
  });

  it('says which required parameter it cannot sample, and takes a value from samples', () => {
    const hard = withPattern('^[0-9a-f]{40}$');
    expect(unsampledParameters(hard)).toEqual(['unit']);
    expect(generateCases(hard).map((entry) => entry.name)).not.toContain('generated: defaults');
    const sample = { unit: 'a'.repeat(40) };
    expect(unsampledParameters(hard, sample)).toEqual([]);
    expect(baseParameters(hard, sample)).toEqual(sample);
    expect(generateCases(hard, sample).map((entry) => entry.name)).toContain('generated: defaults');
  });
});
