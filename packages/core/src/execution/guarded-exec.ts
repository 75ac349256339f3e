/**
 * One `transport.exec()` under the execution step's own deadline: stage 4 of the timeout rule
 * (`timeoutStages` in @rune/transport). The transport owns stages 2-3 (it stops the plugin at the
 * timeout and hard-stops it one grace later) and reports them as `termination: 'timeout'`; this
 * guard only fires for a transport that has not returned by `abandonMs`, aborts its exec and
 * reports PLUGIN_TIMEOUT with containment unconfirmed. The run's abort signal is forwarded to the
 * exec, and artifact fetches reuse the returned signal.
 */
import { RuneError } from '@rune/protocol';
import {
  type ContainmentReport,
  type Transport,
  type TransportExecRequest,
  type TransportExecResult,
  timeoutStages,
} from '@rune/transport';

/** What {@link guardedExec} returns: the transport's result, or that it was given up on. */
export type GuardedExec =
  | {
      kind: 'returned';
      raw: TransportExecResult;
      /** Aborted when the run is cancelled; artifact fetches use it too. */
      signal: AbortSignal;
    }
  | {
      kind: 'abandoned';
      /** PLUGIN_TIMEOUT naming the transport and the time waited. */
      error: RuneError;
      /** Nobody confirmed that the plugin was stopped. */
      containment: ContainmentReport;
    };

/**
 * Runs `transport.exec(request)` with its signal following `runSignal`; gives up (kind
 * `abandoned`) when the transport has not returned `graceMs` after the timeout (default: the
 * timeout rule's stage 4).
 */
export async function guardedExec(
  transport: Transport,
  request: Omit<TransportExecRequest, 'signal'>,
  runSignal: AbortSignal,
  graceMs?: number,
): Promise<GuardedExec> {
  const grace = graceMs ?? timeoutStages(request.timeoutMs).abandonMs - request.timeoutMs;
  const controller = new AbortController();
  const forward = (): void => controller.abort(runSignal.reason);
  if (runSignal.aborted) forward();
  else runSignal.addEventListener('abort', forward, { once: true });
  let guard: NodeJS.Timeout | undefined;
  let raw: TransportExecResult | 'stuck';
  try {
    raw = await Promise.race([
      transport.exec({ ...request, signal: controller.signal }),
      new Promise<'stuck'>((resolve) => {
        guard = setTimeout(() => resolve('stuck'), request.timeoutMs + grace);
      }),
    ]);
  } finally {
    if (guard !== undefined) clearTimeout(guard);
    runSignal.removeEventListener('abort', forward);
  }
  if (raw !== 'stuck') return { kind: 'returned', raw, signal: controller.signal };
  controller.abort();
  return {
    kind: 'abandoned',
    error: new RuneError(
      'PLUGIN_TIMEOUT',
      `transport ${transport.name} did not return within ${request.timeoutMs + grace} ms`,
      { details: { timeout_ms: request.timeoutMs, transport_grace_ms: grace } },
    ),
    containment: {
      method: 'none',
      killed: 0,
      complete: false,
      detail: `transport ${transport.name} did not return, so nobody confirmed that the plugin was stopped`,
    },
  };
}
