/**
 * JUnit XML for CI systems: one <testsuite> per plugin, one <testcase> per check. Failures carry
 * the expected/got/fix text; skipped checks are <skipped>; warnings pass with a <system-out> note.
 */
import type { TestRunReport } from './report.js';

/** Escapes text for XML content and attributes, dropping characters XML 1.0 forbids. */
export function escapeXml(value: string): string {
  return value
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/** Renders a run report as JUnit XML. */
export function renderJunit(report: TestRunReport): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const s = report.summary;
  out.push(
    `<testsuites name="rune-plugin-test" tests="${s.checks}" failures="${s.failed}" skipped="${s.skipped}" errors="0" time="${seconds(report.durationMs)}" timestamp="${report.startedAt}">`,
  );
  for (const plugin of report.plugins) {
    const failures = plugin.checks.filter((check) => check.status === 'fail').length;
    const skipped = plugin.checks.filter((check) => check.status === 'skip').length;
    out.push(
      `  <testsuite name="${escapeXml(plugin.name)}" tests="${plugin.checks.length}" failures="${failures}" skipped="${skipped}" errors="0" time="${seconds(plugin.durationMs)}" file="${escapeXml(plugin.file)}">`,
    );
    for (const check of plugin.checks) {
      const open = `    <testcase classname="${escapeXml(`rune-plugin-test.${plugin.name}`)}" name="${escapeXml(check.name)}" time="${seconds(check.durationMs)}"`;
      if (check.status === 'pass') {
        out.push(`${open}/>`);
      } else if (check.status === 'skip') {
        out.push(
          `${open}>`,
          `      <skipped message="${escapeXml(check.message ?? 'skipped')}"/>`,
          '    </testcase>',
        );
      } else if (check.status === 'warn') {
        out.push(
          `${open}>`,
          `      <system-out>${escapeXml(`warning: ${check.message ?? ''}`)}</system-out>`,
          '    </testcase>',
        );
      } else {
        const body = [
          check.message === undefined ? undefined : `problem: ${check.message}`,
          check.expected === undefined ? undefined : `expected: ${check.expected}`,
          check.actual === undefined ? undefined : `got: ${check.actual}`,
          check.fix === undefined ? undefined : `fix: ${check.fix}`,
          typeof check.details?.stderr_tail === 'string'
            ? `stderr: ${check.details.stderr_tail}`
            : undefined,
        ]
          .filter((line) => line !== undefined)
          .join('\n');
        out.push(
          `${open}>`,
          `      <failure message="${escapeXml(check.message ?? 'failed')}" type="${escapeXml(String((check.details?.error as { code?: string } | undefined)?.code ?? 'CHECK_FAILED'))}">${escapeXml(body)}</failure>`,
          '    </testcase>',
        );
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}
