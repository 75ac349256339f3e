/**
 * What the endpoint remembers: managed instances, commands and one invocation per (command,
 * instance), shaped after the SSM service's own model so the API actions, the command runner and
 * the S3 stand-in share one set of records.
 */
import type { ChildProcess } from 'node:child_process';

/** PingStatus values of DescribeInstanceInformation. */
export type SsmPingStatus = 'Online' | 'ConnectionLost' | 'Inactive';

/** Faults an instance (or every instance) can be given. */
export interface SsmEndpointFaults {
  /** Commands are never delivered: Pending, then Delayed, then TimedOut / DeliveryTimedOut. */
  deliveryTimeout?: boolean;
  /** Commands fail at once as Failed / Undeliverable. */
  undeliverable?: boolean;
  /** Extra time a command stays Pending before it starts. */
  slowStartMs?: number;
  /** GetCommandInvocation answers InvocationDoesNotExist for this long after SendCommand. */
  invocationDoesNotExistMs?: number;
}

/** The SendCommand `InstanceIds` pattern (`i-` + 8 or 17 hex digits, `mi-` + 17). */
export const INSTANCE_ID = /^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$/;

/** The one plugin of AWS-RunShellScript, as GetCommandInvocation names it. */
export const PLUGIN_NAME = 'aws:runShellScript';

/** Status of an invocation, as the API reports it. */
export type InvocationStatus =
  | 'Pending'
  | 'InProgress'
  | 'Delayed'
  | 'Success'
  | 'Cancelled'
  | 'Cancelling'
  | 'TimedOut'
  | 'Failed';

/** One managed node: a private working directory on this machine. */
export interface InstanceState {
  instanceId: string;
  name: string;
  pingStatus: SsmPingStatus;
  faults: SsmEndpointFaults;
  dir: string;
  reboots: number;
  registeredAt: number;
}

/** One accepted SendCommand. */
export interface CommandState {
  commandId: string;
  documentName: string;
  comment: string;
  parameters: Record<string, string[]>;
  instanceIds: string[];
  requestedAt: number;
  timeoutSeconds: number;
  executionTimeoutS: number;
  bucket: string;
  prefix: string;
}

/** One command on one instance, from Pending to a terminal status. */
export interface InvocationState {
  command: CommandState;
  instanceId: string;
  status: InvocationStatus;
  statusDetails: string;
  responseCode: number;
  startedAt?: number;
  endedAt?: number;
  stdout: Buffer[];
  stdoutBytes: number;
  stderr: Buffer[];
  stderrBytes: number;
  child?: ChildProcess;
  timers: NodeJS.Timeout[];
  ending?: 'timeout' | 'cancel';
  reboots: number;
  visibleAt: number;
}

/** True once an invocation can no longer change. */
export function isTerminal(status: InvocationStatus): boolean {
  return !['Pending', 'InProgress', 'Delayed', 'Cancelling'].includes(status);
}

/**
 * An answer the API gives instead of a result: the AWS error name (`__type`), its message and
 * the HTTP status. Internal: it becomes an HTTP response, never reaches a caller of the package.
 */
export class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
