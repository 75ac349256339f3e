/**
 * `rune run <action>`: flags -> a `PlanRequest` -> `rune.start()` (or `rune.run()` for a dry
 * run) -> the event stream, rendered. Everything else — loading the inventory, reading node
 * lists, selecting targets, `--use-ssm` against `--transport`, parsing durations and counts,
 * auditing refusals — is core's, exactly as a server gets it. Every failure is an EPS error and
 * its exit code.
 */
import {
  createRune,
  newTraceId,
  type OutputFormat,
  type PlanRequest,
  type Rune,
  recordUnconfiguredRefusal,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { createNodeOutputWriter } from '../render/output-dir.js';
import { createRunOutput } from '../render/run-output.js';
import { startCliTracing } from '../tracing.js';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';
import { CLI_VERSION } from '../version.js';
import { applyRerun } from './rerun.js';

export type { OutputFormat };

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
  /** Nodes at once, as typed (parsed strictly by core: decimal, 1..MAX_CONCURRENCY). */
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
  /** Submit to this `rune serve` instead of running here (`--server URL`, token in RUNE_TOKEN). */
  server?: string;
  /** Re-run `all` or the `failed` nodes of the run `--trace` names (fills action, nodes, params). */
  rerun?: string;
  /** Trace id of the run `--rerun` repeats. */
  trace?: string;
  /** Write one result file per node into this directory. */
  outputDir?: string;
}

/** The request the flags describe, values as typed (core parses and validates them). */
export function planRequestFromArgs(args: RunArgs): PlanRequest {
  const text = (value: string | number | undefined): string | undefined =>
    value === undefined ? undefined : String(value);
  const policy: NonNullable<PlanRequest['policy']> = {};
  if (args.canary !== undefined) policy.canary = String(args.canary);
  if (args.maxFailures !== undefined) policy.maxFailures = String(args.maxFailures);
  if (args.deadline !== undefined) policy.deadline = String(args.deadline);
  const request: PlanRequest = {
    action: args.action ?? '',
    selections: (args.node ?? []).map(String),
    paramArgs: (args.param ?? []).map(String),
    dryRun: args.dryRun === true,
    confirmDangerous: args.yes === true,
    policy,
  };
  if (args.nodesFile !== undefined) request.nodeLists = [args.nodesFile];
  if (args.inventory !== undefined) request.inventory = args.inventory;
  if (args.params !== undefined) request.paramsSource = args.params;
  if (args.transport !== undefined) request.transport = args.transport;
  if (args.useSsm === true) request.useSsm = true;
  const timeout = text(args.timeout);
  if (timeout !== undefined) request.timeout = timeout;
  const concurrency = text(args.concurrency);
  if (concurrency !== undefined) request.concurrency = concurrency;
  return request;
}

function toRuneError(error: unknown, traceId: string): RuneError {
  const runeError = RuneError.from(error, 'INTERNAL_ERROR', {
    traceId,
    source: { component: 'rune-cli' },
  });
  return runeError.traceId === undefined ? runeError.withContext({ traceId }) : runeError;
}

/** Runs `rune run`; returns the process exit code. */
export async function runCommand(args: RunArgs, io: CliIo): Promise<number> {
  if (args.server !== undefined) {
    const { runRemoteCommand } = await import('./run-remote.js');
    return runRemoteCommand({ ...args, server: args.server }, io);
  }
  const traceId = newTraceId();
  let request = planRequestFromArgs(args);
  const view = createRunOutput(io, {
    output: args.output ?? 'pretty',
    verbose: args.verbose === true,
    dryRun: request.dryRun === true,
    hasPolicy: Object.keys(request.policy ?? {}).length > 0,
  });

  let rune: Rune;
  try {
    rune = createRune({
      env: io.env,
      ...(args.config === undefined ? {} : { configFile: args.config }),
      configOverrides: {
        ...(args.output === undefined ? {} : { core: { output: args.output } }),
        ...(args.fetchArtifacts === undefined
          ? {}
          : { execution: { fetch_artifacts: args.fetchArtifacts } }),
      },
      transportModules: CLI_TRANSPORT_MODULES,
      configModules: CLI_CONFIG_MODULES,
      // An encrypted SSH key without a passphrase variable is unlocked on the terminal.
      interactive: true,
      // While a prompt owns the terminal the progress bar is paused and node lines held back.
      aroundPrompt: view.aroundPrompt,
      sender: { component: 'rune-cli', version: CLI_VERSION },
      onWarning: (message, origin) => {
        if (origin === 'transport') view.transportWarning(message);
        else if (origin === 'inventory') view.inventoryWarning(message);
        else view.registryWarning(message);
      },
    });
  } catch (error) {
    // The configuration itself is unusable: the refusal still leaves an audit record.
    const runeError = toRuneError(error, traceId);
    await recordUnconfiguredRefusal(request, runeError, { env: io.env });
    return view.error(runeError, null);
  }
  view.setOutput(args.output ?? rune.config.config.core.output);
  const tracing = await startCliTracing(io.env, (message) => io.err(`warning: ${message}\n`));

  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      view.interrupted();
      controller.abort();
    } else {
      view.stop();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    if (args.rerun !== undefined) {
      try {
        applyRerun(args, rune.config);
      } catch (error) {
        // A refused re-run (unknown trace, nothing failed, a sensitive value not given again)
        // leaves an audit record like any other refusal.
        await rune
          .recordRefusal(
            { action: args.action ?? '', selections: [], dryRun: args.dryRun === true },
            toRuneError(error, traceId),
          )
          .catch(() => undefined);
        throw error;
      }
      request = planRequestFromArgs(args);
    }
    if (args.outputDir !== undefined && request.dryRun !== true) {
      view.saveTo(
        createNodeOutputWriter(args.outputDir, (message) => view.transportWarning(message)),
      );
    }
    const options = { traceId, signal: controller.signal };
    if (request.dryRun === true) return view.plan((await rune.run(request, options)).plan);
    const handle = await rune.start(request, options);
    view.started(handle.plan);
    for await (const event of handle.events) view.event(event);
    return view.finished(handle.plan, await handle.result);
  } catch (error) {
    return view.error(toRuneError(error, traceId), args.action ?? null);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await rune.close().catch(() => undefined);
    await tracing?.shutdown();
  }
}
