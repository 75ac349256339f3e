/**
 * A local AWS SSM endpoint that *really runs* Run Command commands, for tests and try-outs.
 *
 * It speaks the AWS JSON 1.1 protocol the real `@aws-sdk/client-ssm` uses (`POST /`,
 * `content-type: application/x-amz-json-1.1`, `x-amz-target: AmazonSSM.<Operation>`, the API's
 * member names, errors as HTTP 400 `{"__type", "message"}`, timestamps in epoch seconds) for
 * SendCommand, GetCommandInvocation, ListCommandInvocations, CancelCommand and
 * DescribeInstanceInformation. It runs commands as the user it runs as, so it only answers
 * requests signed (SigV4, verified by re-signing with `@smithy/signature-v4`) with the access key
 * pair it generates at start — or the one given in `credentials` — and listens on loopback only.
 * Unsigned requests get `MissingAuthenticationTokenException`, another access key
 * `UnrecognizedClientException`, a wrong signature `InvalidSignatureException` (HTTP 403 each).
 * Request bodies are bounded (`maxBodyBytes`, default 1 MiB, far above SSM's own limits): a
 * larger one is answered 413 and the connection closed without reading the rest.
 *
 * Each registered instance id is a private working directory on *this* machine. SendCommand
 * behaves like the agent running `AWS-RunShellScript`: `commands` are joined with newlines into
 * `_script.sh`, run by `sh` with stdin at /dev/null in a process group of its own, with the
 * Pending -> InProgress -> Success/Failed/TimedOut/Cancelled progression, `executionTimeout`
 * enforced by SIGKILL of the group, exit code 194 (the "instance" reboots and the script runs
 * again) and 137 (read as a timeout), and GetCommandInvocation's output limits (24,000 / 8,000
 * characters, with the agent's truncation markers). When a command names an
 * `OutputS3BucketName`, the full output is kept in memory and served by a minimal path-style S3
 * `GetObject` on the same port (point an `S3Client` at it with `forcePathStyle: true`).
 *
 * Faults can be injected per instance or globally: throttling, delivery timeout, undeliverable,
 * offline agent (PingStatus ConnectionLost), slow start, and a window of
 * `InvocationDoesNotExist` after SendCommand.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkAccessKey,
  type SigV4Credentials,
  type SigV4Refusal,
  verifySigV4,
} from './sigv4-verifier.js';

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

/** One managed node of the endpoint. */
export interface SsmEndpointInstanceOptions {
  /** `i-...` or `mi-...`. */
  instanceId: string;
  /** ComputerName / Name reported by DescribeInstanceInformation. */
  name?: string;
  pingStatus?: SsmPingStatus;
  faults?: SsmEndpointFaults;
}

/** Options of {@link startSsmEndpoint}. */
export interface SsmEndpointOptions {
  /** Loopback address to listen on (default 127.0.0.1); anything else is refused. */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Registered instances: ids, or full options. */
  instances?: ReadonlyArray<string | SsmEndpointInstanceOptions>;
  /** Faults for every instance (an instance's own faults take precedence). */
  faults?: SsmEndpointFaults;
  /** How long a delivered command stays Pending before it starts (default 30 ms). */
  pendingMs?: number;
  /** How long a delivery-timeout fault takes to end in DeliveryTimedOut (default: the command's TimeoutSeconds). */
  deliveryTimeoutMs?: number;
  /** How long an instance "reboots" after a script exits 194 (default 300 ms). */
  rebootMs?: number;
  /** Reboots per invocation before the agent gives up (default 3). */
  maxReboots?: number;
  /** Characters of stdout / stderr GetCommandInvocation returns (default 24,000 / 8,000). */
  outputLimits?: { stdout: number; stderr: number };
  /** Reject SendCommand whose Parameters exceed this many bytes (default: no limit, see docs). */
  maxParametersBytes?: number;
  /** Directory for the instances' working directories (default: a fresh temp dir, removed on close). */
  workRoot?: string;
  /** Log lines (requests, state changes). */
  log?: (line: string) => void;
  /**
   * The only access key pair whose signatures are accepted. Default: a fresh random pair per
   * start (see {@link SsmEndpoint.credentials}), so no other local user can guess it.
   */
  credentials?: SigV4Credentials;
  /** Largest request body read, in bytes (default {@link DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES}). */
  maxBodyBytes?: number;
}

