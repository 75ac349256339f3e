/**
 * The policy enforcer: the one object every authorization decision of the server goes through —
 * `RunManager.submit()` (after planning, so nodes are resolved) and the read, cancel, approve and
 * admin routes. It holds the current policy (reloaded on SIGHUP; a reload with errors keeps the
 * old one and says why), resolves a principal to its policy subjects, decides, writes every
 * decision (allow and deny, the rule id, the policy digest) to the audit trail through the
 * launcher's audit facade, and throws POLICY_DENIED for a refusal.
 *
 * Tokens minted through the API carry their creator's subjects as bounds: a decision for such a
 * token is made for the token and for every bound, and only allows what all of them allow. So a
 * token can never do more than whoever created it, even after the policy changes.
 */
import { type AuditEntry, type Inventory, loadInventory } from '@rune/core';
import { RuneError } from '@rune/protocol';
import type { Kysely } from 'kysely';
import { tokenCacheOf } from '../auth/token-cache.js';
import type { LaunchContext, ServerLauncher } from '../runs/launcher.js';
import { preparedQuery } from '../store/prepared.js';
import type { StoreDatabase } from '../store/schema.js';
import { BUILTIN_POLICY, loadPolicyFile } from './load-policy.js';
import {
  type AccessRequest,
  type CompiledPolicy,
  decide,
  type PolicyDecision,
  type PolicySubject,
} from './policy.js';

const source = { component: 'rune-server' } as const;

/** The principal shape the enforcer needs (an API token's, a session's, a service's). */
export interface PrincipalLike {
  name: string;
  tokenId?: string;
  role?: string;
  roles?: readonly string[];
  subjects?: readonly string[];
}

/** What a decision is recorded with. */
export interface DecisionContext {
  traceId?: string;
  runId?: string;
  plugin?: AuditEntry['plugin'];
  /** Redacted parameters for the record. */
  params?: Record<string, unknown> | null;
  source?: LaunchContext['source'];
  /**
   * `authorize` only: an allowed decision's audit append is handed to this instead of awaited,
   * so that it shares one write and fsync with the caller's next record (a dry run's); the
   * caller must await it before it acknowledges anything. A refusal is always awaited.
   */
  deferRecord?: (recorded: Promise<void>) => void;
}

/** The enforcer. */
export interface PolicyEnforcer {
  /** The policy in force. */
  current(): CompiledPolicy;
  /** Re-reads the policy file; on error the old policy stays and the error is returned. */
  reload(): { ok: true; digest: string } | { ok: false; error: RuneError };
  /** The policy subject of a principal (a token's roles and `token:<name>`). */
  subjectOf(principal: PrincipalLike): PolicySubject;
  /** Decides and audits; never throws for a refusal (see {@link authorize}). */
  check(
    subject: PolicySubject,
    request: AccessRequest,
    context?: DecisionContext,
  ): Promise<PolicyDecision>;
  /** Decides and audits; throws POLICY_DENIED when refused. */
  authorize(
    subject: PolicySubject,
    request: AccessRequest,
    context?: DecisionContext,
  ): Promise<PolicyDecision>;
  /** Decides without auditing (listing filters, `rune policy check` offline). */
  evaluate(subject: PolicySubject, request: AccessRequest): Promise<PolicyDecision>;
}

/** Options of {@link createPolicyEnforcer}. */
export interface PolicyEnforcerOptions {
  /** `[server] policy`; undefined = the built-in roles. */
  policyPath: string | undefined;
  launcher: Pick<ServerLauncher, 'recordAudit' | 'config'>;
  db?: Kysely<StoreDatabase>;
  /** A policy already loaded (start-up validates before anything else). */
  initial?: CompiledPolicy;
  onWarning?: (line: string) => void;
}

