/**
 * The examples of docs/core-api.md ("Embedding a run: the run handle"). The doc quotes the code
 * between the `#region` and `#endregion` lines verbatim (test/run-handle.examples.test.ts runs the
 * examples and checks the quote), so the documented code is the tested code.
 */
import type { PlanRequest, Rune, RunHandle, RunHandleOutcome } from '../../src/index.js';

// #region run-handle
/** Starts a run, prints its events as they happen, and lets Ctrl-C cancel it. */
export async function runAndWatch(
  rune: Rune,
  request: PlanRequest,
  print: (line: string) => void,
): Promise<RunHandleOutcome> {
  // Resolves once the run is planned and its intent record is durable; refusals throw here.
  const handle = await rune.start(request);
  print(`run ${handle.id} (trace ${handle.traceId}): ${handle.plan.nodes.length} node(s)`);
  const stop = (): void => handle.cancel('stopped from the keyboard');
  process.once('SIGINT', stop);
  try {
    for await (const event of handle.events) {
      if (event.type === 'node-start') print(`#${event.seq} ${event.node} started`);
      if (event.type === 'node-end')
        print(`#${event.seq} ${event.result.node} ${event.result.status}`);
      if (event.type === 'run-end') print(`#${event.seq} ${event.status}, exit ${event.exit_code}`);
    }
    return await handle.result;
  } finally {
    process.off('SIGINT', stop);
  }
}

/** A second consumer with its own policy: cancel the whole run when any node fails. */
export async function stopOnFirstFailure(
  rune: Rune,
  request: PlanRequest,
): Promise<RunHandleOutcome> {
  const handle = await rune.start(request);
  for await (const event of handle.events) {
    if (event.type === 'node-end' && event.result.status === 'failure') {
      handle.cancel(`${event.result.node} failed: ${event.result.error?.code}`);
    }
  }
  return handle.result;
}

/** A service's POST body, in the operator's words: selectors, durations as typed. */
export interface RunBody {
  action: string;
  nodes: string[];
  transport?: string;
  params?: Record<string, unknown>;
  timeout?: string;
  /** The operator confirmed a dangerous action (the CLI's --yes). */
  confirm?: boolean;
}

/** What a service does with it: the body maps onto a PlanRequest member for member. */
export function startFromBody(rune: Rune, body: RunBody): Promise<RunHandle> {
  return rune.start({
    action: body.action,
    selections: body.nodes, // 'web01', 'ops@10.0.0.7:2222', '@web,!web03', 'tag:eu' (inventory)
    ...(body.transport === undefined ? {} : { transport: body.transport }),
    ...(body.params === undefined ? {} : { params: body.params }),
    ...(body.timeout === undefined ? {} : { timeout: body.timeout }),
    confirmDangerous: body.confirm === true,
  });
}
// #endregion run-handle
