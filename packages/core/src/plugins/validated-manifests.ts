/**
 * Built-in manifests validated once, at build time.
 *
 * Validating an MRS manifest compiles the MRS schema validator, which costs more than the rest
 * of plugin discovery. The built-in plugins ship inside @rune/core and never change after the
 * build, so the build validates their manifests and records each one with the sha256 of its
 * exact bytes in `.validated-manifests.json` next to them. Discovery uses a recorded manifest
 * only for the built-in directory and only when the file on disk still has that sha256; anything
 * else (a changed file, a missing or malformed record, user and site plugins) is validated as
 * usual. The record is not a trust boundary of its own: whoever can change it can change the
 * built-in plugins themselves.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MrsManifest, parseMrsManifest } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';

/** File name of the record (a dot file, so discovery never mistakes it for a plugin). */
export const VALIDATED_MANIFESTS_FILE = '.validated-manifests.json';

const RECORD_SCHEMA = 'rune-validated-manifests/v1';
const MANIFEST_SUFFIX = '.manifest.json';

/** One manifest validated at build time. */
export interface ValidatedManifest {
  /** Lowercase hex sha256 of the manifest file's bytes. */
  sha256: string;
  manifest: MrsManifest;
}

/** What {@link writeValidatedManifests} did. */
export interface ValidatedManifestsReport {
  /** Manifest file names recorded. */
  recorded: string[];
  /** Manifests that did not validate (left out: discovery reports them as INVALID_MANIFEST). */
  invalid: { file: string; message: string }[];
}

/** Validates every `*.manifest.json` in `dir` and writes {@link VALIDATED_MANIFESTS_FILE}. */
export function writeValidatedManifests(dir: string): ValidatedManifestsReport {
  const manifests: Record<string, ValidatedManifest> = {};
  const report: ValidatedManifestsReport = { recorded: [], invalid: [] };
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(MANIFEST_SUFFIX)) continue;
    const bytes = readFileSync(join(dir, file));
    const parsed = parseMrsManifest(bytes);
    if (!parsed.ok) {
      report.invalid.push({ file, message: parsed.error.message });
      continue;
    }
    manifests[file] = { sha256: sha256Hex(bytes), manifest: parsed.value };
    report.recorded.push(file);
  }
  writeFileSync(
    join(dir, VALIDATED_MANIFESTS_FILE),
    `${JSON.stringify({ schema: RECORD_SCHEMA, manifests })}\n`,
  );
  return report;
}

/**
 * The manifests recorded in `dir` by {@link writeValidatedManifests}, by file name. Empty when
 * the record is absent or not in the expected shape (then every manifest is validated).
 */
export function readValidatedManifests(dir: string): Map<string, ValidatedManifest> {
  const result = new Map<string, ValidatedManifest>();
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(join(dir, VALIDATED_MANIFESTS_FILE), 'utf8'));
  } catch {
    return result;
  }
  if (typeof record !== 'object' || record === null) return result;
  const { schema, manifests } = record as { schema?: unknown; manifests?: unknown };
  if (schema !== RECORD_SCHEMA || typeof manifests !== 'object' || manifests === null) {
    return result;
  }
  for (const [file, entry] of Object.entries(manifests)) {
    const { sha256, manifest } = (entry ?? {}) as { sha256?: unknown; manifest?: unknown };
    if (typeof sha256 !== 'string' || typeof manifest !== 'object' || manifest === null) continue;
    result.set(file, { sha256, manifest: manifest as MrsManifest });
  }
  return result;
}
