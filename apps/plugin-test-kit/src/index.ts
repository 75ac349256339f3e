/**
 * @rune/plugin-test-kit — `rune-plugin-test`, the conformance checker for RUNE plugins, also usable
 * as a library: discover plugins, check them, render the report.
 *
 * This file is the complete public surface of the library (the bin is `rune-plugin-test`). The
 * RCS request builder it uses is `createRcsRequest` in `@rune/protocol`, its process runner
 * `runLocalProcess` in `@rune/transport`, its verdicts come from `evaluatePluginOutput` in
 * `@rune/protocol`.
 */

export {
  type CaseExpectation,
  type CasesFile,
  CasesFileSchema,
  loadCasesFile,
  type MutatingCommand,
  type PluginCase,
  parseCasesFile,
  type ShimResponse,
  type ShimRule,
  type Shims,
} from './cases-file.js';
export { buildRcsRequest, type CheckPluginOptions, checkPlugin } from './check-plugin.js';
export {
  type CliIo,
  PLUGIN_TEST_EXIT_CODES,
  runCli,
  type TestPluginsOptions,
  testPlugins,
} from './cli.js';
export { type DiscoveredPlugin, type Discovery, discoverPlugins } from './discover-plugins.js';
export {
  type CaseKind,
  generateCases,
  type RequestShape,
  type TestCase,
} from './generated-cases.js';
export { MISSING, matchValue, resolvePointer } from './matchers.js';
export {
  DEFAULT_MAX_STDERR_BYTES,
  DEFAULT_MAX_STDOUT_BYTES,
  type PluginProcessOptions,
  type PluginProcessResult,
  runPluginProcess,
} from './plugin-process.js';
export { escapeXml, renderJunit } from './render-junit.js';
export { type PrettyOptions, renderPretty } from './render-pretty.js';
export {
  type CheckResult,
  type CheckStatus,
  type PluginReport,
  type RunSummary,
  summarize,
  type TestRunReport,
} from './report.js';
export {
  createShimDirectory,
  DEFAULT_MUTATING_COMMANDS,
  REAL_COMMANDS,
  type ShimCall,
  type ShimDirectory,
  type ShimDirectoryOptions,
} from './shims.js';
export { TEST_KIT_VERSION } from './version.js';
