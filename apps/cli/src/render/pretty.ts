/**
 * Output for people: one line per node as it finishes (status, duration, summary or error), a
 * few lines of stderr for failures, then a summary line. Colour only when allowed (TTY, no
 * NO_COLOR). Sensitive parameters never reach this module unredacted.
 */
import type { ExecutionPlan, NodeRunResult, RunSummary } from '@rune/core';
import pc from 'picocolors';
import { hintFor } from './errors.js';
import { terminalSafe } from './terminal-text.js';

type Paint = (text: string) => string;
interface Palette {
  green: Paint;
  yellow: Paint;
  red: Paint;
  dim: Paint;
  bold: Paint;
  cyan: Paint;
}
const plain: Palette = {
  green: (s) => s,
  yellow: (s) => s,
  red: (s) => s,
  dim: (s) => s,
  bold: (s) => s,
  cyan: (s) => s,
};
// createColors(true), not picocolors' default export: that one decides for itself from the
// process (and would ignore --color=always on a pipe); the CLI has already decided.
const colored: Palette = pc.createColors(true);
const palette = (color: boolean): Palette => (color ? colored : plain);

/** Formats a duration for people: 87 ms, 1.2 s, 2 m 5 s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} m ${Math.round((ms % 60_000) / 1000)} s`;
}

const STATUS_MARK: Record<NodeRunResult['status'], string> = {
  success: '✔',
  partial: '◐',
  failure: '✖',
  skipped: '○',
};

/** Options of the pretty renderer. */
export interface PrettyOptions {
  color: boolean;
  verbose: boolean;
  /** Width of the node-name column. */
  nameWidth?: number;
}

function tail(text: string, lines: number): string[] {
  return text
    .replace(/\s+$/, '')
    .split('\n')
    .slice(-lines)
    .filter((line) => line !== '')
    .map((line) => terminalSafe(line));
}

/** At most this many lines of output_data in verbose pretty output; -o json shows everything. */
export const MAX_PRETTY_OUTPUT_LINES = 200;

/** The plugin's output_data as indented JSON lines (verbose mode), bounded. */
function formatOutputData(result: NodeRunResult, dim: (text: string) => string): string[] {
  const data = result.response?.payload.output_data;
  if (data === undefined || Object.keys(data).length === 0) return [];
  // JSON.stringify escapes C0 controls but not DEL, C1 or the bidi controls.
  const all = JSON.stringify(data, null, 2)
    .split('\n')
    .map((line) => terminalSafe(line));
  const shown = all.slice(0, MAX_PRETTY_OUTPUT_LINES).map((line) => dim(`    │ ${line}`));
  const rest = all.length - shown.length;
  return [
    dim('    output_data:'),
    ...shown,
    ...(rest > 0 ? [dim(`    │ … ${rest} more line(s); -o json shows all`)] : []),
  ];
}

/** One finished node (several lines for a failure). */
export function formatNodePretty(result: NodeRunResult, options: PrettyOptions): string {
  const c = palette(options.color);
  const colorOf =
    result.status === 'success'
      ? c.green
      : result.status === 'partial'
        ? c.yellow
        : result.status === 'skipped'
          ? c.dim
          : c.red;
  const name = terminalSafe(result.node).padEnd(options.nameWidth ?? 0);
  const head = `${colorOf(`${STATUS_MARK[result.status]} ${result.status.padEnd(7)}`)} ${c.bold(name)}  ${c.dim(formatDuration(result.duration_ms).padStart(8))}`;
  const lines: string[] = [];
  if (result.error === null) {
    const summary = result.response?.payload.summary;
    lines.push(summary === undefined ? head : `${head}  ${terminalSafe(summary)}`);
  } else {
    lines.push(
      `${head}  ${colorOf(terminalSafe(result.error.code))}: ${terminalSafe(result.error.message)}`,
    );
    const hint = hintFor(result.error.code);
    if (hint !== undefined && result.status !== 'skipped') lines.push(c.dim(`    hint: ${hint}`));
  }
  const containment = result.containment;
  if (containment !== null && !containment.complete) {
    lines.push(
      c.yellow(
        `    warning: could not make sure nothing is left running on ${result.node}: ${containment.detail ?? 'the transport gave no reason'}`,
      ),
    );
  }
  const stderrLines = tail(
    result.stderr_tail,
    result.status === 'failure' || options.verbose ? (options.verbose ? 20 : 5) : 0,
  );
  if (stderrLines.length > 0 && (result.status === 'failure' || options.verbose)) {
    lines.push(c.dim(`    stderr${result.stderr_truncated ? ' (tail)' : ''}:`));
    for (const line of stderrLines) lines.push(c.dim(`    │ ${line}`));
  }
  if (options.verbose) lines.push(...formatOutputData(result, c.dim));
  // Where artifacts went is shown without -v: a fetched archive is the point of the run.
  for (const artifact of result.artifacts) lines.push(formatArtifactLine(artifact, c));
  return `${lines.join('\n')}\n`;
}

