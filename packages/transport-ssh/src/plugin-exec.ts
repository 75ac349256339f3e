/**
 * The exec flow of one request: check it, connect (or reuse), run the bootstrap — ONE round trip
 * when the plugin is cached — and, on a cache miss, upload the plugin with a second exec and run
 * again. Metadata counts the round trips, so a test (and the audit) can see the hot path held.
 */
import { RuneError } from '@rune/protocol';
import {
  createRunMarker,
  type TransportExecRequest,
  type TransportExecResult,
  withPhaseSpan,
} from '@rune/transport';
import { checkBootstrap } from './bootstrap-failure.js';
import { endpointKey, type RouteConnector } from './connect-route.js';
import type { SshConnection } from './connection-pool.js';
import { preinstalledPath, validateExecRequest } from './exec-request.js';
import { containmentOf, execResultOf, NOTHING_RAN } from './exec-result.js';
import { type RawRun, runBootstrap } from './exec-session.js';
import { buildBootstrapCommand } from './remote-command.js';
import type { ResolvedSshTransportOptions } from './ssh-options.js';

/** What the exec flow needs from the transport. */
export interface PluginExecContext {
  options: ResolvedSshTransportOptions;
  connector: RouteConnector;
  /** True once `close()` was called: nothing new may start. */
  isClosed(): boolean;
}

/** Runs one request to its result; rejects with a RuneError carrying node, action and trace id. */
export async function execPlugin(
  context: PluginExecContext,
  request: TransportExecRequest,
): Promise<TransportExecResult> {
  const { options, connector } = context;
  const started = performance.now();
  const node = request.node;
  const cancelled = (metadata: Record<string, unknown>): TransportExecResult => ({
    termination: 'cancelled',
    exitCode: null,
    signal: null,
    stdout: new Uint8Array(0),
    stdoutTruncated: false,
    stderr: new Uint8Array(0),
    stderrTruncated: false,
    timings: { connectMs: 0, execMs: 0, totalMs: performance.now() - started },
    metadata: { ...metadata, started: false },
    containment: NOTHING_RAN,
  });
  try {
    if (context.isClosed()) {
      throw new RuneError('TRANSPORT_UNAVAILABLE', 'the SSH transport is closed');
    }
    validateExecRequest(request, options);
    if (request.signal.aborted) return cancelled({});
    const runAs = request.runAs ?? node.runAs;
    const planned = await connector.resolve(node);
    const route = planned.route;
    let acquired: Awaited<ReturnType<RouteConnector['open']>>;
    try {
      acquired = await withPhaseSpan(request, 'connect', async (span) => {
        // A new connection's SSH handshake is a `handshake` phase inside `connect`.
        const opened = await connector.open(planned, request.signal, (step) =>
          withPhaseSpan(request, 'handshake', step),
        );
        span.setAttributes({ 'rune.connection.reused': opened.reused });
        return opened;
      });
    } catch (error) {
      if (request.signal.aborted) return cancelled({ connect_error: RuneError.from(error).code });
      throw error;
    }
    const { connection, connectMs } = acquired;
    const metadata: Record<string, unknown> = {
      deploy_mode: request.deployMode,
      connection_id: connection.id,
      connection_reused: acquired.reused,
      host_key_checking: route.target.strictHostKeyChecking,
      exec_round_trips: 0,
    };
    if (route.jumps.length > 0) metadata.proxy_jump = route.jumps.map(endpointKey);
    if (runAs !== undefined) metadata.run_as = runAs;
    if (request.signal.aborted) return cancelled(metadata);

    const execStart = performance.now();
    const watchdogSeconds = Math.ceil(request.timeoutMs / 1000) + options.watchdogGraceSeconds;
    const runOnce = async (): Promise<RawRun> => {
      const marker = createRunMarker();
      const location =
        request.deployMode === 'ship' ? options.remoteCacheDir : preinstalledPath(request, options);
      const command = buildBootstrapCommand({
        op: request.deployMode === 'ship' ? 'ship' : 'preinstalled',
        sha256: request.plugin.sha256,
        location,
        watchdogSeconds,
        marker,
        ...(runAs === undefined ? {} : { runAs }),
        ...(request.preflight === undefined ? {} : { preflight: request.preflight.commands }),
      });
      metadata.exec_round_trips = (metadata.exec_round_trips as number) + 1;
      return withPhaseSpan(request, 'exec', () =>
        runBootstrap({
          connection,
          command,
          stdin: request.stdin,
          request,
          runAs,
          phase: 'plugin',
          marker,
        }),
      );
    };

    let raw = await runOnce();
    if (request.deployMode === 'ship') {
      metadata.cache_hit = raw.bootstrap.find('miss') === undefined;
      metadata.shipped = false;
      if (
        raw.bootstrap.find('miss') !== undefined &&
        raw.interrupted === undefined &&
        raw.lost === undefined
      ) {
        metadata.exec_round_trips = (metadata.exec_round_trips as number) + 1;
        const interrupted = await withPhaseSpan(request, 'upload', () =>
          upload(connection, request, runAs, options),
        );
        metadata.shipped = interrupted === undefined;
        if (interrupted === undefined) raw = await runOnce();
        else raw.interrupted = interrupted;
        if (raw.bootstrap.find('miss') !== undefined && raw.interrupted === undefined) {
          throw new RuneError(
            'PLUGIN_INTEGRITY_FAILED',
            `the plugin ${request.plugin.action} was uploaded but the cached copy on ${node.name} does not verify; nothing was executed`,
            { details: { sha256: request.plugin.sha256 } },
          );
        }
      }
    }
    if (raw.interrupted === undefined) {
      await checkBootstrap(connection, raw, request, runAs, options);
    }
    if (raw.lost !== undefined) throw raw.lost;
    if (raw.bootstrap.pgid !== undefined) metadata.remote_pgid = raw.bootstrap.pgid;
    const containment = containmentOf(raw, raw.sweep === undefined ? undefined : await raw.sweep);
    const execMs = performance.now() - execStart;
    return execResultOf(raw, {
      stdout: raw.stdout.bytes(),
      stdoutTruncated: raw.stdout.truncated,
      stderr: raw.stderr.bytes(),
      stderrTruncated: raw.stderr.truncated,
      timings: { connectMs, execMs, totalMs: performance.now() - started },
      metadata,
      containment,
    });
  } catch (error) {
    throw RuneError.from(error).withContext({
      component: 'transport-ssh',
      node: node.name,
      action: request.plugin.action,
      traceId: request.traceId,
    });
  }
}

