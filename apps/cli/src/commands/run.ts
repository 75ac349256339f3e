/**
 * `rune run <action>`: parse → plan → (dry run: print the plan) → execute → render. All
 * orchestration lives in @rune/core; this module only maps flags to a request and results to
 * output, and turns every failure into an EPS error and its exit code.
 */
import {
  createFileAuditSink,
  createRune,
  currentOperator,
  defaultAuditKeyFile,
  defaultAuditLogPath,
  type ExecutionPlan,
  LOCAL_NODE_NAMES,
  LOCAL_TRANSPORT_NAME,
  type LoadedConfig,
  loadConfig,
  loadInventory,
  MAX_CONCURRENCY,
  MAX_POLICY_COUNT,
  type NodeRunResult,
  newTraceId,
  type PlanRequest,
  type PlanTarget,
  parseDuration,
  parseFailureBudget,
  parsePolicyInteger,
  type Rune,
  type RuneRunOptions,
  type RunReport,
  readNodeList,
  redactPlan,
  refusalEntry,
  resolveXdgDirs,
  selectTargets,
  validateFleetPolicy,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { parseNodeArgs, readParamsArg } from '../parse-options.js';
import { formatErrorPretty } from '../render/errors.js';
import { renderFleetSummary } from '../render/fleet-summary.js';
import { formatJson, runResultDocument } from '../render/json.js';
import { formatNodeLine, formatSummaryLine } from '../render/jsonl.js';
import { createNodeOutputWriter, outputDirNotice } from '../render/output-dir.js';
import { formatNodePretty, formatPlanPretty, formatSummaryPretty } from '../render/pretty.js';
import { createPromptGuard, ProgressBar, shouldShowProgress } from '../render/progress.js';
import { terminalSafe } from '../render/terminal-text.js';
import { remoteTransportProviders } from '../transports.js';
import { CLI_VERSION } from '../version.js';
import { applyRerun } from './rerun.js';

/** Output formats of `rune run`. */
export type OutputFormat = 'pretty' | 'json' | 'jsonl';

/** The parsed flags of `rune run`. */
export interface RunArgs {
  /** The action; absent only with `--rerun`, which takes it from the audit trail. */
  action?: string;
  node?: unknown[];
  param?: unknown[];
  params?: string;
  dryRun?: boolean;
  output?: OutputFormat;
  transport?: string;
  useSsm?: boolean;
  timeout?: string | number;
  config?: string;
  verbose?: boolean;
  fetchArtifacts?: boolean;
  yes?: boolean;
  /** Nodes at once, as typed (parsed strictly: decimal, 1..MAX_CONCURRENCY). */
  concurrency?: string | number;
  /** Inventory file (overrides `[core] inventory`). */
  inventory?: string;
  /** A node list: one selection per line; `-` reads stdin. */
  nodesFile?: string;
  /** Canary wave size. */
  canary?: number | string;
  /** Failure budget: `N` or `P%`. */
  maxFailures?: string | number;
  /** Overall deadline: ms or 30s, 5m, 1h. */
  deadline?: string | number;
  /** Re-run `all` or the `failed` nodes of the run `--trace` names (fills action, nodes, params). */
  rerun?: string;
  /** Trace id of the run `--rerun` repeats. */
  trace?: string;
  /** Write one result file per node into this directory. */
  outputDir?: string;
}

/** The `--node` values as selections (each may be a comma list; the selector grammar splits it). */
function nodeSelections(values: readonly unknown[] | undefined): string[] {
  return (values ?? []).map((value) => String(value).trim()).filter((value) => value !== '');
}

/** The fleet policy flags (`--canary`, `--max-failures`, `--deadline`), validated. */
function fleetPolicyArgs(args: RunArgs): NonNullable<RuneRunOptions['policy']> {
  const policy: NonNullable<RuneRunOptions['policy']> = {};
  if (args.canary !== undefined)
    policy.canary = parsePolicyInteger(String(args.canary), '--canary', 0, MAX_POLICY_COUNT);
  if (args.maxFailures !== undefined)
    policy.maxFailures = parseFailureBudget(String(args.maxFailures));
  if (args.deadline !== undefined)
    policy.deadlineMs = parseDuration(String(args.deadline), '--deadline');
  validateFleetPolicy({ concurrency: 1, ...policy });
  return policy;
}

function toRuneError(error: unknown, traceId: string): RuneError {
  const runeError = RuneError.from(error, 'INTERNAL_ERROR', {
    traceId,
    source: { component: 'rune-cli' },
  });
  return runeError.traceId === undefined ? runeError.withContext({ traceId }) : runeError;
}

/** Best-effort refusal record when the configuration itself is unusable. */
async function auditConfigRefusal(io: CliIo, args: RunArgs, error: RuneError): Promise<void> {
  try {
    const dirs = resolveXdgDirs({ env: io.env });
    const sink = createFileAuditSink({
      path: defaultAuditLogPath(dirs),
      host: 'localhost',
      keyFile: defaultAuditKeyFile(dirs),
    });
    await sink.append(
      refusalEntry({
        operator: currentOperator(io.env),
        action: String(args.action),
        nodes: parseNodeArgs(args.node),
        transport: args.transport ?? null,
        error,
        traceId: newTraceId(),
        dryRun: args.dryRun === true,
      }),
    );
  } catch {
    // The configuration is broken; the refusal is still reported to the operator.
  }
}

/** Runs `rune run`; returns the process exit code. */
export async function runCommand(args: RunArgs, io: CliIo): Promise<number> {
  const traceId = newTraceId();
  let output: OutputFormat = args.output ?? 'pretty';
  const verbose = args.verbose === true;
  /** Every warning of the run, in order; json/jsonl documents carry them as `warnings`. */
  const warnings: string[] = [];
  let progress: ProgressBar | undefined;
  /** One warning line on stderr, above the progress bar when one is drawn. */
  const printWarning = (message: string): void => {
    const text = /^warning\b/i.test(message) ? message : `warning: ${message}`;
    const print = (): void => io.err(`${terminalSafe(text)}\n`);
    if (progress === undefined) print();
    else progress.interject(print);
  };

  const emitError = (error: RuneError, extra: { action?: string } = {}): number => {
    const eps = error.toJSON();
    if (output === 'json' || output === 'jsonl') {
      const document = runResultDocument({
        exit_code: error.exitCode,
        error: eps,
        action: extra.action ?? null,
        trace_id: eps.trace_id,
        dry_run: args.dryRun === true,
        warnings,
      });
      io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
    } else {
      io.err(formatErrorPretty(eps, io.colorErr));
    }
    return error.exitCode;
  };

  let loaded: LoadedConfig;
  try {
    loaded = loadConfig({
      env: io.env,
      ...(args.config === undefined ? {} : { configFile: args.config }),
      overrides: {
        ...(args.output === undefined ? {} : { core: { output: args.output } }),
        ...(args.fetchArtifacts === undefined
          ? {}
          : { execution: { fetch_artifacts: args.fetchArtifacts } }),
      },
    });
  } catch (error) {
    const runeError = toRuneError(error, traceId);
    await auditConfigRefusal(io, args, runeError);
    return emitError(runeError);
  }
  output = args.output ?? loaded.config.core.output ?? 'pretty';

  let rune: Rune | undefined;
  let planned = false;
  const controller = new AbortController();
  let interrupts = 0;
  let ticker: NodeJS.Timeout | undefined;
  const stopProgress = (): void => {
    if (ticker !== undefined) clearInterval(ticker);
    ticker = undefined;
    progress?.clear();
  };
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      const notice =
        '\ncancelling: no new nodes start, running ones are stopped (Ctrl-C again to exit at once)\n';
      if (progress === undefined) io.err(notice);
      else progress.interject(() => io.err(notice));
      controller.abort();
    } else {
      stopProgress();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  try {
    rune = createRune({
      config: loaded,
      env: io.env,
      // Transport warnings say that a security check was relaxed or output was lost (host key
      // checking off, a key recorded by accept-new, output cut by SSM): always printed on stderr,
      // whatever the output format, and carried in the json/jsonl document.
      transports: remoteTransportProviders(
        loaded,
        io.env,
        (message) => {
          warnings.push(message);
          printWarning(message);
        },
        createPromptGuard(() => progress),
      ),
      sender: { component: 'rune-cli', version: CLI_VERSION },
      // Registry warnings (skipped plugin files, shadowed plugins) only with --verbose.
      onWarning: (message) => {
        warnings.push(message);
        if (verbose && output === 'pretty') printWarning(message);
      },
    });

    if (args.rerun !== undefined) applyRerun(args, loaded);
    if (args.useSsm === true && args.transport !== undefined && args.transport !== 'ssm') {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `--use-ssm contradicts --transport ${args.transport}`,
        {
          source: { component: 'rune-cli' },
        },
      );
    }
    if (args.nodesFile === '-' && args.params === '-') {
      throw new RuneError(
        'INVALID_ARGUMENT',
        '--nodes-file - and --params - cannot both read standard input',
        { source: { component: 'rune-cli' } },
      );
    }
    const policy = fleetPolicyArgs(args);
    const saved =
      args.outputDir === undefined || args.dryRun === true
        ? undefined
        : createNodeOutputWriter(args.outputDir, (message) => {
            warnings.push(message);
            printWarning(message);
          });
    // Targets: inventory names, groups, tags and globs when an inventory is given (--inventory
    // or [core] inventory), else ad-hoc [user@]host[:port]; localhost/local/127.0.0.1 use the
    // local transport. Unknown names fail here, before anything runs.
    const inventoryPath = args.inventory ?? loaded.config.core.inventory;
    const inventory = inventoryPath === undefined ? undefined : await loadInventory(inventoryPath);
    // What an inventory asks for and RUNE ignores on purpose (an Ansible password, ...).
    for (const message of inventory?.warnings ?? []) {
      warnings.push(message);
      if (output === 'pretty') io.err(`warning: ${message}\n`);
    }
    const selections = [
      ...nodeSelections(args.node),
      ...(args.nodesFile === undefined ? [] : await readNodeList(args.nodesFile)),
    ];
    const targets: PlanTarget[] =
      selections.length === 0
        ? []
        : selectTargets(selections, {
            ...(inventory === undefined ? {} : { inventory }),
            ...(loaded.config.core.default_transport === undefined
              ? {}
              : { defaultTransport: loaded.config.core.default_transport }),
          }).map((target) => ({
            node: target.node,
            transport:
              target.source === 'ad-hoc' && LOCAL_NODE_NAMES.includes(target.node.name)
                ? LOCAL_TRANSPORT_NAME
                : target.transport,
          }));
    const request: PlanRequest = {
      action: args.action ?? '',
      nodes: targets,
      paramArgs: (args.param ?? []).map(String),
      dryRun: args.dryRun === true,
      confirmDangerous: args.yes === true,
    };
    if (args.params !== undefined) request.params = readParamsArg(args.params);
    const transport = args.useSsm === true ? 'ssm' : args.transport;
    if (transport !== undefined) request.transport = transport;
    if (args.timeout !== undefined)
      request.timeoutMs = parseDuration(String(args.timeout), '--timeout');
    if (args.concurrency !== undefined)
      request.concurrency = parsePolicyInteger(
        String(args.concurrency),
        '--concurrency',
        1,
        MAX_CONCURRENCY,
      );

    const nameWidth = Math.min(
      40,
      Math.max(0, ...targets.map((target) => terminalSafe(target.node.name).length)),
    );
    let runTrace = traceId;
    const onNodeResult = (result: NodeRunResult): void => {
      saved?.write(result);
      // jsonl: one line per node the moment it finishes (stdout writes to a pipe are synchronous).
      if (output === 'jsonl') io.out(formatNodeLine(result, runTrace));
      else if (output === 'pretty') {
        const line = formatNodePretty(result, { color: io.color, verbose, nameWidth });
        progress?.finish(result.status, result.started_at !== null, result.node);
        if (progress === undefined) io.out(line);
        else progress.interject(() => io.out(line));
      }
    };
    const onPlan = (plan: ExecutionPlan): void => {
      runTrace = plan.trace_id;
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
    };
    planned = true;
    let report: RunReport;
    if (request.dryRun === true) {
      report = await rune.run(request, { traceId, signal: controller.signal, policy });
    } else {
      // The renderers follow the run's event stream: node-start moves the progress bar,
      // node-end prints the node (a jsonl line the moment it is audited).
      const handle = await rune.start(request, { traceId, signal: controller.signal, policy });
      onPlan(handle.plan);
      for await (const event of handle.events) {
        if (event.type === 'node-start') progress?.start(event.node);
        else if (event.type === 'node-end') onNodeResult(event.result);
      }
      report = { plan: handle.plan, outcome: await handle.result };
    }
    stopProgress();
    const plan = report.plan;
    if (report.outcome === null) {
      const shown = redactPlan(plan);
      if (output === 'pretty') io.out(formatPlanPretty(shown, { color: io.color, verbose }));
      else {
        const document = runResultDocument({
          exit_code: 0,
          trace_id: shown.trace_id,
          action: shown.action,
          dry_run: true,
          plan: shown,
          warnings,
        });
        io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
      }
      return 0;
    }
    const outcome = report.outcome;
    // Includes AUDIT_WRITE_FAILED (70) when an outcome record could not be written.
    const exitCode = outcome.summary.exit_code;
    const auditError = outcome.audit.error;
    if (output === 'pretty') {
      // A fleet (or any run with a policy or an interruption) gets the summary table; one node
      // keeps the one-line summary.
      const fleet = outcome.nodes.length > 1 || interrupts > 0 || Object.keys(policy).length > 0;
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
      const document = runResultDocument({
        exit_code: exitCode,
        trace_id: plan.trace_id,
        action: plan.action,
        summary: outcome.summary,
        nodes: outcome.nodes,
        audit: outcome.audit,
        ...(auditError === null ? {} : { error: auditError }),
        warnings,
      });
      io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
    }
    return exitCode;
  } catch (error) {
    stopProgress();
    const runeError = toRuneError(error, traceId);
    if (!planned && rune !== undefined) {
      // Refused by the CLI itself (bad --timeout, unreadable --params): still one audit record.
      await rune
        .recordRefusal(
          {
            action: args.action ?? '',
            nodes: parseNodeArgs(args.node),
            dryRun: args.dryRun === true,
            ...(args.transport === undefined ? {} : { transport: args.transport }),
          },
          runeError,
        )
        .catch(() => undefined);
    }
    return emitError(runeError, args.action === undefined ? {} : { action: args.action });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await rune?.close().catch(() => undefined);
  }
}
