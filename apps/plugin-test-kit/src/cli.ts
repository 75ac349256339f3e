/**
 * The `rune-plugin-test` command line: parses arguments, runs the checks, renders the report.
 * Exit codes: 0 every check passed · 1 at least one check failed · 2 usage error (bad arguments,
 * nothing to test) · 70 internal error.
 */
import { writeFile } from 'node:fs/promises';
import { RuneError } from '@rune/protocol';
import yargs from 'yargs';
import { checkPlugin } from './check-plugin.js';
import { discoverPlugins } from './discover-plugins.js';
import { renderJunit } from './render-junit.js';
import { renderPretty } from './render-pretty.js';
import { type PluginReport, summarize, type TestRunReport } from './report.js';
import { TEST_KIT_VERSION } from './version.js';

/** Exit codes of rune-plugin-test. */
export const PLUGIN_TEST_EXIT_CODES = { PASSED: 0, FAILED: 1, USAGE: 2, INTERNAL: 70 } as const;

/** Where the CLI writes. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Whether stdout is a terminal (colours only then). */
  isTTY: boolean;
  cwd?: string;
}

/** Options of {@link testPlugins}. */
export interface TestPluginsOptions {
  shellcheck?: boolean;
  generated?: boolean;
  filter?: RegExp;
  /** Called after each plugin (progress). */
  onPlugin?: (report: PluginReport) => void;
}

/** Tests every plugin under the given paths and returns the report. */
export async function testPlugins(
  paths: readonly string[],
  options: TestPluginsOptions = {},
): Promise<TestRunReport & { notes: string[] }> {
  const startedAt = new Date();
  const reports: PluginReport[] = [];
  const notes: string[] = [];
  for (const path of paths) {
    const discovery = await discoverPlugins(path);
    notes.push(...discovery.notes);
    try {
      for (const plugin of discovery.plugins) {
        const report = await checkPlugin(plugin, {
          ...(options.shellcheck === undefined ? {} : { shellcheck: options.shellcheck }),
          ...(options.generated === undefined ? {} : { generated: options.generated }),
          ...(options.filter === undefined ? {} : { filter: options.filter }),
        });
        reports.push(report);
        options.onPlugin?.(report);
      }
    } finally {
      await discovery.cleanup();
    }
  }
  return { ...summarize(reports, startedAt, TEST_KIT_VERSION), notes };
}

const EPILOG = `Checks each plugin against BPCS v1 and its MRS manifest: manifest validity, shellcheck,
exactly one schema-valid JSON result on stdout, exit code and result agreement, EPS errors,
invalid input answered with exit 2, runtime within timeout_ms, and dry-run honesty (PATH shims
record every command; mutating calls fail). Cases come from <name>.cases.yaml next to the plugin
and from the manifest's parameter schema. See docs/plugin-test-kit.md.

Exit codes: 0 all checks passed, 1 a check failed, 2 usage error, 70 internal error.`;