/** Second round trip on a cache miss: stdin = plugin bytes, stored after the sha256 check. */
async function upload(
  connection: SshConnection,
  request: TransportExecRequest,
  runAs: string | undefined,
  options: ResolvedSshTransportOptions,
): Promise<'timeout' | 'cancelled' | undefined> {
  const command = buildBootstrapCommand({
    op: 'upload',
    sha256: request.plugin.sha256,
    location: options.remoteCacheDir,
    watchdogSeconds: 0,
    ...(runAs === undefined ? {} : { runAs }),
  });
  const raw = await runBootstrap({
    connection,
    command,
    stdin: request.plugin.content,
    request: { ...request, limits: { maxStdoutBytes: 4096, maxStderrBytes: 8192 } },
    runAs,
    phase: 'upload',
  });
  if (raw.lost !== undefined) throw raw.lost;
  if (raw.interrupted !== undefined) return raw.interrupted;
  if (raw.bootstrap.find('stored') !== undefined) return undefined;
  const integrity = raw.bootstrap.find('integrity');
  if (integrity !== undefined) {
    throw new RuneError(
      'PLUGIN_INTEGRITY_FAILED',
      `the uploaded plugin ${request.plugin.action} hashed to ${integrity.args[0]} on the node, expected ${request.plugin.sha256}; nothing was executed`,
      { details: { expected_sha256: request.plugin.sha256, actual_sha256: integrity.args[0] } },
    );
  }
  await checkBootstrap(connection, raw, request, runAs, options);
  throw new RuneError(
    'PLUGIN_NOT_EXECUTABLE',
    `uploading the plugin to ${request.node.name} failed`,
    {
      details: { exit_code: raw.exitCode, stderr: raw.bootstrap.preamble },
    },
  );
}
