/**
 * `rune run --rerun all|failed --trace ID`: turns a past run, read from the audit trail by
 * core's {@link rerunSelection}, back into the flags of `rune run` (action, nodes, parameters,
 * transport), so the rest of the command plans and runs it like any other run — validation,
 * dangerous-action confirmation and a new audit trail included.
 */
import {
  type LoadedConfig,
  RERUN_CHOICES,
  type RerunSelection,
  type RerunWhich,
  readParamsSource,
  rerunSelection,
  resolveAuditLogPath,
} from '@rune/core';
import { RuneError } from '@rune/protocol';

/** The flags of `rune run` that a re-run reads or fills in. */
export interface RerunFlags {
  action?: string;
  rerun?: string;
  trace?: string;
  node?: unknown[];
  nodesFile?: string;
  param?: unknown[];
  params?: string;
  transport?: string;
  useSsm?: boolean;
}

const cliError = (
  code: 'INVALID_ARGUMENT' | 'INVALID_PARAMETERS' | 'NO_TARGETS',
  message: string,
  details: Record<string, unknown> = {},
) => new RuneError(code, message, { source: { component: 'rune-cli' }, details });

/** The parameter names a `--param key=value` list supplies. */
function paramArgNames(values: readonly unknown[] | undefined): Set<string> {
  const names = new Set<string>();
  for (const value of values ?? []) {
    const text = String(value);
    const equals = text.indexOf('=');
    if (equals > 0) names.add(text.slice(0, equals));
  }
  return names;
}

/**
 * Fills `args` in place from the run `--trace` names in the audit log of `loaded`, and returns
 * what was selected. Throws INVALID_ARGUMENT (no `--trace`, `--node` given too, another action,
 * unknown trace), INVALID_PARAMETERS (a parameter that was never recorded is not supplied again)
 * or NO_TARGETS (`failed` and every node succeeded).
 */
export function applyRerun(args: RerunFlags, loaded: LoadedConfig): RerunSelection {
  const which = args.rerun as RerunWhich;
  if (!RERUN_CHOICES.includes(which)) {
    throw cliError('INVALID_ARGUMENT', `--rerun must be one of ${RERUN_CHOICES.join(', ')}`, {
      rerun: args.rerun,
    });
  }
  if (args.trace === undefined || args.trace === '') {
    throw cliError(
      'INVALID_ARGUMENT',
      '--rerun needs --trace ID: the trace id of the run to repeat (see `rune audit`)',
    );
  }
  if ((args.node ?? []).length > 0 || args.nodesFile !== undefined) {
    throw cliError(
      'INVALID_ARGUMENT',
      '--rerun takes its nodes from the audit trail; do not give --node or --nodes-file with it',
    );
  }
  const selection = rerunSelection(resolveAuditLogPath(loaded), args.trace, which);
  if (args.action !== undefined && args.action !== selection.action) {
    throw cliError(
      'INVALID_ARGUMENT',
      `trace ${selection.traceId} ran ${selection.action}, not ${args.action}; omit the action or name ${selection.action}`,
      { recorded_action: selection.action, action: args.action },
    );
  }
  if (selection.nodes.length === 0) {
    throw cliError(
      'NO_TARGETS',
      `nothing to re-run: every node of trace ${selection.traceId} succeeded (--rerun all runs them all again)`,
      { trace_id: selection.traceId },
    );
  }
  const supplied = args.params === undefined ? {} : readParamsSource(args.params);
  const suppliedNames = new Set([...Object.keys(supplied), ...paramArgNames(args.param)]);
  const missing = selection.unrecordedParameters.filter((name) => !suppliedNames.has(name));
  if (missing.length > 0) {
    throw cliError(
      'INVALID_PARAMETERS',
      `the audit log does not hold the value of ${missing.join(', ')} (sensitive, or too long to record) from trace ${selection.traceId}; supply ${missing.length === 1 ? 'it' : 'them'} again: ${missing.map((name) => `-p ${name}=...`).join(' ')}`,
      { missing, trace_id: selection.traceId },
    );
  }
  args.action = selection.action;
  args.node = [...selection.nodes];
  args.params = JSON.stringify({ ...selection.parameters, ...supplied });
  // The recorded transport, when every selected node used the same one and none was asked for:
  // a re-run must not reach a node another way than the run it repeats.
  const transports = new Set(Object.values(selection.transports));
  if (args.transport === undefined && args.useSsm !== true && transports.size === 1) {
    args.transport = [...transports][0] as string;
  }
  return selection;
}
