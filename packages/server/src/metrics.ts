/**
 * Prometheus metrics of one server (prom-client), on a registry of its own so that several
 * servers in one process (tests, embedding) never share counters.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The server's metrics. */
export interface ServerMetrics {
  readonly registry: Registry;
  readonly runs: Counter<'action' | 'status'>;
  readonly nodeResults: Counter<'action' | 'code'>;
  readonly runDuration: Histogram<'action'>;
  readonly queueDepth: Gauge;
  readonly runsInFlight: Gauge;
  readonly sseClients: Gauge;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  /** Alert receivers (issue 15): received alerts by receiver and outcome. */
  readonly alertOutcomes: Counter<'receiver' | 'outcome'>;
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
      help: 'Node results, by action and EPS code ("OK" for success).',
      labelNames: ['action', 'code'],
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
  };
}