/** The roles text of a token row (`operator`, `analyst,ci`) as a list. */
export function tokenRoles(role: string | undefined): string[] {
  return (role ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** The subject of a principal. */
export function subjectOfPrincipal(principal: PrincipalLike): PolicySubject {
  return {
    principal: principal.name,
    subjects: principal.subjects ?? [principal.name],
    roles: principal.roles ?? tokenRoles(principal.role),
  };
}

/** Loads `[server] policy` or the built-in policy. Throws INVALID_POLICY. */
export function loadServerPolicy(path: string | undefined): CompiledPolicy {
  return path === undefined ? BUILTIN_POLICY : loadPolicyFile(path);
}

// Read at every decision for a token: compiled once per database.
const boundsOfToken = preparedQuery<StoreDatabase, { bounds_json: string }>(1, (db, name) =>
  db
    .selectFrom('token_bounds')
    .innerJoin('api_tokens', 'api_tokens.id', 'token_bounds.token_id')
    .select('token_bounds.bounds_json')
    .where('api_tokens.name', '=', name),
);

/** Reads the bounds of a token minted through the API (none for CLI-created tokens). */
export async function tokenBounds(
  db: Kysely<StoreDatabase> | undefined,
  subject: PolicySubject,
): Promise<PolicySubject[]> {
  if (db === undefined || !subject.principal.startsWith('token:')) return [];
  const name = subject.principal.slice('token:'.length);
  const read = () => boundsOfToken(db, name);
  const cache = tokenCacheOf(db);
  const [row] = cache === undefined ? await read() : await cache.read(`bounds:${name}`, read);
  if (row === undefined) return [];
  const bounds = JSON.parse(row.bounds_json) as PolicySubject[];
  // A creator that is a token is read again: its roles now, and none once it is revoked or
  // expired, so that whatever its creator loses, the minted token loses too.
  const now = Date.now();
  return Promise.all(
    bounds.map(async (bound) => {
      if (!bound.principal.startsWith('token:')) return bound;
      const creator = await db
        .selectFrom('api_tokens')
        .select(['role', 'revoked_at', 'expires_at'])
        .where('name', '=', bound.principal.slice('token:'.length))
        .executeTakeFirst();
      const active =
        creator !== undefined &&
        creator.revoked_at === null &&
        (creator.expires_at === null || Date.parse(creator.expires_at) > now);
      return {
        ...bound,
        roles: active ? tokenRoles(creator.role) : [],
        subjects: active ? bound.subjects : [],
      };
    }),
  );
}

/** Creates the enforcer. */
export function createPolicyEnforcer(options: PolicyEnforcerOptions): PolicyEnforcer {
  let policy = options.initial ?? loadServerPolicy(options.policyPath);
  const inventoryPath = options.launcher.config.config.core.inventory;
  let cachedInventory: { key: string; inventory: Inventory } | undefined;

  // The inventory is read at each decision (a node removed from @web must leave the grant at
  // once); loading it again only when the file changed keeps that cheap.
  const inventory = async (): Promise<Inventory | undefined> => {
    if (inventoryPath === undefined) return undefined;
    const { statSync } = await import('node:fs');
    const stat = statSync(inventoryPath, { throwIfNoEntry: false });
    const key = stat === undefined ? 'missing' : `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    if (cachedInventory?.key !== key) {
      cachedInventory = { key, inventory: await loadInventory(inventoryPath) };
    }
    return cachedInventory.inventory;
  };

  const evaluate = async (subject: PolicySubject, request: AccessRequest) => {
    const loaded = await inventory();
    const decision = decide(policy, subject, request, { inventory: loaded });
    if (!decision.allowed) return decision;
    for (const bound of await tokenBounds(options.db, subject)) {
      const bounded = decide(policy, bound, request, { inventory: loaded });
      if (!bounded.allowed) {
        return {
          ...bounded,
          reason: `${subject.principal} is bounded by its creator ${bound.principal}: ${bounded.reason}`,
        };
      }
      if (bounded.quorum > decision.quorum) decision.quorum = bounded.quorum;
    }
    return decision;
  };

  const record = async (
    subject: PolicySubject,
    request: AccessRequest,
    decision: PolicyDecision,
    context: DecisionContext,
  ): Promise<void> => {
    const nodes = request.nodes ?? [];
    await options.launcher.recordAudit(
      {
        event: 'policy',
        ...(context.runId === undefined ? {} : { run_id: context.runId }),
        operator: subject.principal,
        action: request.action ?? '',
        plugin: context.plugin ?? null,
        node: null,
        transport: null,
        status: decision.allowed ? 'allowed' : 'denied',
        error_code: decision.allowed ? null : 'POLICY_DENIED',
        error_message: decision.allowed ? null : decision.reason,
        duration_ms: null,
        trace_id: context.traceId ?? '0'.repeat(32),
        params: context.params ?? null,
        nodes: nodes.slice(0, 100),
        ...(nodes.length > 100 ? { nodes_total: nodes.length } : {}),
        metadata: {
          verb: request.verb,
          rule: decision.rule,
          rules: decision.rules,
          roles: decision.roles,
          quorum: decision.quorum,
          offending: decision.offending.slice(0, 100),
          policy: policy.digest,
          policy_source: policy.source,
        },
      },
      {
        principal: subject.principal,
        source: context.source ?? 'api',
      },
    );
  };

  const check: PolicyEnforcer['check'] = async (subject, request, context = {}) => {
    const decision = await evaluate(subject, request);
    await record(subject, request, decision, context);
    return decision;
  };

  return {
    current: () => policy,
    reload() {
      try {
        policy = loadServerPolicy(options.policyPath);
        return { ok: true, digest: policy.digest };
      } catch (error) {
        const runeError = RuneError.from(error, 'INVALID_POLICY', { source });
        options.onWarning?.(
          `policy reload failed, the previous policy stays in force: ${runeError.message}`,
        );
        return { ok: false, error: runeError };
      }
    },
    subjectOf: subjectOfPrincipal,
    check,
    evaluate,
    async authorize(subject, request, context = {}) {
      const decision = await evaluate(subject, request);
      const recorded = record(subject, request, decision, context);
      if (decision.allowed && context.deferRecord !== undefined) {
        context.deferRecord(recorded);
        return decision;
      }
      await recorded;
      if (!decision.allowed) {
        throw new RuneError('POLICY_DENIED', decision.reason, {
          source,
          ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
          details: {
            verb: request.verb,
            rule: decision.rule,
            offending_nodes: decision.offending.map((entry) => entry.node).slice(0, 100),
            offending: decision.offending.slice(0, 20),
          },
        });
      }
      return decision;
    },
  };
}
