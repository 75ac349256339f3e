/**
 * Prometheus metrics of one server (prom-client), on a registry of its own so that several
 * servers in one process (tests, embedding) never share counters.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The server's metrics. */
export interface ServerMetrics {
  readonly registry: Registry;
  readonly runs: Counter<'action' | 'status'>;
  readonly nodeResults: Counter<'action' | 'code' | 'transport'>;
  readonly runDuration: Histogram<'action'>;
  readonly queueDepth: Gauge;
  readonly runsInFlight: Gauge;
  readonly sseClients: Gauge;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  /** Alert receivers (issue 15): received alerts by receiver and outcome. */
  readonly alertOutcomes: Counter<'receiver' | 'outcome'>;
  /** Observability (docs/observability.md): node results' wall time by action and transport. */
  readonly nodeDuration: Histogram<'action' | 'transport'>;
  /** Runs accepted (202) by action and source (api, alert, workflow, dashboard, ...). */
  readonly runsSubmitted: Counter<'action' | 'source'>;
  /** HTTP request latency by method and route. */
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** Store query latency by statement kind and outcome. */
  readonly storeQueryDuration: Histogram<'operation' | 'outcome'>;
  /** Records handed to (or refused by) each shipping sink. */
  readonly shippedRecords: Counter<'sink' | 'outcome'>;
  /** Idle reclaims (`[server] idle_reclaim`): full garbage collections, by thread. */
  readonly memoryReclaims: Counter<'thread'>;
  /** The pause of each of those collections, by thread. */
  readonly memoryReclaimPause: Histogram<'thread'>;
}

/** Creates the metrics (and Node's process metrics) on a fresh registry. */
export function createServerMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rune_server_' });
  return {
    registry,
    runs: new Counter({
      name: 'rune_runs_total',
      help: 'Runs that ended, by action and final status (dry runs: status "dry-run").',
      labelNames: ['action', 'status'],
      registers: [registry],
    }),
    nodeResults: new Counter({
      name: 'rune_node_results_total',
      help: 'Node results, by action, EPS code ("OK" for success) and transport.',
      labelNames: ['action', 'code', 'transport'],
      registers: [registry],
    }),
    runDuration: new Histogram({
      name: 'rune_run_duration_seconds',
      help: 'Wall time of runs from start to end.',
      labelNames: ['action'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'rune_queue_depth',
      help: 'Runs waiting to start.',
      registers: [registry],
    }),
    runsInFlight: new Gauge({
      name: 'rune_runs_in_flight',
      help: 'Runs executing now.',
      registers: [registry],
    }),
    sseClients: new Gauge({
      name: 'rune_sse_clients',
      help: 'Open Server-Sent Events streams.',
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'rune_http_requests_total',
      help: 'HTTP requests, by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    // alert receivers (issue 15)
    alertOutcomes: new Counter({
      name: 'rune_alerts_total',
      help: 'Received alerts, by receiver and outcome (ran, deduplicated, throttled, held, refused, no_rule, ...).',
      labelNames: ['receiver', 'outcome'],
      registers: [registry],
    }),
    nodeDuration: new Histogram({
      name: 'rune_node_duration_seconds',
      help: 'Wall time of each node of a run (connect, upload, exec, judge, artifacts), by action and transport.',
      labelNames: ['action', 'transport'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    runsSubmitted: new Counter({
      name: 'rune_runs_submitted_total',
      help: 'Runs accepted by the server (queued or dry run), by action and source.',
      labelNames: ['action', 'source'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'rune_http_request_duration_seconds',
      help: 'HTTP request latency, by method and route (SSE streams: until the stream closed).',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    storeQueryDuration: new Histogram({
      name: 'rune_store_query_duration_seconds',
      help: 'Run store query latency, by statement kind (select, insert, update, delete, other) and outcome (ok, error).',
      labelNames: ['operation', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    shippedRecords: new Counter({
      name: 'rune_shipping_records_total',
      help: 'Records per shipping sink, by outcome (delivered; failed: retried later).',
      labelNames: ['sink', 'outcome'],
      registers: [registry],
    }),
    memoryReclaims: new Counter({
      name: 'rune_memory_reclaims_total',
      help: 'Full garbage collections after the server was idle for [server] idle_reclaim, by thread (main, store, audit).',
      labelNames: ['thread'],
      registers: [registry],
    }),
    memoryReclaimPause: new Histogram({
      name: 'rune_memory_reclaim_pause_seconds',
      help: 'How long each idle reclaim paused its thread, by thread.',
      labelNames: ['thread'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
  };
}