/** Default bound of a request body: SSM's own limits (a 64 KB document) are far below it. */
export const DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES = 1024 * 1024;

/** A fresh random access key pair, shaped like AWS's (20-character id, 40-character secret). */
export function createEndpointCredentials(): SigV4Credentials {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = Array.from(randomBytes(16), (byte) => alphabet[byte % 32]).join('');
  return {
    accessKeyId: `RUNE${id}`,
    secretAccessKey: randomBytes(30).toString('base64').replaceAll('+', 'a').replaceAll('/', 'b'),
  };
}

/** One API call the endpoint received (for assertions). */
export interface SsmEndpointRequest {
  operation: string;
  body: Record<string, unknown>;
  at: number;
}

/** A running endpoint. */
export interface SsmEndpoint {
  /** `http://127.0.0.1:<port>`: give it to the SSM client as `endpoint`. */
  readonly url: string;
  readonly port: number;
  /** The access key pair requests must be signed with (a copy; give it to the SSM and S3 clients). */
  readonly credentials: SigV4Credentials;
  /** Every API call received, oldest first. */
  readonly requests: readonly SsmEndpointRequest[];
  /** Registers (or replaces) an instance. */
  addInstance(instance: string | SsmEndpointInstanceOptions): void;
  setPingStatus(instanceId: string, status: SsmPingStatus): void;
  /** Sets faults for one instance, or for all with `'*'`. */
  setFaults(instanceId: string | '*', faults: SsmEndpointFaults): void;
  /** The next `count` API calls (of `operations`, default all) answer ThrottlingException. */
  throttle(count: number, operations?: readonly string[]): void;
  /** How many times an instance "rebooted" because a script exited 194. */
  rebootCount(instanceId: string): number;
  /** Process group ids of commands still running. */
  runningProcessGroups(): number[];
  /** The working directory of an instance. */
  instanceDir(instanceId: string): string;
  /** Kills every running command, closes the server and removes the temp dirs. */
  close(): Promise<void>;
}

const INSTANCE_ID = /^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$/;
const EXECUTION_TIMEOUT =
  /^([1-9][0-9]{0,4}|1[0-6][0-9]{4}|17[0-1][0-9]{3}|172[0-7][0-9]{2}|172800)$/;
const OUTPUT_CAPTURE_LIMIT = 64 * 1024 * 1024;
const PLUGIN_NAME = 'aws:runShellScript';

type Status =
  | 'Pending'
  | 'InProgress'
  | 'Delayed'
  | 'Success'
  | 'Cancelled'
  | 'Cancelling'
  | 'TimedOut'
  | 'Failed';

interface InstanceState {
  instanceId: string;
  name: string;
  pingStatus: SsmPingStatus;
  faults: SsmEndpointFaults;
  dir: string;
  reboots: number;
  registeredAt: number;
}

interface CommandState {
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

interface InvocationState {
  command: CommandState;
  instanceId: string;
  status: Status;
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

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Thrown while reading a body that exceeds the bound. */
class BodyTooLargeError extends Error {}

/** S3's XML error names for the SigV4 refusals, for the S3 stand-in. */
const S3_REFUSALS: Record<SigV4Refusal['type'], string> = {
  MissingAuthenticationTokenException: 'AccessDenied',
  UnrecognizedClientException: 'InvalidAccessKeyId',
  InvalidSignatureException: 'SignatureDoesNotMatch',
};

const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

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

class LocalSsmEndpoint implements SsmEndpoint {
  url = '';
  port = 0;
  private readonly secret: SigV4Credentials;
  readonly requests: SsmEndpointRequest[] = [];
  private readonly server: Server;
  private readonly instances = new Map<string, InstanceState>();
  private readonly commands = new Map<string, CommandState>();
  private readonly invocations = new Map<string, InvocationState>();
  private readonly objects = new Map<string, Buffer>();
  private globalFaults: SsmEndpointFaults;
  private throttleLeft = 0;
  private throttleOps: readonly string[] | undefined;
  private readonly workRoot: string;
  private readonly ownsWorkRoot: boolean;
  private closed = false;
  private readonly maxBodyBytes: number;

