/**
 * `rune run <action>`: parse → plan → (dry run: print the plan) → execute → render. All
 * orchestration lives in @rune/core; this module only maps flags to a request and results to
 * output, and turns every failure into an EPS error and its exit code.
 */
import {
  createFileAuditSink,
  createRune,
  currentOperator,
  type ExecutionPlan,
  LOCAL_NODE_NAMES,
  LOCAL_TRANSPORT_NAME,
  type LoadedConfig,
  loadConfig,
  loadInventory,
  type NodeRunResult,
  newTraceId,
  type PlanRequest,
  type PlanTarget,
  type Rune,
  redactPlan,
  resolveXdgDirs,
  selectTargets,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { parseDurationMs, parseNodeArgs, readParamsArg } from '../parse-options.js';
import { formatErrorPretty } from '../render/errors.js';
import { formatJson, runResultDocument } from '../render/json.js';
import { formatNodeLine, formatSummaryLine } from '../render/jsonl.js';
import { formatNodePretty, formatPlanPretty, formatSummaryPretty } from '../render/pretty.js';
import { remoteTransportProviders } from '../transports.js';
import { CLI_VERSION } from '../version.js';

/** Output formats of `rune run`. */
export type OutputFormat = 'pretty' | 'json' | 'jsonl';

/** The parsed flags of `rune run`. */
export interface RunArgs {
  action: string;
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
  concurrency?: number;
}

function toRuneError(error: unknown, traceId: string): RuneError {
  if (RuneError.is(error))
    return error.traceId === undefined ? error.withContext({ traceId }) : error;
  return new RuneError(
    'INTERNAL_ERROR',
    `unexpected error: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error, traceId, source: { component: 'rune-cli' } },
  );
}

/** Best-effort refusal record when the configuration itself is unusable. */
async function auditConfigRefusal(io: CliIo, args: RunArgs, error: RuneError): Promise<void> {
  try {
    const dirs = resolveXdgDirs({ env: io.env });
    const sink = createFileAuditSink({
      path: `${dirs.stateHome}/rune/audit.jsonl`,
      host: 'localhost',
    });
    await sink.append({
      event: 'refusal',
      operator: currentOperator(io.env),
      action: String(args.action).slice(0, 128),
      plugin: null,
      node: null,
      nodes: parseNodeArgs(args.node).slice(0, 100),
      transport: args.transport ?? null,
      status: 'refused',
      error_code: error.code,
      error_message: error.message,
      duration_ms: null,
      trace_id: error.traceId ?? newTraceId(),
      params: null,
      metadata: { dry_run: args.dryRun === true },
    });
  } catch {
    // The configuration is broken; the refusal is still reported to the operator.
  }
}

/** Runs `rune run`; returns the process exit code. */
export async function runCommand(args: RunArgs, io: CliIo): Promise<number> {
  const traceId = newTraceId();
  let output: OutputFormat = args.output ?? 'pretty';
  const verbose = args.verbose === true;
  const warnings: string[] = [];

  const emitError = (error: RuneError, extra: { action?: string } = {}): number => {
    const eps = error.toJSON();
    if (output === 'json') {
      io.out(
        formatJson(
          runResultDocument({
            exit_code: error.exitCode,
            error: eps,
            action: extra.action ?? null,
            trace_id: eps.trace_id,
            dry_run: args.dryRun === true,
          }),
        ),
      );
    } else if (output === 'jsonl') {
      io.out(
        formatSummaryLine(
          runResultDocument({
            exit_code: error.exitCode,
            error: eps,
            action: extra.action ?? null,
            trace_id: eps.trace_id,
            dry_run: args.dryRun === true,
          }),
        ),
      );
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
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      io.err('\ncancelling… (Ctrl-C again to exit at once)\n');
      controller.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  try {
    rune = createRune({
      config: loaded,
      env: io.env,
      transports: remoteTransportProviders(loaded.config, io.env, (message) =>
        warnings.push(message),
      ),
      sender: { component: 'rune-cli', version: CLI_VERSION },
      onWarning: (message) => {
        warnings.push(message);
        if (verbose && output === 'pretty') io.err(`warning: ${message}\n`);
      },
    });

    if (args.useSsm === true && args.transport !== undefined && args.transport !== 'ssm') {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `--use-ssm contradicts --transport ${args.transport}`,
        {
          source: { component: 'rune-cli' },
        },
      );
    }
    // Targets: inventory names, groups and tags when [core] inventory is set, else ad-hoc
    // [user@]host[:port]; localhost/local/127.0.0.1 use the local transport.
    const inventoryPath = loaded.config.core.inventory;
    const inventory = inventoryPath === undefined ? undefined : await loadInventory(inventoryPath);
    const selections = parseNodeArgs(args.node);
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
      action: args.action,
      nodes: targets,
      paramArgs: (args.param ?? []).map(String),
      dryRun: args.dryRun === true,
      confirmDangerous: args.yes === true,
    };
    if (args.params !== undefined) request.params = readParamsArg(args.params);
    const transport = args.useSsm === true ? 'ssm' : args.transport;
    if (transport !== undefined) request.transport = transport;
    if (args.timeout !== undefined) request.timeoutMs = parseDurationMs(args.timeout);
    if (args.concurrency !== undefined) request.concurrency = args.concurrency;

    const nameWidth = Math.min(
      40,
      Math.max(0, ...request.nodes.map((node) => String(node).length)),
    );
    let runTrace = traceId;
    const onNodeResult = (result: NodeRunResult): void => {
      if (output === 'jsonl') io.out(formatNodeLine(result, runTrace));
      else if (output === 'pretty')
        io.out(formatNodePretty(result, { color: io.color, verbose, nameWidth }));
    };
    const onPlan = (plan: ExecutionPlan): void => {
      runTrace = plan.trace_id;
      if (verbose && output === 'pretty') {
        io.err(
          `running ${plan.action} ${plan.plugin.version} (${plan.plugin.path}, sha256 ${plan.plugin.sha256.slice(0, 12)}…) on ${plan.nodes.length} node(s), trace ${plan.trace_id}\n`,
        );
      }
    };
    planned = true;
    const report = await rune.run(request, {
      traceId,
      signal: controller.signal,
      onNodeResult,
      onPlan,
    });
    const plan = report.plan;
    if (report.outcome === null) {
      const shown = redactPlan(plan);
      if (output === 'pretty') io.out(formatPlanPretty(shown, io.color));
      else {
        const document = runResultDocument({
          exit_code: 0,
          trace_id: shown.trace_id,
          action: shown.action,
          dry_run: true,
          plan: shown,
        });
        io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
      }
      return 0;
    }
    const outcome = report.outcome;
    const exitCode = outcome.summary.exit_code;
    if (output === 'pretty') io.out(formatSummaryPretty(outcome.summary, io.color));
    else {
      const document = runResultDocument({
        exit_code: exitCode,
        trace_id: plan.trace_id,
        action: plan.action,
        summary: outcome.summary,
        nodes: outcome.nodes,
      });
      io.out(output === 'json' ? formatJson(document) : formatSummaryLine(document));
    }
    return exitCode;
  } catch (error) {
    const runeError = toRuneError(error, traceId);
    if (!planned && rune !== undefined) {
      // Refused by the CLI itself (bad --timeout, unreadable --params): still one audit record.
      await rune
        .recordRefusal(
          {
            action: args.action,
            nodes: parseNodeArgs(args.node),
            dryRun: args.dryRun === true,
            ...(args.transport === undefined ? {} : { transport: args.transport }),
          },
          runeError,
        )
        .catch(() => undefined);
    }
    return emitError(runeError, { action: args.action });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await rune?.close().catch(() => undefined);
  }
}
