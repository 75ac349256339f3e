/**
 * The report for people: one block per plugin, a line per check, and for every failure what was
 * expected, what came and how to fix it. Colours only when the output is a terminal.
 */
import { relative } from 'node:path';
import { createColors } from 'picocolors';
import type { CheckResult, TestRunReport } from './report.js';

/** Options of {@link renderPretty}. */
export interface PrettyOptions {
  /** Use ANSI colours (only for a TTY). */
  color: boolean;
  /** Show the message of passing checks too. */
  verbose?: boolean;
  /** Paths are shown relative to this directory. */
  cwd?: string;
}

const indent = (text: string, prefix: string): string =>
  text
    .split('\n')
    .map((line, index) => (index === 0 ? line : `${prefix}${line}`))
    .join('\n');

/** Renders a run report as text. */
export function renderPretty(report: TestRunReport, options: PrettyOptions): string {
  const c = createColors(options.color);
  const icon = (status: CheckResult['status']) =>
    status === 'pass'
      ? c.green('✔')
      : status === 'fail'
        ? c.red('✖')
        : status === 'warn'
          ? c.yellow('!')
          : c.dim('-');
  const lines: string[] = [];
  for (const plugin of report.plugins) {
    const where = relative(options.cwd ?? process.cwd(), plugin.file) || plugin.file;
    const failed = plugin.checks.filter((check) => check.status === 'fail').length;
    const head = plugin.passed ? c.green('PASS') : c.red('FAIL');
    const notes = [
      plugin.manifest === 'inferred' ? 'no manifest (inferred)' : undefined,
      plugin.assembled ? 'assembled' : undefined,
    ].filter((note) => note !== undefined);
    lines.push(
      `${head} ${c.bold(plugin.name)} ${c.dim(where)}${notes.length > 0 ? c.dim(` (${notes.join(', ')})`) : ''} — ${plugin.checks.length} checks, ${failed} failed`,
    );
    for (const check of plugin.checks) {
      const showMessage = check.status !== 'pass' || options.verbose === true;
      const message =
        showMessage && check.message !== undefined ? c.dim(` — ${check.message}`) : '';
      lines.push(`  ${icon(check.status)} ${check.name}${check.status === 'fail' ? '' : message}`);
      if (check.status === 'fail') {
        const pad = '      ';
        if (check.message !== undefined)
          lines.push(`${pad}${c.red('problem:')}  ${indent(check.message, `${pad}          `)}`);
        if (check.expected !== undefined)
          lines.push(`${pad}${c.bold('expected:')} ${indent(check.expected, `${pad}          `)}`);
        if (check.actual !== undefined)
          lines.push(`${pad}${c.bold('got:')}      ${indent(check.actual, `${pad}          `)}`);
        if (check.fix !== undefined)
          lines.push(`${pad}${c.cyan('fix:')}      ${indent(check.fix, `${pad}          `)}`);
        const stderr = check.details?.stderr_tail;
        if (typeof stderr === 'string' && stderr.trim() !== '') {
          const last = stderr.trim().split('\n').slice(-5).join('\n');
          lines.push(`${pad}${c.dim('stderr:')}   ${c.dim(indent(last, `${pad}          `))}`);
        }
      }
    }
    lines.push('');
  }
  const s = report.summary;
  const verdict = report.ok ? c.green(c.bold('PASSED')) : c.red(c.bold('FAILED'));
  lines.push(
    `${verdict} ${s.plugins} plugin(s), ${s.pluginsFailed} failed · ${s.checks} checks: ${s.passed} passed, ${s.failed} failed, ${s.warnings} warnings, ${s.skipped} skipped · ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  return `${lines.join('\n')}\n`;
}
