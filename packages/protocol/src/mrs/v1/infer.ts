import { isActionName } from '../../common/primitives.js';
import { RuneError } from '../../errors/rune-error.js';
import { RCS_V1 } from '../../rcs/v1/schema.js';
import type { ParseOptions, ParseResult } from '../../validation/parse.js';
import { DEFAULT_PLUGIN_TIMEOUT_MS, MRS_V1, type MrsManifest } from './schema.js';

/** The version every inferred manifest carries. */
export const INFERRED_PLUGIN_VERSION = '0.0.0';

/**
 * The manifest RUNE infers for a plugin file that has none (specs/mrs-v1.md, "Plugins without a
 * manifest"). The name is the file name without its last extension (`gather-logs.sh` →
 * `gather-logs`) and must be a valid action name, else INVALID_ACTION_NAME. Because RUNE knows
 * nothing about such a plugin, the inferred manifest is the most cautious one: version 0.0.0,
 * dangerous (confirmation required), not idempotent, no dry-run support, user privilege, and
 * `additionalProperties: true` with no declared parameters — parameters are accepted as given,
 * but only as top-level scalars or arrays of scalars.
 */
export function inferMrsManifest(
  fileName: string,
  options: ParseOptions = {},
): ParseResult<MrsManifest> {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1);
  const name = base.replace(/\.[A-Za-z0-9]{1,16}$/, '');
  if (!isActionName(name) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(base)) {
    const errorOptions: ConstructorParameters<typeof RuneError>[2] = {
      source: options.source ?? { component: 'rune-protocol' },
      details: { file: base.slice(0, 256), name: name.slice(0, 256) },
    };
    if (options.traceId !== undefined) errorOptions.traceId = options.traceId;
    return {
      ok: false,
      error: new RuneError(
        'INVALID_ACTION_NAME',
        `plugin file "${base.slice(0, 128)}" does not give a valid action name (^[a-z0-9][a-z0-9-]{0,63}$ after removing the extension)`,
        errorOptions,
      ),
    };
  }
  return {
    ok: true,
    value: {
      schema_version: MRS_V1,
      name,
      version: INFERRED_PLUGIN_VERSION,
      description: `Plugin file ${base} without a manifest (inferred).`,
      entrypoint: base,
      parameters: { type: 'object', properties: {}, additionalProperties: true },
      tags: [],
      requirements: { commands: [], privilege: 'user' },
      timeout_ms: DEFAULT_PLUGIN_TIMEOUT_MS,
      idempotent: false,
      supports_dry_run: false,
      dangerous: true,
      accepts: [RCS_V1],
      inferred: true,
    },
  };
}
