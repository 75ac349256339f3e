/**
 * The SSM API actions the endpoint implements — SendCommand, GetCommandInvocation,
 * ListCommandInvocations, CancelCommand and DescribeInstanceInformation — with the service's
 * validation, error names and messages, member names and timestamps in epoch seconds, and
 * GetCommandInvocation's output limits (24,000 / 8,000 characters with the agent's truncation
 * markers). It also holds the registry of instances, commands and invocations, the injected
 * faults and throttling, and the log of every call received. Running commands is the
 * {@link CommandRunner}'s job; full output is kept by the {@link S3StandIn}.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import type { CommandRunner } from './command-runner.js';
import {
  ApiError,
  type CommandState,
  INSTANCE_ID,
  type InstanceState,
  type InvocationState,
  isTerminal,
  PLUGIN_NAME,
  type SsmEndpointFaults,
  type SsmPingStatus,
} from './endpoint-state.js';
import type { S3StandIn } from './s3-stand-in.js';

/** One managed node of the endpoint. */
export interface SsmEndpointInstanceOptions {
  /** `i-...` or `mi-...`. */
  instanceId: string;
  /** ComputerName / Name reported by DescribeInstanceInformation. */
  name?: string;
  pingStatus?: SsmPingStatus;
  faults?: SsmEndpointFaults;
}

/** One API call the endpoint received (for assertions). */
export interface SsmEndpointRequest {
  operation: string;
  body: Record<string, unknown>;
  at: number;
}

/** Settings of {@link SsmApi} (the endpoint's options of the same names). */
export interface SsmApiOptions {
  /** Directory the instances' working directories are made in. */
  workRoot: string;
  /** Faults for every instance (an instance's own faults take precedence). */
  faults?: SsmEndpointFaults;
  /** Characters of stdout / stderr GetCommandInvocation returns (default 24,000 / 8,000). */
  outputLimits?: { stdout: number; stderr: number };
  /** Reject SendCommand whose Parameters exceed this many bytes (default: no limit). */
  maxParametersBytes?: number;
  log: (line: string) => void;
  runner: CommandRunner;
  s3: S3StandIn;
}