/** One artifact: where it went, and what became of the node's copy. */
function formatArtifactLine(artifact: NodeRunResult['artifacts'][number], c: Palette): string {
  const remote = terminalSafe(artifact.path);
  if (artifact.status === 'not-fetched') {
    return c.dim(`    artifact ${remote} left on the node (--fetch-artifacts downloads it)`);
  }
  if (artifact.status === 'failed' || artifact.local_path === null) {
    return c.yellow(
      `    artifact ${remote} not fetched: ${terminalSafe(artifact.error?.message ?? 'failed')}`,
    );
  }
  const removal = artifact.removal;
  const nodeCopy =
    removal === undefined || removal.status === 'unsupported'
      ? 'the node keeps its copy'
      : removal.status === 'removed'
        ? 'removed from the node'
        : c.yellow(
            `still on the node: ${terminalSafe(removal.error?.message ?? 'removal failed')}`,
          );
  return `    artifact ${c.bold(terminalSafe(artifact.local_path))} ${c.dim(`(from ${remote}, sha256 verified; ${nodeCopy})`)}`;
}

/** The closing summary line. */
export function formatSummaryPretty(summary: RunSummary, color: boolean): string {
  const c = palette(color);
  const parts = [`${summary.succeeded} succeeded`];
  if (summary.partial > 0) parts.push(`${summary.partial} partial`);
  if (summary.failed > 0) parts.push(c.red(`${summary.failed} failed`));
  if (summary.skipped > 0) parts.push(`${summary.skipped} skipped`);
  const nodes = `${summary.total} node${summary.total === 1 ? '' : 's'}`;
  const verdict = summary.exit_code === 0 ? c.green('ok') : c.red(`exit ${summary.exit_code}`);
  return `\n${c.bold(terminalSafe(summary.action))} on ${nodes}: ${parts.join(', ')} in ${formatDuration(summary.duration_ms)} — ${verdict} ${c.dim(`(trace ${summary.trace_id})`)}\n`;
}

/** Options of {@link formatPlanPretty}. */
export interface PlanPrettyOptions {
  color: boolean;
  /** Show the RCS request of every node, not only the first one. */
  verbose?: boolean;
}

/** Where a planned node is reached: `user@address:port`, the instance id, or its name. */
function destination(node: ExecutionPlan['nodes'][number]): string {
  const target = node.target;
  if (target.instanceId !== undefined) return target.instanceId;
  const host = target.address ?? target.name;
  const hostPart = host.includes(':') && target.port !== undefined ? `[${host}]` : host;
  return terminalSafe(
    `${target.user === undefined ? '' : `${target.user}@`}${hostPart}${target.port === undefined ? '' : `:${target.port}`}`,
  );
}

/**
 * A dry-run plan for people (sensitive parameters must already be redacted): the plugin, the
 * resolved node list (name, transport, destination), then what would run — for every node with
 * `verbose`, else for the first one (the others differ only in routing.node and message_id).
 */
export function formatPlanPretty(plan: ExecutionPlan, options: PlanPrettyOptions): string {
  const c = palette(options.color);
  const safe = (text: string): string => terminalSafe(text);
  const lines = [
    `${c.bold('dry run')} — nothing was contacted ${c.dim(`(trace ${plan.trace_id})`)}`,
    `action      ${c.bold(safe(plan.action))} ${safe(plan.plugin.version)}${plan.plugin.inferred ? c.yellow(' (inferred manifest)') : ''}`,
    `plugin      ${safe(plan.plugin.path)}`,
    `sha256      ${plan.plugin.sha256}`,
    `source      ${safe(plan.plugin.source)}`,
    `timeout     ${formatDuration(plan.timeout_ms)} (from ${plan.timeout_source})`,
    `deploy mode ${plan.deploy_mode}`,
    `concurrency ${plan.concurrency}`,
    `parameters  ${safe(JSON.stringify(plan.parameters))}`,
    '',
    c.bold(`nodes (${plan.nodes.length})`),
  ];
  const names = plan.nodes.map((n) => safe(n.target.name));
  const transports = plan.nodes.map((n) => safe(n.transport));
  const nameWidth = Math.min(40, Math.max(0, ...names.map((name) => name.length)));
  const transportWidth = Math.max(0, ...transports.map((transport) => transport.length));
  plan.nodes.forEach((node, index) => {
    lines.push(
      `  ${names[index]?.padEnd(nameWidth)}  ${transports[index]?.padEnd(transportWidth)}  ${destination(node)}`,
    );
  });
  const detailed = options.verbose === true ? plan.nodes : plan.nodes.slice(0, 1);
  for (const node of detailed) {
    lines.push(
      '',
      `${c.cyan('node')} ${c.bold(safe(node.target.name))} via ${safe(node.transport)}`,
    );
    lines.push(`  would run: ${safe(node.would_run)}`);
    lines.push('  RCS request (stdin):');
    for (const line of JSON.stringify(node.request, null, 2).split('\n'))
      lines.push(`    ${safe(line)}`);
  }
  if (detailed.length < plan.nodes.length) {
    lines.push(
      '',
      c.dim(
        `(${plan.nodes.length - detailed.length} more node(s) get the same request with their own routing.node and message_id; --verbose or -o json shows all)`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
