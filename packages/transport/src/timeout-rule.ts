/**
 * The timeout rule: who checks a run's timeout, when, and with which grace. One grace,
 * {@link TIMEOUT_GRACE_MS}, separates the stages; every stage acts only after the one before it had
 * its chance, so the inner stage (closest to the plugin) always reports the timeout and the outer
 * ones are backstops.
 *
 * With T = the plan's `timeout_ms` (validated by planning: 1 ms to MAX_TIMEOUT_MS) and G = the grace:
 *
 * | stage | at       | owner                          | what happens                                                                  |
 * | ----- | -------- | ------------------------------ | ----------------------------------------------------------------------------- |
 * | 1     | T        | the plugin                     | told T in the RCS request (`options.timeout_ms`); bounds its own waits        |
 * | 2     | T        | the transport                  | stops the plugin (SIGTERM to its group, a signal over SSH, the agent's limit)  |
 * | 3     | T + G    | the transport (hard stop)      | SIGKILL + run-marker sweep locally; the node-side watchdog over SSH; SSM's CancelCommand |
 * | 4     | T + 6 G  | the execution step (core)      | gives up on a transport that has not returned: PLUGIN_TIMEOUT, containment unconfirmed |
 *
 * The transport reports stages 2-3 as `termination: 'timeout'`, which the execution step judges as
 * PLUGIN_TIMEOUT. Stage 4 waits five graces after the hard stop because a transport may still have
 * to confirm it: the slowest, SSM, waits up to three graces for the agent to acknowledge a cancel,
 * then polls once more; the last grace is margin.
 */

/** The one grace of the timeout rule (see the table above). */
export const TIMEOUT_GRACE_MS = 5_000;

/** How many graces after T the execution step waits before it gives up on a transport (stage 4). */
const ABANDON_AFTER_GRACES = 6;

/** When each stage of the timeout rule acts, in ms after the plugin started. */
export interface TimeoutStages {
  /** Stages 1-2: the plugin's own budget; the transport stops the plugin. */
  stopMs: number;
  /** Stage 3: the transport's hard stop (SIGKILL and sweep, remote watchdog, cancel). */
  hardStopMs: number;
  /** Stage 4: the execution step gives up on a transport that has not returned. */
  abandonMs: number;
}

/** The moments of the timeout rule for a timeout of `timeoutMs` (see the module header). */
export function timeoutStages(
  timeoutMs: number,
  graceMs: number = TIMEOUT_GRACE_MS,
): TimeoutStages {
  return {
    stopMs: timeoutMs,
    hardStopMs: timeoutMs + graceMs,
    abandonMs: timeoutMs + ABANDON_AFTER_GRACES * graceMs,
  };
}
