/**
 * Test cases derived from a plugin's manifest, so that every plugin is exercised even without a
 * cases file: the defaults; the defaults in dry-run; each required parameter missing; each
 * parameter with a wrong type; boundary values (at the limits: accepted; past them: rejected);
 * and two broken requests — malformed JSON and an unknown schema_version.
 */
import type { MrsManifest, MrsParameter } from '@rune/protocol';
import type { CaseExpectation, Shims } from './cases-file.js';

/** How the request of a case is produced. */
export type RequestShape = 'rcs' | 'malformed-json' | 'unknown-schema-version' | 'raw';

/** What kind of check a case is. */
export type CaseKind =
  /** A hand-written case with explicit expectations. */
  | 'scripted'
  /** Valid input: must follow the protocol; rejecting it as invalid input is a warning. */
  | 'valid'
  /** Invalid input: must be answered with exit 2 and an EPS error. */
  | 'invalid-input';

/** One case ready to run. */
export interface TestCase {
  name: string;
  origin: 'cases-file' | 'generated';
  kind: CaseKind;
  parameters: Record<string, unknown>;
  dryRun: boolean;
  env: Record<string, string>;
  timeoutMs?: number;
  /** Skip (and say so) unless running as root. */
  requiresRoot?: boolean;
  request: RequestShape;
  /** Raw stdin when `request` is `raw`. */
  stdin?: string;
  shims: Shims;
  expect: CaseExpectation;
}

const NOT_IN_ENUM = '__rune-plugin-test-not-in-enum__';

/**
 * Strings tried, in order, for a string parameter with a pattern: common shapes of identifiers,
 * names, numbers, durations, paths and times. The first one the pattern and the length bounds
 * accept is the sample. (A regex-to-string generator would cover more patterns, but its random
 * output would make generated cases differ between runs; a cases file's `samples` covers the rest.)
 */
const STRING_CANDIDATES = [
  'x',
  'example',
  'Example',
  'a1',
  'test-1',
  'test_1',
  'test.service',
  '1',
  '10',
  '-1h',
  '1h',
  '30s',
  'localhost',
  'example.com',
  '/tmp',
  '/var/log/syslog',
  '2026-01-01',
  '2026-01-01 00:00:00',
  '2026-01-01T00:00:00Z',
  'a',
  'A',
  'ABC',
  'abc',
  'hello world',
];

function stringSample(parameter: MrsParameter): string | undefined {
  let pattern: RegExp;
  try {
    pattern = new RegExp(parameter.pattern ?? '', 'u');
  } catch {
    return undefined;
  }
  const minLength = parameter.minLength ?? 0;
  const maxLength = parameter.maxLength ?? Number.POSITIVE_INFINITY;
  return STRING_CANDIDATES.find((candidate) => {
    const length = [...candidate].length;
    return length >= minLength && length <= maxLength && pattern.test(candidate);
  });
}

/** A value valid for a parameter, or undefined when none can be derived safely. */
export function sampleValue(parameter: MrsParameter): unknown {
  if (parameter.default !== undefined) return parameter.default;
  if (parameter.enum !== undefined) return parameter.enum[0];
  switch (parameter.type) {
    case 'boolean':
      return false;
    case 'integer':
    case 'number': {
      const low =
        parameter.minimum ?? (parameter.maximum !== undefined ? Math.min(0, parameter.maximum) : 1);
      return parameter.type === 'integer' ? Math.ceil(low) : low;
    }
    case 'string': {
      if (parameter.pattern !== undefined) return stringSample(parameter);
      return 'x'.repeat(Math.max(1, parameter.minLength ?? 1));
    }
    case 'array': {
      const count = parameter.minItems ?? 0;
      if (count === 0) return [];
      const item =
        parameter.items === undefined ? undefined : sampleValue(parameter.items as MrsParameter);
      return item === undefined ? undefined : Array.from({ length: count }, () => item);
    }
    default:
      return undefined;
  }
}

/** A value of the wrong JSON type for a parameter. */
export function wrongTypeValue(parameter: MrsParameter): unknown {
  switch (parameter.type) {
    case 'string':
      return 12345;
    case 'integer':
    case 'number':
      return 'not-a-number';
    case 'boolean':
      return 'yes';
    case 'array':
      return 'not-an-array';
    default:
      return null;
  }
}

/**
 * The parameters the control node would send with nothing given: defaults, plus a sample for
 * each required parameter (from `samples` — a cases file's — first, then derived from the
 * manifest). Undefined when a required parameter has no sample; {@link unsampledParameters}
 * says which.
 */