const EXECUTION_TIMEOUT =
  /^([1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[0-1][0-9]{3}|172[0-7][0-9]{2}|172800)$/;

const epoch = (ms: number): number => Math.round(ms) / 1000;

const iso = (ms: number | undefined): string =>
  ms === undefined ? '' : new Date(ms).toISOString();

function duration(from: number | undefined, to: number | undefined): string {
  if (from === undefined) return '';
  const seconds = ((to ?? Date.now()) - from) / 1000;
  return `PT${seconds.toFixed(3)}S`;
}

/** Cuts `text` to `limit` characters the way the agent does, marker included. */
function truncateChars(text: string, limit: number, marker: string): string {
  if (text.length <= limit) return text;
  const chars = Array.from(text);
  if (chars.length <= limit) return text;
  return chars.slice(0, Math.max(0, limit - marker.length)).join('') + marker;
}

/** The agent's combined Output of ListCommandInvocations (TruncateOutput with capacity 2500). */
function combinedOutput(stdout: string, stderr: string, capacity: number): string {
  const outMarker = '\n---Output truncated---';
  const errMarker = '\n---Error truncated----';
  const errHeader = '\n----------ERROR-------\n';
  const hasErr = stderr.length > 0;
  const outCap = hasErr ? Math.floor(capacity / 2) : capacity;
  let out = stdout;
  if (out.length > outCap) out = out.slice(0, Math.max(0, outCap - outMarker.length)) + outMarker;
  if (!hasErr) return out;
  const errCap = capacity - out.length - errHeader.length;
  let err = stderr;
  if (err.length > errCap) err = err.slice(0, Math.max(0, errCap - errMarker.length)) + errMarker;
  return out + errHeader + err;
}

/** The endpoint's SSM service: state plus the five API actions. */
export class SsmApi {
  /** Every API call received, oldest first. */
  readonly requests: SsmEndpointRequest[] = [];
  private readonly instances = new Map<string, InstanceState>();
  private readonly commands = new Map<string, CommandState>();
  private readonly invocations = new Map<string, InvocationState>();
  private globalFaults: SsmEndpointFaults;
  private throttleLeft = 0;
  private throttleOps: readonly string[] | undefined;

  constructor(private readonly options: SsmApiOptions) {
    this.globalFaults = { ...(options.faults ?? {}) };
  }

  /** Registers (or replaces) an instance and creates its private working directory. */
  addInstance(instance: string | SsmEndpointInstanceOptions): void {
    const spec = typeof instance === 'string' ? { instanceId: instance } : instance;
    if (!INSTANCE_ID.test(spec.instanceId)) {
      throw new RuneError(
        'INVALID_ARGUMENT',
        `not an instance id: ${JSON.stringify(spec.instanceId)} (i- + 8 or 17 hex digits, or mi- + 17)`,
        { source: { component: 'ssm-endpoint' } },
      );
    }
    const dir = join(this.options.workRoot, spec.instanceId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.instances.set(spec.instanceId, {
      instanceId: spec.instanceId,
      name: spec.name ?? `${spec.instanceId}.local`,
      pingStatus: spec.pingStatus ?? 'Online',
      faults: { ...(spec.faults ?? {}) },
      dir,
      reboots: 0,
      registeredAt: Date.now(),
    });
  }

  setPingStatus(instanceId: string, status: SsmPingStatus): void {
    this.instance(instanceId).pingStatus = status;
  }

  setFaults(instanceId: string, faults: SsmEndpointFaults): void {
    if (instanceId === '*') this.globalFaults = { ...faults };
    else this.instance(instanceId).faults = { ...faults };
  }

  throttle(count: number, operations?: readonly string[]): void {
    this.throttleLeft = count;
    this.throttleOps = operations;
  }

  /** A registered instance; an unknown id is INVALID_ARGUMENT. */
  instance(instanceId: string): InstanceState {
    const found = this.instances.get(instanceId);
    if (found === undefined) {
      throw new RuneError('INVALID_ARGUMENT', `unknown instance ${instanceId}`, {
        source: { component: 'ssm-endpoint' },
      });
    }
    return found;
  }

  /** Every invocation so far (running or not). */
  allInvocations(): IterableIterator<InvocationState> {
    return this.invocations.values();
  }

  /**
   * One API call: recorded, throttled when asked to, then answered. Throws {@link ApiError}
   * with the AWS error the service would give.
   */
  call(operation: string, body: Record<string, unknown>): unknown {
    this.requests.push({ operation, body, at: Date.now() });
    this.options.log(`${operation} ${JSON.stringify(body).slice(0, 200)}`);
    if (this.throttleLeft > 0 && (this.throttleOps?.includes(operation) ?? true)) {
      this.throttleLeft -= 1;
      throw new ApiError('ThrottlingException', 'Rate exceeded');
    }
    return this.dispatch(operation, body);
  }

  private faultsOf(instanceId: string): SsmEndpointFaults {
    return { ...this.globalFaults, ...(this.instances.get(instanceId)?.faults ?? {}) };
  }

  private dispatch(operation: string, body: Record<string, unknown>): unknown {
    switch (operation) {
      case 'SendCommand':
        return this.sendCommand(body);
      case 'GetCommandInvocation':
        return this.getCommandInvocation(body);
      case 'ListCommandInvocations':
        return this.listCommandInvocations(body);
      case 'CancelCommand':
        return this.cancelCommand(body);
      case 'DescribeInstanceInformation':
        return this.describeInstanceInformation(body);
      default:
        throw new ApiError(
          'UnknownOperationException',
          `the local SSM endpoint does not implement ${operation}`,
        );
    }
  }

  private sendCommand(body: Record<string, unknown>): unknown {
    const documentName = body.DocumentName;
    if (typeof documentName !== 'string') {
      throw new ApiError(
        'ValidationException',
        "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null",
      );
    }
    if (documentName !== 'AWS-RunShellScript') {
      throw new ApiError('InvalidDocument', `Document with name ${documentName} does not exist.`);
    }
    const ids = Array.isArray(body.InstanceIds) ? (body.InstanceIds as unknown[]) : [];
    if (ids.length === 0) {
      throw new ApiError('InvalidParameters', 'InstanceIds or Targets must be specified.');
    }
    if (ids.length > 50) {
      throw new ApiError(
        'ValidationException',
        `1 validation error detected: Value '[${ids.join(', ')}]' at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50`,
      );
    }
    for (const id of ids) {
      if (typeof id !== 'string' || !INSTANCE_ID.test(id)) {
        throw new ApiError(
          'ValidationException',
          `1 validation error detected: Value '${String(id)}' at 'instanceIds' failed to satisfy constraint: Member must satisfy regular expression pattern: (^i-(\\w{8}|\\w{17})$)|(^mi-\\w{17}$)`,
        );
      }
    }
    const unknown = (ids as string[]).filter((id) => !this.instances.has(id));
    if (unknown.length > 0 || new Set(ids).size !== ids.length) {
      throw new ApiError(
        unknown.length > 0 ? 'InvalidInstanceId' : 'DuplicateInstanceId',
        unknown.length > 0
          ? `Instances [[${unknown.join(', ')}]] not in a valid state for account 000000000000`
          : 'Duplicate instance ids.',
      );
    }
    const parameters = (body.Parameters ?? {}) as Record<string, unknown>;
    const commands = parameters.commands;
    if (
      !Array.isArray(commands) ||
      commands.length === 0 ||
      commands.some((line) => typeof line !== 'string')
    ) {
      throw new ApiError('InvalidParameters', 'Parameter "commands" is required.');
    }
    for (const [key, value] of Object.entries(parameters)) {
      if (!['commands', 'executionTimeout', 'workingDirectory'].includes(key)) {
        throw new ApiError(
          'InvalidParameters',
          `Document AWS-RunShellScript does not support parameter ${key}.`,
        );
      }
      if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
        throw new ApiError('InvalidParameters', `Parameter ${key} must be a list of strings.`);
      }
    }
    const parametersBytes = Buffer.byteLength(JSON.stringify(parameters), 'utf8');
    if (
      this.options.maxParametersBytes !== undefined &&
      parametersBytes > this.options.maxParametersBytes
    ) {
      throw new ApiError(
        'InvalidParameters',
        `Parameters exceed the maximum allowed size (${parametersBytes} > ${this.options.maxParametersBytes} bytes).`,
      );
    }
    const executionTimeout = (parameters.executionTimeout as string[] | undefined)?.[0] ?? '3600';
    if (!EXECUTION_TIMEOUT.test(executionTimeout)) {
      throw new ApiError(
        'InvalidParameters',
        `Parameter "executionTimeout" "${executionTimeout}" does not match the allowed pattern.`,
      );
    }
    const timeoutSeconds = body.TimeoutSeconds === undefined ? 3600 : Number(body.TimeoutSeconds);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 30 || timeoutSeconds > 2_592_000) {
      throw new ApiError(
        'ValidationException',
        `1 validation error detected: Value '${String(body.TimeoutSeconds)}' at 'timeoutSeconds' failed to satisfy constraint: Member must have value between 30 and 2592000`,
      );
    }
    const comment = typeof body.Comment === 'string' ? body.Comment : '';
    if (comment.length > 100) {
      throw new ApiError(
        'ValidationException',
        "1 validation error detected: Value at 'comment' failed to satisfy constraint: Member must have length less than or equal to 100",
      );
    }
    const now = Date.now();
    const command: CommandState = {
      commandId: randomUUID(),
      documentName,
      comment,
      parameters: parameters as Record<string, string[]>,
      instanceIds: ids as string[],
      requestedAt: now,
      timeoutSeconds,
      executionTimeoutS: Number(executionTimeout),
      bucket: typeof body.OutputS3BucketName === 'string' ? body.OutputS3BucketName : '',
      prefix: typeof body.OutputS3KeyPrefix === 'string' ? body.OutputS3KeyPrefix : '',
    };
    this.commands.set(command.commandId, command);
    for (const instanceId of command.instanceIds) this.startInvocation(command, instanceId);
    return { Command: this.commandView(command) };
  }

  private commandView(command: CommandState): Record<string, unknown> {
    const invocations = command.instanceIds
      .map((id) => this.invocations.get(`${command.commandId}/${id}`))
      .filter((item): item is InvocationState => item !== undefined);
    const terminal = invocations.filter((item) => isTerminal(item.status));
    return {
      CommandId: command.commandId,
      DocumentName: command.documentName,
      DocumentVersion: '$DEFAULT',
      Comment: command.comment,
      ExpiresAfter: epoch(
        command.requestedAt + (command.timeoutSeconds + command.executionTimeoutS) * 1000,
      ),
      Parameters: command.parameters,
      InstanceIds: command.instanceIds,
      Targets: [],
      RequestedDateTime: epoch(command.requestedAt),
      Status: 'Pending',
      StatusDetails: 'Pending',
      OutputS3Region: 'us-east-1',
      OutputS3BucketName: command.bucket,
      OutputS3KeyPrefix: command.prefix,
      MaxConcurrency: '50',
      MaxErrors: '0',
      TargetCount: command.instanceIds.length,
      CompletedCount: terminal.length,
      ErrorCount: terminal.filter((item) => item.status === 'Failed').length,
      DeliveryTimedOutCount: terminal.filter((item) => item.statusDetails === 'DeliveryTimedOut')
        .length,
      ServiceRole: '',
      NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
      TimeoutSeconds: command.timeoutSeconds,
    };
  }

  private invocationKey(commandId: string, instanceId: string): string {
    return `${commandId}/${instanceId}`;
  }

  private startInvocation(command: CommandState, instanceId: string): void {
    const faults = this.faultsOf(instanceId);
    const invocation: InvocationState = {
      command,
      instanceId,
      status: 'Pending',
      statusDetails: 'Pending',
      responseCode: -1,
      stdout: [],
      stdoutBytes: 0,
      stderr: [],
      stderrBytes: 0,
      timers: [],
      reboots: 0,
      visibleAt: Date.now() + (faults.invocationDoesNotExistMs ?? 0),
    };
    this.invocations.set(this.invocationKey(command.commandId, instanceId), invocation);
    this.options.runner.start(invocation, faults);
  }

  private findInvocation(commandId: unknown, instanceId: unknown): InvocationState {
    const invocation =
      typeof commandId === 'string' && typeof instanceId === 'string'
        ? this.invocations.get(this.invocationKey(commandId, instanceId))
        : undefined;
    if (invocation === undefined || Date.now() < invocation.visibleAt) {
      throw new ApiError('InvocationDoesNotExist', '');
    }
    return invocation;
  }

  private texts(invocation: InvocationState): { stdout: string; stderr: string } {
    if (!isTerminal(invocation.status)) return { stdout: '', stderr: '' };
    return {
      stdout: Buffer.concat(invocation.stdout).toString('utf8'),
      stderr: Buffer.concat(invocation.stderr).toString('utf8'),
    };
  }

  private getCommandInvocation(body: Record<string, unknown>): unknown {
    const invocation = this.findInvocation(body.CommandId, body.InstanceId);
    if (body.PluginName !== undefined && body.PluginName !== PLUGIN_NAME) {
      throw new ApiError('InvalidPluginName', `Plugin ${String(body.PluginName)} does not exist.`);
    }
    const limits = this.options.outputLimits ?? { stdout: 24_000, stderr: 8000 };
    const { stdout, stderr } = this.texts(invocation);
    return {
      CommandId: invocation.command.commandId,
      InstanceId: invocation.instanceId,
      Comment: invocation.command.comment,
      DocumentName: invocation.command.documentName,
      DocumentVersion: '$DEFAULT',
      PluginName: PLUGIN_NAME,
      ResponseCode: invocation.responseCode,
      ExecutionStartDateTime: iso(invocation.startedAt),
      ExecutionElapsedTime: duration(invocation.startedAt, invocation.endedAt),
      ExecutionEndDateTime: iso(invocation.endedAt),
      Status: invocation.status,
      StatusDetails: invocation.statusDetails,
      StandardOutputContent: truncateChars(stdout, limits.stdout, '\n---Output truncated---'),
      StandardOutputUrl: this.options.s3.url(invocation, 'stdout'),
      StandardErrorContent: truncateChars(stderr, limits.stderr, '\n---Error truncated----'),
      StandardErrorUrl: this.options.s3.url(invocation, 'stderr'),
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
    };
  }

  private listCommandInvocations(body: Record<string, unknown>): unknown {
    const maxResults = body.MaxResults === undefined ? 50 : Number(body.MaxResults);
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 50) {
      throw new ApiError(
        'ValidationException',
        "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 50",
      );
    }
    if (typeof body.CommandId === 'string' && !this.commands.has(body.CommandId)) {
      throw new ApiError('InvalidCommandId', '');
    }
    const all = [...this.invocations.values()].filter(
      (item) =>
        (body.CommandId === undefined || item.command.commandId === body.CommandId) &&
        (body.InstanceId === undefined || item.instanceId === body.InstanceId) &&
        Date.now() >= item.visibleAt,
    );
    const start = typeof body.NextToken === 'string' ? Number(body.NextToken) : 0;
    if (!Number.isInteger(start) || start < 0) throw new ApiError('InvalidNextToken', '');
    const page = all.slice(start, start + maxResults);
    const next = start + maxResults < all.length ? String(start + maxResults) : undefined;
    return {
      CommandInvocations: page.map((invocation) => {
        const { stdout, stderr } = this.texts(invocation);
        const view: Record<string, unknown> = {
          CommandId: invocation.command.commandId,
          InstanceId: invocation.instanceId,
          InstanceName: this.instances.get(invocation.instanceId)?.name ?? '',
          Comment: invocation.command.comment,
          DocumentName: invocation.command.documentName,
          DocumentVersion: '$DEFAULT',
          RequestedDateTime: epoch(invocation.command.requestedAt),
          Status: invocation.status,
          StatusDetails: invocation.statusDetails,
          TraceOutput: '',
          StandardOutputUrl: this.options.s3.url(invocation, 'stdout'),
          StandardErrorUrl: this.options.s3.url(invocation, 'stderr'),
          CommandPlugins: [],
          ServiceRole: '',
          NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
          CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
        };
        if (body.Details === true) {
          view.CommandPlugins = [
            {
              Name: PLUGIN_NAME,
              Status: invocation.status === 'Delayed' ? 'Pending' : invocation.status,
              StatusDetails: invocation.statusDetails,
              ResponseCode: invocation.responseCode,
              ...(invocation.startedAt !== undefined
                ? { ResponseStartDateTime: epoch(invocation.startedAt) }
                : {}),
              ...(invocation.endedAt !== undefined
                ? { ResponseFinishDateTime: epoch(invocation.endedAt) }
                : {}),
              Output: combinedOutput(stdout, stderr, 2500),
              StandardOutputUrl: this.options.s3.url(invocation, 'stdout'),
              StandardErrorUrl: this.options.s3.url(invocation, 'stderr'),
              OutputS3Region: 'us-east-1',
              OutputS3BucketName: invocation.command.bucket,
              OutputS3KeyPrefix: invocation.command.prefix,
            },
          ];
        }
        return view;
      }),
      ...(next !== undefined ? { NextToken: next } : {}),
    };
  }

  private cancelCommand(body: Record<string, unknown>): unknown {
    const command =
      typeof body.CommandId === 'string' ? this.commands.get(body.CommandId) : undefined;
    if (command === undefined) throw new ApiError('InvalidCommandId', '');
    const ids = Array.isArray(body.InstanceIds)
      ? (body.InstanceIds as string[])
      : command.instanceIds;
    for (const instanceId of ids) {
      const invocation = this.invocations.get(this.invocationKey(command.commandId, instanceId));
      if (invocation === undefined) throw new ApiError('InvalidInstanceId', `${instanceId}`);
      this.options.runner.cancel(invocation);
    }
    return {};
  }

  private describeInstanceInformation(body: Record<string, unknown>): unknown {
    let selected = [...this.instances.values()];
    const filterList = Array.isArray(body.InstanceInformationFilterList)
      ? (body.InstanceInformationFilterList as { key?: unknown; valueSet?: unknown }[])
      : [];
    for (const filter of filterList) {
      const values = Array.isArray(filter.valueSet) ? (filter.valueSet as string[]) : [];
      if (filter.key === 'InstanceIds') {
        const unknown = values.filter((id) => !this.instances.has(id));
        if (unknown.length > 0) throw new ApiError('InvalidInstanceId', `${unknown.join(', ')}`);
        selected = selected.filter((item) => values.includes(item.instanceId));
      } else if (filter.key === 'PingStatus') {
        selected = selected.filter((item) => values.includes(item.pingStatus));
      } else {
        throw new ApiError('InvalidInstanceInformationFilterValue', String(filter.key));
      }
    }
    const filters = Array.isArray(body.Filters)
      ? (body.Filters as { Key?: unknown; Values?: unknown }[])
      : [];
    for (const filter of filters) {
      const values = Array.isArray(filter.Values) ? (filter.Values as string[]) : [];
      if (filter.Key === 'InstanceIds') {
        selected = selected.filter((item) => values.includes(item.instanceId));
      } else if (filter.Key === 'PingStatus') {
        selected = selected.filter((item) => values.includes(item.pingStatus));
      } else if (filter.Key === 'ResourceType') {
        selected = selected.filter((item) =>
          values.includes(item.instanceId.startsWith('mi-') ? 'ManagedInstance' : 'EC2Instance'),
        );
      } else {
        throw new ApiError('InvalidFilterKey', String(filter.Key));
      }
    }
    const maxResults = body.MaxResults === undefined ? 50 : Number(body.MaxResults);
    const start = typeof body.NextToken === 'string' ? Number(body.NextToken) : 0;
    if (!Number.isInteger(start) || start < 0) throw new ApiError('InvalidNextToken', '');
    const page = selected.slice(start, start + maxResults);
    const next = start + maxResults < selected.length ? String(start + maxResults) : undefined;
    return {
      InstanceInformationList: page.map((item) => ({
        InstanceId: item.instanceId,
        PingStatus: item.pingStatus,
        LastPingDateTime: epoch(Date.now()),
        AgentVersion: '3.3.0.0',
        IsLatestVersion: true,
        PlatformType: 'Linux',
        PlatformName: 'RUNE local SSM endpoint',
        PlatformVersion: process.version,
        ResourceType: item.instanceId.startsWith('mi-') ? 'ManagedInstance' : 'EC2Instance',
        Name: item.name,
        IPAddress: '127.0.0.1',
        ComputerName: `${item.name} (${hostname()})`,
        RegistrationDate: epoch(item.registeredAt),
      })),
      ...(next !== undefined ? { NextToken: next } : {}),
    };
  }
}
