/**
 * `createRuneServer()`: the RUNE service as a value a Node tool can embed, and what `rune serve`
 * runs. Start-up order: settings (refusing unsafe listeners), the instance lock and the store
 * (migrated), core through the launcher, crash recovery, then the listener. `close()` drains:
 * no new runs, running ones finish for `shutdown_grace`, the rest are cancelled with remote kill,
 * every record is written, then the listener, core and the store close.
 */
import {
  createRuneIdGenerator,
  type LoadedConfig,
  loadConfig,
  resolveAuditLogPath,
  type TransportProvider,
  tracingConfigWarnings,
  tracingRequested,
} from '@rune/core';
import { setHeapGrowth } from '@rune/core/memory';
import { RuneError } from '@rune/protocol';
import { type AlertRulesReload, reloadAlertRules } from './alerts/routes.js';
import { databaseAuditTrail } from './cluster/database-audit.js';
import { createPostgresCluster } from './cluster/postgres-cluster.js';
import { resolveServerSettings, type ServerSettings } from './config/server-config.js';
import { serverConfigModule, serverSection } from './config/server-config-module.js';
import { createApiApp } from './http/create-app.js';
import type { ApiInstance } from './http/route-context.js';
import { type IdleReclaim, MAIN_THREAD, startIdleReclaim } from './memory/idle-reclaim.js';
import { createServerMetrics, type ServerMetrics } from './metrics.js';
import { createPolicyEnforcer, loadServerPolicy, type PolicyEnforcer } from './policy/enforcer.js';
import { createServerLauncher } from './runs/launcher.js';
import { createRunManager, type RunManager } from './runs/run-manager.js';
import { pruneSessions } from './sessions/sessions.js';
import { createShipper, type Shipper } from './shipping/shipper.js';
import { resolveShipping } from './shipping/shipping-config.js';
import { acquireInstanceLock } from './store/instance-lock.js';
import { isPostgresUrl } from './store/postgres-dialect.js';
import { openRunStore, type RunStore } from './store/run-store.js';
import { registerStoreSizeMetric } from './store/store-size.js';
import { createJsonLogger, type ServerLogFormat } from './telemetry/json-log.js';
import { observeStoreQuery } from './telemetry/store-latency.js';
import { startTracing } from './telemetry/tracing-sdk.js';
import { SERVER_VERSION } from './version.js';
import { createWorkflowEngines } from './workflows/workflow-engines.js';
import { workflowOwner } from './workflows/workflow-owner.js';
import { interruptRunningWorkflows } from './workflows/workflow-store.js';

const HOUR_MS = 3_600_000;

/** Options of {@link createRuneServer}. */
export interface RuneServerOptions {
  /** The loaded configuration; otherwise loaded from `configFile` and the standard files. */
  config?: LoadedConfig;
  configFile?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Transports besides `local` (the CLI passes ssh and ssm). */
  transports?: Readonly<Record<string, TransportProvider>>;
  /** Override `[server] listen`'s port (0: any free port; tests). */
  port?: number;
  /** One line per request, warning and internal error. */
  log?: (line: string) => void;
  /**
   * `json`: JSON lines through Fastify's pino logger (on `logDestination`, default stderr)
   * instead of `log`; default `human`.
   */
  logFormat?: ServerLogFormat;
  /** Where JSON log lines go (tests). */
  logDestination?: NodeJS.WritableStream;
  /** Where the `stdout` shipping sink writes (tests); default `process.stdout`. */
  shippingStdout?: NodeJS.WritableStream;
}

/** A running (or ready to run) server. */
export interface RuneServer {
  readonly settings: ServerSettings;
  readonly store: RunStore;
  readonly manager: RunManager;
  readonly metrics: ServerMetrics;
  /** The RBAC policy in force (`[server] policy` or the built-in roles). */
  readonly policy: PolicyEnforcer;
  /** Re-reads the policy file (SIGHUP); on error the old policy stays and the error is returned. */
  reloadPolicy(): ReturnType<PolicyEnforcer['reload']>;
  /** Re-reads `[server] alert_rules` (SIGHUP); on error the old rules stay and the error is returned. */
  reloadAlertRules(): AlertRulesReload;
  /** The Fastify instance (for `inject()` in tests and embedding). */
  readonly app: ApiInstance;
  /** Writes one line to the server's log (plain, or a JSON line with `log_format = "json"`). */
  log(line: string): void;
  /** Record shipping, when `[server.shipping]` configures a sink. */
  readonly shipper: Shipper | undefined;
  /** What recovery found at start-up. */
  readonly recovered: { interrupted: number; requeued: number; replayed?: number };
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>;
  /** The base URL once listening. */
  readonly url: string | undefined;
  /** Graceful shutdown (see the module comment). Idempotent. */
  close(): Promise<void>;
}

