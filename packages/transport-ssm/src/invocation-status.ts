/**
 * How an SSM command invocation's `Status` / `StatusDetails` pair reads for RUNE.
 *
 * `Status` is the coarse enum (Pending, InProgress, Delayed, Success, Cancelled, Cancelling,
 * TimedOut, Failed); `StatusDetails` says why (DeliveryTimedOut vs ExecutionTimedOut,
 * Undeliverable, Terminated, InvalidPlatform, AccessDenied, ...). The table is documented in
 * docs/ssm.md and tested row by row.
 */
import type { ErrorCode } from '@rune/protocol';

/** What the transport does with one observed invocation state. */
export type InvocationOutcome =
  /** Not finished: keep polling. `started` is false while the agent has not begun running it. */
  | { kind: 'running'; started: boolean }
  /** The wrapper ran to an end (Success or Failed): read its result line. */
  | { kind: 'finished' }
  /** The node killed the command at its execution timeout. */
  | { kind: 'timeout' }
  /** The command was cancelled (CancelCommand) or terminated by SSM before it ended. */
  | { kind: 'cancelled' }
  /** The command never ran: a precise EPS error. */
  | { kind: 'error'; code: ErrorCode; message: string };

/** One row of the mapping table, for docs and tests. */
export interface InvocationStatusRow {
  status: string;
  statusDetails: string;
  outcome: InvocationOutcome;
}

/**
 * Maps an invocation's Status / StatusDetails to an outcome. Unknown combinations of a terminal
 * Status fall back on Status alone; an unknown Status is reported as TRANSPORT_API_ERROR.
 */
export function mapInvocationStatus(
  status: string | undefined,
  statusDetails: string | undefined,
): InvocationOutcome {
  const details = (statusDetails ?? '').replace(/\s+/g, '');
  switch (status) {
    case 'Pending':
      return { kind: 'running', started: false };
    case 'Delayed':
      return { kind: 'running', started: false };
    case 'InProgress':
    case 'Cancelling':
      return { kind: 'running', started: true };
    case 'Success':
      return { kind: 'finished' };
    case 'Cancelled':
      return { kind: 'cancelled' };
    case 'TimedOut':
      if (details === 'DeliveryTimedOut') {
        return {
          kind: 'error',
          code: 'DELIVERY_TIMEOUT',
          message: 'SSM could not deliver the command to the instance before its delivery timeout',
        };
      }
      return { kind: 'timeout' };
    case 'Failed':
      switch (details) {
        case 'Undeliverable':
          return {
            kind: 'error',
            code: 'UNDELIVERABLE',
            message: 'SSM reports the command undeliverable (instance terminated or agent gone)',
          };
        case 'Terminated':
          return { kind: 'cancelled' };
        case 'InvalidPlatform':
          return {
            kind: 'error',
            code: 'UNSUPPORTED_FEATURE',
            message: 'the instance platform does not support AWS-RunShellScript (not Linux?)',
          };
        case 'AccessDenied':
          return {
            kind: 'error',
            code: 'AUTH_FAILED',
            message: 'SSM denied the command on the instance (AccessDenied)',
          };
        case 'DeliveryTimedOut':
          return {
            kind: 'error',
            code: 'DELIVERY_TIMEOUT',
            message:
              'SSM could not deliver the command to the instance before its delivery timeout',
          };
        case 'ExecutionTimedOut':
          return { kind: 'timeout' };
        default:
          return { kind: 'finished' };
      }
    default:
      return {
        kind: 'error',
        code: 'TRANSPORT_API_ERROR',
        message: `SSM returned an unknown invocation status ${JSON.stringify(status)} / ${JSON.stringify(statusDetails)}`,
      };
  }
}

/** The documented table: every Status / StatusDetails pair RUNE knows, with its outcome. */
export const INVOCATION_STATUS_TABLE: readonly InvocationStatusRow[] = [
  ['Pending', 'Pending'],
  ['Delayed', 'Delayed'],
  ['InProgress', 'InProgress'],
  ['Cancelling', 'Cancelling'],
  ['Success', 'Success'],
  ['Failed', 'Failed'],
  ['Cancelled', 'Cancelled'],
  ['TimedOut', 'ExecutionTimedOut'],
  ['TimedOut', 'DeliveryTimedOut'],
  ['Failed', 'Undeliverable'],
  ['Failed', 'Terminated'],
  ['Failed', 'InvalidPlatform'],
  ['Failed', 'AccessDenied'],
].map(([status, statusDetails]) => ({
  status: status!,
  statusDetails: statusDetails!,
  outcome: mapInvocationStatus(status, statusDetails),
}));