export function baseParameters(
  manifest: MrsManifest,
  samples: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> | undefined {
  const parameters: Record<string, unknown> = {};
  const required = new Set(manifest.parameters.required ?? []);
  for (const [name, parameter] of Object.entries(manifest.parameters.properties)) {
    if (Object.hasOwn(samples, name) && required.has(name)) parameters[name] = samples[name];
    else if (parameter.default !== undefined) parameters[name] = parameter.default;
    else if (required.has(name)) {
      const value = sampleValue(parameter);
      if (value === undefined) return undefined;
      parameters[name] = value;
    }
  }
  return parameters;
}

/** Required parameters for which neither `samples` nor the manifest give a valid value. */
export function unsampledParameters(
  manifest: MrsManifest,
  samples: Readonly<Record<string, unknown>> = {},
): string[] {
  return (manifest.parameters.required ?? []).filter((name) => {
    const parameter = manifest.parameters.properties[name];
    if (parameter === undefined || Object.hasOwn(samples, name)) return false;
    return parameter.default === undefined && sampleValue(parameter) === undefined;
  });
}

const invalid = (
  name: string,
  parameters: Record<string, unknown>,
  request: RequestShape = 'rcs',
): TestCase => ({
  name,
  origin: 'generated',
  kind: 'invalid-input',
  parameters,
  dryRun: false,
  env: {},
  request,
  shims: {},
  expect: { exit_code: 2, result: 'failure' },
});

const valid = (name: string, parameters: Record<string, unknown>, dryRun: boolean): TestCase => ({
  name,
  origin: 'generated',
  kind: 'valid',
  parameters,
  dryRun,
  env: {},
  request: 'rcs',
  shims: {},
  expect: {},
});

/**
 * Every case generated from a manifest. `samples` (a cases file's) supplies values for required
 * parameters the manifest gives no way to derive; without one only the cases that need no
 * valid parameters are generated (see {@link unsampledParameters}).
 */
export function generateCases(
  manifest: MrsManifest,
  samples: Readonly<Record<string, unknown>> = {},
): TestCase[] {
  const cases: TestCase[] = [];
  const base = baseParameters(manifest, samples);
  const properties = manifest.parameters.properties;
  if (base !== undefined) {
    cases.push(valid('generated: defaults', base, false));
    if (manifest.supports_dry_run) cases.push(valid('generated: defaults, dry-run', base, true));
  }
  cases.push(invalid('generated: malformed JSON on stdin', {}, 'malformed-json'));
  cases.push(invalid('generated: unknown schema_version', base ?? {}, 'unknown-schema-version'));
  if (base === undefined) return cases;
  for (const name of manifest.parameters.required ?? []) {
    const { [name]: _omitted, ...rest } = base;
    cases.push(invalid(`generated: required parameter "${name}" missing`, rest));
  }
  for (const [name, parameter] of Object.entries(properties)) {
    cases.push(
      invalid(`generated: parameter "${name}" of the wrong type`, {
        ...base,
        [name]: wrongTypeValue(parameter),
      }),
    );
    for (const boundary of boundaryCases(name, parameter)) {
      const parameters = { ...base, [name]: boundary.value };
      cases.push(
        boundary.valid
          ? valid(`generated: ${boundary.label}`, parameters, manifest.supports_dry_run)
          : invalid(`generated: ${boundary.label}`, parameters),
      );
    }
  }
  return cases;
}

interface Boundary {
  label: string;
  value: unknown;
  valid: boolean;
}

function boundaryCases(name: string, parameter: MrsParameter): Boundary[] {
  const boundaries: Boundary[] = [];
  const step = parameter.type === 'integer' ? 1 : 0.5;
  if (parameter.type === 'integer' || parameter.type === 'number') {
    if (parameter.minimum !== undefined) {
      boundaries.push({
        label: `"${name}" at its minimum (${parameter.minimum})`,
        value: parameter.minimum,
        valid: true,
      });
      boundaries.push({
        label: `"${name}" below its minimum`,
        value: parameter.minimum - step,
        valid: false,
      });
    }
    if (parameter.maximum !== undefined) {
      boundaries.push({
        label: `"${name}" at its maximum (${parameter.maximum})`,
        value: parameter.maximum,
        valid: true,
      });
      boundaries.push({
        label: `"${name}" above its maximum`,
        value: parameter.maximum + step,
        valid: false,
      });
    }
  }
  if (parameter.type === 'string') {
    if (parameter.maxLength !== undefined) {
      boundaries.push({
        label: `"${name}" longer than maxLength (${parameter.maxLength})`,
        value: 'x'.repeat(parameter.maxLength + 1),
        valid: false,
      });
    }
    if (parameter.minLength !== undefined && parameter.minLength > 0) {
      boundaries.push({
        label: `"${name}" shorter than minLength (${parameter.minLength})`,
        value: 'x'.repeat(parameter.minLength - 1),
        valid: false,
      });
    }
  }
  if (parameter.enum !== undefined) {
    const outside =
      parameter.type === 'string'
        ? NOT_IN_ENUM
        : parameter.type === 'boolean'
          ? undefined
          : 987654321;
    if (outside !== undefined)
      boundaries.push({ label: `"${name}" outside its enum`, value: outside, valid: false });
  }
  if (
    parameter.type === 'array' &&
    parameter.maxItems !== undefined &&
    parameter.items !== undefined
  ) {
    const item = sampleValue(parameter.items as MrsParameter);
    if (item !== undefined) {
      boundaries.push({
        label: `"${name}" with more than maxItems (${parameter.maxItems})`,
        value: Array.from({ length: parameter.maxItems + 1 }, () => item),
        valid: false,
      });
    }
  }
  return boundaries;
}