/** Creates the server: store opened and migrated, recovery done, not listening yet. */
export async function createRuneServer(options: RuneServerOptions = {}): Promise<RuneServer> {
  const env = options.env ?? process.env;
  const loaded =
    options.config ??
    loadConfig({
      env,
      ...(options.configFile === undefined ? {} : { configFile: options.configFile }),
      configModules: [serverConfigModule],
    });
  const logFormat = options.logFormat ?? serverSection(loaded).log_format ?? 'human';
  const jsonLogger = logFormat === 'json' ? createJsonLogger(options.logDestination) : undefined;
  const log =
    jsonLogger === undefined
      ? (options.log ?? (() => {}))
      : (line: string) =>
          line.startsWith('warning: ')
            ? jsonLogger.warn(line.slice('warning: '.length))
            : jsonLogger.info(line);
  const resolved = resolveServerSettings(loaded);
  // Process-wide and read by V8 at each full collection: set before the store's thread starts.
  setHeapGrowth(resolved.heapGrowthPercent);
  const shipping = resolveShipping(loaded, {
    env,
    ...(options.shippingStdout === undefined ? {} : { stdout: options.shippingStdout }),
  });
  const settings: ServerSettings =
    options.port === undefined ? resolved : { ...resolved, port: options.port };
  // An invalid policy stops the server here, naming file, line and key, before anything opens.
  const initialPolicy = loadServerPolicy(settings.policyPath);
  // The file lock keeps a second server off an SQLite file; instances sharing a PostgreSQL store
  // coordinate through the database instead (src/cluster/).
  const release = isPostgresUrl(settings.storePath)
    ? () => {}
    : acquireInstanceLock(settings.storePath);
  const metrics = createServerMetrics();
  let store: RunStore;
  try {
    store = await openRunStore(settings.storePath, {
      onWarning: (line) => log(`warning: ${line}`),
      onQuery: observeStoreQuery(metrics),
    });
  } catch (error) {
    release();
    throw error;
  }
  // The SDK reads the process environment itself, so the decision reads it too.
  for (const warning of tracingConfigWarnings(process.env)) log(`warning: ${warning}`);
  const tracing = await startTracing({
    requested: tracingRequested,
    idGenerator: createRuneIdGenerator,
    serviceVersion: SERVER_VERSION,
  }).catch(async (error: unknown) => {
    await store.close().catch(() => undefined);
    release();
    throw RuneError.from(error, 'INTERNAL_ERROR', {
      source: { component: 'rune-server' },
      details: { phase: 'tracing' },
    });
  });
  const launcher = createServerLauncher({
    config: loaded,
    env,
    ...(options.transports === undefined ? {} : { transports: options.transports }),
    onWarning: (line) => log(`warning: ${line}`),
    // A shared store keeps the one audit chain of every instance (src/cluster/database-audit.ts).
    ...(store.engine === 'postgres'
      ? { audit: databaseAuditTrail(store.db, settings.storePath) }
      : {}),
  });
  const policy = createPolicyEnforcer({
    policyPath: settings.policyPath,
    launcher,
    db: store.db,
    initial: initialPolicy,
    onWarning: (line) => log(`warning: ${line}`),
  });
  registerStoreSizeMetric(metrics, store);
  let url: string | undefined;
  // Several instances on one PostgreSQL coordinate through it (src/cluster/).
  const cluster =
    store.engine === 'postgres'
      ? createPostgresCluster({ store, url: settings.storePath, leaseMs: settings.leaseMs, log })
      : undefined;
  const manager = createRunManager({
    store,
    launcher,
    settings,
    metrics,
    onWarning: (line) => log(`warning: ${line}`),
    policy,
    linkBase: () => url,
    ...(cluster === undefined ? {} : { cluster }),
    // The embedded store's dry runs answer from this file (runs/run-intake.ts).
    ...(store.engine === 'sqlite' ? { runIntakePath: `${settings.storePath}.run-intake` } : {}),
  });
  let recovered: { interrupted: number; requeued: number; replayed?: number };
  let app: ApiInstance;
  const workflows = createWorkflowEngines();
  try {
    recovered = await manager.recover();
    // Only workflows no live instance executes (src/workflows/workflow-owner.ts); at runtime the
    // cluster's sweep takes over those of instances it declares dead.
    const cancelHeld = (id: string, why: string) => manager.cancel(id, why);
    const workflowsInterrupted = await interruptRunningWorkflows(store.db, new Date(), cancelHeld, {
      me: workflowOwner(manager.cluster),
      unowned: true,
    });
    manager.cluster.onSweep(async () => {
      const taken = await interruptRunningWorkflows(store.db, new Date(), cancelHeld, {
        me: workflowOwner(manager.cluster),
        unowned: false,
      });
      if (taken > 0) log(`cluster: ${taken} workflow run(s) of a dead instance interrupted`);
    });
    if (workflowsInterrupted > 0)
      log(`recovered: ${workflowsInterrupted} workflow run(s) interrupted`);
    // A cancel of a workflow this instance executes, asked through another instance.
    manager.cluster.onWorkflowCancel((id, reason) => {
      workflows.cancel(id, reason);
    });
    const pruned = await manager.prune();
    if (recovered.interrupted + recovered.requeued + pruned > 0) {
      log(
        `recovered: ${recovered.interrupted} run(s) interrupted, ${recovered.requeued} requeued; pruned ${pruned} old run(s)`,
      );
    }
    if ((recovered.replayed ?? 0) > 0) {
      log(`recovered: ${recovered.replayed} dry run(s) stored from the run intake`);
    }
    app = await createApiApp({
      settings,
      store,
      manager,
      launcher,
      metrics,
      log,
      policy,
      workflows,
      env,
      ...(jsonLogger === undefined ? {} : { logFormat: 'json', jsonLogger }),
    });
  } catch (error) {
    await manager.shutdown(0).catch(() => undefined);
    await launcher.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await tracing?.shutdown();
    release();
    throw RuneError.from(error, 'INTERNAL_ERROR', { source: { component: 'rune-server' } });
  }
  const shipper =
    shipping === undefined
      ? undefined
      : createShipper({
          ...shipping,
          db: store.db,
          audit: store.engine === 'postgres' ? 'store' : { file: resolveAuditLogPath(loaded) },
          metrics,
          onWarning: (line) => log(`warning: ${line}`),
          // Several instances: one delivers to each sink at a time (src/shipping/lease.ts).
          ...(store.engine === 'postgres' ? { leaseMs: settings.leaseMs, onInfo: log } : {}),
        });
  const pruneTimer = setInterval(() => {
    manager
      .prune()
      .catch((error: unknown) => log(`warning: pruning failed: ${RuneError.from(error).message}`));
    void pruneSessions(store.db, new Date(), launcher).catch(() => undefined);
  }, HOUR_MS);
  pruneTimer.unref();
  const approvalTimer = setInterval(() => {
    manager.approvals
      .expire()
      .catch((error: unknown) =>
        log(`warning: expiring approvals failed: ${RuneError.from(error).message}`),
      );
  }, 30_000);
  approvalTimer.unref();

  let closing: Promise<void> | undefined;
  let idleReclaim: IdleReclaim | undefined;
  return {
    settings,
    store,
    manager,
    metrics,
    policy,
    reloadPolicy: () => policy.reload(),
    reloadAlertRules: () => reloadAlertRules(app),
    app,
    shipper,
    log,
    recovered,
    get url() {
      return url;
    },
    async listen() {
      try {
        await app.listen({ host: settings.host, port: settings.port });
      } catch (error) {
        throw new RuneError(
          'INVALID_CONFIG',
          `cannot listen on ${settings.host}:${settings.port} (${(error as Error).message})`,
          { cause: error, details: { key: 'server.listen' } },
        );
      }
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : settings.port;
      const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
      url = `${settings.tls === null ? 'http' : 'https'}://${host}:${port}`;
      if (settings.idleReclaimMs !== null && idleReclaim === undefined) {
        idleReclaim = startIdleReclaim({
          idleMs: settings.idleReclaimMs,
          server: app.server,
          busy: () => {
            const depth = manager.depth();
            return depth.queued + depth.running > 0;
          },
          threads: [
            MAIN_THREAD,
            { name: 'store', reclaim: () => store.reclaimMemory() },
            { name: 'audit', reclaim: () => launcher.reclaimAuditMemory() },
          ],
          metrics,
          onWarning: (line) => log(`warning: ${line}`),
        });
      }
      return url;
    },
    close() {
      closing ??= (async () => {
        clearInterval(pruneTimer);
        clearInterval(approvalTimer);
        idleReclaim?.close();
        await idleReclaim?.settled();
        await manager.shutdown(settings.shutdownGraceMs);
        await app.close();
        await shipper?.close();
        await launcher.close().catch(() => undefined);
        await store.close().catch(() => undefined);
        await tracing?.shutdown();
        release();
      })();
      return closing;
    },
  };
}
