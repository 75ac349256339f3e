/**
 * The result model of a rune-plugin-test run, shared by the checker and every renderer (pretty,
 * JSON, JUnit). `--format json` prints a {@link TestRunReport} as is.
 */

/** Outcome of one check. `warn` is reported but does not fail the run. */
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

/** One check of one plugin. Failures always say what was expected, what came and how to fix it. */
export interface CheckResult {
  /** Short name, e.g. `manifest is valid MRS v1` or the case name. */
  name: string;
  status: CheckStatus;
  /** Why the check did not pass (or a note for pass/skip). */
  message?: string;
  expected?: string;
  actual?: string;
  /** How to fix it. */
  fix?: string;
  durationMs: number;
  /** Machine-readable facts (exit code, error code, shim calls, stderr tail, ...). */
  details?: Record<string, unknown>;
}

/** Every check of one plugin. */
export interface PluginReport {
  /** Action name (from the manifest, or inferred from the file name). */
  name: string;
  /** The plugin file the user pointed at. */
  file: string;
  /** How the manifest was obtained. */
  manifest: 'valid' | 'invalid' | 'inferred' | 'missing-entrypoint';
  /** True when the plugin was assembled (library inlined) before testing. */
  assembled: boolean;
  /** sha256 of the bytes tested: the sha256 RUNE registers, audits and ships for this plugin. */
  sha256?: string;
  passed: boolean;
  checks: CheckResult[];
  durationMs: number;
}

/** Counts over a run. */
export interface RunSummary {
  plugins: number;
  pluginsFailed: number;
  checks: number;
  passed: number;
  failed: number;
  warnings: number;
  skipped: number;
}

/** A whole rune-plugin-test run. */
export interface TestRunReport {
  tool: 'rune-plugin-test';
  version: string;
  startedAt: string;
  durationMs: number;
  ok: boolean;
  summary: RunSummary;
  plugins: PluginReport[];
}

/** Builds the summary and the report from plugin reports. */
export function summarize(
  plugins: PluginReport[],
  startedAt: Date,
  version: string,
): TestRunReport {
  const summary: RunSummary = {
    plugins: plugins.length,
    pluginsFailed: plugins.filter((plugin) => !plugin.passed).length,
    checks: 0,
    passed: 0,
    failed: 0,
    warnings: 0,
    skipped: 0,
  };
  for (const plugin of plugins) {
    for (const check of plugin.checks) {
      summary.checks++;
      if (check.status === 'pass') summary.passed++;
      else if (check.status === 'fail') summary.failed++;
      else if (check.status === 'warn') summary.warnings++;
      else summary.skipped++;
    }
  }
  return {
    tool: 'rune-plugin-test',
    version,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    ok: summary.failed === 0 && plugins.length > 0,
    summary,
    plugins,
  };
}