/** Runs the CLI; resolves with the process exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const parser = yargs([...args])
    .scriptName('rune-plugin-test')
    .usage('$0 <plugin file or directory...> [options]')
    .option('format', {
      choices: ['pretty', 'json'] as const,
      default: 'pretty' as const,
      describe: 'Report format on stdout',
    })
    .option('junit', { type: 'string', describe: 'Also write a JUnit XML report to this file' })
    .option('shellcheck', {
      type: 'boolean',
      default: true,
      describe: 'Lint Bash plugins with shellcheck when installed (--no-shellcheck to skip)',
    })
    .option('generated', {
      type: 'boolean',
      default: true,
      describe: 'Run the cases generated from the manifest (--no-generated to skip)',
    })
    .option('filter', {
      type: 'string',
      describe: 'Only run cases whose name matches this regular expression',
    })
    .option('verbose', {
      type: 'boolean',
      default: false,
      describe: 'Show details of passing checks too',
    })
    .option('color', {
      type: 'boolean',
      describe: 'Force colours on or off (default: on for a terminal)',
    })
    .example('$0 plugins/builtin', 'Test every plugin in a directory (sources are assembled first)')
    .example(
      '$0 ./restart-nginx.sh',
      'Test one plugin, with restart-nginx.manifest.json and restart-nginx.cases.yaml next to it',
    )
    .example('$0 plugins/ --format json > report.json', 'Machine-readable report')
    .example('$0 plugins/ --junit junit.xml', 'JUnit XML for CI, plus the readable report')
    .epilog(EPILOG)
    .strictOptions()
    .help()
    .alias('h', 'help')
    .version(TEST_KIT_VERSION)
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .exitProcess(false);

  let failure: Error | undefined;
  let output = '';
  const argv = await new Promise<Record<string, unknown> | undefined>((resolve) => {
    parser.parse([...args], {}, (error, parsed, text) => {
      failure = error ?? undefined;
      output = text;
      resolve(parsed as Record<string, unknown>);
    });
  });
  if (failure !== undefined) {
    io.stderr.write(`${output ? `${output}\n\n` : ''}rune-plugin-test: ${failure.message}\n`);
    return PLUGIN_TEST_EXIT_CODES.USAGE;
  }
  if (output !== '') {
    io.stdout.write(`${output}\n`);
    return PLUGIN_TEST_EXIT_CODES.PASSED;
  }
  const paths = ((argv?._ as unknown[]) ?? []).map(String);
  if (paths.length === 0) {
    io.stderr.write(
      'rune-plugin-test: give a plugin file or a directory of plugins (see --help)\n',
    );
    return PLUGIN_TEST_EXIT_CODES.USAGE;
  }
  let filter: RegExp | undefined;
  if (typeof argv?.filter === 'string') {
    try {
      filter = new RegExp(argv.filter);
    } catch {
      io.stderr.write(
        `rune-plugin-test: --filter ${argv.filter} is not a valid regular expression\n`,
      );
      return PLUGIN_TEST_EXIT_CODES.USAGE;
    }
  }
  const format = argv?.format === 'json' ? 'json' : 'pretty';
  let report: Awaited<ReturnType<typeof testPlugins>>;
  try {
    report = await testPlugins(paths, {
      shellcheck: argv?.shellcheck !== false,
      generated: argv?.generated !== false,
      ...(filter === undefined ? {} : { filter }),
    });
  } catch (error) {
    if (RuneError.is(error) && error.category === 'validation') {
      io.stderr.write(`rune-plugin-test: ${error.message}\n`);
      return PLUGIN_TEST_EXIT_CODES.USAGE;
    }
    io.stderr.write(
      `rune-plugin-test: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return PLUGIN_TEST_EXIT_CODES.INTERNAL;
  }
  if (report.plugins.length === 0) {
    io.stderr.write(
      `rune-plugin-test: no plugins found in ${paths.join(', ')} (*.sh files, executables or *.manifest.json)\n`,
    );
    return PLUGIN_TEST_EXIT_CODES.USAGE;
  }
  const { notes, ...runReport } = report;
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify(runReport, null, 2)}\n`);
  } else {
    for (const note of notes) io.stderr.write(`rune-plugin-test: ${note}\n`);
    const color = typeof argv?.color === 'boolean' ? argv.color : io.isTTY;
    io.stdout.write(
      renderPretty(runReport, {
        color,
        verbose: argv?.verbose === true,
        ...(io.cwd === undefined ? {} : { cwd: io.cwd }),
      }),
    );
  }
  if (typeof argv?.junit === 'string') {
    try {
      await writeFile(argv.junit, renderJunit(runReport));
    } catch (error) {
      io.stderr.write(`rune-plugin-test: cannot write ${argv.junit}: ${String(error)}\n`);
      return PLUGIN_TEST_EXIT_CODES.USAGE;
    }
  }
  return runReport.ok ? PLUGIN_TEST_EXIT_CODES.PASSED : PLUGIN_TEST_EXIT_CODES.FAILED;
}
