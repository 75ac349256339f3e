/**
 * The policy checks of the routes. Before a handler: the coarse check of the route's `minRole`
 * (does the principal hold the verb at all?), with ROLE_FORBIDDEN as before. In the handlers: the
 * fine check on one run's action and nodes (view, cancel), POLICY_DENIED when refused.
 *
 * Audited: every decision that changes something (run, dry-run, cancel, approve, admin), every
 * refused read, and the one allowed read that hands out content a node produced: an artifact
 * download ({@link auditArtifactRead}). Other allowed reads are not written to the audit log: a
 * dashboard following a run would otherwise write one signed, fsynced record per poll.
 */
import { RuneError } from '@rune/protocol';
import type { Principal, TokenRole } from '../auth/tokens.js';
import type { RouteAuthorizer } from '../http/auth-hook.js';
import type { StoredRun } from '../store/run-store.js';
import type { PolicyEnforcer } from './enforcer.js';
import type { AccessRequest } from './policy.js';
import type { PolicyVerb } from './policy-schema.js';

const source = { component: 'rune-server' } as const;

const COARSE: Readonly<Record<TokenRole, readonly PolicyVerb[]>> = {
  viewer: ['view'],
  operator: ['run', 'dry-run', 'cancel'],
  admin: ['admin'],
};

/** The auth hook's coarse check against the policy in force. */
export function routeAuthorizer(policy: PolicyEnforcer): RouteAuthorizer {
  return async (principal, minRole) => {
    if (minRole === 'authenticated') return;
    const subject = policy.subjectOf(principal);
    const reasons: string[] = [];
    for (const verb of COARSE[minRole]) {
      const decision = await policy.evaluate(subject, { verb });
      if (decision.allowed) return;
      reasons.push(decision.reason);
    }
    const reason = reasons.join('; ');
    throw new RuneError(
      'ROLE_FORBIDDEN',
      `this request needs ${COARSE[minRole].join(' or ')}: ${reason}`,
      { source, details: { role: principal.role, required: minRole } },
    );
  };
}

/** The access request of a verb on a stored run. */
export function runAccess(
  verb: PolicyVerb,
  run: StoredRun,
  tags: readonly string[],
): AccessRequest {
  return { verb, action: run.action, tags, nodes: JSON.parse(run.nodes) as string[] };
}

/** Whether `principal` may view `run` (not audited: listings filter with it). */
export async function canView(
  policy: PolicyEnforcer,
  principal: Principal,
  run: StoredRun,
  tags: readonly string[],
): Promise<boolean> {
  return (await policy.evaluate(policy.subjectOf(principal), runAccess('view', run, tags))).allowed;
}

/** Throws POLICY_DENIED (audited) unless `principal` may view `run`. */
export async function assertCanView(
  policy: PolicyEnforcer,
  principal: Principal,
  run: StoredRun,
  tags: readonly string[],
): Promise<void> {
  if (await canView(policy, principal, run, tags)) return;
  await policy.authorize(policy.subjectOf(principal), runAccess('view', run, tags), {
    traceId: run.trace_id,
    runId: run.id,
  });
}

/**
 * Records an allowed artifact download (`event: "policy"`, `status: "allowed"`, verb `view`, the
 * run, its action and the node) before the file is sent: a file that left the server always has
 * its record. Throws AUDIT_WRITE_FAILED when the record cannot be written (nothing is sent then).
 */
export async function auditArtifactRead(
  policy: PolicyEnforcer,
  principal: Principal,
  run: StoredRun,
  node: string,
  tags: readonly string[],
): Promise<void> {
  await policy.authorize(
    policy.subjectOf(principal),
    { ...runAccess('view', run, tags), nodes: [node] },
    { traceId: run.trace_id, runId: run.id },
  );
}

/** The manifest tags of an action (none when it is no longer installed). */
export function actionTags(
  launcher: { describeAction(name: string): { manifest: { tags: string[] } } },
  action: string,
): string[] {
  try {
    return launcher.describeAction(action).manifest.tags;
  } catch {
    return [];
  }
}