  constructor(private readonly options: SsmEndpointOptions) {
    this.globalFaults = { ...(options.faults ?? {}) };
    this.secret = { ...(options.credentials ?? createEndpointCredentials()) };
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES;
    this.ownsWorkRoot = options.workRoot === undefined;
    this.workRoot = options.workRoot ?? mkdtempSync(join(tmpdir(), 'rune-ssm-endpoint-'));
    for (const instance of options.instances ?? []) this.addInstance(instance);
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        this.sendError(response, new ApiError('InternalServerError', String(error), 500));
      });
    });
  }

  async listen(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.port = address.port;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${shown}:${address.port}`;
  }

  get credentials(): SigV4Credentials {
    // A fresh copy each time: the SDK annotates the credentials object it is given.
    return { ...this.secret };
  }

  addInstance(instance: string | SsmEndpointInstanceOptions): void {
    const spec = typeof instance === 'string' ? { instanceId: instance } : instance;
    if (!INSTANCE_ID.test(spec.instanceId)) {
      throw new TypeError(`not an instance id: ${spec.instanceId}`);
    }
    const dir = join(this.workRoot, spec.instanceId);
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

  rebootCount(instanceId: string): number {
    return this.instance(instanceId).reboots;
  }

  runningProcessGroups(): number[] {
    const groups: number[] = [];
    for (const invocation of this.invocations.values()) {
      const pid = invocation.child?.pid;
      const child = invocation.child;
      if (pid !== undefined && child?.exitCode === null && child.signalCode === null) {
        groups.push(pid);
      }
    }
    return groups;
  }

  instanceDir(instanceId: string): string {
    return this.instance(instanceId).dir;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exits: Promise<void>[] = [];
    for (const invocation of this.invocations.values()) {
      for (const timer of invocation.timers) clearTimeout(timer);
      const child = invocation.child;
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
        killGroup(child.pid);
      }
    }
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 2000))]);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.ownsWorkRoot) rmSync(this.workRoot, { recursive: true, force: true });
  }

  private instance(instanceId: string): InstanceState {
    const found = this.instances.get(instanceId);
    if (found === undefined) throw new TypeError(`unknown instance ${instanceId}`);
    return found;
  }

  private faultsOf(instanceId: string): SsmEndpointFaults {
    return { ...this.globalFaults, ...(this.instances.get(instanceId)?.faults ?? {}) };
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const remote = request.socket.remoteAddress ?? '';
    if (!isLoopback(remote.replace(/^::ffff:/, ''))) {
      response.writeHead(403).end();
      return;
    }
    const s3 = request.method === 'GET' || request.method === 'HEAD';
    // Kept now: a request stream destroyed by an aborted read lets go of its socket.
    const socket = request.socket;
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > this.maxBodyBytes) {
      this.refuseBody(socket, response);
      return;
    }
    // A stranger is refused before anything of its body is read.
    const stranger = checkAccessKey(request.headers, this.secret);
    if (stranger !== undefined) {
      this.refuse(request, response, stranger, s3);
      return;
    }
    let raw: Buffer;
    try {
      raw = await this.readBody(request);
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
      this.refuseBody(socket, response);
      return;
    }
    const refusal = await verifySigV4(
      {
        method: request.method ?? '',
        url: request.url ?? '/',
        headers: request.headers,
        body: raw,
      },
      this.secret,
    );
    if (refusal !== undefined) {
      this.refuse(request, response, refusal, s3);
      return;
    }
    if (s3) {
      this.handleS3(request, response);
      return;
    }
    const target = String(request.headers['x-amz-target'] ?? '');
    if (request.method !== 'POST' || !target.startsWith('AmazonSSM.')) {
      this.sendError(
        response,
        new ApiError('UnknownOperationException', `unknown target ${target}`),
      );
      return;
    }
    const operation = target.slice('AmazonSSM.'.length);
    let body: Record<string, unknown>;
    try {
      body =
        raw.byteLength === 0 ? {} : (JSON.parse(raw.toString('utf8')) as Record<string, unknown>);
    } catch {
      this.sendError(response, new ApiError('SerializationException', 'body is not JSON'));
      return;
    }
    this.requests.push({ operation, body, at: Date.now() });
    this.log(`${operation} ${JSON.stringify(body).slice(0, 200)}`);
    if (this.throttleLeft > 0 && (this.throttleOps?.includes(operation) ?? true)) {
      this.throttleLeft -= 1;
      this.sendError(response, new ApiError('ThrottlingException', 'Rate exceeded'));
      return;
    }
    try {
      const result = this.dispatch(operation, body);
      const payload = Buffer.from(JSON.stringify(result), 'utf8');
      response.writeHead(200, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': payload.byteLength,
        'x-amzn-requestid': randomUUID(),
      });
      response.end(payload);
    } catch (error) {
      this.sendError(
        response,
        error instanceof ApiError ? error : new ApiError('InternalServerError', String(error), 500),
      );
    }
  }

  /** Reads the body, failing as soon as it grows beyond the bound (chunked bodies included). */
  private async readBody(request: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).byteLength;
      if (size > this.maxBodyBytes) throw new BodyTooLargeError();
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /** 413 and the connection closed: the rest of the body is never read. */
  private refuseBody(socket: Socket, response: ServerResponse): void {
    this.log(`refused a body over ${this.maxBodyBytes} bytes`);
    const payload = Buffer.from(
      JSON.stringify({
        __type: 'RequestEntityTooLargeException',
        message: `The request body exceeds ${this.maxBodyBytes} bytes.`,
      }),
      'utf8',
    );
    response.shouldKeepAlive = false;
    response.writeHead(413, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': payload.byteLength,
      connection: 'close',
    });
    response.end(payload, () => socket.destroy());
  }

  /** 403 with the AWS error the SDK expects (JSON for SSM, XML for the S3 stand-in). */
  private refuse(
    request: IncomingMessage,
    response: ServerResponse,
    refusal: SigV4Refusal,
    s3: boolean,
  ): void {
    this.log(`refused ${request.method} ${request.url}: ${refusal.type}`);
    if (s3) {
      const requestId = randomUUID();
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${S3_REFUSALS[refusal.type]}</Code><Message>${refusal.message.replace(/[<>&]/g, '')}</Message><RequestId>${requestId}</RequestId></Error>`;
      response.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': requestId });
      response.end(request.method === 'HEAD' ? undefined : xml);
      return;
    }
    this.sendError(response, new ApiError(refusal.type, refusal.message, 403));
  }

  private sendError(response: ServerResponse, error: ApiError): void {
    const payload = Buffer.from(
      JSON.stringify({ __type: error.type, message: error.message }),
      'utf8',
    );
    response.writeHead(error.status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': payload.byteLength,
      'x-amzn-requestid': randomUUID(),
    });
    response.end(payload);
  }

  private handleS3(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname.replace(/^\/+/, ''));
    const object = this.objects.get(path);
    const requestId = randomUUID();
    if (object === undefined) {
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${path.replace(/[<>&]/g, '')}</Key><RequestId>${requestId}</RequestId></Error>`;
      response.writeHead(404, {
        'content-type': 'application/xml',
        'x-amz-request-id': requestId,
      });
      response.end(request.method === 'HEAD' ? undefined : xml);
      return;
    }
    response.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': object.byteLength,
      'last-modified': new Date().toUTCString(),
      etag: `"${randomUUID().replaceAll('-', '')}"`,
      'x-amz-request-id': requestId,
    });
    response.end(request.method === 'HEAD' ? undefined : object);
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

  // ---------------------------------------------------------------- operations

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
    const now = Date.now();
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
      visibleAt: now + (faults.invocationDoesNotExistMs ?? 0),
    };
    this.invocations.set(this.invocationKey(command.commandId, instanceId), invocation);
    const pendingMs = this.options.pendingMs ?? 30;
    const instance = this.instance(instanceId);
    const deliveryLimitMs = this.options.deliveryTimeoutMs ?? command.timeoutSeconds * 1000;
    if (faults.undeliverable) {
      this.later(invocation, pendingMs, () =>
        this.finish(invocation, 'Failed', 'Undeliverable', -1),
      );
      return;
    }
    if (faults.deliveryTimeout || instance.pingStatus !== 'Online') {
      this.later(invocation, Math.min(deliveryLimitMs / 2, 1000), () => {
        if (invocation.status === 'Pending') {
          invocation.status = 'Delayed';
          invocation.statusDetails = 'Delayed';
        }
      });
      this.later(invocation, deliveryLimitMs, () =>
        this.finish(invocation, 'TimedOut', 'DeliveryTimedOut', -1),
      );
      return;
    }
    this.later(invocation, pendingMs + (faults.slowStartMs ?? 0), () => this.run(invocation));
  }

  private later(invocation: InvocationState, ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      if (!isTerminal(invocation.status) && !this.closed) action();
    }, ms);
    invocation.timers.push(timer);
  }

  private run(invocation: InvocationState): void {
    const instance = this.instance(invocation.instanceId);
    const { command } = invocation;
    const dir = join(
      instance.dir,
      'document',
      'orchestration',
      command.commandId,
      'awsrunShellScript',
      '0.awsrunshellscript',
    );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const scriptPath = join(dir, '_script.sh');
    writeFileSync(scriptPath, `${(command.parameters.commands ?? []).join('\n')}\n`, {
      mode: 0o700,
    });
    const workingDirectory = command.parameters.workingDirectory?.[0];
    invocation.status = 'InProgress';
    invocation.statusDetails = 'InProgress';
    invocation.startedAt ??= Date.now();
    invocation.stdout = [];
    invocation.stdoutBytes = 0;
    invocation.stderr = [];
    invocation.stderrBytes = 0;
    const child = spawn('sh', [scriptPath], {
      cwd: workingDirectory ? workingDirectory : dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: process.env.HOME ?? '/root' },
    });
    invocation.child = child;
    this.log(`run ${command.commandId} on ${invocation.instanceId} pid ${child.pid}`);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (invocation.stdoutBytes < OUTPUT_CAPTURE_LIMIT) invocation.stdout.push(chunk);
      invocation.stdoutBytes += chunk.byteLength;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (invocation.stderrBytes < OUTPUT_CAPTURE_LIMIT) invocation.stderr.push(chunk);
      invocation.stderrBytes += chunk.byteLength;
    });
    const executionTimer = setTimeout(() => {
      invocation.ending = 'timeout';
      if (child.pid !== undefined) killGroup(child.pid);
    }, command.executionTimeoutS * 1000);
    invocation.timers.push(executionTimer);
    let settled = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(executionTimer);
      // Whatever the script left behind in its group dies with it, as under the agent.
      if (child.pid !== undefined) killGroup(child.pid);
      this.exited(invocation, code, signal);
    };
    child.on('error', () => settle(127, null));
    child.on('exit', (code, signal) => {
      // Give the pipes a moment to drain; a background child holding them open must not stall us.
      const drain = setTimeout(() => settle(code, signal), 200);
      child.once('close', () => {
        clearTimeout(drain);
        settle(code, signal);
      });
    });
  }

  private exited(
    invocation: InvocationState,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (isTerminal(invocation.status)) return;
    const status = code ?? 128 + signalNumber(signal);
    if (invocation.ending === 'cancel') {
      this.finish(invocation, 'Cancelled', 'Cancelled', -1);
    } else if (invocation.ending === 'timeout') {
      this.finish(invocation, 'TimedOut', 'ExecutionTimedOut', 137);
    } else if (status === 194) {
      this.reboot(invocation);
    } else if (status === 137) {
      // The agent reads 137 as "stopped preemptively": a timeout, whatever really happened.
      this.finish(invocation, 'TimedOut', 'ExecutionTimedOut', 137);
    } else if (status === 0) {
      this.finish(invocation, 'Success', 'Success', 0);
    } else {
      this.finish(invocation, 'Failed', 'Failed', status);
    }
  }

  /** Exit 194: the agent reboots the instance, then runs the document again. */
  private reboot(invocation: InvocationState): void {
    const instance = this.instance(invocation.instanceId);
    instance.reboots += 1;
    invocation.reboots += 1;
    this.log(`reboot ${invocation.instanceId} (exit 194 of ${invocation.command.commandId})`);
    if (invocation.reboots > (this.options.maxReboots ?? 3)) {
      this.finish(invocation, 'Failed', 'Failed', 194);
      return;
    }
    instance.pingStatus = 'ConnectionLost';
    const timer = setTimeout(() => {
      instance.pingStatus = 'Online';
      if (!isTerminal(invocation.status) && !this.closed) this.run(invocation);
    }, this.options.rebootMs ?? 300);
    invocation.timers.push(timer);
  }

  private finish(
    invocation: InvocationState,
    status: Status,
    statusDetails: string,
    responseCode: number,
  ): void {
    for (const timer of invocation.timers) clearTimeout(timer);
    invocation.timers = [];
    invocation.status = status;
    invocation.statusDetails = statusDetails;
    invocation.responseCode = responseCode;
    invocation.endedAt = Date.now();
    this.log(
      `end ${invocation.command.commandId} on ${invocation.instanceId}: ${status}/${statusDetails} (${responseCode})`,
    );
    const { command } = invocation;
    if (command.bucket !== '') {
      const stdout = Buffer.concat(invocation.stdout);
      const stderr = Buffer.concat(invocation.stderr);
      if (stdout.byteLength > 0)
        this.objects.set(`${command.bucket}/${this.s3Key(invocation, 'stdout')}`, stdout);
      if (stderr.byteLength > 0)
        this.objects.set(`${command.bucket}/${this.s3Key(invocation, 'stderr')}`, stderr);
    }
  }

  private s3Key(invocation: InvocationState, stream: 'stdout' | 'stderr'): string {
    const prefix = invocation.command.prefix.replace(/^\/+|\/+$/g, '');
    const key = `${invocation.command.commandId}/${invocation.instanceId}/awsrunShellScript/0.awsrunshellscript/${stream}`;
    return prefix === '' ? key : `${prefix}/${key}`;
  }

  private outputUrl(invocation: InvocationState, stream: 'stdout' | 'stderr'): string {
    if (invocation.command.bucket === '') return '';
    return `${this.url}/${invocation.command.bucket}/${this.s3Key(invocation, stream)}`;
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
      StandardOutputUrl: this.outputUrl(invocation, 'stdout'),
      StandardErrorContent: truncateChars(stderr, limits.stderr, '\n---Error truncated----'),
      StandardErrorUrl: this.outputUrl(invocation, 'stderr'),
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
          StandardOutputUrl: this.outputUrl(invocation, 'stdout'),
          StandardErrorUrl: this.outputUrl(invocation, 'stderr'),
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
              StandardOutputUrl: this.outputUrl(invocation, 'stdout'),
              StandardErrorUrl: this.outputUrl(invocation, 'stderr'),
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
      if (isTerminal(invocation.status)) continue;
      const child = invocation.child;
      if (
        invocation.status === 'InProgress' &&
        child?.pid !== undefined &&
        child.exitCode === null
      ) {
        invocation.ending = 'cancel';
        invocation.status = 'Cancelling';
        invocation.statusDetails = 'Cancelling';
        killGroup(child.pid);
      } else {
        this.finish(invocation, 'Cancelled', 'Cancelled', -1);
      }
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

function isTerminal(status: Status): boolean {
  return !['Pending', 'InProgress', 'Delayed', 'Cancelling'].includes(status);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 };
  return signal === null ? 0 : (numbers[signal] ?? 9);
}

/**
 * Starts a local SSM endpoint on loopback. Point the real SSM client at `endpoint.url` with any
 * region and the endpoint's own `credentials` (generated per start unless given):
 *
 * @example
 * ```ts
 * const endpoint = await startSsmEndpoint({ instances: ['i-0123456789abcdef0'] });
 * const client = new SSMClient({ endpoint: endpoint.url, region: 'us-east-1',
 *   credentials: endpoint.credentials });
 * ```
 */
export async function startSsmEndpoint(options: SsmEndpointOptions = {}): Promise<SsmEndpoint> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    throw new TypeError(`the local SSM endpoint only listens on loopback, not ${host}`);
  }
  const endpoint = new LocalSsmEndpoint(options);
  await endpoint.listen();
  return endpoint;
}
