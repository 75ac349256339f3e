/**
 * `rune workflow run <file>` and `rune workflow validate <file>`: flags -> `@rune/core`'s
 * workflow engine (`loadWorkflowFile`, `runWorkflow` over `rune.start()`) -> the workflow
 * renderers. The CLI parses and renders only; what a step does, how it is audited and how Ctrl-C
 * stops it is the engine's and core's, the same for every front end.
 */
import {
  createRune,
  loadWorkflowFile,
  newTraceId,
  type Rune,
  runeStepRunner,
  runWorkflow,
  type WorkflowDiagnostic,
} from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { CliIo } from '../cli-io.js';
import { formatErrorPretty } from '../render/errors.js';
import { formatJson } from '../render/json.js';
import {
  createWorkflowOutput,
  formatFindings,
  type WorkflowOutputFormat,
} from '../render/workflow-output.js';
import { type CliTracing, startCliTracing } from '../tracing.js';
import { CLI_CONFIG_MODULES, CLI_TRANSPORT_MODULES } from '../transports.js';
import { CLI_VERSION } from '../version.js';

/** The parsed flags of `rune workflow run`. */
export interface WorkflowRunArgs {
  file: string;
  input?: unknown[];
  dryRun?: boolean;
  output?: WorkflowOutputFormat;
  yes?: boolean;
  config?: string;
  inventory?: string;
}

/** The parsed flags of `rune workflow validate`. */
export interface WorkflowValidateArgs {
  file: string;
  output?: WorkflowOutputFormat;
  config?: string;
}

function openRune(io: CliIo, config: string | undefined, onWarning: (text: string) => void): Rune {
  return createRune({
    env: io.env,
    ...(config === undefined ? {} : { configFile: config }),
    transportModules: CLI_TRANSPORT_MODULES,
    configModules: CLI_CONFIG_MODULES,
    interactive: true,
    sender: { component: 'rune-cli', version: CLI_VERSION },
    onWarning: (message) => onWarning(message),
  });
}

function asRuneError(error: unknown): RuneError {
  return RuneError.from(error, 'INTERNAL_ERROR', { source: { component: 'rune-cli' } });
}

function diagnosticsOf(error: RuneError): WorkflowDiagnostic[] {
  return error.code === 'WORKFLOW_INVALID'
    ? ((error.details?.diagnostics as WorkflowDiagnostic[] | undefined) ?? [])
    : [];
}

/** Runs `rune workflow validate`; returns the exit code (0 valid, 2 invalid). */
export async function workflowValidateCommand(
  args: WorkflowValidateArgs,
  io: CliIo,
): Promise<number> {
  const output = args.output ?? 'pretty';
  let rune: Rune | undefined;
  try {
    rune = openRune(io, args.config, () => undefined);
    const loaded = loadWorkflowFile(args.file, { registry: rune.registry() });
    const steps = loaded.definition.steps.length;
    if (output === 'pretty')
      io.out(`${args.file}: valid (${loaded.definition.name}, ${steps} step(s))\n`);
    else {
      const document = { valid: true, workflow: loaded.definition.name, file: args.file, steps };
      io.out(output === 'json' ? formatJson(document) : `${JSON.stringify(document)}\n`);
    }
    return 0;
  } catch (caught) {
    const error = asRuneError(caught);
    const eps = error.toJSON();
    if (output === 'pretty') {
      const findings = diagnosticsOf(error);
      if (findings.length > 0) io.err(formatFindings(args.file, findings));
      else io.err(formatErrorPretty(eps, io.colorErr));
    } else {
      const document = { valid: false, file: args.file, error: eps };
      io.out(output === 'json' ? formatJson(document) : `${JSON.stringify(document)}\n`);
    }
    return error.exitCode;
  } finally {
    await rune?.close().catch(() => undefined);
  }
}

/** Runs `rune workflow run`; returns the exit code of the workflow run. */
export async function workflowRunCommand(args: WorkflowRunArgs, io: CliIo): Promise<number> {
  const output = args.output ?? 'pretty';
  const view = createWorkflowOutput(io, output);
  const traceId = newTraceId();
  let rune: Rune | undefined;
  let tracing: CliTracing | undefined;
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      view.interrupted();
      controller.abort('cancelled from the keyboard');
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    rune = openRune(io, args.config, (message) => {
      if (output === 'pretty') io.err(`warning: ${message}\n`);
    });
    const registry = rune.registry();
    const loaded = loadWorkflowFile(args.file, { registry });
    const dryRun = args.dryRun === true;
    // After the file was found valid: a workflow that cannot run loads no SDK.
    tracing = await startCliTracing(io.env, (message) => io.err(`warning: ${message}\n`));
    const record = await runWorkflow(loaded.definition, {
      runner: runeStepRunner(rune),
      registry,
      traceId,
      inputArgs: (args.input ?? []).map(String),
      dryRun,
      confirmDangerous: args.yes === true,
      ...(args.inventory === undefined ? {} : { inventory: args.inventory }),
      signal: controller.signal,
      onStart: (identity) => view.started(identity, loaded.definition.name, dryRun),
      onStep: (step) => view.step(step),
    });
    return view.finished(record);
  } catch (caught) {
    const error = asRuneError(caught);
    const withTrace = error.traceId === undefined ? error.withContext({ traceId }) : error;
    const findings = diagnosticsOf(withTrace);
    if (output === 'pretty' && findings.length > 0) io.err(formatFindings(args.file, findings));
    return view.error(withTrace.toJSON(), withTrace.exitCode);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await rune?.close().catch(() => undefined);
    await tracing?.shutdown();
  }
}
