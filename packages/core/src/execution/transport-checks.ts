/**
 * Whether a transport can carry this node's run, checked before anything is sent: no supplied
 * sensitive parameter on a transport that embeds the request in its command, the plan's deploy
 * mode, the size of the RCS request, and run_as. Each refusal is a RuneError; nothing was started.
 */
import { RuneError } from '@rune/protocol';
import type { Transport } from '@rune/transport';
import type { ExecutionPlan, PlannedNode } from '../planning/plan-run.js';
import { sensitiveParameterRefusal } from './sensitive-parameters.js';

/**
 * Throws when `transport` cannot run `planned` with `stdin` as its request; returns the user the
 * plugin runs as (node's `runAs`, else the plan's), if any.
 */
export function assertTransportCanRun(
  plan: ExecutionPlan,
  planned: PlannedNode,
  transport: Transport,
  stdin: Uint8Array,
): string | undefined {
  const capabilities = transport.capabilities;
  const refusal = sensitiveParameterRefusal(plan, transport, [planned.target.name]);
  if (refusal !== undefined) throw refusal;
  if (!capabilities.deployModes.includes(plan.deploy_mode)) {
    throw new RuneError(
      'UNSUPPORTED_FEATURE',
      `transport ${transport.name} does not support deploy mode ${plan.deploy_mode}`,
    );
  }
  if (capabilities.maxStdinBytes !== undefined && stdin.byteLength > capabilities.maxStdinBytes) {
    throw new RuneError(
      'PAYLOAD_TOO_LARGE',
      `the RCS request is ${stdin.byteLength} bytes; transport ${transport.name} carries at most ${capabilities.maxStdinBytes}`,
      { details: { bytes: stdin.byteLength, limit: capabilities.maxStdinBytes } },
    );
  }
  const runAs = planned.target.runAs ?? plan.run_as ?? undefined;
  if (runAs !== undefined && !capabilities.runAs) {
    throw new RuneError(
      'UNSUPPORTED_FEATURE',
      `transport ${transport.name} does not support run_as`,
    );
  }
  return runAs;
}
