/**
 * `rune workflow run <file>` and `rune workflow validate <file>`: flags -> `@rune/core`'s
 * workflow engine (`loadWorkflowFile`, `runWorkflow` over `rune.start()`) -> the workflow
 * renderers. The CLI parses and renders only; what a step does, how it is audited and how Ctrl-C
 * stops it is the engine's and core's, the same for every front end.
 */
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
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
  /** Run it on this `rune serve` (`--server URL`, token in RUNE_TOKEN): FILE names its workflow. */
  server?: string;
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

/** The name a workflow file stands for before it could be read: its base name. */
function fileStem(file: string): string {
  return basename(file).replace(/\.(ya?ml|json)$/i, '') || 'workflow';
}

/** Runs `rune workflow run`; returns the exit code of the workflow run. */
export async function workflowRunCommand(args: WorkflowRunArgs, io: CliIo): Promise<number> {
  if (args.server !== undefined) {
    const { workflowRunRemoteCommand } = await import('./workflow-remote.js');
    return workflowRunRemoteCommand({ ...args, server: args.server }, io);
  }
  const output = args.output ?? 'pretty';
  const view = createWorkflowOutput(io, output);
  const traceId = newTraceId();
  const workflowRunId = randomUUID();
  const dryRun = args.dryRun === true;
  const inputArgs = (args.input ?? []).map(String);
  // Only the names of the inputs are audited: a value may be what a step treats as sensitive.
  const inputNames = [
    ...new Set(inputArgs.map((arg) => arg.slice(0, Math.max(0, arg.indexOf('='))).slice(0, 64))),
  ]
    .filter((name) => name !== '')
    .slice(0, 64);
  let name = fileStem(args.file);
  let started = false;
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
    const opened = rune;
    const registry = opened.registry();
    const loaded = loadWorkflowFile(args.file, { registry });
    name = loaded.definition.name;
    // After the file was found valid: a workflow that cannot run loads no SDK.
    tracing = await startCliTracing(io.env, (message) => io.err(`warning: ${message}\n`));
    const record = await runWorkflow(loaded.definition, {
      runner: runeStepRunner(opened),
      registry,
      traceId,
      workflowRunId,
      inputArgs,
      dryRun,
      confirmDangerous: args.yes === true,
      ...(args.inventory === undefined ? {} : { inventory: args.inventory }),
      signal: controller.signal,
      onStart: async (identity) => {
        // The workflow as a whole is audited (besides each step's runs): written before its
        // first step, so no step runs unless the trail says a workflow started it.
        if (!dryRun) {
          await opened.recordWorkflow({
            workflowRunId,
            name,
            traceId,
            status: 'started',
            error: null,
            metadata: { inputs: inputNames, dry_run: false },
          });
        }
        started = true;
        view.started(identity, name, dryRun);
      },
      onStep: (step) => view.step(step),
    });
    if (!dryRun) {
      await opened
        .recordWorkflow({
          workflowRunId,
          name,
          traceId,
          status: record.status,
          error: record.error,
          metadata: {
            inputs: inputNames,
            dry_run: false,
            exit_code: record.exit_code,
            steps: record.steps.map((step) => ({
              id: step.id,
              status: step.status,
              run_ids: step.attempts.map((attempt) => attempt.run_id),
            })),
          },
        })
        .catch((caught: unknown) => {
          // The workflow ran (each step's runs are audited); its end record is what is missing.
          if (output === 'pretty') {
            io.err(
              `warning: the end of workflow run ${workflowRunId} was not audited: ${asRuneError(caught).message}\n`,
            );
          }
        });
    }
    return view.finished(record);
  } catch (caught) {
    const error = asRuneError(caught);
    const withTrace = error.traceId === undefined ? error.withContext({ traceId }) : error;
    if (rune !== undefined && !started) {
      // Refused before its first step (an invalid file, bad inputs, dangerous actions not
      // confirmed): one record of its own, best effort (an unwritable log is the refusal).
      await rune
        .recordWorkflow({
          workflowRunId,
          name,
          traceId,
          status: 'refused',
          error: { code: withTrace.code, message: withTrace.message },
          metadata: { inputs: inputNames, dry_run: dryRun, file: basename(args.file) },
        })
        .catch(() => undefined);
    }
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
