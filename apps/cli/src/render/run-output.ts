/**
 * What `rune run` prints, in each output format, from what core reports: warnings, the plan of a
 * dry run, the run's event stream (node-start moves the progress bar, node-end prints the node —
 * a jsonl line the moment it is audited), the final outcome and errors. The json and jsonl
 * documents are `@rune/protocol` run v1 documents; warnings are carried in them too.
 */
import type { ExecutionPlan, OutputFormat, RuneRunEvent, RunHandleOutcome } from '@rune/core';
import { redactPlan } from '@rune/core';
import type { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { formatErrorPretty } from './errors.js';
import { renderFleetSummary } from './fleet-summary.js';
import { formatJson, runResultDocument } from './json.js';
import { formatNodeLine, formatSummaryLine } from './jsonl.js';
import { type NodeOutputWriter, outputDirNotice } from './output-dir.js';
import { formatNodePretty, formatPlanPretty, formatSummaryPretty } from './pretty.js';
import {
  createPromptGuard,
  ProgressBar,
  type PromptGuard,
  shouldShowProgress,
} from './progress.js';
import { terminalSafe } from './terminal-text.js';

/** Options of {@link createRunOutput}. */
export interface RunOutputOptions {
  /** The format until the configuration is known (the `--output` flag, else pretty). */
  output: OutputFormat;
  verbose: boolean;
  dryRun: boolean;
  /** The run uses a fleet policy (`--canary`, `--max-failures`, `--deadline`). */
  hasPolicy: boolean;
}

/** The renderer of one `rune run`. */
export interface RunOutput {
  /** Sets the format once the configuration is loaded (`[core] output`). */
  setOutput(output: OutputFormat): void;
  /** A transport warning: always printed on stderr (a security check was relaxed, output lost). */
  transportWarning(message: string): void;
  /** A registry warning (skipped or shadowed plugin files): printed with --verbose only. */
  registryWarning(message: string): void;
  /** An inventory warning (something RUNE ignores on purpose): printed in pretty output. */
  inventoryWarning(message: string): void;
  /** Ctrl-C was pressed (the first time): the notice, above the progress bar. */
  interrupted(): void;
  /** Clears the progress bar (before exiting at a second Ctrl-C, and at the end). */
  stop(): void;
  /** Also writes each node's result into this `--output-dir` writer. */
  saveTo(writer: NodeOutputWriter): void;
  /** Runs a terminal prompt with the progress bar paused (one prompt at a time). */
  readonly aroundPrompt: PromptGuard;
  /** Prints a dry run's plan; returns the exit code (0). */
  plan(plan: ExecutionPlan): number;
  /** The run started: verbose header and the progress bar. */
  started(plan: ExecutionPlan): void;
  /** One event of the run. */
  event(event: RuneRunEvent): void;
  /** Prints the outcome; returns the run's exit code. */
  finished(plan: ExecutionPlan, outcome: RunHandleOutcome): number;
  /** Prints an error as EPS (json/jsonl document) or pretty; returns its exit code. */
  error(error: RuneError, action: string | null): number;
}

/** Creates the renderer of one `rune run`. */
export function createRunOutput(io: CliIo, options: RunOutputOptions): RunOutput {
  let output = options.output;
  const { verbose } = options;
  /** Every warning of the run, in order; json/jsonl documents carry them as `warnings`. */
  const warnings: string[] = [];
  let progress: ProgressBar | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let interrupts = 0;
  let nameWidth = 0;
  let traceId = '';
  let saved: NodeOutputWriter | undefined;

  /** One warning line on stderr, above the progress bar when one is drawn. */
  const printWarning = (message: string): void => {
    const text = /^warning\b/i.test(message) ? message : `warning: ${message}`;
    const print = (): void => io.err(`${terminalSafe(text)}\n`);
    if (progress === undefined) print();
    else progress.interject(print);
  };
  const machine = (): boolean => output === 'json' || output === 'jsonl';
  const print = (document: Parameters<typeof formatSummaryLine>[0]): void => {
    io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
  };
  const stop = (): void => {
    if (ticker !== undefined) clearInterval(ticker);
    ticker = undefined;
    progress?.clear();
  };

  return {
    setOutput(value) {
      output = value;
    },
    transportWarning(message) {
      warnings.push(message);
      printWarning(message);
    },
    registryWarning(message) {
      warnings.push(message);
      if (verbose && output === 'pretty') printWarning(message);
    },
    inventoryWarning(message) {
      warnings.push(message);
      if (output === 'pretty') printWarning(message);
    },
    interrupted() {
      interrupts++;
      const notice =
        '\ncancelling: no new nodes start, running ones are stopped (Ctrl-C again to exit at once)\n';
      if (progress === undefined) io.err(notice);
      else progress.interject(() => io.err(notice));
    },
    stop,
    saveTo(writer) {
      saved = writer;
    },
    aroundPrompt: createPromptGuard(() => progress),
    plan(plan) {
      stop();
      const shown = redactPlan(plan);
      if (output === 'pretty') io.out(formatPlanPretty(shown, { color: io.color, verbose }));
      else
        print(
          runResultDocument({
            exit_code: 0,
            trace_id: shown.trace_id,
            action: shown.action,
            dry_run: true,
            plan: shown,
            warnings,
          }),
        );
      return 0;
    },
    started(plan) {
      traceId = plan.trace_id;
      nameWidth = Math.min(
        40,
        Math.max(0, ...plan.nodes.map((node) => terminalSafe(node.target.name).length)),
      );
      if (verbose && output === 'pretty') {
        io.err(
          `${terminalSafe(`running ${plan.action} ${plan.plugin.version} (${plan.plugin.path}, sha256 ${plan.plugin.sha256.slice(0, 12)}…) on ${plan.nodes.length} node(s), trace ${plan.trace_id}`)}\n`,
        );
      }
      if (shouldShowProgress({ isTTY: io.errIsTty, output, total: plan.nodes.length })) {
        // A pseudo-terminal without a window size reports 0 columns: use the default then.
        const reported = io.errColumns?.();
        const columns = reported !== undefined && reported > 0 ? reported : undefined;
        progress = new ProgressBar({
          total: plan.nodes.length,
          stream: {
            write: (chunk) => io.err(chunk),
            ...(columns === undefined ? {} : { columns }),
          },
          color: io.colorErr,
          label: plan.action,
        });
        ticker = setInterval(() => progress?.tick(), 250);
        ticker.unref();
      }
    },
    event(event) {
      if (event.type === 'node-start') progress?.start(event.node);
      if (event.type !== 'node-end') return;
      const result = event.result;
      saved?.write(result);
      // jsonl: one line per node the moment it finishes (stdout writes to a pipe are synchronous).
      if (output === 'jsonl') io.out(formatNodeLine(result, traceId));
      else if (output === 'pretty') {
        const line = formatNodePretty(result, { color: io.color, verbose, nameWidth });
        progress?.finish(result.status, result.started_at !== null, result.node);
        if (progress === undefined) io.out(line);
        else progress.interject(() => io.out(line));
      }
    },
    finished(plan, outcome) {
      stop();
      // Includes AUDIT_WRITE_FAILED (70) when an outcome record could not be written.
      const exitCode = outcome.summary.exit_code;
      const auditError = outcome.audit.error;
      if (output === 'pretty') {
        // A fleet (or any run with a policy or an interruption) gets the summary table; one
        // node keeps the one-line summary.
        const fleet = outcome.nodes.length > 1 || interrupts > 0 || options.hasPolicy;
        io.out(
          fleet
            ? `\n${renderFleetSummary(outcome.nodes, outcome.summary, {
                color: io.color,
                interrupted: interrupts > 0,
                ...(outcome.summary.policy === undefined ? {} : { policy: outcome.summary.policy }),
              })}`
            : formatSummaryPretty(outcome.summary, io.color),
        );
        if (auditError !== null) io.err(formatErrorPretty(auditError, io.colorErr));
        if (saved !== undefined) io.err(`${terminalSafe(outputDirNotice(saved))}\n`);
      } else {
        print(
          runResultDocument({
            exit_code: exitCode,
            trace_id: plan.trace_id,
            action: plan.action,
            summary: outcome.summary,
            nodes: outcome.nodes,
            audit: outcome.audit,
            ...(auditError === null ? {} : { error: auditError }),
            warnings,
          }),
        );
      }
      return exitCode;
    },
    error(error, action) {
      stop();
      const eps = error.toJSON();
      if (machine()) {
        print(
          runResultDocument({
            exit_code: error.exitCode,
            error: eps,
            action,
            trace_id: eps.trace_id,
            dry_run: options.dryRun,
            warnings,
          }),
        );
      } else {
        io.err(formatErrorPretty(eps, io.colorErr));
      }
      return error.exitCode;
    },
  };
}
