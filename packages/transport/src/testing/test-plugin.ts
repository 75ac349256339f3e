/**
 * Building {@link TransportPlugin}s from inline scripts, for transport tests.
 *
 * A transport never looks inside a plugin: it moves the bytes, verifies the sha256 and runs the
 * file. So a conformance plugin is just a short Bash script held in a string, with its digest
 * computed here exactly as the plugin registry computes it for real plugins.
 */

import { sha256Hex } from '../sha256-hex.js';
import type { TransportPlugin } from '../transport.js';

/** Options of {@link createTestPlugin}. */
export interface TestPluginOptions {
  /** Action name; must match the action-name grammar. Defaults to `conformance-probe`. */
  action?: string;
  /** Plugin version; defaults to `1.0.0`. */
  version?: string;
  /** Absolute path on the node, for deploy mode `preinstalled`. */
  remotePath?: string;
}

/** Default action name of test plugins. */
export const DEFAULT_TEST_PLUGIN_ACTION = 'conformance-probe';

/**
 * Wraps a script (text, including its `#!` line) as a {@link TransportPlugin}: UTF-8 content and its
 * sha256. A script without a `#!` line gets `#!/usr/bin/env bash` prepended.
 */
export function createTestPlugin(script: string, options: TestPluginOptions = {}): TransportPlugin {
  const text = script.startsWith('#!') ? script : `#!/usr/bin/env bash\n${script}`;
  const content = new TextEncoder().encode(text);
  const plugin: TransportPlugin = {
    action: options.action ?? DEFAULT_TEST_PLUGIN_ACTION,
    version: options.version ?? '1.0.0',
    sha256: sha256Hex(content),
    content,
  };
  if (options.remotePath !== undefined) plugin.remotePath = options.remotePath;
  return plugin;
}
