/**
 * Reading the planned plugin once per run: the bytes are read on first use, hashed, and compared
 * with the sha256 the plan recorded, so a file changed after planning runs nowhere
 * (PLUGIN_INTEGRITY_FAILED). Every node of the run then gets the same verified bytes.
 */
import { RuneError } from '@rune/protocol';
import { sha256Hex } from '@rune/transport';
import type { ExecutionPlan } from '../planning/plan-run.js';

/** Returns a loader that reads and verifies the plan's plugin on its first call, then reuses it. */
export function planPluginLoader(
  plugin: ExecutionPlan['plugin'],
  readPlugin: (path: string) => Promise<Uint8Array>,
): () => Promise<Uint8Array> {
  let content: Promise<Uint8Array> | undefined;
  return () => {
    content ??= (async () => {
      let bytes: Uint8Array;
      try {
        bytes = await readPlugin(plugin.path);
      } catch (error) {
        throw new RuneError('PLUGIN_INTEGRITY_FAILED', `plugin ${plugin.path} cannot be read`, {
          cause: error,
          details: { path: plugin.path },
        });
      }
      const actual = sha256Hex(bytes);
      if (actual !== plugin.sha256) {
        throw new RuneError(
          'PLUGIN_INTEGRITY_FAILED',
          `plugin ${plugin.path} changed since it was planned; nothing was executed`,
          { details: { path: plugin.path, expected: plugin.sha256, actual } },
        );
      }
      return bytes;
    })();
    return content;
  };
}
