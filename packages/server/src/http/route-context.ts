/** What every route module is given. */

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerSettings } from '../config/server-config.js';
import type { ServerMetrics } from '../metrics.js';
import type { PolicyEnforcer } from '../policy/enforcer.js';
import type { ServerLauncher } from '../runs/launcher.js';
import type { RunManager } from '../runs/run-manager.js';
import type { RunStore } from '../store/run-store.js';
import type { WorkflowEngines } from '../workflows/workflow-engines.js';

/** The typed Fastify instance of the API. */
export type ApiInstance = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  import('fastify').FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** The server's parts, for the routes. */
export interface RouteContext {
  store: RunStore;
  manager: RunManager;
  launcher: ServerLauncher;
  metrics: ServerMetrics;
  settings: ServerSettings;
  /** RBAC: every authorization decision (src/policy/). */
  policy: PolicyEnforcer;
  /** The workflow engines this process executes (a cancel finds them there). */
  workflows: WorkflowEngines;
}
