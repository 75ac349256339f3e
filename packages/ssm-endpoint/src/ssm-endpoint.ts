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
 *
 * This module is the facade: it composes the HTTP side (`http-server.ts`: loopback, body bounds,
 * SigV4), the SSM API actions (`ssm-api.ts`), the command runner (`command-runner.ts`: the agent's
 * semantics) and the S3 stand-in (`s3-stand-in.ts`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuneError } from '@rune/protocol';
import { CommandRunner } from './command-runner.js';
import type { SsmEndpointFaults, SsmPingStatus } from './endpoint-state.js';
import { createEndpointServer, isLoopback } from './http-server.js';
import { S3StandIn } from './s3-stand-in.js';
import { createEndpointCredentials, type SigV4Credentials } from './sigv4-verifier.js';
import { SsmApi, type SsmEndpointInstanceOptions, type SsmEndpointRequest } from './ssm-api.js';

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

class LocalSsmEndpoint implements SsmEndpoint {
  url = '';
  port = 0;
  private readonly secret: SigV4Credentials;
  private readonly server: Server;
  private readonly api: SsmApi;
  private readonly runner: CommandRunner;
  private readonly workRoot: string;
  private readonly ownsWorkRoot: boolean;
  private closed = false;

  constructor(private readonly options: SsmEndpointOptions) {
    this.secret = { ...(options.credentials ?? createEndpointCredentials()) };
    this.ownsWorkRoot = options.workRoot === undefined;
    this.workRoot = options.workRoot ?? mkdtempSync(join(tmpdir(), 'rune-ssm-endpoint-'));
    const log = (line: string): void => options.log?.(line);
    const s3 = new S3StandIn(() => this.url);
    this.runner = new CommandRunner({
      ...(options.pendingMs !== undefined ? { pendingMs: options.pendingMs } : {}),
      ...(options.deliveryTimeoutMs !== undefined
        ? { deliveryTimeoutMs: options.deliveryTimeoutMs }
        : {}),
      ...(options.rebootMs !== undefined ? { rebootMs: options.rebootMs } : {}),
      ...(options.maxReboots !== undefined ? { maxReboots: options.maxReboots } : {}),
      log,
      instance: (instanceId) => this.api.instance(instanceId),
      onFinish: (invocation) => s3.store(invocation),
    });
    this.api = new SsmApi({
      workRoot: this.workRoot,
      ...(options.faults !== undefined ? { faults: options.faults } : {}),
      ...(options.outputLimits !== undefined ? { outputLimits: options.outputLimits } : {}),
      ...(options.maxParametersBytes !== undefined
        ? { maxParametersBytes: options.maxParametersBytes }
        : {}),
      log,
      runner: this.runner,
      s3,
    });
    for (const instance of options.instances ?? []) this.api.addInstance(instance);
    this.server = createEndpointServer({
      credentials: this.secret,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_SSM_ENDPOINT_MAX_BODY_BYTES,
      log,
      ssm: (operation, body) => this.api.call(operation, body),
      s3: (request, response) => s3.handle(request, response),
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

  get requests(): readonly SsmEndpointRequest[] {
    return this.api.requests;
  }

  addInstance(instance: string | SsmEndpointInstanceOptions): void {
    this.api.addInstance(instance);
  }

  setPingStatus(instanceId: string, status: SsmPingStatus): void {
    this.api.setPingStatus(instanceId, status);
  }

  setFaults(instanceId: string, faults: SsmEndpointFaults): void {
    this.api.setFaults(instanceId, faults);
  }

  throttle(count: number, operations?: readonly string[]): void {
    this.api.throttle(count, operations);
  }

  rebootCount(instanceId: string): number {
    return this.api.instance(instanceId).reboots;
  }

  runningProcessGroups(): number[] {
    return this.runner.runningProcessGroups(this.api.allInvocations());
  }

  instanceDir(instanceId: string): string {
    return this.api.instance(instanceId).dir;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.runner.stop(this.api.allInvocations());
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.ownsWorkRoot) rmSync(this.workRoot, { recursive: true, force: true });
  }
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
    throw new RuneError(
      'INVALID_ARGUMENT',
      `the local SSM endpoint only listens on loopback, not ${host}`,
      { source: { component: 'ssm-endpoint' } },
    );
  }
  const endpoint = new LocalSsmEndpoint(options);
  await endpoint.listen();
  return endpoint;
}
